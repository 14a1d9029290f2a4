/**
 * The fit loop: seeded shuffling, one optimizer step per batch, validation after each epoch, and an
 * async `onEpoch` hook (progress + checkpoint). It yields to the event loop between batches so that a
 * cancel message can arrive, and stops after the current batch when the signal aborts.
 */
import * as tf from '@tensorflow/tfjs';
import type { EpochProgress } from '../jobs/catalog.ts';
import { CancelledError, DataError, ReleasedError, SHUTDOWN_REASON } from '../util/errors.ts';
import { seededPermutation } from '../util/rng.ts';

export interface TrainData {
  /** `n * prod(shape)` features. */
  x: Float32Array;
  y: Int32Array;
  /** One example's shape. */
  shape: number[];
  numClasses: number;
}

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
 * One batch's tensors, copied row by row on the JS side. tf.gather on the wasm backend costs far more
 * than the copy: 18-25 ms for 128 rows of 4,608 features, as much as the head's whole training step.
 */
function batchTensors(data: TrainData, idx: Uint32Array | Int32Array, width: number): [tf.Tensor, tf.Tensor] {
  const b = idx.length;
  const x = new Float32Array(b * width);
  const y = new Float32Array(b * data.numClasses);
  for (let r = 0; r < b; r++) {
    const i = idx[r]!;
    const label = data.y[i]!;
    if (!(label >= 0 && label < data.numClasses))
      throw new DataError(`row ${i} has label ${label}; labels must be 0..${data.numClasses - 1}`);
    x.set(data.x.subarray(i * width, (i + 1) * width), r * width);
    y[r * data.numClasses + label] = 1;
  }
  return [tf.tensor(x, [b, ...data.shape]), tf.tensor2d(y, [b, data.numClasses])];
}

/** Trains a compiled model on in-memory data. The model must be compiled with loss + accuracy. */
export async function fitModel(model: tf.LayersModel, data: TrainData, opts: FitOptions): Promise<FitResult> {
  const n = data.y.length;
  const width = data.shape.reduce((a, b) => a * b, 1);
  // Keras semantics: the validation rows are the last ones, taken before shuffling.
  const nVal = Math.floor(n * opts.validationSplit);
  const nTrain = n - nVal;
  const history = [...(opts.history ?? [])];
  const first = (opts.initialEpoch ?? 0) + 1;
  let trainSeconds = 0;
  let samples = 0;
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
      const [xb, yb] = batchTensors(data, idx, width);
      const [loss, acc] = (await model.trainOnBatch(xb, yb)) as number[];
      tf.dispose([xb, yb]);
      lossSum += loss! * idx.length;
      accSum += acc! * idx.length;
      await nextTick();
    }
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
      etaSeconds: (opts.epochs - epoch) * seconds,
    };
    history.push(p);
    await opts.onEpoch?.(p, history);
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
