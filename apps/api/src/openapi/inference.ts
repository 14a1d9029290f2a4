/**
 * The Open Inference Protocol (KServe V2) routes under `/v2` (serving/open-inference.routes.ts). Its
 * operations keep the protocol's own names (ServerLive, ModelInfer...), as its clients know them; its
 * errors are the protocol's `{"error": "<message>"}`.
 */
import { z } from 'zod';
import {
  inferErrorSchema,
  inferLiveSchema,
  inferModelMetadataSchema,
  inferModelReadySchema,
  inferReadySchema,
  inferRequestSchema,
  inferResponseSchema,
  inferServerMetadataSchema,
} from '@mlq/contract';
import { json, type ApiDoc } from './builder.ts';

const name = z.string().meta({ description: 'the model name' });
const version = z.number().int().min(1).meta({ description: 'the version number; without it, the latest' });

export function registerInference(doc: ApiDoc): void {
  doc.named('InferModelMetadata', inferModelMetadataSchema);
  doc.named('InferRequest', inferRequestSchema);
  doc.named('InferResponse', inferResponseSchema);

  doc.route({
    method: 'get',
    path: '/v2/health/live',
    operationId: 'serverLive',
    tag: 'inference',
    summary: 'Server live (no auth)',
    ok: { 200: { description: 'live', ...json(inferLiveSchema) } },
    mayBeUnavailable: false,
  });
  doc.route({
    method: 'get',
    path: '/v2/health/ready',
    operationId: 'serverReady',
    tag: 'inference',
    summary: 'Server ready: the registry (Redis) answers within 1 s (no auth)',
    ok: {
      200: { description: 'ready', ...json(inferReadySchema) },
      503: { description: 'not ready, and why', ...json(inferErrorSchema) },
    },
  });
  doc.route({
    method: 'get',
    path: '/v2',
    operationId: 'serverMetadata',
    tag: 'inference',
    summary: 'Server metadata',
    ok: { 200: { description: 'the server', ...json(inferServerMetadataSchema) } },
    mayBeUnavailable: false,
  });

  const paths = [
    { path: '/v2/models/{name}', params: z.object({ name }), id: '' },
    { path: '/v2/models/{name}/versions/{version}', params: z.object({ name, version }), id: 'Version' },
  ];
  const badVersion = (id: string): Record<number, string> =>
    id ? { 400: 'the version is not a positive integer' } : {};
  for (const p of paths) {
    doc.route({
      method: 'get',
      path: p.path,
      operationId: `model${p.id}Metadata`,
      tag: 'inference',
      summary: 'Model metadata: versions, platform, input and output tensors (loads the model)',
      params: p.params,
      ok: { 200: { description: 'the model', ...json(inferModelMetadataSchema) } },
      errors: { ...badVersion(p.id), 404: 'no such model or version', 422: 'the model cannot be served' },
      errorBody: 'v2',
    });
    doc.route({
      method: 'get',
      path: `${p.path}/ready`,
      operationId: `model${p.id}Ready`,
      tag: 'inference',
      summary: 'Model ready: loads it on a predict thread, then answers',
      params: p.params,
      ok: { 200: { description: 'loaded', ...json(inferModelReadySchema) } },
      errors: { ...badVersion(p.id), 404: 'no such model or version', 422: 'the model cannot be served' },
      errorBody: 'v2',
    });
    doc.route({
      method: 'post',
      path: `${p.path}/infer`,
      operationId: `model${p.id}Infer`,
      tag: 'inference',
      summary: 'Inference (batched with concurrent requests and :predict)',
      params: p.params,
      body: { required: true, ...json(inferRequestSchema) },
      ok: { 200: { description: "the model's output", ...json(inferResponseSchema) } },
      errors: {
        400: 'a bad body, input or output name, datatype, shape or data; the message names the field and what the model takes',
        404: 'no such model or version',
        413: 'over BODY_LIMIT, or more than SERVING_MAX_INSTANCES instances',
        422: 'the model cannot be served, or its output for an instance is not finite',
        500: '',
        501: '',
        503: "the model's queue is full (`Retry-After`), no predict thread can run, or Redis is away for a model not loaded",
      },
      errorBody: 'v2',
    });
  }
}
