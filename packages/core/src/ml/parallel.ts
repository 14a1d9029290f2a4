/**
 * Data-parallel training steps on CPU backends: each batch is split between this thread and helper
 * threads, each with its own tfjs (a wasm instance per thread) and a replica of the model. Every
 * replica computes the gradient of its rows; this thread averages them (weighted by rows), applies
 * the model's optimizer once and publishes the new weights. The model here stays the only truth:
 * checkpoints, optimizer state and batch-norm statistics live on it.
 *
 * Shared memory carries the bulk: the training rows (copied once), the trainable weights (written
 * here after each step) and each helper's gradients. Messages carry only row indices and losses.
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { spawnTsThread } from '../util/ts-thread.ts';
import type { TrainData } from './fit.ts';

/** What a helper thread is started with. */
export interface ReplicaConfig {
  backend: string;
  topology: unknown;
  /** Every weight of the model (trainable or not), in `model.weights` order. */
  weights: { shape: number[]; values: Float32Array }[];
  /** Indices into `weights` of the trainable ones, in `trainableWeights` order. */
  trainable: number[];
  x: SharedArrayBuffer;
  y: SharedArrayBuffer;
  shape: number[];
  numClasses: number;
  params: SharedArrayBuffer;
  grads: SharedArrayBuffer;
}

export type ToReplica = { type: 'step'; rows: Uint32Array } | { type: 'stop' };
export type FromReplica =
  { type: 'ready' } | { type: 'done'; loss: number; acc: number } | { type: 'error'; message: string };

const BOOT_TIMEOUT_MS = 60_000;

const workerFile = path.join(path.dirname(fileURLToPath(import.meta.url)), 'parallel.worker.ts');

/** Training threads to use by default: one per core, up to 4. */
export function defaultTrainThreads(): number {
  return Math.max(1, Math.min(4, os.availableParallelism()));
}

/** Loss and gradients of `rows` for the given variables (categorical cross-entropy, as compile() sets). */
export function replicaGradients(
  model: tf.LayersModel,
  vars: tf.Variable[],
  x: tf.Tensor,
  y: tf.Tensor,
): { loss: number; acc: number; grads: tf.Tensor[] } {
  let acc: tf.Scalar | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const p = model.apply(x, { training: true }) as tf.Tensor;
    acc = tf.keep(tf.metrics.categoricalAccuracy(y, p).mean() as tf.Scalar);
    return tf.metrics.categoricalCrossentropy(y, p).mean() as tf.Scalar;
  }, vars);
  const out = {
    loss: value.dataSync()[0]!,
    acc: acc!.dataSync()[0]!,
    grads: vars.map((v) => grads[v.name]!),
  };
  tf.dispose([value, acc!]);
  return out;
}

class Replica {
  private pending:
    { resolve: (m: { loss: number; acc: number }) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;

  constructor(
    readonly worker: Worker,
    readonly grads: Float32Array,
  ) {
    worker.on('message', (m: FromReplica) => {
      const p = this.pending;
      this.pending = undefined;
      if (m.type === 'done') p?.resolve(m);
      else if (m.type === 'error') this.fail(new Error(`training thread: ${m.message}`), p);
    });
    worker.on('error', (e) => this.fail(e, this.pending));
    worker.on('exit', (code) =>
      this.fail(new Error(`training thread exited with code ${code}`), this.pending),
    );
  }

  private fail(e: Error, p: typeof this.pending): void {
    this.failure ??= e;
    this.pending = undefined;
    p?.reject(e);
  }

  step(rows: Uint32Array): Promise<{ loss: number; acc: number }> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.worker.postMessage({ type: 'step', rows } satisfies ToReplica);
    });
  }
}

/** A copy of `src` in shared memory. */
function shared(src: Float32Array | Int32Array): SharedArrayBuffer {
  const buf = new SharedArrayBuffer(src.byteLength);
  new Uint8Array(buf).set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
  return buf;
}

export class DataParallelTrainer {
  private constructor(
    private readonly model: tf.LayersModel,
    private readonly replicas: Replica[],
    private readonly params: Float32Array,
    private readonly vars: tf.Variable[],
  ) {}

  /**
   * Starts `threads - 1` helper threads for `model` (compiled, with an optimizer) over `data`.
   * Resolves once every helper has built its replica.
   */
  static async start(
    model: tf.LayersModel,
    data: TrainData,
    threads: number,
    backend: string,
  ): Promise<DataParallelTrainer> {
    const all = model.weights;
    const trainableSet = new Set(model.trainableWeights);
    const trainable = all.flatMap((w, i) => (trainableSet.has(w) ? [i] : []));
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const sizes = vars.map((v) => v.size);
    const total = sizes.reduce((a, b) => a + b, 0);
    const params = new SharedArrayBuffer(total * 4);
    const x = shared(data.x);
    const y = shared(data.y);
    const weights = all.map((w) => ({
      shape: w.shape as number[],
      values: Float32Array.from(w.read().dataSync() as Float32Array),
    }));
    const topology = model.toJSON(null, false);
    const replicas: Replica[] = [];
    const ready: Promise<void>[] = [];
    for (let t = 1; t < threads; t++) {
      const grads = new SharedArrayBuffer(total * 4);
      const config: ReplicaConfig = {
        backend,
        topology,
        weights,
        trainable,
        x,
        y,
        shape: data.shape,
        numClasses: data.numClasses,
        params,
        grads,
      };
      const worker = spawnTsThread(workerFile, config);
      ready.push(
        new Promise((resolve, reject) => {
          const onMessage = (m: FromReplica) => {
            if (m.type === 'ready') resolve();
            else if (m.type === 'error') reject(new Error(`training thread: ${m.message}`));
          };
          worker.once('message', onMessage);
          worker.once('error', reject);
          worker.once('exit', (code) => reject(new Error(`training thread exited with code ${code}`)));
        }),
      );
      replicas.push(new Replica(worker, new Float32Array(grads)));
    }
    const trainer = new DataParallelTrainer(model, replicas, new Float32Array(params), vars);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`training threads not ready after ${BOOT_TIMEOUT_MS} ms`)),
        BOOT_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([Promise.all(ready), timeout]);
    } catch (e) {
      await trainer.dispose();
      throw e;
    } finally {
      clearTimeout(timer);
    }
    return trainer;
  }

  get threads(): number {
    return this.replicas.length + 1;
  }

  /** Writes the trainable weights where the helpers read them. */
  private publish(): void {
    let o = 0;
    for (const v of this.vars) {
      this.params.set(v.dataSync() as Float32Array, o);
      o += v.size;
    }
  }

  /** One optimizer step over `rows` (indices into the data): the batch's mean loss and accuracy. */
  async step(
    rows: Uint32Array,
    batch: (idx: Uint32Array) => [tf.Tensor, tf.Tensor],
  ): Promise<[number, number]> {
    const share = Math.ceil(rows.length / this.threads);
    const parts = Array.from({ length: this.threads }, (_, t) => rows.subarray(t * share, (t + 1) * share));
    this.publish();
    const helpers = this.replicas.flatMap((r, i) =>
      parts[i + 1]!.length > 0 ? [{ r, n: parts[i + 1]!.length, run: r.step(parts[i + 1]!.slice()) }] : [],
    );
    const mine = parts[0]!;
    const [x, y] = batch(mine);
    let own: { loss: number; acc: number; grads: tf.Tensor[] };
    try {
      own = replicaGradients(this.model, this.vars, x, y);
    } finally {
      tf.dispose([x, y]);
    }
    const results = await Promise.allSettled(helpers.map((h) => h.run));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) {
      tf.dispose(own.grads);
      throw (failed as PromiseRejectedResult).reason;
    }
    const n = rows.length;
    let loss = own.loss * mine.length;
    let acc = own.acc * mine.length;
    const named: tf.NamedTensorMap = {};
    tf.tidy(() => {
      let o = 0;
      this.vars.forEach((v, k) => {
        let g = own.grads[k]!.mul(mine.length / n);
        for (const h of helpers) {
          const part = tf.tensor(h.r.grads.subarray(o, o + v.size), v.shape);
          g = g.add(part.mul(h.n / n));
        }
        named[v.name] = tf.keep(g);
        o += v.size;
      });
    });
    for (const [i, h] of helpers.entries()) {
      const r = (results[i] as PromiseFulfilledResult<{ loss: number; acc: number }>).value;
      loss += r.loss * h.n;
      acc += r.acc * h.n;
    }
    tf.dispose(own.grads);
    this.model.optimizer.applyGradients(named);
    tf.dispose(Object.values(named));
    return [loss / n, acc / n];
  }

  async dispose(): Promise<void> {
    await Promise.all(
      this.replicas.map(async (r) => {
        r.worker.postMessage({ type: 'stop' } satisfies ToReplica);
        await r.worker.terminate();
      }),
    );
  }
}
