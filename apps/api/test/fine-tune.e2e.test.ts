import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { loadAll, mnistSource } from '@mlq/core/data';
import { loadModel } from '@mlq/core/ml';
import { FileArtifactStore } from '@mlq/core/storage';
import { initBackend } from '@mlq/engine';
import { http, startStack, waitForJob, type JobBody, type Stack } from '../../../test/support/stack.ts';

describe('fine-tune over HTTP', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack('fine-tune');
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('trains a base, then a frozen-base transfer model whose saved file loads and predicts', async () => {
    const base = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', {
      model: 'digits-base',
      architecture: 'mlp',
      architectureOptions: { units: [32] },
      dataset: { format: 'mnist', digits: [0, 1, 2], limit: 600 },
      epochs: 3,
      batchSize: 32,
      validationSplit: 0.2,
    });
    expect(base.status).toBe(202);
    const b = await waitForJob(stack.url, base.body.id);
    expect(b.state, JSON.stringify(b)).toBe('completed');
    expect(b.result?.model).toMatchObject({ name: 'digits-base', version: 1 });
    expect(b.progress).toMatchObject({ epoch: 3, epochs: 3 });

    const transfer = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', {
      model: 'digits-transfer',
      base: 'digits-base@1',
      dataset: { format: 'mnist', digits: [7, 8], limit: 400 },
      head: { units: [16], dropout: 0.1 },
      learningRate: 0.01,
      epochs: 5,
      batchSize: 32,
    });
    expect(transfer.status).toBe(202);
    const t = await waitForJob(stack.url, transfer.body.id);
    expect(t.state, JSON.stringify(t)).toBe('completed');
    expect(t.result?.epochs).toBe(5);

    const logs = await http<{ logs: string[] }>(`${stack.url}/v1/jobs/${t.id}/logs`);
    expect(logs.body.logs.some((l) => /epoch 5\/5 loss/.test(l))).toBe(true);

    // The saved model is a standard tfjs model.json: load it and predict held-out digits.
    await initBackend('auto');
    const store = new FileArtifactStore(stack.storeUri);
    const { model, meta } = await loadModel(t.result!.model!.uri, store);
    expect(meta).toMatchObject({ inputShape: [28, 28, 1], numClasses: 2, base: 'digits-base@1' });
    const test = await loadAll(mnistSource({ format: 'mnist', digits: [7, 8], split: 'test', limit: 200 }));
    const acc = tf.tidy(() => {
      const pred = (model.predict(tf.tensor(test.x, [test.y.length, 28, 28, 1])) as tf.Tensor).argMax(-1);
      return pred.equal(tf.tensor1d(test.y, 'int32')).mean().dataSync()[0]!;
    });
    expect(acc).toBeGreaterThan(0.8); // chance is 0.5

    const versions = await http<{
      versions: { version: number; base?: { name: string; version: number } }[];
    }>(`${stack.url}/v1/models/digits-transfer`);
    expect(versions.body.versions[0]).toMatchObject({
      version: 1,
      base: { name: 'digits-base', version: 1 },
    });
  });

  it('rejects a bad payload with 400 naming each bad field', async () => {
    const r = await http<{ error: { details: { field: string }[] } }>(
      `${stack.url}/v1/jobs/fine-tune`,
      'POST',
      {
        model: 'x',
        architecture: 'mnist-cnn',
        dataset: { format: 'mnist', digits: [1, 1] },
        epochs: 0,
        batchSize: 'big',
      },
    );
    expect(r.status).toBe(400);
    const fields = r.body.error.details.map((d) => d.field).sort();
    expect(fields).toEqual(['batchSize', 'dataset.digits', 'epochs']);
  });

  it('takes the optimizer options its optimizer takes, and names each one it does not', async () => {
    const body = {
      model: 'opt-options',
      architecture: 'mlp',
      dataset: { format: 'mnist', digits: [1, 2], limit: 40 },
      epochs: 1,
      optimizer: 'adadelta',
    };
    type Err = { error: { details: { field: string; message: string }[] } };
    const bad = await http<Err>(`${stack.url}/v1/jobs/fine-tune`, 'POST', {
      ...body,
      optimizerOptions: { rho: 0.9, momentum: 0.9, beta1: 2 },
    });
    expect(bad.status).toBe(400);
    expect([...new Set(bad.body.error.details.map((d) => d.field))].sort()).toEqual([
      'optimizerOptions.beta1',
      'optimizerOptions.momentum',
    ]);
    expect(bad.body.error.details).toContainEqual({
      field: 'optimizerOptions.momentum',
      message: 'adadelta takes rho, epsilon, not momentum',
    });
    // PyTorch's Adadelta constants: accepted, trained with, and recorded with the version.
    const ok = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', {
      ...body,
      optimizerOptions: { rho: 0.9, epsilon: 1e-6 },
    });
    expect(ok.status).toBe(202);
    const j = await waitForJob(stack.url, ok.body.id);
    expect(j.state).toBe('completed');
    const v = await http<{ params: { optimizerOptions?: object } }>(
      `${stack.url}/v1/models/opt-options/versions/1`,
    );
    expect(v.body.params.optimizerOptions).toEqual({ rho: 0.9, epsilon: 1e-6 });
  });

  it('rejects a base that is not in the registry with 400 naming "base"', async () => {
    const r = await http<{ error: { details: { field: string; message: string }[] } }>(
      `${stack.url}/v1/jobs/fine-tune`,
      'POST',
      {
        model: 'x',
        base: 'no-such-model@production',
        dataset: { format: 'mnist', digits: [1, 2] },
        epochs: 1,
      },
    );
    expect(r.status).toBe(400);
    expect(r.body.error.details[0]).toMatchObject({ field: 'base' });
  });

  it('answers 404 for unknown jobs and job types, and 400 for malformed JSON', async () => {
    expect((await http(`${stack.url}/v1/jobs/00000000-0000-0000-0000-000000000000`)).status).toBe(404);
    expect((await http(`${stack.url}/v1/jobs/train-a-unicorn`, 'POST', {})).status).toBe(404);
    expect((await http(`${stack.url}/v1/jobs/fine-tune`, 'POST', '{"model": ')).status).toBe(400);
  });

  it('fails a job whose data cannot be used at once, with the reason', async () => {
    // The schema accepts the payload; only the worker, holding the base, can see it does not fit.
    const r = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', {
      model: 'bad',
      base: 'digits-base',
      trainableLayers: 5,
      dataset: { format: 'mnist', digits: [3, 4], limit: 50 },
      epochs: 1,
    });
    expect(r.status).toBe(202);
    const j = await waitForJob(stack.url, r.body.id);
    expect(j.state).toBe('failed');
    expect(j.error).toMatch(/trainableLayers is 5 but the base has only 1 layers with weights/);
    expect(j.attempts).toBe(1); // not retried
  });
});
