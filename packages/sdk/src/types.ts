/**
 * The shapes the API sends and takes. Job payloads and results come from the contract's job catalog
 * (`@mlq/contract`, zod only, no tfjs or AWS SDK), so the SDK cannot drift from what the API
 * validates, and stays usable in browsers.
 */
import {
  jobNames,
  type DatasetSpecInput,
  type EpochProgress,
  type FieldIssue,
  type JobInputOf,
  type JobName,
  type JobOf,
  type JobProgress,
  type JobState,
  type JobView,
  type ModelSummary,
  type ModelVersion,
  type ResultOf,
  type WorkerInfo,
} from '@mlq/contract';

export type {
  JobProgress,
  JobState,
  JobView,
  WorkerInfo,
  DatasetSpecInput,
  EpochProgress,
  FieldIssue,
  JobInputOf,
  JobName,
  JobOf,
  ModelSummary,
  ModelVersion,
  ResultOf,
};

/** Every job type, in the catalog's order. */
export const jobTypes: readonly JobName[] = jobNames;

/** True if `s` names a job type. */
export function isJobType(s: string): s is JobName {
  return (jobTypes as readonly string[]).includes(s);
}

/** States after which a job never changes again (unless retried). */
export const finalStates: readonly JobState[] = ['completed', 'failed', 'cancelled'];

/** True for `completed`, `failed` and `cancelled`. */
export function isFinalState(state: string): state is 'completed' | 'failed' | 'cancelled' {
  return (finalStates as readonly string[]).includes(state);
}

/** True if a progress value is a training epoch report. */
export function isEpochProgress(p: unknown): p is EpochProgress {
  if (typeof p !== 'object' || p === null) return false;
  const o = p as Record<string, unknown>;
  return typeof o.epoch === 'number' && typeof o.epochs === 'number';
}

/** A job as `GET /v1/jobs/{id}` shows it. */
export type Job<N extends JobName = JobName> = JobView<N>;

/** A job of any type: narrow it with `job.type === 'fine-tune'`. */
export type AnyJob = { [N in JobName]: Job<N> }[JobName];

/** Filters and paging of `GET /v1/jobs`. */
export interface ListJobsQuery<N extends JobName = JobName> {
  type?: N;
  state?: JobState;
  /** 1-500, default 50. */
  limit?: number;
  offset?: number;
}

/** A page of jobs, newest first. */
export interface JobPage<J = AnyJob> {
  jobs: J[];
  limit: number;
  offset: number;
}

/** The answer to `DELETE /v1/jobs/{id}`: a waiting job is removed, a running one is asked to stop. */
export interface CancelResult {
  id: string;
  state: 'removed' | 'cancelling';
}

/** `GET /v1/models/{name}`: every version, oldest first, and the labels. */
export interface ModelDetail {
  name: string;
  labels: Record<string, number>;
  versions: ModelVersion[];
  /** TF Serving's status of each version. */
  model_version_status?: ModelVersionStatus[];
}

/** The answer to `PUT /v1/models/{name}/labels/{label}`. */
export interface LabelResult {
  name: string;
  label: string;
  version: number;
}

/**
 * Which model version to call: the latest, a version number or a label. A string is read like the
 * API's model references: `"name"`, `"name@3"`, `"name@production"`.
 */
export type ModelRef =
  | string
  | { name: string; version?: undefined; label?: undefined }
  | { name: string; version: number; label?: undefined }
  | { name: string; label: string; version?: undefined };

/** A number or nested arrays of numbers: one instance's tensor, as TF Serving's REST API takes it. */
export type TensorLike = number | TensorLike[];

/**
 * An encoded image, TF Serving's form of binary values: `{"b64": "<base64 of a PNG or JPEG file>"}`.
 * Image models (input `[height, width, 1 | 3]`) decode and resize it as their training data was.
 */
export interface ImageInstance {
  b64: string;
}

/** One instance: a tensor, an encoded image, or either under the model's input name. */
export type PredictInstance = TensorLike | ImageInstance | Record<string, TensorLike | ImageInstance>;

/** `{"instances": [...]}` → `{"predictions": [...]}`, each prediction the model's output vector. */
export interface PredictResponse {
  predictions: number[][];
}

/** `{"inputs": ...}` → `{"outputs": ...}` (TF Serving's columnar format). */
export interface PredictColumnarResponse {
  outputs: TensorLike | Record<string, TensorLike>;
}

/** TF Serving's model status, added to the answers of `GET /v1/models/{name}[/versions/{v}|/labels/{l}]`. */
export interface ModelVersionStatus {
  version: string;
  /** `AVAILABLE`: served (loaded, or loaded on first use); `END`: its last load failed. */
  state: 'AVAILABLE' | 'END';
  status: { error_code: string; error_message: string };
}

/** The Open Inference Protocol's datatypes a request may carry (values are converted to the model's dtype). */
export type InferDatatype = 'FP32' | 'FP64' | 'INT32' | 'INT64' | 'UINT8';

/** A tensor's name, datatype and shape (-1: any size, as the batch dimension). */
export interface TensorMetadata {
  name: string;
  datatype: string;
  shape: number[];
}

/** `GET /v2/models/{name}[/versions/{v}]` (Open Inference Protocol model metadata). */
export interface ModelMetadata {
  name: string;
  /** Every version that may be asked for. */
  versions: string[];
  /** `tfjs_layers_model`. */
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

/** One input tensor of an inference request; `data` flat in row-major order or nested to `shape`. */
export interface InferInputTensor {
  name: string;
  /** The whole batch's shape: `[n, ...the model's input shape]`. */
  shape: number[];
  datatype: InferDatatype;
  data: TensorLike[] | ArrayLike<number>;
}

/** `POST /v2/models/{name}[/versions/{v}]/infer` (Open Inference Protocol inference request). */
export interface InferRequest {
  /** Echoed in the response. */
  id?: string;
  parameters?: Record<string, string | number | boolean>;
  inputs: InferInputTensor[];
  /** Outputs to return (all when absent). */
  outputs?: { name: string }[];
}

/** One output tensor: `data` flat in row-major order. */
export interface InferOutputTensor {
  name: string;
  shape: number[];
  datatype: string;
  data: number[];
}

/** The inference response. */
export interface InferResponse {
  model_name: string;
  model_version: string;
  id?: string;
  outputs: InferOutputTensor[];
}

/** `GET /healthz`. */
export interface Health {
  status: 'ok';
}

/** `GET /readyz`. */
export interface Readiness {
  status: string;
  redis: string;
}

/** One server-sent event of `GET /v1/jobs/{id}/events`. */
export type JobEvent =
  | { type: 'progress'; progress: JobProgress }
  /** A state change; `job` is the full job view, sent first and when the job ends. */
  | { type: 'state'; state: JobState; job?: AnyJob };
