/**
 * The other bodies the HTTP API answers: pages and envelopes around the views (views.ts, registry.ts,
 * dataset-versions.ts), TF Serving's and the Open Inference Protocol's REST bodies, and the probes'.
 * The API's routes send these shapes and its OpenAPI document (apps/api/src/openapi/) is generated
 * from them; a test validates real answers against that document.
 */
import { z } from 'zod';
import { artifactViewSchema, datasetSummarySchema, datasetVersionSchema } from './dataset-versions.ts';
import { modelSummarySchema, modelVersionSchema } from './registry.ts';
import { anyJobViewSchema, jobStateSchema, workerInfoSchema } from './views.ts';

/** `GET /v1/jobs`: a page of jobs, newest first. */
export const jobPageSchema = z.object({
  jobs: z.array(anyJobViewSchema),
  limit: z.number().int(),
  offset: z.number().int(),
});
export type JobPage = z.infer<typeof jobPageSchema>;

/** `DELETE /v1/jobs/{id}`: a waiting job is removed, a running one is asked to stop. */
export const cancelResultSchema = z.object({ id: z.string(), state: z.enum(['removed', 'cancelling']) });
export type CancelResult = z.infer<typeof cancelResultSchema>;

/** `GET /v1/jobs/{id}/logs`: the job's log lines, oldest first. */
export const jobLogsSchema = z.object({ id: z.string(), logs: z.array(z.string()) });
export type JobLogs = z.infer<typeof jobLogsSchema>;

/** `GET /v1/jobs/{id}/artifacts`: a completed job's outputs (none before it completes). */
export const artifactListSchema = z.object({
  id: z.string(),
  state: jobStateSchema,
  artifacts: z.array(artifactViewSchema),
});
export type ArtifactList = z.infer<typeof artifactListSchema>;

/** `GET /v1/workers`. */
export const workerListSchema = z.object({ workers: z.array(workerInfoSchema) });
export type WorkerList = z.infer<typeof workerListSchema>;

/** `GET /v1/datasets`. */
export const datasetListSchema = z.object({ datasets: z.array(datasetSummarySchema) });
export type DatasetList = z.infer<typeof datasetListSchema>;

/** `GET /v1/datasets/{name}`: its versions, oldest first. */
export const datasetVersionListSchema = z.object({
  name: z.string(),
  versions: z.array(datasetVersionSchema),
});
export type DatasetVersionList = z.infer<typeof datasetVersionListSchema>;

/** `GET /v1/models`. */
export const modelListSchema = z.object({ models: z.array(modelSummarySchema) });
export type ModelList = z.infer<typeof modelListSchema>;

/** TF Serving's status of one version (`GetModelStatus` as its REST API prints it). */
export const modelVersionStatusSchema = z.object({
  version: z.string().describe('The version number, as a string (an int64 in proto JSON).'),
  state: z
    .enum(['AVAILABLE', 'END'])
    .describe('`AVAILABLE`: served (loaded, or loaded on first use); `END`: its last load failed.'),
  status: z.object({ error_code: z.string(), error_message: z.string() }),
});
export type ModelVersionStatus = z.infer<typeof modelVersionStatusSchema>;

/** TF Serving's `{"model_version_status": [...]}`, added to the registry's answers about models. */
const servingStatus = { model_version_status: z.array(modelVersionStatusSchema) };

/** `GET /v1/models/{name}`: every version, oldest first, its labels, and TF Serving's status. */
export const modelDetailSchema = z.object({
  name: z.string(),
  labels: z.record(z.string(), z.number().int()).describe('Label → version.'),
  versions: z.array(modelVersionSchema),
  ...servingStatus,
});
export type ModelDetail = z.infer<typeof modelDetailSchema>;

/** `GET /v1/models/{name}/versions/{version}` and `/labels/{label}`: the version with TF Serving's status. */
export const modelVersionStatusViewSchema = modelVersionSchema.extend(servingStatus);

/** `PUT /v1/models/{name}/labels/{label}`. */
export const labelBodySchema = z.object({ version: z.number().int().min(1) });
export type LabelBody = z.input<typeof labelBodySchema>;
export const labelResultSchema = z.object({
  name: z.string(),
  label: z.string(),
  version: z.number().int(),
});
export type LabelResult = z.infer<typeof labelResultSchema>;

/** A number or nested arrays of numbers: one instance's tensor. */
const tensorLike = z.union([z.number(), z.array(z.unknown())]);

/**
 * TF Serving's predict request: the row format (`instances`, one entry per instance) or the columnar
 * one (`inputs`). An instance may be `{"b64": "<base64 of a PNG or JPEG>"}` for an image model (of at
 * most IMAGE_MAX_PIXELS pixels, width × height, or a 400 names it), or an object keyed by the model's
 * input name.
 */
export const predictRequestSchema = z
  .object({
    signature_name: z.literal('serving_default').optional(),
    instances: z.array(z.unknown()).optional(),
    inputs: z.unknown().optional(),
  })
  .meta({ example: { instances: [[0.1, 0.9, 0.4, 0.7]] } });

/** TF Serving's predict response: `predictions` for `instances`, `outputs` for `inputs`. */
export const predictResponseSchema = z.union([
  z.object({ predictions: z.array(tensorLike) }),
  z.object({ outputs: tensorLike }),
]);
export type PredictResponse = z.infer<typeof predictResponseSchema>;

/** A TensorInfo of TF Serving's metadata: the dtype and the shape, the batch dimension -1. */
const tensorInfoSchema = z.object({
  dtype: z.string(),
  tensor_shape: z.object({
    dim: z.array(z.object({ size: z.string(), name: z.string() })),
    unknown_rank: z.boolean(),
  }),
  name: z.string(),
});

/** TF Serving's `GetModelMetadata`: the model spec and its one signature, `serving_default`. */
export const signatureMetadataSchema = z.object({
  model_spec: z.object({ name: z.string(), signature_name: z.string(), version: z.string() }),
  metadata: z.object({
    signature_def: z.object({
      signature_def: z.record(
        z.string(),
        z.object({
          inputs: z.record(z.string(), tensorInfoSchema),
          outputs: z.record(z.string(), tensorInfoSchema),
          method_name: z.string(),
        }),
      ),
    }),
  }),
});
export type SignatureMetadata = z.infer<typeof signatureMetadataSchema>;

/** The Open Inference Protocol's datatypes a request may carry (values are converted to the model's dtype). */
export const inferDatatypes = ['FP32', 'FP64', 'INT32', 'INT64', 'UINT8'] as const;

/** An Open Inference Protocol tensor's name, datatype and shape (-1: any size, as the batch dimension). */
const tensorMetadataSchema = z.object({
  name: z.string(),
  datatype: z.string(),
  shape: z.array(z.number().int()),
});

/** `GET /v2`: the Open Inference Protocol's server metadata. */
export const inferServerMetadataSchema = z.object({
  name: z.string(),
  version: z.string(),
  extensions: z.array(z.string()),
});

/** `GET /v2/models/{name}[/versions/{version}]`: the Open Inference Protocol's model metadata. */
export const inferModelMetadataSchema = z.object({
  name: z.string(),
  versions: z.array(z.string()).describe('Every version that may be asked for.'),
  platform: z.string().describe('`tfjs_layers_model`.'),
  inputs: z.array(tensorMetadataSchema),
  outputs: z.array(tensorMetadataSchema),
});
export type InferModelMetadata = z.infer<typeof inferModelMetadataSchema>;

/** `POST /v2/models/{name}[/versions/{version}]/infer`: one input tensor (the models served have one). */
export const inferRequestSchema = z
  .object({
    id: z.string().optional().describe('Echoed in the response.'),
    parameters: z
      .record(z.string(), z.unknown())
      .optional()
      .describe('Accepted and ignored, except `binary_data_size` (binary tensor data), which is refused.'),
    inputs: z
      .array(
        z.object({
          name: z.string(),
          shape: z
            .array(z.number().int())
            .describe("The whole batch's shape: `[n, ...the model's input shape]`."),
          datatype: z.enum(inferDatatypes),
          parameters: z.record(z.string(), z.unknown()).optional(),
          data: z.array(z.unknown()).describe('Row-major, flat or nested to `shape`.'),
        }),
      )
      .min(1),
    outputs: z
      .array(z.object({ name: z.string() }))
      .optional()
      .describe("Outputs to return (all when absent); only the model's one output may be named."),
  })
  .meta({
    example: {
      id: '42',
      inputs: [{ name: 'dense_Dense1_input', shape: [1, 4], datatype: 'FP32', data: [0.1, 0.9, 0.4, 0.7] }],
    },
  });
export type InferRequest = z.input<typeof inferRequestSchema>;

/** The Open Inference Protocol's inference response: the model's one output, `data` flat in row-major order. */
export const inferResponseSchema = z.object({
  model_name: z.string(),
  model_version: z.string().describe('The version the request resolved to.'),
  id: z.string().optional(),
  outputs: z.array(tensorMetadataSchema.extend({ data: z.array(z.number()) })),
});
export type InferResponse = z.infer<typeof inferResponseSchema>;

/** `GET /v2/models/{name}[/versions/{version}]/ready`: answered once the model is loaded. */
export const inferModelReadySchema = z.object({ name: z.string(), ready: z.boolean() });

/** The Open Inference Protocol's error body (the `/v2` routes' own errors). */
export const inferErrorSchema = z.object({ error: z.string() });

/** `GET /healthz`. */
export const healthSchema = z.object({ status: z.literal('ok') });
export type Health = z.infer<typeof healthSchema>;

/** `GET /readyz`: `ready`/`ok`, or (503) `not ready` and why. */
export const readinessSchema = z.object({ status: z.enum(['ready', 'not ready']), redis: z.string() });
export type Readiness = z.infer<typeof readinessSchema>;

/** `GET /v2/health/live` and `/v2/health/ready`. */
export const inferLiveSchema = z.object({ live: z.boolean() });
export const inferReadySchema = z.object({ ready: z.boolean() });
