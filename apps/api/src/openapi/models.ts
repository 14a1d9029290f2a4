/**
 * The registry's routes (routes/models.routes.ts) and TensorFlow Serving's REST routes on the same URLs
 * (serving/predict.routes.ts): model status beside the registry's JSON, signature metadata, predict.
 */
import { z } from 'zod';
import {
  labelBodySchema,
  labelResultSchema,
  modelDetailSchema,
  modelListSchema,
  modelSummarySchema,
  modelVersionSchema,
  modelVersionStatusSchema,
  modelVersionStatusViewSchema,
  predictRequestSchema,
  predictResponseSchema,
  runHistorySchema,
  signatureMetadataSchema,
} from '@mlq/contract';
import { json, type ApiDoc, type RouteDoc } from './builder.ts';

const name = z.string().meta({ description: 'the model name' });
const version = z.number().int().min(1).meta({ description: 'the version number (1, 2, ...)' });
const label = z.string().meta({ description: 'a label (`production`, `staging`...)' });

/** The three ways to name a model version: the latest, a version, a label. */
const targets = [
  { suffix: '', params: z.object({ name }), what: 'the latest version' },
  { suffix: '/versions/{version}', params: z.object({ name, version }), what: 'a version' },
  { suffix: '/labels/{label}', params: z.object({ name, label }), what: 'the labelled version' },
] as const;

export function registerModels(doc: ApiDoc): void {
  doc.named('ModelSummary', modelSummarySchema);
  doc.named('ModelVersion', modelVersionSchema);
  doc.named('ModelVersionStatus', modelVersionStatusSchema);
  doc.named('ModelVersionWithStatus', modelVersionStatusViewSchema);
  doc.named('PredictRequest', predictRequestSchema);
  doc.named('PredictResponse', predictResponseSchema);
  doc.named('SignatureMetadata', signatureMetadataSchema);
  const badVersion: Record<number, string> = { 400: 'the version is not a positive integer' };

  doc.route({
    method: 'get',
    path: '/v1/models',
    tag: 'models',
    summary: 'Model names with their latest version and labels',
    ok: { 200: { description: 'the models', ...json(modelListSchema) } },
  });
  doc.route({
    method: 'get',
    path: '/v1/models/{name}',
    tag: 'models',
    summary: "A model's versions (metrics, params, lineage), labels, and TF Serving's model_version_status",
    params: targets[0].params,
    ok: { 200: { description: 'the model', ...json(modelDetailSchema) } },
    errors: { 404: 'no such model' },
  });
  doc.route({
    method: 'get',
    path: '/v1/models/{name}/versions/{version}',
    tag: 'models',
    summary:
      "One version: metrics, params, lineage, labels, evaluation, and TF Serving's model_version_status",
    params: targets[1].params,
    ok: { 200: { description: 'the version', ...json(modelVersionStatusViewSchema) } },
    errors: { ...badVersion, 404: 'no such model or version' },
  });
  doc.route({
    method: 'get',
    path: '/v1/models/{name}/versions/{version}/history',
    tag: 'models',
    summary: "The version's training curves: per epoch and within epochs",
    params: targets[1].params,
    ok: { 200: { description: 'the curves (empty when none were kept)', ...json(runHistorySchema) } },
    errors: { ...badVersion, 404: 'no such model or version' },
  });
  doc.route({
    method: 'get',
    path: '/v1/models/{name}/labels/{label}',
    tag: 'models',
    summary: "The labelled version, with TF Serving's model_version_status",
    params: targets[2].params,
    ok: { 200: { description: 'the version', ...json(modelVersionStatusViewSchema) } },
    errors: { 404: 'no such model or label' },
  });
  doc.route({
    method: 'put',
    path: '/v1/models/{name}/labels/{label}',
    tag: 'models',
    summary: 'Point a label at a version (moving it if it points elsewhere)',
    params: targets[2].params,
    body: { required: true, ...json(labelBodySchema) },
    ok: { 200: { description: 'the label now points at the version', ...json(labelResultSchema) } },
    errors: {
      400: 'a bad label (a letter, then at most 63 letters, digits, "_", "." or "-"; not `latest`, which `<name>@latest` gives the newest version) or body',
      404: 'no such model or version',
    },
  });
  doc.route({
    method: 'delete',
    path: '/v1/models/{name}/labels/{label}',
    tag: 'models',
    summary: 'Remove a label',
    params: targets[2].params,
    ok: { 204: { description: 'removed' } },
    errors: { 404: 'no such model or label' },
  });

  const modelHeaders = {
    'X-Model-Name': { description: 'the model that answered', schema: { type: 'string' as const } },
    'X-Model-Version': {
      description: 'the version that answered (what the latest or a label resolved to)',
      schema: { type: 'integer' as const },
    },
  };
  for (const t of targets) {
    const route = (r: Omit<RouteDoc, 'params' | 'tag'>) =>
      doc.route({ ...r, params: t.params, tag: 'serving' });
    route({
      method: 'get',
      path: `/v1/models/{name}${t.suffix}/metadata`,
      summary: `TF Serving's signature metadata of ${t.what} (loads the model)`,
      ok: { 200: { description: 'the serving_default signature', ...json(signatureMetadataSchema) } },
      errors: {
        ...(t.suffix.startsWith('/versions') ? badVersion : {}),
        404: 'no such model, version or label, or its artifact is missing',
        422: 'the model cannot be served (`unservable_model`)',
        500: '',
        501: '',
      },
    });
    route({
      method: 'post',
      path: `/v1/models/{name}${t.suffix}:predict`,
      summary: `TF Serving predict with ${t.what} (batched with concurrent requests)`,
      description:
        'The row format `{"instances": [...]}` answers `{"predictions": [...]}`, the columnar `{"inputs": ...}` answers `{"outputs": ...}`; one prediction per instance, shaped like the model\'s output. The body is read whatever its Content-Type.',
      body: { required: true, ...json(predictRequestSchema) },
      ok: {
        200: {
          description: 'one prediction per instance',
          headers: modelHeaders,
          ...json(predictResponseSchema),
        },
      },
      errors: {
        400: 'a bad body (`invalid_json`, `invalid_request`) or version; `details` names the instance: also a `{"b64"}` image that is no readable PNG or JPEG, or whose header gives it more than IMAGE_MAX_PIXELS pixels (refused without decoding it)',
        404: 'no such model, version or label, or its artifact is missing',
        413: 'the body is over BODY_LIMIT, or has more than SERVING_MAX_INSTANCES instances (`too_many_instances`)',
        422: 'the model cannot be served (`unservable_model`), or its output for an instance is not finite (`non_finite_prediction`)',
        500: '',
        501: '',
        503: "the model's queue is full (`queue_full`; `Retry-After` estimates when it drains), no predict thread can run, or Redis is away for a model not loaded",
      },
    });
  }
}
