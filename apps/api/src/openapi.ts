/**
 * GET /openapi.json: the public contract as OpenAPI 3.1, with request and result schemas generated
 * from the same zod catalog that validates requests, so the document cannot drift from the code.
 */
import { z } from 'zod';
import { jobCatalog, jobNames } from '@mlq/contract';
import { datasetsOpenApi } from './openapi-datasets.ts';
import { finalizeDocument } from './openapi-finalize.ts';
import { servingPaths, servingSchemas } from './openapi-serving.ts';

const json = (schema: object) => ({ content: { 'application/json': { schema } } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const error = { description: 'error', ...json(ref('Error')) };

function schemaOf(s: z.ZodType, io: 'input' | 'output'): object {
  const { $schema: _drop, ...rest } = z.toJSONSchema(s, { io, unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  return rest;
}

export function openApiDocument(): object {
  const schemas: Record<string, object> = {
    Error: {
      type: 'object',
      properties: {
        error: {
          type: 'object',
          required: ['code', 'message'],
          properties: {
            code: { type: 'string' },
            message: { type: 'string' },
            details: {
              type: 'array',
              items: {
                type: 'object',
                properties: { field: { type: 'string' }, message: { type: 'string' } },
              },
            },
          },
        },
      },
    },
    Job: {
      type: 'object',
      properties: {
        id: { type: 'string' },
        type: { enum: jobNames },
        state: { type: 'string' },
        progress: {},
        params: {},
        result: {},
        error: { type: 'string' },
        attempts: { type: 'integer' },
        attemptsAllowed: { type: 'integer' },
        createdAt: { type: 'string', format: 'date-time' },
        startedAt: { type: 'string', format: 'date-time' },
        finishedAt: { type: 'string', format: 'date-time' },
        links: { type: 'object' },
      },
    },
    PredictRequest: {
      type: 'object',
      description:
        'TF Serving REST: row format ("instances") or columnar ("inputs"); an instance may be {"b64": "<PNG or JPEG>"} for an image model',
      properties: {
        signature_name: { const: 'serving_default' },
        instances: { type: 'array' },
        inputs: {},
      },
    },
    PredictResponse: { type: 'object', properties: { predictions: { type: 'array' }, outputs: {} } },
    ...servingSchemas(),
  };
  const paths: Record<string, object> = { ...servingPaths() };
  for (const name of jobNames) {
    const Name = name.replace(/(^|-)(\w)/g, (_m, _d, c: string) => c.toUpperCase());
    schemas[`${Name}Payload`] = schemaOf(jobCatalog[name].payload, 'input');
    schemas[`${Name}Result`] = schemaOf(jobCatalog[name].result, 'output');
    paths[`/v1/jobs/${name}`] = {
      post: {
        summary: `Submit a ${name} job`,
        parameters: [{ name: 'Idempotency-Key', in: 'header', schema: { type: 'string' } }],
        requestBody: { required: true, ...json(ref(`${Name}Payload`)) },
        responses: {
          202: { description: 'queued', ...json(ref('Job')) },
          200: { description: 'the job of a repeated Idempotency-Key', ...json(ref('Job')) },
          400: error,
          401: error,
          403: error,
          413: error,
          422: { ...error, description: 'Idempotency-Key reused with another body or job type' },
          429: error,
        },
      },
    };
  }
  const id = [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }];
  const predictResponses = {
    200: { description: 'one prediction per instance', ...json(ref('PredictResponse')) },
    400: error,
    404: error,
    413: error,
    422: error,
    503: {
      description: 'the model queue is full (Retry-After), or no predict thread',
      ...json(ref('Error')),
    },
  };
  const name = [{ name: 'name', in: 'path', required: true, schema: { type: 'string' } }];
  Object.assign(paths, {
    '/v1/jobs': {
      get: {
        summary: 'A page of jobs',
        parameters: ['type', 'state', 'limit', 'offset'].map((n) => ({
          name: n,
          in: 'query',
          schema: { type: 'string' },
        })),
        responses: { 200: { description: 'jobs' } },
      },
    },
    '/v1/jobs/{id}': {
      get: {
        summary: 'A job',
        parameters: id,
        responses: { 200: { description: 'the job', ...json(ref('Job')) }, 404: error },
      },
      delete: {
        summary: 'Cancel: remove a waiting job, stop a running one after its current batch',
        parameters: id,
        responses: { 202: { description: 'removed or cancelling' }, 404: error, 409: error },
      },
    },
    '/v1/jobs/{id}/events': {
      get: {
        summary: 'Server-sent events until the job ends',
        parameters: id,
        responses: { 200: { description: 'text/event-stream' } },
      },
    },
    '/v1/jobs/{id}/logs': {
      get: { summary: 'Log lines', parameters: id, responses: { 200: { description: 'logs' } } },
    },
    '/v1/jobs/{id}/retry': {
      post: {
        summary: 'Retry a failed job',
        parameters: id,
        responses: { 202: { description: 'retried' }, 409: error },
      },
    },
    '/v1/models': {
      get: {
        summary: 'Model names with latest version and labels',
        responses: { 200: { description: 'models' } },
      },
    },
    '/v1/models/{name}': {
      get: {
        summary: "Versions with metrics, params, lineage, and TF Serving's model_version_status",
        parameters: name,
        responses: { 200: { description: 'versions', ...json(ref('ModelStatus')) }, 404: error },
      },
    },
    '/v1/models/{name}/versions/{version}': {
      get: {
        summary:
          "One version: metrics, params, lineage, labels, evaluation, and TF Serving's model_version_status",
        parameters: [...name, { name: 'version', in: 'path', required: true, schema: { type: 'integer' } }],
        responses: {
          200: { description: 'the version', ...json(ref('ModelStatus')) },
          400: error,
          404: error,
        },
      },
    },
    '/v1/models/{name}/labels/{label}': {
      get: {
        summary: "The labelled version with TF Serving's model_version_status",
        parameters: [...name, { name: 'label', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { 200: { description: 'the labelled version', ...json(ref('ModelStatus')) }, 404: error },
      },
      put: {
        summary: 'Point a label at a version',
        parameters: [...name, { name: 'label', in: 'path', required: true, schema: { type: 'string' } }],
        requestBody: json({ type: 'object', properties: { version: { type: 'integer' } } }),
        responses: { 200: { description: 'set' }, 404: error },
      },
      delete: {
        summary: 'Remove a label',
        parameters: [...name, { name: 'label', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { 204: { description: 'removed' }, 404: error },
      },
    },
    '/v1/models/{name}:predict': {
      post: {
        summary: 'Predict with the latest version',
        parameters: name,
        requestBody: json(ref('PredictRequest')),
        responses: predictResponses,
      },
    },
    '/v1/models/{name}/versions/{version}:predict': {
      post: {
        summary: 'Predict with a version',
        parameters: [...name, { name: 'version', in: 'path', required: true, schema: { type: 'integer' } }],
        requestBody: json(ref('PredictRequest')),
        responses: predictResponses,
      },
    },
    '/v1/models/{name}/labels/{label}:predict': {
      post: {
        summary: 'Predict with the labelled version',
        parameters: [...name, { name: 'label', in: 'path', required: true, schema: { type: 'string' } }],
        requestBody: json(ref('PredictRequest')),
        responses: predictResponses,
      },
    },
    '/v1/workers': {
      get: {
        summary: 'Live workers: host, pid, queues, backend, current jobs',
        responses: { 200: { description: 'workers' } },
      },
    },
    '/openapi.json': {
      get: {
        summary: 'This document (no auth)',
        security: [],
        responses: { 200: { description: 'OpenAPI 3.1', content: { 'application/json': {} } } },
      },
    },
    '/healthz': {
      get: { summary: 'Liveness (no auth)', security: [], responses: { 200: { description: 'ok' } } },
    },
    '/readyz': {
      get: {
        summary: 'Readiness: Redis reachable',
        responses: { 200: { description: 'ready' }, 503: { description: 'not ready' } },
      },
    },
    '/metrics': { get: { summary: 'Prometheus metrics', responses: { 200: { description: 'text/plain' } } } },
  });
  Object.assign(schemas, datasetsOpenApi.schemas);
  Object.assign(paths, datasetsOpenApi.paths);
  // While Redis is away every route that needs it answers 503 at once (predict too, for a model not
  // already loaded); /healthz and this document never do.
  const unavailable = {
    description:
      'Redis is not reachable (or, for predict, no predict thread can run); retry after Retry-After',
    headers: { 'Retry-After': { description: 'seconds', schema: { type: 'integer' } } },
    ...json(ref('Error')),
  };
  for (const [path, ops] of Object.entries(paths)) {
    if (path === '/healthz' || path === '/openapi.json') continue;
    for (const op of Object.values(ops as Record<string, { responses: Record<number, object> }>))
      op.responses[503] =
        path === '/readyz'
          ? {
              description: 'not ready: Redis is not reachable; {"status": "not ready", "redis": "<why>"}',
              headers: unavailable.headers,
            }
          : unavailable;
  }
  return finalizeDocument({
    openapi: '3.1.0',
    info: { title: 'mlq: transfer learning and model serving', version: '0.1.0' },
    servers: [{ url: '/', description: 'this API' }],
    components: {
      schemas,
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description:
            'An API_KEYS key. Scopes: read (GET routes, predict), submit (+ submit, cancel, retry jobs, upload datasets), admin (+ labels, deletes, Bull Board actions); a key without the scope gets 403.',
        },
      },
    },
    security: [{ bearer: [] }],
    paths,
  });
}
