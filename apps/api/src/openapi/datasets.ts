/**
 * Datasets over HTTP (routes/datasets.routes.ts): an upload's body is the file itself, in one of the
 * media types of `uploadMediaTypes` (or any, with `?format=`).
 */
import { z } from 'zod';
import {
  datasetListSchema,
  datasetSummarySchema,
  datasetVersionListSchema,
  datasetUploadSchema,
  datasetVersionSchema,
  modelNameSchema,
  uploadFormats,
} from '@mlq/contract';
import { uploadMediaTypes } from '../routes/datasets.routes.ts';
import { json, type ApiDoc } from './builder.ts';

const name = modelNameSchema.meta({ description: 'the dataset name' });
const version = z.number().int().min(1).meta({ description: 'the version number (1, 2, ...)' });

/** What each upload format's bytes are. */
const uploadBodies: Record<(typeof uploadFormats)[number], string> = {
  csv: 'a CSV file with a header row: numeric feature columns and a label column',
  jsonl: 'JSON lines `{"x": [...], "y": <label>}`',
  zip: 'a .zip of one folder per class of PNG/JPEG images',
  'tar.gz': 'a .tar.gz of one folder per class of PNG/JPEG images',
};

export function registerDatasets(doc: ApiDoc): void {
  doc.named('DatasetSummary', datasetSummarySchema);
  doc.named('DatasetVersion', datasetVersionSchema);
  const content = Object.fromEntries(
    uploadFormats.flatMap((f) =>
      uploadMediaTypes[f].map((type) => [
        type,
        { schema: { type: 'string' as const, format: 'binary', description: uploadBodies[f] } },
      ]),
    ),
  );

  doc.route({
    method: 'get',
    path: '/v1/datasets',
    tag: 'datasets',
    summary: 'Datasets with their versions',
    ok: { 200: { description: 'the datasets', ...json(datasetListSchema) } },
  });
  doc.route({
    method: 'post',
    path: '/v1/datasets/{name}',
    tag: 'datasets',
    summary: 'Upload a file as the next version of a dataset',
    description:
      'The body is the file, streamed into the artifact store while it is validated (stored once per SHA-256), then registered as the next version. Its format comes from `?format=` or the Content-Type. Jobs read it as `dataset://<name>@<version>`.',
    params: z.object({ name }),
    query: z.object({
      format: z
        .enum(uploadFormats)
        .optional()
        .meta({ description: 'the format, whatever the Content-Type says' }),
      label: z
        .string()
        .optional()
        .meta({ description: 'CSV: the column whose values are counted as classes' }),
    }),
    body: { required: true, content },
    ok: {
      201: {
        description: 'registered',
        headers: {
          Location: {
            description: 'the version: `/v1/datasets/{name}/versions/{version}`',
            schema: { type: 'string' },
          },
        },
        ...json(datasetUploadSchema),
      },
    },
    errors: {
      400: {
        meaning:
          'the file is not a valid dataset of its format (`invalid_dataset`: the message names the line or archive entry, e.g. an image whose header gives it more than IMAGE_MAX_PIXELS pixels), or a bad name or format (`invalid_request`)',
        code: 'invalid_dataset',
      },
      413: 'the upload is over DATASET_MAX_BYTES',
      415: 'the Content-Type is not a dataset format, and no `?format=`',
    },
  });
  doc.route({
    method: 'get',
    path: '/v1/datasets/{name}',
    tag: 'datasets',
    summary: "A dataset's versions, oldest first",
    params: z.object({ name }),
    ok: { 200: { description: 'the versions', ...json(datasetVersionListSchema) } },
    errors: { 400: 'a bad name', 404: 'no such dataset' },
  });
  doc.route({
    method: 'get',
    path: '/v1/datasets/{name}/versions/{version}',
    tag: 'datasets',
    summary: 'One version of a dataset',
    params: z.object({ name, version }),
    ok: { 200: { description: 'the version', ...json(datasetVersionSchema) } },
    errors: { 400: 'a bad name or version', 404: 'no such dataset or version' },
  });
  doc.route({
    method: 'delete',
    path: '/v1/datasets/{name}/versions/{version}',
    tag: 'datasets',
    summary: 'Delete a version (and its bytes, with the last version using them)',
    params: z.object({ name, version }),
    ok: { 204: { description: 'deleted' } },
    errors: {
      400: 'a bad name or version',
      404: 'no such dataset or version',
      409: 'a waiting or running job uses this version',
    },
  });
}
