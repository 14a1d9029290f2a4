/** References to models and data: registry names and versions, and the URI schemes jobs accept. */
import { z } from 'zod';

/** True for a `file://`, `http(s)://` or `s3://` URI (as opposed to a registry reference). */
export function isUri(s: string): boolean {
  return /^(file|https?|s3):\/\//.test(s);
}

/** The tag of `<name>@latest`: the newest version, as `<name>` alone. No label may take it. */
export const LATEST_TAG = 'latest';

/**
 * Why `label` cannot be a label name, or undefined when it can: a letter, then at most 63 letters,
 * digits, `_`, `.` or `-` (so never a version number), and not a tag the reference grammar gives a
 * meaning of its own (`latest`, in any case: `<name>@latest` is the newest version).
 */
export function labelNameIssue(label: string): string | undefined {
  if (!/^[a-zA-Z][\w.-]{0,63}$/.test(label))
    return 'a label starts with a letter and has at most 64 letters, digits, "_", "." or "-"';
  if (label.toLowerCase() === LATEST_TAG)
    return `"${label}" is reserved: "<name>@${LATEST_TAG}" means the newest version, so no label may be named so`;
  return undefined;
}

/** `<name>`, `<name>@<version>`, `<name>@<label>`, or a URI of a tfjs LayersModel model.json. */
export const modelRefSchema = z
  .string()
  .min(1)
  .max(500)
  .refine((s) => isUri(s) || /^[a-zA-Z0-9][\w.-]{0,99}(@[\w.-]{1,64})?$/.test(s), {
    message:
      'expected "<name>", "<name>@<version>", "<name>@<label>" or a file://, http(s):// or s3:// model.json URI',
  })
  .describe(
    'A registry model ("<name>" or "<name>@latest": its newest version; "<name>@<version>", "<name>@<label>") or the URI of a tfjs model.json (its weight files are read from beside it): file:// inside DATA_ROOTS, s3://bucket/key, or https:// (http:// only to FETCH_ALLOW_HOSTS; private, loopback and link-local addresses are refused unless FETCH_ALLOW_HOSTS lists them: 400 at submit)',
  );

/** A registry model name: what a fine-tune or tune job registers its result under. */
export const modelNameSchema = z
  .string()
  .regex(/^[a-zA-Z0-9][\w.-]{0,99}$/, 'letters, digits, "_", "." and "-", starting with a letter or digit');

/** A data or output location: `file://` (inside DATA_ROOTS), `http(s)://` or `s3://`. */
export const uriSchema = z
  .string()
  .min(1)
  .max(2000)
  .refine(isUri, { message: 'expected a file://, http(s):// or s3:// URI' });

/** `dataset://<name>` (its latest version) or `dataset://<name>@<version>`: a dataset uploaded to the API. */
const DATASET_URI = /^dataset:\/\/([a-zA-Z0-9][\w.-]{0,99})(?:@([1-9]\d{0,9}))?$/;

/** The name and version (undefined: the latest) of a `dataset://` URI, or undefined for any other string. */
export function parseDatasetUri(uri: string): { name: string; version?: number } | undefined {
  const m = DATASET_URI.exec(uri);
  if (!m) return undefined;
  return m[2] === undefined ? { name: m[1]! } : { name: m[1]!, version: Number(m[2]) };
}

/** Where a dataset's file is: any URI a reader may get, or an uploaded dataset (`dataset://`). */
export const datasetUriSchema = z
  .string()
  .min(1)
  .max(2000)
  .refine((s) => isUri(s) || DATASET_URI.test(s), {
    message: 'expected a file://, http(s):// or s3:// URI, or dataset://<name>[@<version>]',
  })
  .describe(
    'dataset://<name>[@<version>] (an upload), file:// inside DATA_ROOTS, s3://bucket/key, or https:// (http:// only to FETCH_ALLOW_HOSTS; private, loopback and link-local addresses are refused unless FETCH_ALLOW_HOSTS lists them: 400 at submit). Workers cache fetched files by ETag; an image-folder from s3:// or http(s):// is a .zip or .tar.gz of class folders',
  );

/** A registered model version, as job results name it. */
export const modelVersionRefSchema = z.object({
  name: z.string(),
  version: z.number().int(),
  uri: z.string(),
});
export type ModelVersionRef = z.infer<typeof modelVersionRefSchema>;
