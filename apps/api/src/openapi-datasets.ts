/**
 * The OpenAPI part of datasets over HTTP and job artifacts (routes/datasets.routes.ts,
 * routes/artifacts.routes.ts), merged into GET /openapi.json by openapi.ts.
 */
import { uploadMediaTypes } from './routes/datasets.routes.ts';

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object) => ({ content: { 'application/json': { schema } } });
const error = { description: 'error', ...json(ref('Error')) };
const path = (n: string, type = 'string') => ({ name: n, in: 'path', required: true, schema: { type } });

const schemas = {
  DatasetVersion: {
    type: 'object',
    required: ['name', 'version', 'uri', 'sha256', 'bytes', 'format', 'rows', 'createdAt'],
    properties: {
      name: { type: 'string' },
      version: { type: 'integer' },
      uri: { type: 'string', description: 'dataset://<name>@<version>: what a job dataset `uri` takes' },
      sha256: { type: 'string' },
      bytes: { type: 'integer' },
      format: { enum: ['csv', 'jsonl', 'image-folder'] },
      archive: { enum: ['zip', 'tar.gz'] },
      createdAt: { type: 'string', format: 'date-time' },
      rows: { type: 'integer', description: 'rows (csv, jsonl) or images (image-folder)' },
      columns: { type: 'array', items: { type: 'string' } },
      label: { type: 'string' },
      featureShape: { type: 'array', items: { type: 'integer' } },
      classes: { type: 'object', additionalProperties: { type: 'integer' } },
      root: { type: 'string' },
      files: { type: 'integer' },
      expandedBytes: { type: 'integer' },
    },
  },
  Artifact: {
    type: 'object',
    required: ['name', 'kind', 'contentType', 'uri'],
    properties: {
      name: { type: 'string' },
      kind: { enum: ['model', 'predictions'] },
      contentType: { type: 'string' },
      uri: { type: 'string' },
      bytes: { type: 'integer' },
      href: { type: 'string' },
      model: { type: 'object', properties: { name: { type: 'string' }, version: { type: 'integer' } } },
    },
  },
};

const body = { type: 'string', format: 'binary' };
const uploadContent = Object.fromEntries(
  Object.values(uploadMediaTypes)
    .flat()
    .map((t) => [t, { schema: body }]),
);

const paths = {
  '/v1/datasets': {
    get: { summary: 'Datasets with their versions', responses: { 200: { description: 'datasets' } } },
  },
  '/v1/datasets/{name}': {
    post: {
      summary: 'Upload a file as the next version (streamed; validated; stored once per SHA-256)',
      parameters: [
        path('name'),
        { name: 'format', in: 'query', schema: { enum: Object.keys(uploadMediaTypes) } },
        { name: 'label', in: 'query', schema: { type: 'string' }, description: 'CSV: the class column' },
      ],
      requestBody: { required: true, content: uploadContent },
      responses: {
        201: { description: 'registered', ...json(ref('DatasetVersion')) },
        400: error,
        413: error,
        415: error,
      },
    },
    get: {
      summary: "A dataset's versions, oldest first",
      parameters: [path('name')],
      responses: { 200: { description: 'versions' }, 404: error },
    },
  },
  '/v1/datasets/{name}/versions/{version}': {
    get: {
      summary: 'One version',
      parameters: [path('name'), path('version', 'integer')],
      responses: { 200: { description: 'the version', ...json(ref('DatasetVersion')) }, 404: error },
    },
    delete: {
      summary: 'Delete a version (and its bytes with the last version using them)',
      parameters: [path('name'), path('version', 'integer')],
      responses: { 204: { description: 'deleted' }, 404: error, 409: error },
    },
  },
  '/v1/jobs/{id}/artifacts': {
    get: {
      summary: "A completed job's outputs",
      parameters: [path('id')],
      responses: {
        200: {
          description: 'the outputs (none unless the job completed)',
          ...json({ type: 'object', properties: { artifacts: { type: 'array', items: ref('Artifact') } } }),
        },
        404: error,
      },
    },
  },
  '/v1/jobs/{id}/artifacts/{name}': {
    get: {
      summary: 'Download an output: the model as a .zip of model.json and shards, or predictions',
      parameters: [path('id'), path('name')],
      responses: { 200: { description: 'the file', content: { '*/*': { schema: body } } }, 404: error },
    },
  },
};

export const datasetsOpenApi = { schemas, paths };
