/**
 * The fit loop: seeded shuffling, one optimizer step per batch, validation after each epoch, and an
 * async `onEpoch` hook (progress + checkpoint). It yields to the event loop between batches so that a
 * cancel message can arrive, and stops after the current batch when the signal aborts.
 */
import * as tf from '@tensorflow/tfjs';
import { seededPermutation, type EpochProgress } from '@mlq/contract';
import { batchTensors, DataParallelTrainer, type TrainData } from '@mlq/engine';
import {
  CancelledError,
  DataError,
  ReleasedError,
  SHUTDOWN_REASON,
  TrainingDivergedError,
} from '../util/errors.ts';
import { nonFiniteWeight } from './model-io.ts';

export interface FitOptions {
  epochs: number;
  batchSize: number;
  validationSplit: number;
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
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

/** Timed steps each way before deciding; they alternate, so a drift in speed hits both alike. */
const PROBE_PAIRS = 8;
/** ...and at least this much time on one thread, up to PROBE_MAX_PAIRS (a 20 ms step is noisy). */
const PROBE_MIN_MS = 500;
const PROBE_MAX_PAIRS = 24;
/**
 * Steps shorter than this on one thread are not split at all. The cached 4608->128->5 head (~20
 * ms a step) never gained: over ten recipe runs its probe kept 2 threads three times, and each of
 * those fits ran slower (3.8 s) than the single-thread ones (2.9-3.2 s).
 */
const MIN_SPLIT_STEP_MS = 60;
/** Data-parallel is kept when it takes less than this share of one thread's time per row. */
const KEEP_BELOW = 0.9;

/**
 * Data-parallel training only where it pays. Helper threads boot in the background while this
 * thread trains alone; once they are ready, steps alternate between one thread and all threads
 * (timed per row; the first parallel step warms the helpers up and is not counted), and the faster
 * way is kept for the rest of the fit.
 * Measured here (2 vCPUs, wasm): the mnist-cnn trains ~1.45x faster on 2 threads, while the cached
 * 4608->128->5 head gains nothing (two matmul threads slow each other down, and the weight sync costs
 * as much as what the second core saves). Alternating matters: timed in two blocks, the cnn once
 * measured 1.18x (its first single steps ran fast) and the head once 1.13x.
 */
class ParallelSwitch {
  private trainer: DataParallelTrainer | undefined;
  private state: 'booting' | 'probing' | 'on' | 'off';
  private readonly singleMs: number[] = [];
  private readonly parallelMs: number[] = [];
  private probeSteps = 0;
  /** Wall time of single-thread steps before the decision (not the fit's first), ms. */
  private readonly stepMs: number[] = [];
  private steps = 0;
  /** Wall time of the probe's single-thread steps, ms. */
  private probeMs = 0;

  private async timedSingle(
    idx: Uint32Array,
    single: (idx: Uint32Array) => Promise<[number, number]>,
  ): Promise<[number, number]> {
    const t0 = performance.now();
    const r = await single(idx);
    if (this.steps++ > 0) this.stepMs.push(performance.now() - t0);
    return r;
  }
  constructor(
    private readonly starting: Promise<DataParallelTrainer> | undefined,
    private readonly log: ((line: string) => Promise<void>) | undefined,
    private readonly minSplitStepMs = MIN_SPLIT_STEP_MS,
  ) {
    this.state = starting ? 'booting' : 'off';
    starting?.then(
      (t) => {
        this.trainer = t;
        if (this.state === 'booting') this.state = 'probing';
      },
      (e: unknown) => {
        this.state = 'off';
        void this.log?.(
          `data-parallel training unavailable, training on one thread: ${e instanceof Error ? e.message : String(e)}`,
        );
      },
    );
  }

  async step(
    idx: Uint32Array,
    single: (idx: Uint32Array) => Promise<[number, number]>,
    parallel: (t: DataParallelTrainer) => Promise<[number, number]>,
  ): Promise<[number, number]> {
    if (this.state === 'on') return parallel(this.trainer!);
    if (this.state === 'booting') return this.timedSingle(idx, single);
    if (this.state !== 'probing') return single(idx);
    if (this.stepMs.length >= 3 && median(this.stepMs) < this.minSplitStepMs) {
      this.state = 'off';
      const ms = median(this.stepMs).toFixed(0);
      await this.log?.(
        `data-parallel training skipped: a step takes ${ms} ms on one thread, too short to split`,
      );
      await this.dispose();
      return single(idx);
    }
    const onAll = this.probeSteps++ % 2 === 1;
    const t0 = performance.now();
    const r = onAll ? await parallel(this.trainer!) : await this.timedSingle(idx, single);
    const ms = performance.now() - t0;
    (onAll ? this.parallelMs : this.singleMs).push(ms / idx.length);
    if (!onAll) this.probeMs += ms;
    // Fast steps (a small head: ~20 ms) are noisy: go on pairing until the sample is long enough.
    const pairs = this.parallelMs.length - 1;
    if (pairs >= PROBE_PAIRS && (this.probeMs >= PROBE_MIN_MS || pairs >= PROBE_MAX_PAIRS))
      await this.decide();
    return r;
  }

  /** The fit ended mid-probe: say what the pairs timed so far show. */
  async conclude(): Promise<void> {
    if (this.state === 'probing' && this.parallelMs.length > 1) await this.decide();
  }

  private async decide(): Promise<void> {
    const one = median(this.singleMs);
    const all = median(this.parallelMs.slice(1));
    const threads = this.trainer!.threads;
    const rate = (ms: number) => Math.round(1000 / ms);
    const line = `data-parallel training on ${threads} threads: ${rate(all)} samples/s against ${rate(one)} on one`;
    if (all < one * KEEP_BELOW) {
      this.state = 'on';
      await this.log?.(`${line}; keeping it`);
    } else {
      this.state = 'off';
      await this.log?.(`${line}; back to one thread`);
      await this.dispose();
    }
  }

  private disposed = false;

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    if (this.state === 'booting') this.state = 'off';
    const t = this.trainer ?? (await this.starting?.catch(() => undefined));
    this.trainer = undefined;
    await t?.dispose();
  }
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

/** Loss and accuracy over rows `from..to`, in contiguous batches made on the JS side (see batchTensors). */
function evaluateRows(
  model: tf.LayersModel,
  data: TrainData,
  from: number,
  to: number,
  width: number,
): { loss: number; acc: number } {
  const step = 256;
  let loss = 0;
  let acc = 0;
  for (let s = from; s < to; s += step) {
    const e = Math.min(to, s + step);
    const idx = new Uint32Array(e - s).map((_, k) => s + k);
    const [x, y] = batchTensors(data, idx, width);
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
  return { loss: loss / (to - from), acc: acc / (to - from) };
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

/** Trains a compiled model on in-memory data. The model must be compiled with loss + accuracy. */
export async function fitModel(model: tf.LayersModel, data: TrainData, opts: FitOptions): Promise<FitResult> {
  const n = data.y.length;
  const width = data.shape.reduce((a, b) => a * b, 1);
  // Keras semantics: the validation rows are the last ones, taken before shuffling.
  const nVal = Math.floor(n * opts.validationSplit);
  const nTrain = n - nVal;
  for (let i = 0; i < n; i++) {
    const label = data.y[i]!;
    if (!(label >= 0 && label < data.numClasses))
      throw new DataError(`row ${i} has label ${label}; labels must be 0..${data.numClasses - 1}`);
  }
  const history = [...(opts.history ?? [])];
  const first = (opts.initialEpoch ?? 0) + 1;
  let trainSeconds = 0;
  let samples = 0;
  const threads = Math.min(opts.threads ?? 1, opts.batchSize);
  const parallel = new ParallelSwitch(
    threads > 1 && first <= opts.epochs
      ? DataParallelTrainer.start(model, data, threads, opts.backend ?? tf.getBackend())
      : undefined,
    opts.log,
    opts.minSplitStepMs,
  );
  const single = async (idx: Uint32Array): Promise<[number, number]> => {
    const [xb, yb] = batchTensors(data, idx, width);
    try {
      return (await model.trainOnBatch(xb, yb)) as [number, number];
    } finally {
      tf.dispose([xb, yb]);
    }
  };
  const step = (idx: Uint32Array) =>
    parallel.step(idx, single, (t) => t.step(idx, (rows) => batchTensors(data, rows, width)));
  try {
    for (let epoch = first; epoch <= opts.epochs; epoch++) {
      // A different but reproducible order each epoch, also after a resume.
      const order = seededPermutation(nTrain, opts.seed * 1000 + epoch);
      const partial = opts.partial?.epoch === epoch ? opts.partial : undefined;
      let lossSum = partial?.lossSum ?? 0;
      let accSum = partial?.accSum ?? 0;
      const t0 = performance.now() - (partial?.seconds ?? 0) * 1000;
      for (let s = (partial?.batches ?? 0) * opts.batchSize; s < nTrain; s += opts.batchSize) {
        if (opts.signal?.aborted) {
          const reason = String(opts.signal.reason ?? 'cancelled');
          if (reason !== SHUTDOWN_REASON) throw new CancelledError(reason);
          const at = {
            epoch,
            batches: s / opts.batchSize,
            lossSum,
            accSum,
            seconds: (performance.now() - t0) / 1000,
          };
          await opts.onInterrupt?.(at, history);
          throw new ReleasedError();
        }
        const idx = order.subarray(s, Math.min(nTrain, s + opts.batchSize));
        const [loss, acc] = await step(idx);
        if (!Number.isFinite(loss))
          diverged(`epoch ${epoch}, batch ${s / opts.batchSize + 1}: the loss is ${loss}`);
        lossSum += loss * idx.length;
        accSum += acc * idx.length;
        await nextTick();
      }
      const bad = nonFiniteWeight(model);
      if (bad) diverged(`after epoch ${epoch}, ${bad}`);
      const seconds = (performance.now() - t0) / 1000;
      trainSeconds += seconds;
      samples += nTrain;
      const v = nVal > 0 ? evaluateRows(model, data, nTrain, n, width) : undefined;
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
