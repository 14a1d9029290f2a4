/**
 * Inputs as people have them, through the real API and a real worker: numbers beyond float32, a
 * one-class file, CR-only line ends, model files tfjs cannot load (a graph model, a URL that answers
 * 404), a Keras 3 export, a base that takes any image size, and predictions that are not numbers.
 */
import { createServer, type Server } from 'node:http';
import { writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelRegistry } from '@mlq/core/registry';
import { http, startStack, waitForJob, type JobBody, type Stack } from '../../../test/support/stack.ts';
import {
  graphModel,
  keras3Model,
  saveTfjsModel,
  writeModelFiles,
} from '../../../test/support/model-files.ts';

interface ApiErrorBody {
  error: { code: string; message: string };
}

describe('bad inputs fail at once with a reason, and odd but valid ones work', () => {
  let stack: Stack;
  let server: Server;
  let site: string;
  const file = (name: string) => path.join(stack.dataDir, name);
  const uri = (name: string) => pathToFileURL(file(name)).href;
  const submit = async (type: string, body: unknown) => {
    const r = await http<JobBody>(`${stack.url}/v1/jobs/${type}`, 'POST', body);
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    return waitForJob(stack.url, r.body.id);
  };

  beforeAll(async () => {
    // The model server below is on loopback: allowed explicitly, as the egress policy refuses it otherwise.
    const allow = { FETCH_ALLOW_HOSTS: '127.0.0.1' };
    stack = await startStack('bad-inputs', { apiEnv: allow, workerEnv: allow });
    server = createServer((_req, res) => {
      res.statusCode = 404;
      res.end('Not Found');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    site = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => server?.close(r));
    await stack?.stop();
  });

  it('a number beyond float32 fails the job at once, naming the file, line and column; no model is made', async () => {
    const text = 'a,b,label\n1e39,2.0,x\n1.5,2.5,y\n0.9,2.1,x\n1.6,2.4,y\n1.1,2.0,x\n1.4,2.6,y\n';
    await writeFile(file('big.csv'), text);
    const j = await submit('fine-tune', {
      model: 'poisoned',
      architecture: 'mlp',
      dataset: { format: 'csv', uri: uri('big.csv') },
      epochs: 2,
    });
    expect(j.state).toBe('failed');
    expect(j.attempts).toBe(1);
    expect(j.error).toBe(`${file('big.csv')}:2: column "a" is 1e39, beyond the float32 range (±3.4e38)`);
    expect((await http(`${stack.url}/v1/models/poisoned`)).status).toBe(404);
  });

  it('a one-class file is refused whatever its label, and a CR-only file trains', async () => {
    const one = 'a,b,label\n1.0,2.0,1\n1.5,2.5,1\n0.9,2.1,1\n1.6,2.4,1\n';
    for (const label of ['1', '0', 'normal']) {
      await writeFile(file(`one-${label}.csv`), one.replaceAll(',1\n', `,${label}\n`));
      const j = await submit('fine-tune', {
        model: `one-${label}`,
        architecture: 'mlp',
        dataset: { format: 'csv', uri: uri(`one-${label}.csv`) },
        epochs: 1,
      });
      expect(j.state, label).toBe('failed');
      expect(j.attempts).toBe(1);
      expect(j.error).toBe(
        `the dataset has 1 class(es) (every row is labelled "${label}"); training needs at least 2`,
      );
    }
    await writeFile(file('mac.csv'), 'a,b,label\r1.0,2.0,x\r1.5,2.5,y\r0.9,2.1,x\r1.6,2.4,y\r');
    const j = await submit('fine-tune', {
      model: 'mac',
      architecture: 'mlp',
      dataset: { format: 'csv', uri: uri('mac.csv') },
      epochs: 1,
    });
    expect(j.state, j.error).toBe('completed');
    expect(j.result?.classCounts).toEqual({ x: 2, y: 2 });
  });

  it('a model tfjs cannot load is refused saying what it is (at submit when on disk); a Keras 3 export loads', async () => {
    const graph = await writeModelFiles(file('graph'), graphModel());
    await writeFile(file('four.jsonl'), '{"x":[1,2,3,4],"y":0}\n{"x":[4,3,2,1],"y":1}\n');
    const dataset = { format: 'jsonl', uri: uri('four.jsonl') };
    // A file:// model.json is read by the API at submit (a remote one only by the worker, below).
    const g = await http<ApiErrorBody & { error: { details: { field: string; message: string }[] } }>(
      `${stack.url}/v1/jobs/fine-tune`,
      'POST',
      { model: 'g', base: graph, dataset, epochs: 1 },
    );
    expect(g.status).toBe(400);
    expect(g.body.error.details.map((d) => d.field)).toEqual(['base']);
    expect(g.body.error.details[0]!.message).toMatch(
      /graph\/model\.json is a TensorFlow\.js graph model \(format "graph-model".*mlq loads TensorFlow\.js layers models/,
    );
    const missing = await submit('evaluate', { model: `${site}/models/model.json`, dataset });
    expect(missing.state).toBe('failed');
    expect(missing.attempts).toBe(1);
    expect(missing.error).toBe(`not found: ${site}/models/model.json (HTTP 404 Not Found)`);

    const k3 = await writeModelFiles(file('keras3'), keras3Model({ features: 4, hidden: 3, classes: 2 }));
    const e = await submit('evaluate', { model: k3, dataset });
    expect(e.state, e.error).toBe('completed');
    expect(e.result).toMatchObject({ metrics: { accuracy: 0.5 } });
    const f = await submit('fine-tune', {
      model: 'from-keras3',
      base: k3,
      dataset,
      epochs: 1,
      reuseBaseHead: true,
    });
    expect(f.state, f.error).toBe('completed');
  });

  it('a base that takes any image size trains on 28x28 digits and serves them', async () => {
    await tf.setBackend('cpu');
    const input = tf.input({ shape: [null, null, 1] as unknown as number[] });
    const conv = tf.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu' }).apply(input);
    const pooled = tf.layers.globalAveragePooling2d({}).apply(conv);
    const out = tf.layers.dense({ units: 2, activation: 'softmax' }).apply(pooled) as tf.SymbolicTensor;
    const base = await saveTfjsModel(tf.model({ inputs: input, outputs: out }), file('any-size'));
    const j = await submit('fine-tune', {
      model: 'any-size-digits',
      base,
      trainableLayers: 1,
      dataset: { format: 'mnist', digits: [0, 1], limit: 64 },
      epochs: 1,
    });
    expect(j.state, j.error).toBe('completed');
    const v = await http<{ inputShape: number[] }>(`${stack.url}/v1/models/any-size-digits/versions/1`);
    expect(v.body.inputShape).toEqual([28, 28, 1]);
    const p = await http<{ predictions: number[][] }>(
      `${stack.url}/v1/models/any-size-digits:predict`,
      'POST',
      {
        instances: [new Array(784).fill(0.5)],
      },
    );
    expect(p.status, JSON.stringify(p.body)).toBe(200);
    expect(p.body.predictions[0]!.every(Number.isFinite)).toBe(true);
  });

  it('predict never answers 200 with null scores', async () => {
    const registry = new ModelRegistry(stack.redis, stack.prefix);
    const plant = async (name: string, w: number, poison: boolean, mixedSigns = false) => {
      const m = keras3Model({ features: 16, hidden: 8, classes: 2, w });
      if (poison) m.weights[0] = Number.NaN;
      // The hidden kernel [16, 8] at +2 for even inputs and -2 for odd ones: each hidden unit's sum
      // of 3e38s meets +inf and -inf, a NaN before its relu.
      if (mixedSigns) for (let i = 0; i < 16 * 8; i++) m.weights[i] = Math.floor(i / 8) % 2 ? -2 : 2;
      const u = await writeModelFiles(file(name), m);
      await registry.register({
        name,
        uri: u,
        jobId: name,
        metrics: {},
        params: {},
        inputShape: [16],
        numClasses: 2,
      });
    };
    // A version with NaN weights (registered by an older mlq, or by hand) is refused as unservable.
    await plant('nan-weights', 0.1, true);
    const nan = await http<ApiErrorBody>(`${stack.url}/v1/models/nan-weights:predict`, 'POST', {
      instances: [new Array(16).fill(1)],
    });
    expect(nan.status).toBe(422);
    expect(nan.body.error.code).toBe('unservable_model');
    expect(nan.body.error.message).toMatch(/weight dense\/kernel has 1 NaN of 128 values/);
    // Finite weights, and inputs that each fit float32 but overflow inside the model.
    await plant('overflow', 0.5, false);
    const ok = await http<{ predictions: number[][] }>(`${stack.url}/v1/models/overflow:predict`, 'POST', {
      instances: [new Array(16).fill(1)],
    });
    expect(ok.status).toBe(200);
    const big = await http<ApiErrorBody>(`${stack.url}/v1/models/overflow:predict`, 'POST', {
      instances: [new Array(16).fill(1), new Array(16).fill(3e38)],
    });
    expect(big.status).toBe(422);
    expect(big.body.error).toMatchObject({ code: 'non_finite_prediction' });
    expect(big.body.error.message).toMatch(/^instances\[1\]: the model's output for this instance is NaN/);
    // A NaN inside the model, before a relu: the wasm backend's fused clamp once turned it into 0
    // and answered finite scores (wasm-kernels.ts, fusedMatMul).
    await plant('hidden-nan', 0.5, false, true);
    const hidden = await http<ApiErrorBody>(`${stack.url}/v1/models/hidden-nan:predict`, 'POST', {
      instances: [new Array(16).fill(3e38)],
    });
    expect(hidden.status, JSON.stringify(hidden.body)).toBe(422);
    expect(hidden.body.error).toMatchObject({ code: 'non_finite_prediction' });
    // Beyond float32 in the body: 400, naming the value.
    const huge = await http<ApiErrorBody>(`${stack.url}/v1/models/overflow:predict`, 'POST', {
      instances: [[1e39, ...new Array(15).fill(1)]],
    });
    expect(huge.status).toBe(400);
    expect(huge.body.error.message).toMatch(/instances\[0\]\[0\] is 1e\+39, out of the float32 range/);
  });
});
