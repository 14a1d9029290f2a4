import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAll, mnistSource } from '@mlq/core/data';
import { startStack, type Stack } from '../../../test/support/stack.ts';
import { MlqApiError, MlqClient, predictPath, type TensorLike } from '../src/index.ts';

/** Held-out digits as TF Serving instances of shape [28, 28, 1], with their labels. */
async function heldOut(n: number): Promise<{ instances: TensorLike[]; labels: number[] }> {
  const { x, y } = await loadAll(mnistSource({ format: 'mnist', digits: [0, 1], split: 'test', limit: n }));
  const instances = Array.from(y, (_, i) =>
    Array.from({ length: 28 }, (_r, r) => Array.from({ length: 28 }, (_c, c) => [x[i * 784 + r * 28 + c]!])),
  );
  return { instances, labels: Array.from(y) };
}

const argmax = (v: number[]) => v.indexOf(Math.max(...v));

describe('MlqClient.predict against a real API', () => {
  let stack: Stack;
  let mlq: MlqClient;

  beforeAll(async () => {
    stack = await startStack('sdk-predict');
    mlq = new MlqClient({ baseUrl: stack.url });
    for (const epochs of [2, 1]) {
      const job = await mlq.fineTune({
        model: 'sdk-serve',
        architecture: 'mlp',
        dataset: { format: 'mnist', digits: [0, 1], limit: 200 },
        epochs,
      });
      await mlq.waitForJob(job, { timeoutMs: 120_000 });
    }
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('builds the three predict paths from objects and from "name@tag" strings', () => {
    expect(predictPath('m')).toBe('/v1/models/m:predict');
    expect(predictPath('m@3')).toBe('/v1/models/m/versions/3:predict');
    expect(predictPath('m@production')).toBe('/v1/models/m/labels/production:predict');
    expect(predictPath({ name: 'm', version: 2 })).toBe('/v1/models/m/versions/2:predict');
    expect(predictPath({ name: 'm', label: 'staging' })).toBe('/v1/models/m/labels/staging:predict');
    expect(() => predictPath('file:///x/model.json')).toThrow(/not "<name>"/);
  });

  it('predicts held-out digits by label, version and latest', async () => {
    const { instances, labels } = await heldOut(20);
    await mlq.setLabel('sdk-serve', 'production', 1);
    for (const ref of [
      { name: 'sdk-serve', label: 'production' },
      'sdk-serve@1',
      { name: 'sdk-serve' },
    ] as const) {
      // A classifier: each prediction is a vector of class scores.
      const predictions = (await mlq.predict(ref, instances)).predictions as number[][];
      expect(predictions).toHaveLength(20);
      for (const p of predictions) {
        expect(p).toHaveLength(2);
        expect(p[0]! + p[1]!).toBeCloseTo(1, 4); // softmax
      }
      const right = predictions.filter((p, i) => argmax(p) === labels[i]).length;
      expect(right / labels.length, JSON.stringify(ref)).toBeGreaterThan(0.8);
    }
  });

  it('follows a label when it moves', async () => {
    const { instances } = await heldOut(5);
    await mlq.setLabel('sdk-serve', 'production', 1);
    const v1 = await mlq.predict('sdk-serve@1', instances);
    const v2 = await mlq.predict('sdk-serve@2', instances);
    expect(v1.predictions).not.toEqual(v2.predictions); // different training runs
    expect((await mlq.predict('sdk-serve@production', instances)).predictions).toEqual(v1.predictions);
    await mlq.setLabel('sdk-serve', 'production', 2);
    expect((await mlq.predict('sdk-serve@production', instances)).predictions).toEqual(v2.predictions);
  });

  it('predicts in the columnar format', async () => {
    const { instances } = await heldOut(3);
    const rows = await mlq.predict('sdk-serve@1', instances);
    const cols = await mlq.predictColumnar('sdk-serve@1', instances);
    expect(cols.outputs).toEqual(rows.predictions);
  });

  it('throws MlqApiError: 400 naming the expected shape, 404 for unknown models, versions and labels', async () => {
    const shape = await mlq.predict('sdk-serve', [[1, 2, 3]]).catch((e: unknown) => e);
    expect(shape).toBeInstanceOf(MlqApiError);
    expect(shape).toMatchObject({ status: 400, code: 'invalid_request' });
    expect((shape as MlqApiError).message).toMatch(/\[28,28,1\]/);
    expect((shape as MlqApiError).fields.length).toBeGreaterThan(0);
    for (const ref of ['no-such-model', 'sdk-serve@99', 'sdk-serve@no-such-label']) {
      expect(await mlq.predict(ref, [[0]]).catch((e: unknown) => e), ref).toMatchObject({ status: 404 });
    }
  });

  it('describes a model and infers with the Open Inference Protocol, by label, version and latest', async () => {
    await mlq.setLabel('sdk-serve', 'production', 1);
    const meta = await mlq.metadata('sdk-serve@production');
    expect(meta).toMatchObject({ name: 'sdk-serve', versions: ['1', '2'], platform: 'tfjs_layers_model' });
    expect(meta.inputs).toEqual([{ name: 'features_in', datatype: 'FP32', shape: [-1, 28, 28, 1] }]);
    expect((await mlq.metadata({ name: 'sdk-serve' })).outputs[0]!.shape).toEqual([-1, 2]);
    const { instances } = await heldOut(3);
    const pixels = Float32Array.from((instances as number[][][][]).flat(3));
    for (const [ref, version] of [
      ['sdk-serve@production', 1],
      ['sdk-serve@2', 2],
      [{ name: 'sdk-serve' }, 2],
    ] as const) {
      const r = await mlq.infer(ref, {
        id: 'a-1',
        inputs: [{ name: meta.inputs[0]!.name, shape: [3, 28, 28, 1], datatype: 'FP32', data: pixels }],
      });
      expect(r).toMatchObject({ model_name: 'sdk-serve', model_version: String(version), id: 'a-1' });
      const { predictions } = await mlq.predict({ name: 'sdk-serve', version }, instances);
      const scores = (predictions as number[][]).flat();
      r.outputs[0]!.data.forEach((s, i) => expect(s).toBeCloseTo(scores[i]!, 5));
    }
    const bad = await mlq
      .infer('sdk-serve', {
        inputs: [{ name: 'x', shape: [1, 28, 28, 1], datatype: 'FP32', data: pixels.slice(0, 784) }],
      })
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(MlqApiError);
    expect(bad).toMatchObject({
      status: 400,
      code: 'invalid_request',
      message: expect.stringMatching(/"features_in"/),
    });
    expect(await mlq.metadata('sdk-serve@no-such-label').catch((e: unknown) => e)).toMatchObject({
      status: 404,
    });
  });
});
