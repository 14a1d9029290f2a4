/**
 * What defines a job type: its payload, result and progress schemas, and its queue policy. Each job
 * type is one file of `jobs/`; `catalog.ts` registers them, and every other part of the platform (API
 * routes, queue options, worker, views, SDK, CLI) reads the definition instead of naming the type.
 */
import type { z } from 'zod';
import type { FieldIssue } from './issues.ts';

/** How the queue runs a job type (BullMQ job options: `attempts`, exponential `backoff`). */
export interface QueuePolicy {
  /** Runs before the job fails for good; errors classified permanent fail at once whatever this says. */
  attempts: number;
  /** First retry delay (ms); each next retry doubles it (BullMQ's `exponential` backoff). */
  backoffMs: number;
}

/**
 * Which payload fields point at things outside the payload, so the API can check them at submit
 * and the worker can fetch them: dotted paths into the parsed payload.
 */
export interface PayloadRefs {
  /** Model references (`name`, `name@3`, `name@label` or a model.json URI) the job reads. */
  models: readonly string[];
  /** Dataset specs the job reads. */
  datasets: readonly string[];
  /** Those of `datasets` whose rows must carry labels (training and evaluation; not batch predict). */
  labelled: readonly string[];
  /** Those of `labelled` a classifier is trained on: their rows must hold at least two classes. */
  trained: readonly string[];
  /** URIs the job writes to. */
  outputs: readonly string[];
}

export interface JobType<
  P extends z.ZodType = z.ZodType,
  R extends z.ZodType = z.ZodType,
  G extends z.ZodType = z.ZodType,
> {
  /** One line, for the OpenAPI document and the CLI's help. */
  summary: string;
  payload: P;
  result: R;
  /** What the job reports while it runs (BullMQ progress). */
  progress: G;
  policy: QueuePolicy;
  refs: PayloadRefs;
  /**
   * Checks the schema cannot express (they need the whole parsed payload); the API answers 400 with
   * them and the worker checks again, as a payload may come from anyone who can write to Redis.
   */
  check?: (payload: z.infer<P>) => FieldIssue[];
}

/** Declares a job type, keeping its schemas' exact types. */
export function defineJobType<P extends z.ZodType, R extends z.ZodType, G extends z.ZodType>(
  def: JobType<P, R, G>,
): JobType<P, R, G> {
  return def;
}

/** The value at a dotted path (`output.uri`) of a parsed payload, or undefined. */
export function valueAt(payload: unknown, dotted: string): unknown {
  let v: unknown = payload;
  for (const part of dotted.split('.')) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/** Finished children of a job, by child job id: return values and the reasons of failures. */
export interface ChildOutcomes {
  done: Record<string, unknown>;
  failed: Record<string, string>;
}

/** What a job that fans out into child jobs needs from the queue (the worker implements it). */
export interface ChildJobs {
  /** The ids of the job's children, pending or ended: empty before its first run added them. */
  ids(): Promise<Set<string>>;
  /** A child's payload (its job data); undefined when no such child exists. */
  dataOf(id: string): Promise<unknown>;
  /** Adds children atomically; pass only ids that `ids()` does not hold (an existing id is not added again). */
  add(children: { id: string; data: object }[]): Promise<void>;
  /**
   * True from a retry of the job (POST /v1/jobs/{id}/retry, which also retried its failed children)
   * until `rerunHandled()`: this run should add again the children it lacks.
   */
  rerunRequested(): Promise<boolean>;
  /** Clears what `rerunRequested()` reads, once the missing children are added. */
  rerunHandled(): Promise<void>;
  /**
   * Returns when no child is pending. Otherwise parks the job until they all end, and throws the
   * queue's signal for that: let it through, the job runs again when the last child ends.
   */
  waitForAll(): Promise<void>;
  /** Children that ended; a failed child does not fail the parent. */
  outcomes(): Promise<ChildOutcomes>;
}
