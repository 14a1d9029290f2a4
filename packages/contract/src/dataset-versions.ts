/**
 * Uploaded datasets and job artifacts as the HTTP API shows them: the API builds these, the SDK receives
 * them. Type-only and framework-free, so the browser SDK can import it.
 */

/** How an upload's bytes are laid out: the body's `Content-Type` or `?format=` names one. */
export type UploadFormat = 'csv' | 'jsonl' | 'zip' | 'tar.gz';

/** One class of a labelled dataset and how many rows (or images) it has. */
export type ClassCounts = Record<string, number>;

/**
 * One uploaded version of a dataset (`POST /v1/datasets/{name}`'s 201 answer, an entry of
 * `GET /v1/datasets/{name}`). The fields after `createdAt` are what validation learned.
 */
export interface DatasetVersion {
  name: string;
  /** 1, 2, 3...; numbers are never reused, even after a delete. */
  version: number;
  /** What a job's dataset `uri` takes: `dataset://<name>@<version>`. */
  uri: string;
  /** SHA-256 of the bytes as uploaded, hex. The store keeps them once under `datasets/sha256/<sha256>`. */
  sha256: string;
  /** Size as uploaded, in bytes. */
  bytes: number;
  /** The dataset `format` a job gives with this URI. */
  format: 'csv' | 'jsonl' | 'image-folder';
  /** For `image-folder`: how the folder was packed. */
  archive?: 'zip' | 'tar.gz';
  createdAt: string;
  /** Rows (csv, jsonl) or images (image-folder). */
  rows: number;
  /** CSV: the header's column names. */
  columns?: string[];
  /** CSV: the column whose values were counted as classes (`label`, or `?label=`). */
  label?: string;
  /** JSONL: the shape of `x`. */
  featureShape?: number[];
  /**
   * Rows (images) per class: CSV's label column, JSONL's `y`, the class folders of an image archive.
   * Absent when the data has no labels, or more than 10,000 distinct ones.
   */
  classes?: ClassCounts;
  /** Archives: the folder inside the archive that holds the class folders (`""` for the top). */
  root?: string;
  /** Archives: files in the archive, and their bytes once expanded. */
  files?: number;
  expandedBytes?: number;
}

/** A dataset name with its versions' summary (`GET /v1/datasets`). */
export interface DatasetSummary {
  name: string;
  latestVersion: number;
  versions: number[];
  format: DatasetVersion['format'];
  updatedAt: string;
}

/** One output of a job (`GET /v1/jobs/{id}/artifacts`). */
export interface ArtifactView {
  /** The file name, which the download route takes: `model.zip`, `predictions.jsonl`... */
  name: string;
  kind: 'model' | 'predictions';
  contentType: string;
  /** Where the job wrote it (an artifact-store or file:// URI). */
  uri: string;
  /** Size in bytes when known (the model's zip is built while it is sent). */
  bytes?: number;
  /** `GET` this path to download it; absent when the API cannot read the file (a file:// outside its roots). */
  href?: string;
  /** For `model`: the registered version it is. */
  model?: { name: string; version: number };
}
