/**
 * Both cores on CPU backends, where one thread uses one core: helper threads, each with its own tfjs
 * (a wasm instance per thread). They boot once per process and stay (a pool), so later jobs get them
 * ready at once.
 *
 * - Data-parallel training: each batch is split between this thread and the helpers, each with a
 *   replica of the model. Every replica computes the gradient of its rows; this thread averages them
 *   (weighted by rows), applies the model's optimizer once and publishes the new weights. The model
 *   here stays the only truth: checkpoints, optimizer state and batch-norm statistics live on it.
 * - Parallel inference (the frozen base's embeddings): rows are split between this thread and the
 *   helpers, which write their outputs into shared memory.
 *
 * Shared memory carries the bulk: rows (copied once), the trainable weights (written here after each
 * step), each helper's gradients, predictions. Messages carry only row indices and losses.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import type { TrainData } from './batches.ts';
import { predictBatched } from './inference.ts';
import { spawnTsThread } from './ts-thread.ts';

/** A model as a helper rebuilds it. */
export interface ModelSpec {
  topology: unknown;
  /** Every weight of the model (trainable or not), in `model.weights` order. */
  weights: { shape: number[]; values: Float32Array }[];
}

/** A training replica: the model plus where its data, the weights and its gradients live. */
export interface ReplicaSpec extends ModelSpec {
  /** Indices into `weights` of the trainable ones, in `trainableWeights` order. */
  trainable: number[];
  x: SharedArrayBuffer;
  y: SharedArrayBuffer;
  shape: number[];
  numClasses: number;
  params: SharedArrayBuffer;
  grads: SharedArrayBuffer;
}

export interface PredictSpec extends ModelSpec {
  x: SharedArrayBuffer;
  shape: number[];
  from: number;
  to: number;
  batchSize: number;
  out: SharedArrayBuffer;
}

export type ToHelper =
  | { type: 'load'; replica: ReplicaSpec }
  | { type: 'step'; rows: Uint32Array }
  | { type: 'release' }
  | { type: 'predict'; job: PredictSpec };
export type FromHelper =
  | { type: 'ready' }
  | { type: 'loaded' }
  | { type: 'done'; loss: number; acc: number }
  | { type: 'released' }
  | { type: 'predicted' }
  | { type: 'error'; message: string };

const BOOT_TIMEOUT_MS = 60_000;

const workerFile = path.join(path.dirname(fileURLToPath(import.meta.url)), 'parallel.worker.ts');

/**
 * Loss and gradients of one batch for the given variables, as `trainOnBatch` computes them
 * (categorical cross-entropy, which compile() sets, plus the layers' regularisation losses).
 */
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
    let loss = tf.metrics.categoricalCrossentropy(y, p).mean() as tf.Scalar;
    for (const r of model.calculateLosses()) loss = loss.add(r);
    return loss;
  }, vars);
  const out = {
    loss: value.dataSync()[0]!,
    acc: acc!.dataSync()[0]!,
    grads: vars.map((v) => grads[v.name]!),
  };
  tf.dispose([value, acc!]);
  return out;
}

/** One helper thread: one request at a time. */
class Helper {
  private readonly worker: Worker;
  private readonly booted: Promise<void>;
  /** Callers waiting on this thread: while there are any it keeps the process alive, else not. */
  private holds = 0;
  ready = false;
  leased = false;
  private pending: { resolve: (m: FromHelper) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;

  readonly backend: string;
  private readonly onDead: (h: Helper) => void;
  constructor(backend: string, onDead: (h: Helper) => void) {
    this.backend = backend;
    this.onDead = onDead;
    const worker = spawnTsThread(workerFile, { backend });
    this.worker = worker;
    this.booted = new Promise<void>((resolve, reject) => {
      this.pending = {
        resolve: () => {
          this.ready = true;
          resolve();
        },
        reject,
      };
    });
    // Nobody may be waiting for the boot yet: a failed boot must not be an unhandled rejection.
    this.booted.catch(() => undefined);
    worker.on('message', (m: FromHelper) => {
      const p = this.pending;
      this.pending = undefined;
      if (m.type === 'error') p?.reject(new Error(`helper thread: ${m.message}`));
      else p?.resolve(m);
    });
    worker.on('error', (e) => this.fail(e));
    worker.on('exit', (code) => this.fail(new Error(`helper thread exited with code ${code}`)));
    // Idle helpers must not keep the process alive (after the listeners: adding one refs it again).
    worker.unref();
  }

  private hold<T>(p: Promise<T>): Promise<T> {
    if (this.holds++ === 0) this.worker.ref();
    return p.finally(() => {
      if (--this.holds === 0) this.worker.unref();
    });
  }

  /** Resolves once the thread has booted (its tfjs is up). */
  whenBooted(): Promise<void> {
    return this.ready ? Promise.resolve() : this.hold(this.booted);
  }

  private fail(e: Error): void {
    this.failure ??= e;
    const p = this.pending;
    this.pending = undefined;
    p?.reject(e);
    this.onDead(this);
  }

  call(m: ToHelper): Promise<FromHelper> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.pending) return Promise.reject(new Error('helper thread is busy'));
    return this.hold(
      new Promise<FromHelper>((resolve, reject) => {
        this.pending = { resolve, reject };
        this.worker.postMessage(m);
      }),
    );
  }

  terminate(): Promise<number> {
    return this.worker.terminate();
  }
}

/** The process's helper threads, by backend. */
const pool = new Map<string, Helper[]>();

/**
 * Up to `n` helpers on `backend`, leased to the caller until `giveBack`. Missing ones are started
 * (they boot in the background: see `whenBooted`). With `readyOnly`, only helpers already booted are
 * leased, but missing ones still start, for later callers.
 */
function lease(n: number, backend: string, readyOnly = false): Helper[] {
  const all = pool.get(backend) ?? [];
  pool.set(backend, all);
  const dead = (h: Helper) => {
    const i = all.indexOf(h);
    if (i >= 0) all.splice(i, 1);
  };
  while (all.length < n) all.push(new Helper(backend, dead));
  const free = all.filter((h) => !h.leased && (!readyOnly || h.ready)).slice(0, n);
  for (const h of free) h.leased = true;
  return free;
}

function giveBack(helpers: Helper[]): void {
  for (const h of helpers) h.leased = false;
}

/** Helper threads on `backend` that have booted (idle or not). */
export function readyHelpers(backend: string): number {
  return (pool.get(backend) ?? []).filter((h) => h.ready).length;
}

/** Stops every helper thread of this process (tests; a process that exits needs not). */
export async function stopHelpers(): Promise<void> {
  const all = [...pool.values()].flat();
  pool.clear();
  await Promise.all(all.map((h) => h.terminate()));
}

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} after ${BOOT_TIMEOUT_MS} ms`)), BOOT_TIMEOUT_MS);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function modelSpec(model: tf.LayersModel): ModelSpec {
  return {
    topology: model.toJSON(null, false),
    weights: model.weights.map((w) => ({
      shape: w.shape as number[],
      values: Float32Array.from(w.read().dataSync() as Float32Array),
    })),
  };
}

/**
 * `src` in shared memory: its own buffer when it is a whole SharedArrayBuffer already (the fit loop's
 * batch, rewritten before each step), else a copy.
 */
function shared(src: Float32Array | Int32Array): SharedArrayBuffer {
  if (
    src.buffer instanceof SharedArrayBuffer &&
    src.byteOffset === 0 &&
    src.byteLength === src.buffer.byteLength
  )
    return src.buffer;
  const buf = new SharedArrayBuffer(src.byteLength);
  new Uint8Array(buf).set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
  return buf;
}

export class DataParallelTrainer {
  private readonly model: tf.LayersModel;
  private readonly helpers: { helper: Helper; grads: Float32Array }[];
  private readonly params: Float32Array;
  private readonly vars: tf.Variable[];
  private constructor(
    model: tf.LayersModel,
    helpers: { helper: Helper; grads: Float32Array }[],
    params: Float32Array,
    vars: tf.Variable[],
  ) {
    this.model = model;
    this.helpers = helpers;
    this.params = params;
    this.vars = vars;
  }

  /**
   * A trainer over this thread and `threads - 1` helpers for `model` (compiled, with an optimizer) and
   * `data` (rows the steps' indices point into; shared with the helpers, not copied, when its arrays
   * are whole SharedArrayBuffers). Resolves once every helper has booted and built its replica.
   */
  static async start(
    model: tf.LayersModel,
    data: TrainData,
    threads: number,
    backend: string,
  ): Promise<DataParallelTrainer> {
    const helpers = lease(threads - 1, backend);
    try {
      if (helpers.length === 0) throw new Error('every helper thread is busy');
      await withTimeout(Promise.all(helpers.map((h) => h.whenBooted())), 'helper threads not ready');
      const trainableSet = new Set(model.trainableWeights);
      const trainable = model.weights.flatMap((w, i) => (trainableSet.has(w) ? [i] : []));
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const total = vars.reduce((a, v) => a + v.size, 0);
      const params = new SharedArrayBuffer(total * 4);
      const base = { ...modelSpec(model), trainable, x: shared(data.x), y: shared(data.y) };
      const withGrads = helpers.map((helper) => ({ helper, grads: new SharedArrayBuffer(total * 4) }));
      await withTimeout(
        Promise.all(
          withGrads.map(({ helper, grads }) =>
            helper.call({
              type: 'load',
              replica: { ...base, shape: data.shape, numClasses: data.numClasses, params, grads },
            }),
          ),
        ),
        'helper threads could not build the model',
      );
      return new DataParallelTrainer(
        model,
        withGrads.map(({ helper, grads }) => ({ helper, grads: new Float32Array(grads) })),
        new Float32Array(params),
        vars,
      );
    } catch (e) {
      giveBack(helpers);
      throw e;
    }
  }

  get threads(): number {
    return this.helpers.length + 1;
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
    const working = this.helpers.flatMap((h, i) => {
      const part = parts[i + 1]!;
      return part.length > 0
        ? [{ ...h, n: part.length, run: h.helper.call({ type: 'step', rows: part.slice() }) }]
        : [];
    });
    const mine = parts[0]!;
    const [x, y] = batch(mine);
    let own: { loss: number; acc: number; grads: tf.Tensor[] };
    try {
      own = replicaGradients(this.model, this.vars, x, y);
    } finally {
      tf.dispose([x, y]);
    }
    const results = await Promise.allSettled(working.map((h) => h.run));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) {
      tf.dispose(own.grads);
      throw (failed as PromiseRejectedResult).reason;
    }
    const n = rows.length;
    let loss = own.loss * mine.length;
    let acc = own.acc * mine.length;
    for (const [i, h] of working.entries()) {
      const r = (results[i] as PromiseFulfilledResult<FromHelper>).value as { loss: number; acc: number };
      loss += r.loss * h.n;
      acc += r.acc * h.n;
    }
    const named: tf.NamedTensorMap = {};
    tf.tidy(() => {
      let o = 0;
      this.vars.forEach((v, k) => {
        let g = own.grads[k]!.mul(mine.length / n);
        for (const h of working) {
          const part = tf.tensor(h.grads.subarray(o, o + v.size), v.shape);
          g = g.add(part.mul(h.n / n));
        }
        named[v.name] = tf.keep(g);
        o += v.size;
      });
    });
    tf.dispose(own.grads);
    this.model.optimizer.applyGradients(named);
    tf.dispose(Object.values(named));
    return [loss / n, acc / n];
  }

  /** Gives the helpers back to the pool (they drop their replica). */
  async dispose(): Promise<void> {
    await Promise.allSettled(this.helpers.map((h) => h.helper.call({ type: 'release' })));
    giveBack(this.helpers.map((h) => h.helper));
  }
}

/**
 * Runs `model` over `x` (rows of `shape`) in batches, splitting the rows between this thread and the
 * helpers that are already booted (waiting for a boot would cost more than it saves; the boot starts
 * anyway, for later jobs); the outputs then come back in shared memory. With no helper ready it is
 * predictBatched on this thread.
 */
export async function predictParallel(
  model: tf.LayersModel,
  x: Float32Array,
  shape: number[],
  threads: number,
  backend: string,
  batchSize = 512,
): Promise<{ out: Float32Array; threads: number }> {
  const helpers = threads > 1 ? lease(threads - 1, backend, true) : [];
  try {
    const width = shape.reduce((a, b) => a * b, 1);
    const n = x.length / width;
    if (helpers.length === 0 || n < 2 * batchSize)
      return { out: predictBatched(model, x, shape, batchSize), threads: 1 };
    const outWidth = (model.outputs[0]!.shape.slice(1) as number[]).reduce((a, b) => a * b, 1);
    const out = new SharedArrayBuffer(n * outWidth * 4);
    const xs = shared(x);
    const spec = modelSpec(model);
    // This thread takes the first share, each helper one of the rest.
    const share = Math.ceil(n / (helpers.length + 1));
    const runs = helpers.map((h, i) => {
      const from = Math.min(n, (i + 1) * share);
      const to = Math.min(n, (i + 2) * share);
      return from < to
        ? h.call({ type: 'predict', job: { ...spec, x: xs, shape, from, to, batchSize, out } })
        : Promise.resolve({ type: 'predicted' } as FromHelper);
    });
    // Every thread writes its rows' outputs into the shared result, which is handed back as it is.
    const result = new Float32Array(out);
    const mine = Math.min(n, share);
    predictBatched(model, x.subarray(0, mine * width), shape, batchSize, result.subarray(0, mine * outWidth));
    await Promise.all(runs);
    return { out: result, threads: helpers.length + 1 };
  } finally {
    giveBack(helpers);
  }
}
