/**
 * A dataset is read in chunks, so that memory stays flat whatever its size: batch prediction and
 * evaluation go through the chunks, training through the decoded-example cache built from them
 * (data/pipeline/). `loadAll` collects every chunk, for small data.
 */

export interface DatasetInfo {
  /** Shape of one example, without the batch dimension: `[784]`, `[28, 28, 1]`, `[20]`. */
  featureShape: number[];
  /** Number of classes the labels index into (0 when the dataset has no labels). */
  numClasses: number;
  /** Class names when labels are names (csv, image-folder); predictions come back as these. */
  classNames?: string[];
  /** Number of rows. */
  rows: number;
  /** What a person should know about how the data was read (e.g. files skipped), for the job log. */
  notes?: string[];
  /** Rows per class index, when the dataset has labels (a class no row uses counts 0). */
  classCounts?: number[];
  /** Content hash: the same data and preprocessing give the same hash (lineage, embedding cache). */
  hash: string;
}

export interface Chunk {
  /** Index of the first row of this chunk in the dataset. */
  start: number;
  count: number;
  /** `count * prod(featureShape)` features, row-major. */
  x: Float32Array;
  /** Class indices, when the dataset has labels. */
  y?: Int32Array;
}

export interface DatasetSource {
  info(): Promise<DatasetInfo>;
  /** Rows from `start` (default 0) in chunks of at most `chunkSize`. */
  chunks(opts: { chunkSize: number; start?: number }): AsyncIterable<Chunk>;
  /**
   * A content hash that decodes nothing (the raw bytes read, hashed), for readers whose `info()`
   * parses every row: the decoded-example cache is keyed by it (data/pipeline/decoded-cache.ts).
   * Without it, `info().hash` is used, which must then be as cheap.
   */
  fingerprint?(): Promise<string>;
}

export interface InMemoryDataset {
  info: DatasetInfo;
  x: Float32Array;
  y: Int32Array;
}

/** Reads every row of a dataset into memory (tests, small data). */
export async function loadAll(source: DatasetSource): Promise<InMemoryDataset> {
  const info = await source.info();
  const width = info.featureShape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(info.rows * width);
  const y = new Int32Array(info.rows);
  let n = 0;
  for await (const c of source.chunks({ chunkSize: 8192 })) {
    x.set(c.x, c.start * width);
    if (c.y) y.set(c.y, c.start);
    n += c.count;
  }
  if (n !== info.rows) throw new Error(`dataset gave ${n} rows, expected ${info.rows}`);
  return { info, x, y };
}

/** Size of one example in floats. */
export function featureWidth(info: Pick<DatasetInfo, 'featureShape'>): number {
  return info.featureShape.reduce((a, b) => a * b, 1);
}

/**
 * Makes a dataset or model URI readable on this machine: returns the absolute path of a local file
 * (csv, jsonl, a model file) or folder (image-folder) holding it, e.g. a file inside DATA_ROOTS, a
 * worker-local copy of a `dataset://` upload (datasets/locate.ts) or of an `s3://` or `http(s)://` file
 * (remote/resolve-uri.ts). `format` says what the caller reads (an image folder comes from an archive).
 * Throws the reason when it cannot.
 */
export type UriLocator = (uri: string, format?: 'csv' | 'jsonl' | 'image-folder') => Promise<string>;

/** How readers open a dataset spec (see open.ts). */
export interface OpenDatasetOptions {
  /** Directories that file:// URIs may point into. */
  dataRoots: readonly string[];
  /**
   * Where a URI's bytes are on this machine (remote/resolve-uri.ts): every URI goes through it when
   * given. Without it only file:// URIs inside `dataRoots` can be read.
   */
  locate?: UriLocator | undefined;
  /**
   * Class names of the model the data is fed to (evaluate, batch-predict): labels given as names are
   * mapped with these, so index i means the same class as when the model was trained.
   */
  classNames?: readonly string[] | undefined;
}
