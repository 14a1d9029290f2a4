/**
 * The fit loop: batches from a BatchSource (seeded order, see batches.ts), one optimizer step per
 * batch, validation after each epoch, and an async `onEpoch` hook (progress + checkpoint). It yields to
 * the event loop between batches so that a cancel message can arrive, and stops after the current
 * batch when the signal aborts.
 */
import * as tf from '@tensorflow/tfjs';
import type { EpochProgress } from '@mlq/contract';
import { batchTensors, DataParallelTrainer, type TrainData } from '@mlq/engine';
import {
  CancelledError,
  DataError,
  ReleasedError,
  SHUTDOWN_REASON,
  TrainingDivergedError,
} from '../util/errors.ts';
import { arrayBatches, batchToTensors, checkLabels, type Batch, type BatchSource } from './batches.ts';
import { nonFiniteWeight } from './model-io.ts';
import { ParallelSwitch, type ParallelMode } from './parallel-switch.ts';

export type { TrainData } from '@mlq/engine';

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
  /** Called after each batch with the epoch's running loss and accuracy (throttle it yourself). */
  onBatch?: (p: BatchProgress) => Promise<void> | void;
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
  /**
   * `auto` (default): probe one thread against all and keep the faster (see parallel-switch.ts).
   * `always`: split every step over `threads` threads, with no probe (tests, benchmarks).
   */
  parallel?: ParallelMode | undefined;
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

/** Where training is within an epoch: `batch` of `batches` done, mean loss/acc over the rows so far. */
export interface BatchProgress {
  epoch: number;
  batch: number;
  batches: number;
  loss: number;
  acc: number;
  /** Rows of this epoch trained so far, and the seconds they took (a resumed epoch counts its first part). */
  rows: number;
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
 * Stops a fit whose loss or weights are no longer finite: the same data, seed and settings would do
 * it again, so it is a permanent failure, and nothing of it is saved.
 */
function diverged(where: string): never {
  throw new TrainingDivergedError(
    `training diverged at ${where}; nothing was saved. Try a lower learningRate, or look for extreme values in the data`,
  );
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
    opts.parallel,
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
        if (!Number.isFinite(loss)) diverged(`epoch ${epoch}, batch ${batches + 1}: the loss is ${loss}`);
        lossSum += loss * b.rows;
        accSum += acc * b.rows;
        batches++;
        const rows = Math.min(nTrain, batches * opts.batchSize);
        await opts.onBatch?.({
          epoch,
          batch: batches,
          batches: Math.ceil(nTrain / opts.batchSize),
          loss: lossSum / rows,
          acc: accSum / rows,
          rows,
          seconds: (performance.now() - t0) / 1000,
        });
        await nextTick();
      }
      const bad = nonFiniteWeight(model);
      if (bad) diverged(`after epoch ${epoch}, ${bad}`);
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
        epochSeconds: seconds,
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
 * Refuses model outputs that are not finite (`scores`: rows of `k` values, the first being row
 * `firstRow` of the data): a model with finite weights answers NaN or Infinity only when an input's
 * values are too large for it, and such a score must never be written or measured as if it were one.
 */
export function checkFiniteScores(scores: Float32Array, k: number, firstRow: number): void {
  for (let i = 0; i < scores.length; i++) {
    const v = scores[i]!;
    if (v - v === 0) continue;
    const row = firstRow + Math.floor(i / k);
    throw new DataError(
      `row ${row}: the model's output is ${v}, not a number it can score with; the row's values are too large for this model`,
    );
  }
}
