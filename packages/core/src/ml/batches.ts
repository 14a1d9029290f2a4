/**
 * Batches as tensors, and `arrayBatches`: rows already in one Float32Array as a BatchSource (small
 * data, tests, and the pre-streaming path bench/stream.ts measures against). The streaming pipeline's
 * BatchSource is data/pipeline/batch-stream.ts.
 */
import * as tf from '@tensorflow/tfjs';
import { seededPermutation } from '@mlq/contract';
import type { TrainData } from '@mlq/engine';
import { checkLabels, type Batch, type BatchSource } from '../data/batches.ts';

export { checkLabels, type Batch, type BatchSource } from '../data/batches.ts';

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
