/**
 * The serving part of the OpenAPI document: TF Serving's status and metadata routes and the Open
 * Inference Protocol (KServe V2) routes, with their schemas (see serving/tf-serving.ts and
 * serving/open-inference.ts for the shapes).
 */
import { INFER_DATATYPES } from './serving/open-inference.ts';

const json = (schema: object) => ({ content: { 'application/json': { schema } } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const path = (n: string, type = 'string') => ({ name: n, in: 'path', required: true, schema: { type } });
const apiError = { description: 'error', ...json(ref('Error')) };
const v2Error = { description: 'error', ...json(ref('InferError')) };
const full = (e: object) => ({
  ...e,
  description: 'the model queue is full; Retry-After says when to retry',
});

export function servingSchemas(): Record<string, object> {
  const tensorMeta = {
    type: 'object',
    properties: {
      name: { type: 'string' },
      datatype: { type: 'string' },
      shape: { type: 'array', items: { type: 'integer' } },
    },
  };
  const tensorData = { type: 'array', description: 'row-major, flat or nested to the shape' };
  return {
    ModelStatus: {
      type: 'object',
      description: "The registry's model or version, with TF Serving's model_version_status",
      properties: {
        model_version_status: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              version: { type: 'string' },
              state: { enum: ['AVAILABLE', 'END'] },
              status: {
                type: 'object',
                properties: { error_code: { type: 'string' }, error_message: { type: 'string' } },
              },
            },
          },
        },
      },
    },
    ModelMetadata: {
      type: 'object',
      description: "TF Serving's GetModelMetadata: model_spec and the serving_default signature_def",
      properties: { model_spec: { type: 'object' }, metadata: { type: 'object' } },
    },
    InferError: { type: 'object', properties: { error: { type: 'string' } } },
    InferModelMetadata: {
      type: 'object',
      properties: {
        name: { type: 'string' },
        versions: { type: 'array', items: { type: 'string' } },
        platform: { type: 'string' },
        inputs: { type: 'array', items: tensorMeta },
        outputs: { type: 'array', items: tensorMeta },
      },
    },
    InferRequest: {
      type: 'object',
      required: ['inputs'],
      properties: {
        id: { type: 'string' },
        parameters: { type: 'object' },
        inputs: {
          type: 'array',
          items: {
            type: 'object',
            required: ['name', 'shape', 'datatype', 'data'],
            properties: { ...tensorMeta.properties, datatype: { enum: INFER_DATATYPES }, data: tensorData },
          },
        },
        outputs: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' } } } },
      },
    },
    InferResponse: {
      type: 'object',
      properties: {
        model_name: { type: 'string' },
        model_version: { type: 'string' },
        id: { type: 'string' },
        outputs: {
          type: 'array',
          items: { type: 'object', properties: { ...tensorMeta.properties, data: tensorData } },
        },
      },
    },
  };
}

export function servingPaths(): Record<string, object> {
  const name = path('name');
  const version = path('version', 'integer');
  const label = path('label');
  const metadata = (summary: string, parameters: object[]) => ({
    get: {
      summary,
      parameters,
      responses: {
        200: { description: 'the signature', ...json(ref('ModelMetadata')) },
        404: apiError,
        422: apiError,
      },
    },
  });
  // The Open Inference Protocol's operations are named after its gRPC methods (ModelInfer, ...): the
  // ids derived from their paths would clash with the /v1 ones.
  const infer = (operationId: string, parameters: object[]) => ({
    post: {
      operationId,
      summary: 'Open Inference Protocol inference (batched with :predict)',
      parameters,
      requestBody: { required: true, ...json(ref('InferRequest')) },
      responses: {
        200: { description: 'the outputs', ...json(ref('InferResponse')) },
        400: v2Error,
        404: v2Error,
        413: v2Error,
        422: v2Error,
        503: full(v2Error),
      },
    },
  });
  const model = (operationId: string, parameters: object[]) => ({
    get: {
      operationId,
      summary: 'Open Inference Protocol model metadata (loads the model)',
      parameters,
      responses: {
        200: { description: 'the model metadata', ...json(ref('InferModelMetadata')) },
        400: v2Error,
        404: v2Error,
      },
    },
  });
  const ready = (operationId: string, parameters: object[]) => ({
    get: {
      operationId,
      summary: 'Model ready: loads it on a predict thread, then {"name", "ready": true}',
      parameters,
      responses: { 200: { description: 'ready' }, 404: v2Error, 422: v2Error },
    },
  });
  return {
    '/v1/models/{name}/metadata': metadata('TF Serving metadata of the latest version', [name]),
    '/v1/models/{name}/versions/{version}/metadata': metadata('TF Serving metadata of a version', [
      name,
      version,
    ]),
    '/v1/models/{name}/labels/{label}/metadata': metadata('TF Serving metadata of the labelled version', [
      name,
      label,
    ]),
    '/v2': {
      get: {
        operationId: 'serverMetadata',
        summary: 'Open Inference Protocol server metadata: {"name", "version", "extensions"}',
        responses: { 200: { description: 'server metadata' } },
      },
    },
    '/v2/health/live': {
      get: {
        operationId: 'serverLive',
        summary: 'Server live: {"live": true} (no auth)',
        security: [],
        responses: { 200: { description: 'live' } },
      },
    },
    '/v2/health/ready': {
      get: {
        operationId: 'serverReady',
        summary: 'Server ready (the registry answers within 1 s): {"ready": true} (no auth)',
        security: [],
        responses: { 200: { description: 'ready' }, 503: v2Error },
      },
    },
    '/v2/models/{name}': model('modelMetadata', [name]),
    '/v2/models/{name}/versions/{version}': model('modelVersionMetadata', [name, version]),
    '/v2/models/{name}/ready': ready('modelReady', [name]),
    '/v2/models/{name}/versions/{version}/ready': ready('modelVersionReady', [name, version]),
    '/v2/models/{name}/infer': infer('modelInfer', [name]),
    '/v2/models/{name}/versions/{version}/infer': infer('modelVersionInfer', [name, version]),
  };
}
