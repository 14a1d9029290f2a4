/**
 * The serving protocols over HTTP: TF Serving's model status, metadata and signature_name, and the
 * Open Inference Protocol (KServe V2) with requests shaped as the protocol document's own examples.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAll, mnistSource } from '@mlq/core/data';
import { apiEnvSchema, startApi } from '../src/index.ts';
import { http, startStack, waitForJob, type JobBody, type Stack } from '../../../test/support/stack.ts';

interface Predictions {
  predictions: number[][];
}
interface V2Error {
  error: string;
}
interface V2Tensor {
  name: string;
  datatype: string;
  shape: number[];
  data: number[];
}
interface V2Metadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: Omit<V2Tensor, 'data'>[];
  outputs: Omit<V2Tensor, 'data'>[];
}
interface V2Response {
  model_name: string;
  model_version: string;
  id?: string;
  outputs: V2Tensor[];
}
interface Status {
  model_version_status: {
    version: string;
    state: string;
    status: { error_code: string; error_message: string };
  }[];
}
interface Dim {
  size: string;
  name: string;
}
interface TensorInfo {
  dtype: string;
  tensor_shape: { dim: Dim[]; unknown_rank: boolean };
  name: string;
}
interface TfMetadata {
  model_spec: { name: string; signature_name: string; version: string };
  metadata: {
    signature_def: {
      signature_def: Record<
        string,
        { inputs: Record<string, TensorInfo>; outputs: Record<string, TensorInfo>; method_name: string }
      >;
    };
  };
}

function expectClose(a: number[], b: number[]): void {
  expect(a.length).toBe(b.length);
  a.forEach((x, i) => expect(x).toBeCloseTo(b[i]!, 5));
}

describe('TF Serving status and metadata, and the Open Inference Protocol', () => {
  let stack: Stack;
  let digits: number[][]; // flat 784 pixels, 0..1
  let input: string;
  let output: string;
  const get = <T>(path: string) => http<T>(`${stack.url}${path}`);
  const post = <T>(path: string, body: unknown) => http<T>(`${stack.url}${path}`, 'POST', body);

  beforeAll(async () => {
    stack = await startStack('serving-protocols');
    const job = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', {
      model: 'digits',
      architecture: 'mlp',
      dataset: { format: 'mnist', digits: [0, 1], limit: 200 },
      epochs: 1,
    });
    const test = await loadAll(mnistSource({ format: 'mnist', digits: [0, 1], split: 'test', limit: 4 }));
    digits = Array.from({ length: 4 }, (_, i) => Array.from(test.x.subarray(i * 784, (i + 1) * 784)));
    expect((await waitForJob(stack.url, job.body.id)).state).toBe('completed');
    expect((await http(`${stack.url}/v1/models/digits/labels/prod`, 'PUT', { version: 1 })).status).toBe(200);
    const meta = await get<V2Metadata>('/v2/models/digits');
    input = meta.body.inputs[0]!.name;
    output = meta.body.outputs[0]!.name;
  }, 180_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('answers TF Serving model status beside the registry JSON, for a name, a version and a label', async () => {
    const ok = { version: '1', state: 'AVAILABLE', status: { error_code: 'OK', error_message: '' } };
    const model = await get<Status & { name: string; versions: { version: number }[] }>('/v1/models/digits');
    expect(model.status).toBe(200);
    expect(model.body.model_version_status).toEqual([ok]);
    expect(model.body.versions.map((v) => v.version)).toEqual([1]); // the registry's answer is still there
    const version = await get<Status & { uri: string }>('/v1/models/digits/versions/1');
    expect(version.body.model_version_status).toEqual([ok]);
    expect(version.body.uri).toMatch(/model\.json$/);
    const label = await get<Status & { version: number; labels: string[] }>('/v1/models/digits/labels/prod');
    expect(label.status).toBe(200);
    expect(label.body.model_version_status).toEqual([ok]);
    expect(label.body).toMatchObject({ version: 1, labels: ['prod'] });
    expect((await get('/v1/models/digits/labels/nope')).status).toBe(404);
    expect((await get('/v1/models/nothing')).status).toBe(404);
  });

  it('reports a version whose load failed as END with the reason, until a load succeeds', async () => {
    // A version whose artifact is missing, registered as a job would register it.
    await stack.api.registry.register({
      name: 'broken',
      uri: `${stack.storeUri}/models/broken/1/model.json`,
      jobId: 'no-job',
      metrics: {},
      params: {},
      inputShape: [28, 28, 1],
      numClasses: 2,
    });
    const before = await get<Status>('/v1/models/broken/versions/1');
    expect(before.body.model_version_status[0]!.state).toBe('AVAILABLE'); // not tried yet
    const predict = await post<{ error: { code: string } }>('/v1/models/broken:predict', {
      instances: [digits[0]],
    });
    expect(predict.status).toBe(404);
    const after = await get<Status>('/v1/models/broken');
    expect(after.body.model_version_status).toEqual([
      {
        version: '1',
        state: 'END',
        status: { error_code: 'FAILED_PRECONDITION', error_message: expect.stringMatching(/model\.json/) },
      },
    ]);
    const ready = await get<V2Error>('/v2/models/broken/ready');
    expect(ready.status).toBe(404);
    expect(ready.body.error).toMatch(/model\.json/);
  });

  it('answers TF Serving metadata: the serving_default signature with dtypes and shapes', async () => {
    for (const path of [
      '/v1/models/digits/metadata',
      '/v1/models/digits/versions/1/metadata',
      '/v1/models/digits/labels/prod/metadata',
    ]) {
      const r = await get<TfMetadata>(path);
      expect(r.status, path).toBe(200);
      expect(r.body.model_spec).toEqual({ name: 'digits', signature_name: '', version: '1' });
      const sig = r.body.metadata.signature_def.signature_def.serving_default!;
      expect(sig.method_name).toBe('tensorflow/serving/predict');
      const dims = (t: TensorInfo) => t.tensor_shape.dim.map((d) => Number(d.size));
      expect(sig.inputs[input]!.dtype).toBe('DT_FLOAT');
      expect(dims(sig.inputs[input]!)).toEqual([-1, 28, 28, 1]);
      expect(sig.outputs[output]!.dtype).toBe('DT_FLOAT');
      expect(dims(sig.outputs[output]!)).toEqual([-1, 2]);
    }
    expect((await get('/v1/models/digits/versions/7/metadata')).status).toBe(404);
  });

  it('accepts signature_name "serving_default" and refuses any other with 400', async () => {
    const plain = await post<Predictions>('/v1/models/digits:predict', { instances: digits });
    for (const body of [
      { signature_name: 'serving_default', instances: digits },
      { instances: digits, signature_name: 'serving_default' },
      { signature_name: 'serving_default', instances: digits.map((d) => ({ [input]: d })) },
    ]) {
      const r = await post<Predictions>('/v1/models/digits:predict', body);
      expect(r.status, JSON.stringify(r.body).slice(0, 200)).toBe(200);
      r.body.predictions.forEach((p, i) => expectClose(p, plain.body.predictions[i]!));
    }
    for (const body of [
      { signature_name: 'predict', instances: digits },
      { instances: digits, signature_name: 'classify' },
      { signature_name: 7, inputs: digits },
    ]) {
      const r = await post<{ error: { message: string; details: { field: string }[] } }>(
        '/v1/models/digits:predict',
        body,
      );
      expect(r.status).toBe(400);
      expect(r.body.error.details[0]!.field).toBe('signature_name');
      expect(r.body.error.message).toContain('serving_default');
    }
  });

  it('answers the V2 health, server metadata and model metadata routes', async () => {
    expect(await get('/v2/health/live')).toEqual({ status: 200, body: { live: true } });
    expect(await get('/v2/health/ready')).toEqual({ status: 200, body: { ready: true } });
    const server = await get<{ name: string; version: string; extensions: string[] }>('/v2');
    expect(server.body).toEqual({
      name: 'mlq',
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      extensions: [],
    });
    for (const path of ['/v2/models/digits', '/v2/models/digits/versions/1']) {
      const r = await get<V2Metadata>(path);
      expect(r.body).toEqual({
        name: 'digits',
        versions: ['1'],
        platform: 'tfjs_layers_model',
        inputs: [{ name: input, datatype: 'FP32', shape: [-1, 28, 28, 1] }],
        outputs: [{ name: output, datatype: 'FP32', shape: [-1, 2] }],
      });
    }
    expect(await get('/v2/models/digits/ready')).toEqual({
      status: 200,
      body: { name: 'digits', ready: true },
    });
    expect((await get('/v2/models/digits/versions/1/ready')).status).toBe(200);
    const missing = await get<V2Error>('/v2/models/nothing/ready');
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatch(/model "nothing" not found/);
    expect((await get<V2Error>('/v2/models/digits/versions/3')).status).toBe(404);
  });

  it('infers a request shaped as the protocol example, with flat or nested data, as :predict does', async () => {
    const expected = (await post<Predictions>('/v1/models/digits:predict', { instances: digits.slice(0, 2) }))
      .body.predictions;
    // The example of the protocol document, with this model's input and output.
    const request = {
      id: '42',
      inputs: [
        { name: input, shape: [2, 28, 28, 1], datatype: 'FP32', data: [...digits[0]!, ...digits[1]!] },
      ],
      outputs: [{ name: output }],
    };
    const r = await post<V2Response>('/v2/models/digits/infer', request);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ model_name: 'digits', model_version: '1', id: '42' });
    expect(r.body.outputs).toHaveLength(1);
    const out = r.body.outputs[0]!;
    expect(out).toMatchObject({ name: output, shape: [2, 2], datatype: 'FP32' });
    expectClose(out.data, expected.flat());

    const nested = digits
      .slice(0, 2)
      .map((d) =>
        Array.from({ length: 28 }, (_, y) => Array.from({ length: 28 }, (_, x) => [d[y * 28 + x]!])),
      );
    const n = await post<V2Response>('/v2/models/digits/versions/1/infer', {
      inputs: [{ name: input, shape: [2, 28, 28, 1], datatype: 'FP64', data: nested }],
    });
    expect(n.status, JSON.stringify(n.body)).toBe(200);
    expect(n.body.id).toBeUndefined();
    expectClose(n.body.outputs[0]!.data, expected.flat());

    // UINT8 pixels go to the model as the numbers they are, as in a :predict with the same numbers.
    const bytes = digits[0]!.map((v) => Math.round(v * 255));
    const u = await post<V2Response>('/v2/models/digits/infer', {
      inputs: [{ name: input, shape: [1, 28, 28, 1], datatype: 'UINT8', data: bytes }],
    });
    const same = await post<Predictions>('/v1/models/digits:predict', { instances: [bytes] });
    expect(u.status).toBe(200);
    expectClose(u.body.outputs[0]!.data, same.body.predictions[0]!);
  });

  it('answers errors as the protocol says, {"error": "..."}, naming what the model takes', async () => {
    // The protocol document's example request as it is: two inputs, UINT32 and BOOL.
    const example = {
      id: '42',
      inputs: [
        { name: 'input0', shape: [2, 2], datatype: 'UINT32', data: [1, 2, 3, 4] },
        { name: 'input1', shape: [3], datatype: 'BOOL', data: [true] },
      ],
      outputs: [{ name: 'output0' }],
    };
    const cases: [unknown, number, RegExp][] = [
      [example, 400, /not an output of the model/],
      [{ ...example, outputs: undefined }, 400, /one input.*the request has 2 \(input0, input1\)/],
      [
        { inputs: [example.inputs[0]] },
        400,
        new RegExp(`input0.*is not the model's input.*"${input}" \\[-1,28,28,1\\] FP32`),
      ],
      [{ inputs: [{ ...example.inputs[0], name: input }] }, 400, /datatype "UINT32" is not supported/],
      [
        { inputs: [{ name: input, shape: [1, 784], datatype: 'FP32', data: digits[0] }] },
        400,
        /shape is \[1,784\].*\[n,28,28,1\]/,
      ],
      [
        { inputs: [{ name: input, shape: [1, 28, 28, 1], datatype: 'FP32', data: digits[0]!.slice(1) }] },
        400,
        /data has 783 elements/,
      ],
      [
        {
          inputs: [
            { name: input, shape: [1, 28, 28, 1], datatype: 'FP32', data: [...digits[0]!.slice(1), 'x'] },
          ],
        },
        400,
        /data\[783\] is "x", not a number/,
      ],
      [
        { inputs: [{ name: input, shape: [1, 28, 28, 1], datatype: 'UINT8', data: digits[0] }] },
        400,
        /not a UINT8/,
      ],
      [{ inputs: [{ name: input, shape: [0, 28, 28, 1], datatype: 'FP32', data: [] }] }, 400, /batch of 0/],
      [
        { inputs: [{ name: input, shape: [2000, 28, 28, 1], datatype: 'FP32', data: [] }] },
        413,
        /at most 1024/,
      ],
      [{ inputs: [] }, 400, /the body must be \{"inputs"/],
      ['{"inputs": [', 400, /not valid JSON/],
    ];
    for (const [body, status, message] of cases) {
      const r = await post<V2Error>('/v2/models/digits/infer', body);
      expect(r.status, JSON.stringify(body).slice(0, 120)).toBe(status);
      expect(typeof r.body.error, JSON.stringify(r.body)).toBe('string');
      expect(r.body.error).toMatch(message);
    }
    const valid = { inputs: [{ name: input, shape: [1, 28, 28, 1], datatype: 'FP32', data: digits[0] }] };
    expect((await post<V2Error>('/v2/models/nothing/infer', valid)).body).toEqual({
      error: 'model "nothing" not found',
    });
    expect((await post<V2Error>('/v2/models/digits/versions/9/infer', valid)).status).toBe(404);
    const badVersion = await post<V2Error>('/v2/models/digits/versions/one/infer', valid);
    expect(badVersion.status).toBe(400);
    expect(badVersion.body.error).toMatch(/positive integer/);
    expect(await get('/v2/nowhere')).toEqual({ status: 404, body: { error: 'no route GET /v2/nowhere' } });
    // Errors elsewhere keep the API's own shape.
    expect((await get<{ error: { code: string } }>('/v1/models/nothing/metadata')).body.error.code).toBe(
      'not_found',
    );
  });

  it('answers the V2 health probes without a key, as /healthz, and the other /v2 routes only with one', async () => {
    const api = await startApi(
      apiEnvSchema.parse({ ...stack.env, PORT: '0', HOST: '127.0.0.1', API_KEYS: 'k1' }),
    );
    try {
      expect((await http(`${api.url}/v2/health/live`)).status).toBe(200);
      expect((await http(`${api.url}/v2/health/ready`)).status).toBe(200);
      expect((await http(`${api.url}/v2`)).status).toBe(401);
      expect((await http(`${api.url}/v2/models/digits`)).status).toBe(401);
      expect((await http(`${api.url}/v2`, 'GET', undefined, { authorization: 'Bearer k1' })).status).toBe(
        200,
      );
    } finally {
      await api.stop();
    }
  });
});
