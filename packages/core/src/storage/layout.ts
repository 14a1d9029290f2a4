/** Where things live inside the artifact store: one place for every key layout. */

/** A job's own area: checkpoints, its saved model, batch-predict's part file. */
export const runPrefix = (jobId: string): string => `runs/${jobId}`;

/** A batch-predict's output when its payload names no `output.uri`. */
export const defaultOutputKey = (jobId: string, format: string): string =>
  `outputs/${jobId}/predictions.${format}`;

/** The bytes of an uploaded dataset, kept once per content hash. */
export const datasetBlobKey = (sha256: string): string => `datasets/sha256/${sha256}`;

/** Where an upload streams to before it is validated (then moved to its blob key, or deleted). */
export const datasetStagingKey = (uploadId: string): string => `datasets/staging/${uploadId}`;

/**
 * The input caches, shared by every job (see packages/core/src/data/pipeline/): a dataset decoded once
 * (`decoded`, id: content + preprocessing) and a frozen base's outputs over it (`embeddings`). Each
 * is a shard set: `<prefix>/shard-<k>` files and `<prefix>/manifest.json`.
 */
export const cachePrefix = {
  decoded: (id: string): string => `cache/decoded/${id}`,
  embeddings: (id: string): string => `cache/embeddings/${id}`,
};
