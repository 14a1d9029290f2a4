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

/** One instance: a tensor, or named tensors for a model with several inputs. */
export type PredictInstance = TensorLike | Record<string, TensorLike>;

/** `{"instances": [...]}` → `{"predictions": [...]}`, each prediction the model's output vector. */
export interface PredictResponse {
  predictions: number[][];
}

/** `{"inputs": ...}` → `{"outputs": ...}` (TF Serving's columnar format). */
export interface PredictColumnarResponse {
  outputs: TensorLike | Record<string, TensorLike>;
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
