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
  version: z.number().int().describe('1, 2, 3...; numbers are never reused, even after a delete.'),
  uri: z.string().describe("What a job's dataset `uri` takes: `dataset://<name>@<version>`."),
  sha256: z
    .string()
    .describe(
      'SHA-256 of the bytes as uploaded, hex. The store keeps them once under `datasets/sha256/<sha256>`.',
    ),
  bytes: z.number().int().describe('Size as uploaded, in bytes.'),
  format: datasetVersionFormat.describe('The dataset `format` a job gives with this URI.'),
  archive: z.enum(['zip', 'tar.gz']).optional().describe('For `image-folder`: how the folder was packed.'),
  createdAt: z.iso.datetime(),
  rows: z.number().int().describe('Rows (csv, jsonl) or images (image-folder).'),
  columns: z.array(z.string()).optional().describe("CSV: the header's column names."),
  label: z
    .string()
    .optional()
    .describe('CSV: the column whose values were counted as classes (`label`, or `?label=`).'),
  featureShape: z.array(z.number().int()).optional().describe('JSONL: the shape of `x`.'),
  classes: classCountsSchema
    .optional()
    .describe(
      "Rows (images) per class: CSV's label column, JSONL's `y`, the class folders of an image archive. Absent when the data has no labels, or more than 10,000 distinct ones.",
    ),
  root: z
    .string()
    .optional()
    .describe('Archives: the folder inside the archive that holds the class folders (`""` for the top).'),
  files: z
    .number()
    .int()
    .optional()
    .describe('Archives: files in the archive, and their bytes once expanded.'),
  expandedBytes: z.number().int().optional(),
});
export type DatasetVersion = z.infer<typeof datasetVersionSchema>;

/** `POST /v1/datasets/{name}`'s 201 answer: the version, and what a person should know before using it. */
export const datasetUploadSchema = datasetVersionSchema.extend({
  warnings: z
    .array(z.string())
    .describe(
      'What may make jobs on this version fail although the upload is valid: a CSV without a `label` column (`no "label" column: jobs must name one with dataset.label; columns are a, b, c, klass`), JSONL whose lines have no `"y"` (`no "y" on the lines: training and evaluation need a label ("y": a class index or name) on every line; the first line\'s keys are x, label`), labels or class folders of one class only (`only one class ("x", 3 rows): a classifier needs at least two`; a fine-tune or tune on such a version is a 400). Empty when there is nothing to say.',
    ),
});
export type DatasetUpload = z.infer<typeof datasetUploadSchema>;

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
  name: z
    .string()
    .describe('The file name, which the download route takes: `model.zip`, `predictions.jsonl`...'),
  kind: z.enum(['model', 'predictions']),
  contentType: z.string(),
  uri: z.string().describe('Where the job wrote it (an artifact-store or file:// URI).'),
  bytes: z
    .number()
    .int()
    .optional()
    .describe("Size in bytes when known (the model's zip is built while it is sent)."),
  href: z
    .string()
    .optional()
    .describe(
      '`GET` this path to download it; absent when the API cannot read the file (a file:// outside its roots).',
    ),
  model: z
    .object({ name: z.string(), version: z.number().int() })
    .optional()
    .describe('For `model`: the registered version it is.'),
});
export type ArtifactView = z.infer<typeof artifactViewSchema>;
