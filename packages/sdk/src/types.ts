/**
 * The shapes the API sends and takes. Job payloads and results come from the contract's job catalog,
 * and the other request and response bodies from its HTTP schemas (`@mlq/contract`, zod only, no
 * tfjs or AWS SDK; the API's routes send those shapes and its OpenAPI document is generated from
 * them), so the SDK cannot drift from what the API validates and answers, and stays usable in
 * browsers. They are re-exported here under the SDK's names.
 */
import {
  jobNames,
  type BatchPoint,
  type CancelResult,
  type DatasetSpecInput,
  type EpochProgress,
  type FieldIssue,
  type Health,
  type inferDatatypes,
  type InferModelMetadata,
  type InferRequest as InferRequestBody,
  type InferResponse,
  type JobInputOf,
  type JobName,
  type JobOf,
  type JobPage as JobPageBody,
  type JobProgress,
  type JobState,
  type JobView,
  type LabelResult,
  type ModelDetail,
  type ModelSummary,
  type ModelVersion,
  type ModelVersionStatus,
  type PredictResponse as PredictBody,
  type Readiness,
  type ResultOf,
  type RunHistory,
  type WorkerInfo,
} from '@mlq/contract';

export type {
  BatchPoint,
  RunHistory,
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
  // HTTP bodies (packages/contract/src/http.ts).
  CancelResult,
  Health,
  InferResponse,
  LabelResult,
  ModelDetail,
  ModelVersionStatus,
  Readiness,
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

/**
 * How far a job is, 0..1, from any progress report: within an epoch (`batch` of `batches`), after an
 * epoch, rows done (evaluate, batch-predict) or trials done (tune); undefined when it cannot tell.
 */
export function progressFraction(p: unknown): number | undefined {
  if (typeof p !== 'object' || p === null) return undefined;
  const o = p as Record<string, unknown>;
  const num = (k: string) => (typeof o[k] === 'number' ? (o[k] as number) : undefined);
  const clamp = (x: number) => Math.min(1, Math.max(0, x));
  const [epoch, epochs, batch, batches] = [num('epoch'), num('epochs'), num('batch'), num('batches')];
  if (epoch !== undefined && epochs) {
    const within = batch !== undefined && batches ? batch / batches : 1;
    return clamp((epoch - 1 + within) / epochs);
  }
  const [rows, total, done, trials] = [num('rows'), num('total'), num('trialsDone'), num('trials')];
  if (rows !== undefined && total) return clamp(rows / total);
  if (done !== undefined && trials) return clamp(done / trials);
  return undefined;
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

/** A page of jobs, newest first (`GET /v1/jobs`); `J` is the jobs' type when the query names one. */
export type JobPage<J = AnyJob> = Omit<JobPageBody, 'jobs'> & { jobs: J[] };

/**
 * Which model version to call: the latest, a version number or a label. A string is read like the
 * API's model references: `"name"` or `"name@latest"`, `"name@3"`, `"name@production"`.
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

/**
 * `{"instances": [...]}` → `{"predictions": [...]}`: one prediction per instance, of the model's
 * output shape (a class-score vector for a classifier, `number[]`; narrow it, e.g. `p as number[]`).
 */
export type PredictResponse = Extract<PredictBody, { predictions: unknown }>;

/** `{"inputs": ...}` → `{"outputs": ...}` (TF Serving's columnar format). */
export type PredictColumnarResponse = Extract<PredictBody, { outputs: unknown }>;

/** The Open Inference Protocol's datatypes a request may carry (values are converted to the model's dtype). */
export type InferDatatype = (typeof inferDatatypes)[number];

/** `GET /v2/models/{name}[/versions/{v}]` (Open Inference Protocol model metadata). */
export type ModelMetadata = InferModelMetadata;

/** A tensor's name, datatype and shape (-1: any size, as the batch dimension). */
export type TensorMetadata = InferModelMetadata['inputs'][number];

type InferInputBody = InferRequestBody['inputs'][number];

/**
 * One input tensor of an inference request; `data` flat in row-major order or nested to `shape`. The
 * SDK also takes a typed array (a `Float32Array`...), which it sends as a JSON array.
 */
export type InferInputTensor = Omit<InferInputBody, 'data'> & {
  data: InferInputBody['data'] | ArrayLike<number>;
};

/** `POST /v2/models/{name}[/versions/{v}]/infer` (Open Inference Protocol inference request). */
export type InferRequest = Omit<InferRequestBody, 'inputs'> & { inputs: InferInputTensor[] };

/** One output tensor of the inference response: `data` flat in row-major order. */
export type InferOutputTensor = InferResponse['outputs'][number];

/** One server-sent event of `GET /v1/events`: any job's progress or state change. */
export type JobsEvent =
  | { type: 'progress'; id: string; jobType: JobName; progress: JobProgress }
  | { type: 'state'; id: string; jobType: JobName; state: JobState | 'removed' };

/** One server-sent event of `GET /v1/jobs/{id}/events`. */
export type JobEvent =
  | { type: 'progress'; progress: JobProgress }
  /** A state change; `job` is the full job view, sent first and when the job ends. */
  | { type: 'state'; state: JobState; job?: AnyJob };
