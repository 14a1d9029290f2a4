/**
 * A helper thread (see parallel.ts): its own tfjs, booted once. It holds at most one training replica
 * at a time; for each step it loads the weights the main thread published, computes the gradient of
 * its rows and writes it to its shared buffer (it never applies an optimizer). It also runs a model
 * over a range of shared rows for parallel inference.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendPreference } from './backend.ts';
import { batchTensors } from './batches.ts';
// Replicas follow Keras' rule for frozen BatchNormalization, as the model they mirror does.
import './batch-norm.ts';
import { disposeModels, predictBatched } from './inference.ts';
import {
  replicaGradients,
  type FromHelper,
  type ModelSpec,
  type PredictSpec,
  type ReplicaSpec,
  type ToHelper,
} from './parallel.ts';

const port = parentPort!;
const send = (m: FromHelper) => port.postMessage(m);
const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

interface Replica {
  spec: ReplicaSpec;
  model: tf.LayersModel;
  vars: tf.Variable[];
  x: Float32Array;
  y: Int32Array;
  params: Float32Array;
  grads: Float32Array;
  width: number;
}
let replica: Replica | undefined;

async function build(spec: ModelSpec): Promise<tf.LayersModel> {
  const model = await tf.models.modelFromJSON(spec.topology as never);
  const values = spec.weights.map((w) => tf.tensor(w.values, w.shape));
  model.setWeights(values);
  tf.dispose(values);
  return model;
}

function release(): void {
  if (replica) disposeModels(replica.model);
  replica = undefined;
}

async function load(spec: ReplicaSpec): Promise<void> {
  release();
  const model = await build(spec);
  replica = {
    spec,
    model,
    vars: spec.trainable.map((i) => model.weights[i]!.read() as tf.Variable),
    x: new Float32Array(spec.x),
    y: new Int32Array(spec.y),
    params: new Float32Array(spec.params),
    grads: new Float32Array(spec.grads),
    width: spec.shape.reduce((a, b) => a * b, 1),
  };
  // One untimed pass over the first rows now, while the main thread still trains alone: the first
  // call of a model's kernels in this thread (operator creation, memory growth, wasm tier-up)
  // would otherwise stall the first split step, with the main thread waiting for it.
  const rows = Uint32Array.from({ length: Math.min(replica.y.length, 64) }, (_, i) => i);
  if (rows.length > 0) {
    const r = replica;
    const [xt, yt] = batchTensors(
      { x: r.x, y: new Int32Array(rows.length), shape: spec.shape, numClasses: spec.numClasses },
      rows,
      r.width,
    );
    tf.dispose([xt, yt, ...replicaGradients(r.model, r.vars, xt, yt).grads]);
  }
}

function step(rows: Uint32Array): FromHelper {
  const r = replica;
  if (!r) throw new Error('no model loaded');
  let o = 0;
  for (const v of r.vars) {
    tf.tidy(() => v.assign(tf.tensor(r.params.subarray(o, o + v.size), v.shape)));
    o += v.size;
  }
  const data = { x: r.x, y: r.y, shape: r.spec.shape, numClasses: r.spec.numClasses };
  const [xt, yt] = batchTensors(data, rows, r.width);
  const out = replicaGradients(r.model, r.vars, xt, yt);
  o = 0;
  out.grads.forEach((g, i) => {
    r.grads.set(g.dataSync() as Float32Array, o);
    o += r.vars[i]!.size;
  });
  tf.dispose([xt, yt, ...out.grads]);
  return { type: 'done', loss: out.loss, acc: out.acc };
}

async function predict(job: PredictSpec): Promise<void> {
  const model = await build(job);
  try {
    const width = job.shape.reduce((a, b) => a * b, 1);
    const rows = new Float32Array(job.x).subarray(job.from * width, job.to * width);
    const out = new Float32Array(job.out);
    const outWidth = out.length / (job.x.byteLength / 4 / width);
    predictBatched(
      model,
      rows,
      job.shape,
      job.batchSize,
      out.subarray(job.from * outWidth, job.to * outWidth),
    );
  } finally {
    disposeModels(model);
  }
}

async function handle(m: ToHelper): Promise<FromHelper> {
  switch (m.type) {
    case 'load':
      await load(m.replica);
      return { type: 'loaded' };
    case 'step':
      return step(m.rows);
    case 'release':
      release();
      return { type: 'released' };
    case 'predict':
      await predict(m.job);
      return { type: 'predicted' };
  }
}

async function main(): Promise<void> {
  await initBackend((workerData as { backend: string }).backend as BackendPreference);
  port.on('message', (m: ToHelper) => {
    handle(m).then(send, (e: unknown) => send({ type: 'error', message: message(e) }));
  });
  send({ type: 'ready' });
}

main().catch((e: unknown) => send({ type: 'error', message: message(e) }));
