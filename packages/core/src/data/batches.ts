/**
 * Where the fit loop (ml/fit.ts) takes its batches from: a `BatchSource`. The streaming pipeline
 * (pipeline/batch-stream.ts) reads cached shards through a shuffle buffer; ml/batches.ts serves rows
 * already in memory.
 */
import { DataError } from '../util/errors.ts';

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
