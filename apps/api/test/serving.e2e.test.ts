import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAll, mnistSource } from '@mlq/core/data';
import { http, startStack, waitForJob, type JobBody, type Stack } from '../../../test/support/stack.ts';

interface Predictions {
  predictions: number[][];
}
interface ApiErrorBody {
  error: { code: string; message: string; details?: { field: string; message: string }[] };
}

/** 28×28×1 nested arrays, the form a TF Serving client sends for an image model. */
function nested(flat: Float32Array): number[][][] {
  return Array.from({ length: 28 }, (_, r) => Array.from({ length: 28 }, (_, c) => [flat[r * 28 + c]!]));
}

const argmax = (v: number[]) => v.indexOf(Math.max(...v));

function expectClose(a: number[][], b: number[][]): void {
  expect(a.length).toBe(b.length);
  a.forEach((row, i) => row.forEach((x, j) => expect(x).toBeCloseTo(b[i]![j]!, 5)));
}

describe('online predict over HTTP', () => {
  let stack: Stack;
  let digits: { flat: number[]; image: number[][][]; label: number }[];
  const predict = <T = Predictions>(path: string, body: unknown) =>
    http<T>(`${stack.url}/v1/models/${path}:predict`, 'POST', body);

  beforeAll(async () => {
    stack = await startStack('serving');
    // Two versions of one tiny model (different seeds, so their outputs differ), trained at once.
    const submit = (seed: number) =>
      http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', {
        model: 'digits',
        architecture: 'mlp',
        dataset: { format: 'mnist', digits: [0, 1], limit: 200 },
        epochs: 1,
        seed,
      });
    const test = await loadAll(mnistSource({ format: 'mnist', digits: [0, 1], split: 'test', limit: 8 }));
    digits = Array.from(test.y, (label, i) => {
      const x = test.x.subarray(i * 784, (i + 1) * 784);
      return { flat: Array.from(x), image: nested(x), label };
    });
    const j1 = await waitForJob(stack.url, (await submit(1)).body.id);
    expect(j1.state, JSON.stringify(j1)).toBe('completed');
    // Served (and cached) as the latest before version 2 exists: the test below sees it move on.
    const early = await fetch(`${stack.url}/v1/models/digits:predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ instances: [digits[0]!.flat] }),
    });
    expect(early.headers.get('x-model-version')).toBe('1');
    const j2 = await waitForJob(stack.url, (await submit(2)).body.id);
    expect(j2.state, JSON.stringify(j2)).toBe('completed');
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('answers "instances" with one score vector per instance, from the latest version', async () => {
    const res = await fetch(`${stack.url}/v1/models/digits:predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ instances: digits.map((d) => d.image) }),
    });
    const r = { status: res.status, body: (await res.json()) as Predictions };
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(res.headers.get('x-model-version')).toBe('2');
    expect(r.body.predictions).toHaveLength(digits.length);
    for (const p of r.body.predictions) {
      expect(p).toHaveLength(2);
      expect(p[0]! + p[1]!).toBeCloseTo(1, 5);
    }
    const right = r.body.predictions.filter((p, i) => argmax(p) === digits[i]!.label).length;
    expect(right).toBeGreaterThanOrEqual(digits.length - 2); // 0 vs 1 is easy even after one epoch
    const latest = await http(`${stack.url}/v1/models/digits/versions/2:predict`, 'POST', {
      instances: digits.map((d) => d.image),
    });
    expectClose(r.body.predictions, (latest.body as Predictions).predictions);
  });

  it('accepts flat instances, {"<input>": ...} instances and columnar "inputs" alike', async () => {
    const images = digits.slice(0, 3);
    const ref = await predict('digits/versions/1', { instances: images.map((d) => d.image) });
    const flat = await predict('digits/versions/1', { instances: images.map((d) => d.flat) });
    const named = await predict('digits/versions/1', {
      instances: images.map((d) => ({ features_in: d.image })),
    });
    const columnar = await predict<{ outputs: number[][] }>('digits/versions/1', {
      inputs: images.map((d) => d.flat),
    });
    const columnarNamed = await predict<{ outputs: number[][] }>('digits/versions/1', {
      inputs: { features_in: images.map((d) => d.image) },
    });
    expect([ref, flat, named, columnar, columnarNamed].map((r) => r.status)).toEqual([
      200, 200, 200, 200, 200,
    ]);
    expectClose(flat.body.predictions, ref.body.predictions);
    expectClose(named.body.predictions, ref.body.predictions);
    expectClose(columnar.body.outputs, ref.body.predictions);
    expectClose(columnarNamed.body.outputs, ref.body.predictions);
  });

  it('serves a label from the version it points at, and follows it when it moves', async () => {
    const body = { instances: digits.map((d) => d.image) };
    const v1 = (await predict('digits/versions/1', body)).body.predictions;
    const v2 = (await predict('digits/versions/2', body)).body.predictions;
    expect(v1[0]![0]).not.toBeCloseTo(v2[0]![0]!, 4); // different seeds: the check below can tell them apart

    expect(
      (await http(`${stack.url}/v1/models/digits/labels/production`, 'PUT', { version: 1 })).status,
    ).toBe(200);
    const before = await predict('digits/labels/production', body);
    expect(before.status).toBe(200);
    expectClose(before.body.predictions, v1);

    expect(
      (await http(`${stack.url}/v1/models/digits/labels/production`, 'PUT', { version: 2 })).status,
    ).toBe(200);
    const after = await fetch(`${stack.url}/v1/models/digits/labels/production:predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(after.headers.get('x-model-version')).toBe('2');
    expectClose(((await after.json()) as Predictions).predictions, v2);

    expect((await http(`${stack.url}/v1/models/digits/labels/production`, 'DELETE')).status).toBe(204);
    const gone = await predict<ApiErrorBody>('digits/labels/production', body);
    expect(gone.status).toBe(404);
    expect(gone.body.error.message).toMatch(/no label "production"/);
  });

  it('merges concurrent requests into fewer predict calls and splits the answers back', async () => {
    const { batcher } = stack.api.serving;
    const alone = await Promise.all(
      digits.map((d) => predict('digits/versions/2', { instances: [d.image] })),
    );
    const before = { ...batcher.stats };
    const n = 32;
    const together = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        predict('digits/versions/2', { instances: [digits[i % digits.length]!.image] }),
      ),
    );
    const batches = batcher.stats.batches - before.batches;
    expect(batcher.stats.rows - before.rows).toBe(n);
    expect(batches).toBeLessThan(n);
    together.forEach((r, i) => expectClose(r.body.predictions, alone[i % digits.length]!.body.predictions));
  });

  it('rejects a wrong shape with 400 naming the expected shape', async () => {
    const short = await predict<ApiErrorBody>('digits', { instances: [digits[0]!.image.slice(1)] });
    expect(short.status).toBe(400);
    expect(short.body.error.message).toContain('expected instances of shape [28,28,1] (or 784 numbers)');
    expect(short.body.error.details?.[0]?.field).toBe('instances[0]');

    const flat = await predict<ApiErrorBody>('digits', { instances: [digits[0]!.flat.slice(1)] });
    expect(flat.status).toBe(400);
    expect(flat.body.error.message).toMatch(
      /instances\[0\] has 783 elements.*\[28,28,1\] \(or 784 numbers\)/,
    );

    const deep = digits[0]!.image.map((row) => row.map((px) => [...px, 0]));
    const r = await predict<ApiErrorBody>('digits', { inputs: [deep] });
    expect(r.status).toBe(400);
    expect(r.body.error.details?.[0]?.field).toBe('inputs[0][0][0]');

    const wrongKey = await predict<ApiErrorBody>('digits', { instances: [{ image: digits[0]!.image }] });
    expect(wrongKey.status).toBe(400);
    expect(wrongKey.body.error.message).toContain('"features_in"');
  });

  it('rejects non-numeric values with 400 naming where they are', async () => {
    const image = structuredClone(digits[0]!.image) as unknown[][][];
    image[5]![3]![0] = 'white';
    const r = await predict<ApiErrorBody>('digits', { instances: [digits[1]!.image, image] });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toContain('instances[1][5][3][0] is "white", not a number');
    const nulls = await predict<ApiErrorBody>('digits', { instances: [digits[0]!.flat.map(() => null)] });
    expect(nulls.status).toBe(400);
  });

  it('rejects empty, missing and oversized bodies', async () => {
    const empty = await predict<ApiErrorBody>('digits', { instances: [] });
    expect(empty.status).toBe(400);
    expect(empty.body.error.message).toMatch(/"instances" is empty/);
    expect((await predict('digits', {})).status).toBe(400);
    expect(
      (await predict('digits', { instances: [digits[0]!.flat], inputs: [digits[0]!.flat] })).status,
    ).toBe(400);
    expect((await predict('digits', { instances: 'zero' })).status).toBe(400);
    expect((await http(`${stack.url}/v1/models/digits:predict`, 'POST', '{"instances": [')).status).toBe(400);
    expect((await predict('digits', { instances: Array.from({ length: 1025 }, () => []) })).status).toBe(413);
  });

  it('answers 404 for an unknown model, version or label, and 400 for a version that is no number', async () => {
    const body = { instances: [digits[0]!.flat] };
    const model = await predict<ApiErrorBody>('no-such-model', body);
    expect(model.status).toBe(404);
    expect(model.body.error.message).toMatch(/model "no-such-model" not found/);
    expect((await predict('digits/versions/99', body)).status).toBe(404);
    expect((await predict('digits/labels/staging', body)).status).toBe(404);
    expect((await predict('no-such-model/labels/staging', body)).status).toBe(404);
    expect((await predict('digits/versions/abc', body)).status).toBe(400);
  });

  it('keeps the registry routes working beside the predict routes', async () => {
    const model = await http<{ name: string; versions: { version: number }[] }>(
      `${stack.url}/v1/models/digits`,
    );
    expect(model.status).toBe(200);
    expect(model.body.versions.map((v) => v.version)).toEqual([1, 2]);
    expect((await http(`${stack.url}/v1/models/digits/versions/1`)).status).toBe(200);
    const list = await http<{ models: { name: string; latestVersion: number }[] }>(`${stack.url}/v1/models`);
    expect(list.body.models).toEqual([expect.objectContaining({ name: 'digits', latestVersion: 2 })]);
  });
});
