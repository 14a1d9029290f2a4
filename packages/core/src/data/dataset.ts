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
  /** CSV: the header's column names (so a missing label column can be explained). */
  columns?: string[];
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

/** Where a located URI's bytes are on this machine, and how messages name them to the user. */
export interface Located {
  /** Absolute path of the local file (csv, jsonl, a model file) or folder (image-folder). */
  path: string;
  /**
   * What the user named: the path itself for `file://`, `dataset://name@version` for an upload, the URI
   * (userinfo redacted) for `s3://` and `http(s)://`. Errors about the data name this, never the cache path.
   */
  name: string;
  /** For a folder inside an archive: the folder's path inside it ("" or e.g. `photos`), for entry names. */
  inside?: string | undefined;
}

/**
 * Makes a dataset or model URI readable on this machine: returns where its bytes are (a file inside
 * DATA_ROOTS, a worker-local copy of a `dataset://` upload (datasets/locate.ts) or of an `s3://` or
 * `http(s)://` file (remote/resolve-uri.ts)) and the name messages show. `format` says what the caller
 * reads (an image folder comes from an archive). Throws the reason when it cannot.
 */
export type UriLocator = (uri: string, format?: 'csv' | 'jsonl' | 'image-folder') => Promise<Located>;

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
  /**
   * How messages name the data (set by open.ts from `locate`); without it, the local path. With a URI
   * name a row's place reads `<name>, line <n>`, with a path `<path>:<n>`.
   */
  shownAs?: Pick<Located, 'name' | 'inside'> | undefined;
  /**
   * Most pixels (width × height) an image of an image-folder dataset may have (IMAGE_MAX_PIXELS;
   * default DEFAULT_IMAGE_MAX_PIXELS of packages/contract/src/env.ts): read from each file's header
   * when the dataset is first listed, so a larger one fails the job (a DataError naming the file)
   * before any image is decoded.
   */
  imageMaxPixels?: number | undefined;
}

/** The place of line `line` of the data named `name`: `path:12`, or `dataset://t@1, line 12` for a URI. */
export function lineAt(name: string, line: number): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(name) ? `${name}, line ${line}` : `${name}:${line}`;
}
