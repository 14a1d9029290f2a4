/**
 * The fit loop: batches from a BatchSource (seeded order, see batches.ts), one optimizer step per
 * batch, validation after each epoch, and an async `onEpoch` hook (progress + checkpoint). It yields to
 * the event loop between batches so that a cancel message can arrive, and stops after the current
 * batch when the signal aborts.
 */
import * as tf from '@tensorflow/tfjs';
import type { EpochProgress } from '../jobs/catalog.ts';
import { CancelledError, ReleasedError, SHUTDOWN_REASON } from '../util/errors.ts';
import {
  arrayBatches,
  batchToTensors,
  checkLabels,
  type Batch,
  type BatchSource,
  type TrainData,
} from './batches.ts';
import { DataParallelTrainer } from './parallel.ts';
import { ParallelSwitch } from './parallel-switch.ts';

export type { TrainData } from './batches.ts';

export interface FitOptions {
  epochs: number;
  batchSize: number;
  /** For in-memory TrainData: the last rows held out (a BatchSource makes its own split). */
  validationSplit: number;
  /** For in-memory TrainData: the shuffle's seed (a BatchSource has its own). */
  seed: number;
  /** Epochs already done (resume): training starts at epoch `initialEpoch + 1`. */
  initialEpoch?: number;
  /** Progress of the epochs already done, so history stays continuous across a resume. */
  history?: EpochProgress[];
  /** Where an interrupted epoch stopped (resume mid-epoch after a shutdown). */
  partial?: PartialEpoch | undefined;
  signal?: AbortSignal | undefined;
  /**
   * Called when the signal aborts for a worker shutdown, before ReleasedError is thrown: save the
   * state so that another worker continues from this very batch.
   */
  onInterrupt?: (p: PartialEpoch, history: EpochProgress[]) => Promise<void>;
  /** Called after each epoch, before the next starts (report progress, save a checkpoint). */
  onEpoch?: (p: EpochProgress, history: EpochProgress[]) => Promise<void>;
  /**
   * Threads that share each batch (data-parallel, see parallel.ts); 1 or absent: this thread alone.
   * For CPU backends (wasm, cpu), where one thread uses one core.
   */
  threads?: number | undefined;
  /** The backend helper threads start (the one this thread runs), when `threads` > 1. */
  backend?: string | undefined;
  /** Where to say whether data-parallel training paid off (the job log). */
  log?: ((line: string) => Promise<void>) | undefined;
  /** Single-thread steps shorter than this (ms) are not split; default 60 (MIN_SPLIT_STEP_MS). */
  minSplitStepMs?: number | undefined;
  /** Rows per validation batch (bounds the layer outputs held at once); default 256. */
  evalBatchSize?: number | undefined;
}

/** How far into an epoch training got: batches done (in the epoch's seeded order) and running sums. */
export interface PartialEpoch {
  epoch: number;
  batches: number;
  lossSum: number;
  accSum: number;
  seconds: number;
}

export interface FitResult {
  history: EpochProgress[];
  samplesPerSec: number;
  trainSeconds: number;
}

const nextTick = () => new Promise<void>((r) => setImmediate(r));

/** Loss and accuracy over the validation rows, in batches (never augmented). */
async function evaluateValidation(
  model: tf.LayersModel,
  source: BatchSource,
  batchSize: number,
): Promise<{ loss: number; acc: number }> {
  let loss = 0;
  let acc = 0;
  for await (const b of source.validationBatches(batchSize)) {
    checkLabels(b, source.numClasses);
    const [x, y] = batchToTensors(b, source.shape, source.numClasses);
    // model.apply, not model.evaluate: evaluate gathers its batches, which is slow on wasm.
    const sums = tf.tidy(() => {
      const p = model.apply(x, { training: false }) as tf.Tensor;
      return tf.stack([
        tf.metrics.categoricalCrossentropy(y, p).sum(),
        tf.metrics.categoricalAccuracy(y, p).sum(),
      ]);
    });
    const [l, a] = sums.dataSync();
    loss += l!;
    acc += a!;
    tf.dispose([x, y, sums]);
  }
  return { loss: loss / source.valRows, acc: acc / source.valRows };
}

/**
 * One batch's tensors from rows `idx` of in-memory data, copied row by row on the JS side. tf.gather
 * on the wasm backend costs far more than the copy: 18-25 ms for 128 rows of 4,608 features, as much
 * as the head's whole training step. (The helper threads read their share of a batch with it.)
 */
export function batchTensors(data: TrainData, idx: Uint32Array, width: number): [tf.Tensor, tf.Tensor] {
  const b = idx.length;
  const x = new Float32Array(b * width);
  const y = new Float32Array(b * data.numClasses);
  for (let r = 0; r < b; r++) {
    const i = idx[r]!;
    const label = data.y[i]!;
    x.set(data.x.subarray(i * width, (i + 1) * width), r * width);
    y[r * data.numClasses + label] = 1;
  }
  return [tf.tensor(x, [b, ...data.shape]), tf.tensor2d(y, [b, data.numClasses])];
}

/**
 * Where the helper threads read each batch: one batch of rows in shared memory, rewritten before
 * every split step (the helpers get row indices into it).
 */
function sharedBatch(batchSize: number, shape: number[], numClasses: number): TrainData {
  const width = shape.reduce((a, b) => a * b, 1);
  return {
    x: new Float32Array(new SharedArrayBuffer(batchSize * width * 4)),
    y: new Int32Array(new SharedArrayBuffer(batchSize * 4)),
    shape,
    numClasses,
  };
}

/**
 * Trains a compiled model (loss + accuracy) on a BatchSource, or on in-memory rows (shuffled with
 * `opts.seed`, the last `opts.validationSplit` of them held out).
 */
export async function fitModel(
  model: tf.LayersModel,
  data: TrainData | BatchSource,
  opts: FitOptions,
): Promise<FitResult> {
  const source = 'trainBatches' in data ? data : arrayBatches(data, opts.validationSplit, opts.seed);
  const { shape, numClasses, trainRows: nTrain } = source;
  const width = shape.reduce((a, b) => a * b, 1);
  const history = [...(opts.history ?? [])];
  const first = (opts.initialEpoch ?? 0) + 1;
  let trainSeconds = 0;
  let samples = 0;
  const threads = Math.min(opts.threads ?? 1, opts.batchSize);
  const window =
    threads > 1 && first <= opts.epochs ? sharedBatch(opts.batchSize, shape, numClasses) : undefined;
  const parallel = new ParallelSwitch(
    window ? DataParallelTrainer.start(model, window, threads, opts.backend ?? tf.getBackend()) : undefined,
    opts.log,
    opts.minSplitStepMs,
  );
  const single = async (b: Batch): Promise<[number, number]> => {
    const [xb, yb] = batchToTensors(b, shape, numClasses);
    try {
      return (await model.trainOnBatch(xb, yb)) as [number, number];
    } finally {
      tf.dispose([xb, yb]);
    }
  };
  const split = (t: DataParallelTrainer, b: Batch) => {
    window!.x.set(b.x);
    window!.y.set(b.y);
    const rows = Uint32Array.from({ length: b.rows }, (_, i) => i);
    return t.step(rows, (idx) => batchTensors(window!, idx, width));
  };
  const step = (b: Batch) =>
    parallel.step(
      b.rows,
      () => single(b),
      (t) => split(t, b),
    );
  try {
    for (let epoch = first; epoch <= opts.epochs; epoch++) {
      const partial = opts.partial?.epoch === epoch ? opts.partial : undefined;
      let lossSum = partial?.lossSum ?? 0;
      let accSum = partial?.accSum ?? 0;
      let batches = partial?.batches ?? 0;
      const t0 = performance.now() - (partial?.seconds ?? 0) * 1000;
      // A different but reproducible order each epoch, also after a resume.
      for await (const b of source.trainBatches(epoch, opts.batchSize, batches)) {
        if (opts.signal?.aborted) {
          const reason = String(opts.signal.reason ?? 'cancelled');
          if (reason !== SHUTDOWN_REASON) throw new CancelledError(reason);
          const at = { epoch, batches, lossSum, accSum, seconds: (performance.now() - t0) / 1000 };
          await opts.onInterrupt?.(at, history);
          throw new ReleasedError();
        }
        checkLabels(b, numClasses);
        const [loss, acc] = await step(b);
        lossSum += loss * b.rows;
        accSum += acc * b.rows;
        batches++;
        await nextTick();
      }
      const seconds = (performance.now() - t0) / 1000;
      trainSeconds += seconds;
      samples += nTrain;
      const v =
        source.valRows > 0 ? await evaluateValidation(model, source, opts.evalBatchSize ?? 256) : undefined;
      const p: EpochProgress = {
        epoch,
        epochs: opts.epochs,
        loss: lossSum / nTrain,
        acc: accSum / nTrain,
        ...(v ? { valLoss: v.loss, valAcc: v.acc } : {}),
        samplesPerSec: nTrain / seconds,
        etaSeconds: (opts.epochs - epoch) * seconds,
      };
      history.push(p);
      await opts.onEpoch?.(p, history);
    }
    await parallel.conclude();
  } finally {
    await parallel.dispose();
  }
  return { history, samplesPerSec: trainSeconds > 0 ? samples / trainSeconds : 0, trainSeconds };
}

/**
 * One inference call over `rows` (already batched by the caller). `model.apply` in inference mode,
 * not `model.predict`, which slices its input per batch (an extra copy, slow on wasm). The tensor
 * leaves tidy and is read outside it: returning the typed array from tidy makes tidy walk every
 * element looking for tensors.
 */
export function predictRows(model: tf.LayersModel, rows: Float32Array, shape: number[]): Float32Array {
  const out = tf.tidy(() => model.apply(tf.tensor(rows, shape), { training: false }) as tf.Tensor);
  try {
    return out.dataSync() as Float32Array;
  } finally {
    out.dispose();
  }
}

/** Runs a model over rows in batches and returns its outputs as one Float32Array. */
export function predictBatched(
  model: tf.LayersModel,
  x: Float32Array,
  shape: number[],
  batchSize = 512,
): Float32Array {
  const width = shape.reduce((a, b) => a * b, 1);
  const n = x.length / width;
  const outDim = (model.outputs[0]!.shape.slice(1) as number[]).reduce((a, b) => a * b, 1);
  const out = new Float32Array(n * outDim);
  for (let s = 0; s < n; s += batchSize) {
    const e = Math.min(n, s + batchSize);
    out.set(predictRows(model, x.subarray(s * width, e * width), [e - s, ...shape]), s * outDim);
  }
  return out;
}
