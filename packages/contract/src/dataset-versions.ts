/**
 * Uploaded datasets and job artifacts as the HTTP API shows them: the API builds these, the SDK receives
 * them, and the OpenAPI document describes them with these schemas. Framework-free (zod only), so the
 * browser SDK can import it.
 */
import { z } from 'zod';

/** How an upload's bytes are laid out: the body's `Content-Type` or `?format=` names one. */
export const uploadFormats = ['csv', 'jsonl', 'zip', 'tar.gz'] as const;
export type UploadFormat = (typeof uploadFormats)[number];

/** One class of a labelled dataset and how many rows (or images) it has. */
export const classCountsSchema = z.record(z.string(), z.number().int());
export type ClassCounts = z.infer<typeof classCountsSchema>;

/** The dataset `format` a job gives with an uploaded version's URI. */
const datasetVersionFormat = z.enum(['csv', 'jsonl', 'image-folder']);

/**
 * One uploaded version of a dataset (`POST /v1/datasets/{name}`'s 201 answer, an entry of
 * `GET /v1/datasets/{name}`). The fields after `createdAt` are what validation learned.
 */
export const datasetVersionSchema = z.object({
  name: z.string(),
  /** 1, 2, 3...; numbers are never reused, even after a delete. */
  version: z.number().int(),
  /** What a job's dataset `uri` takes: `dataset://<name>@<version>`. */
  uri: z.string(),
  /** SHA-256 of the bytes as uploaded, hex. The store keeps them once under `datasets/sha256/<sha256>`. */
  sha256: z.string(),
  /** Size as uploaded, in bytes. */
  bytes: z.number().int(),
  /** The dataset `format` a job gives with this URI. */
  format: datasetVersionFormat,
  /** For `image-folder`: how the folder was packed. */
  archive: z.enum(['zip', 'tar.gz']).optional(),
  createdAt: z.iso.datetime(),
  /** Rows (csv, jsonl) or images (image-folder). */
  rows: z.number().int(),
  /** CSV: the header's column names. */
  columns: z.array(z.string()).optional(),
  /** CSV: the column whose values were counted as classes (`label`, or `?label=`). */
  label: z.string().optional(),
  /** JSONL: the shape of `x`. */
  featureShape: z.array(z.number().int()).optional(),
  /**
   * Rows (images) per class: CSV's label column, JSONL's `y`, the class folders of an image archive.
   * Absent when the data has no labels, or more than 10,000 distinct ones.
   */
  classes: classCountsSchema.optional(),
  /** Archives: the folder inside the archive that holds the class folders (`""` for the top). */
  root: z.string().optional(),
  /** Archives: files in the archive, and their bytes once expanded. */
  files: z.number().int().optional(),
  expandedBytes: z.number().int().optional(),
});
export type DatasetVersion = z.infer<typeof datasetVersionSchema>;

/** A dataset name with its versions' summary (`GET /v1/datasets`). */
export const datasetSummarySchema = z.object({
  name: z.string(),
  latestVersion: z.number().int(),
  versions: z.array(z.number().int()),
  format: datasetVersionFormat,
  updatedAt: z.iso.datetime(),
});
export type DatasetSummary = z.infer<typeof datasetSummarySchema>;

/** One output of a job (`GET /v1/jobs/{id}/artifacts`). */
export const artifactViewSchema = z.object({
  /** The file name, which the download route takes: `model.zip`, `predictions.jsonl`... */
  name: z.string(),
  kind: z.enum(['model', 'predictions']),
  contentType: z.string(),
  /** Where the job wrote it (an artifact-store or file:// URI). */
  uri: z.string(),
  /** Size in bytes when known (the model's zip is built while it is sent). */
  bytes: z.number().int().optional(),
  /** `GET` this path to download it; absent when the API cannot read the file (a file:// outside its roots). */
  href: z.string().optional(),
  /** For `model`: the registered version it is. */
  model: z.object({ name: z.string(), version: z.number().int() }).optional(),
});
export type ArtifactView = z.infer<typeof artifactViewSchema>;
