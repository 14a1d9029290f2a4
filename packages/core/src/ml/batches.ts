/**
 * Where the fit loop takes its batches from: a `BatchSource`. The streaming pipeline
 * (data/pipeline/batch-stream.ts) reads cached shards through a shuffle buffer; `arrayBatches` serves
 * rows already in one Float32Array (small data, tests, and the pre-streaming path bench/stream.ts
 * measures against).
 */
import * as tf from '@tensorflow/tfjs';
import { DataError } from '../util/errors.ts';
import { seededPermutation } from '../util/rng.ts';

/** Rows of a dataset held in memory. */
export interface TrainData {
  /** `n * prod(shape)` features. */
  x: Float32Array;
  y: Int32Array;
  /** One example's shape. */
  shape: number[];
  numClasses: number;
}

/** One batch: its rows' features and labels, and which rows of the dataset they are. */
export interface Batch {
  rows: number;
  /** `rows * prod(shape)` features. */
  x: Float32Array;
  y: Int32Array;
  /** The dataset row of each batch row. */
  ids: Uint32Array;
}

export interface BatchSource {
  /** One example's shape. */
  shape: number[];
  numClasses: number;
  /** Training rows: the first `trainRows` rows of the dataset. */
  trainRows: number;
  /** Validation rows: the `valRows` rows after them (Keras' validation_split: the last rows, unshuffled). */
  valRows: number;
  /**
   * Training batches of epoch `epoch` (1-based) in its seeded order, from batch `fromBatch` on: the
   * same epoch, seed and batch size always give the same batches, also in a resumed job.
   */
  trainBatches(epoch: number, batchSize: number, fromBatch: number): AsyncIterable<Batch>;
  /** The validation rows in order, in batches of at most `batchSize` (never augmented). */
  validationBatches(batchSize: number): AsyncIterable<Batch>;
}

/** Throws a DataError naming the first row of `b` whose label is not a class index. */
export function checkLabels(b: Batch, numClasses: number): void {
  for (let i = 0; i < b.rows; i++) {
    const label = b.y[i]!;
    if (!(label >= 0 && label < numClasses))
      throw new DataError(`row ${b.ids[i]} has label ${label}; labels must be 0..${numClasses - 1}`);
  }
}

/** A batch's input and one-hot target tensors. */
export function batchToTensors(b: Batch, shape: number[], numClasses: number): [tf.Tensor, tf.Tensor] {
  const y = new Float32Array(b.rows * numClasses);
  for (let r = 0; r < b.rows; r++) y[r * numClasses + b.y[r]!] = 1;
  return [tf.tensor(b.x, [b.rows, ...shape]), tf.tensor2d(y, [b.rows, numClasses])];
}

/** Copies rows `idx` of `data` into a batch (on the JS side: tf.gather on wasm costs far more). */
function gatherRows(data: TrainData, idx: Uint32Array, width: number): Batch {
  const x = new Float32Array(idx.length * width);
  const y = new Int32Array(idx.length);
  idx.forEach((i, r) => {
    x.set(data.x.subarray(i * width, (i + 1) * width), r * width);
    y[r] = data.y[i]!;
  });
  return { rows: idx.length, x, y, ids: idx };
}

/**
 * In-memory rows as a BatchSource: each epoch a seeded permutation of all training rows (seed
 * `seed * 1000 + epoch`), the last `floor(n * validationSplit)` rows for validation.
 */
export function arrayBatches(data: TrainData, validationSplit: number, seed: number): BatchSource {
  const n = data.y.length;
  const width = data.shape.reduce((a, b) => a * b, 1);
  const valRows = Math.floor(n * validationSplit);
  const trainRows = n - valRows;
  checkLabels(
    { rows: n, x: data.x, y: data.y, ids: Uint32Array.from({ length: n }, (_, i) => i) },
    data.numClasses,
  );
  return {
    shape: data.shape,
    numClasses: data.numClasses,
    trainRows,
    valRows,
    async *trainBatches(epoch, batchSize, fromBatch) {
      const order = seededPermutation(trainRows, seed * 1000 + epoch);
      for (let s = fromBatch * batchSize; s < trainRows; s += batchSize)
        yield gatherRows(data, order.subarray(s, Math.min(trainRows, s + batchSize)), width);
    },
    async *validationBatches(batchSize) {
      for (let s = trainRows; s < n; s += batchSize) {
        const e = Math.min(n, s + batchSize);
        yield gatherRows(
          data,
          Uint32Array.from({ length: e - s }, (_, k) => s + k),
          width,
        );
      }
    },
  };
}
