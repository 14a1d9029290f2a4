/**
 * Jobs and workers as the HTTP API shows them: the API builds these, the SDK receives them. Type-only
 * and framework-free, so the browser SDK can import it.
 */
import type { JobName, JobOf, ProgressOf, ResultOf } from './catalog.ts';

/** BullMQ's job states, plus `cancelled` (a job failed by a user's cancel). */
export type JobState =
  | 'waiting'
  | 'active'
  | 'completed'
  | 'failed'
  | 'cancelled'
  | 'delayed'
  | 'prioritized'
  | 'waiting-children'
  | 'unknown';

/** What a job reports while it runs (its type's progress schema); BullMQ's `0` before the first report. */
export type JobProgress<N extends JobName = JobName> = ProgressOf<N> | number;

/** A job as `GET /v1/jobs/{id}` shows it. */
export interface JobView<N extends JobName = JobName> {
  id: string;
  type: N;
  state: JobState;
  progress: JobProgress<N>;
  /** The payload as the API parsed it (defaults filled in). */
  params: JobOf<N>;
  result?: ResultOf<N>;
  /** Why the job failed (or was cancelled). */
  error?: string;
  attempts: number;
  attemptsAllowed: number;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  links: { self: string; events: string; logs: string };
}

/** A live worker process (`GET /v1/workers`). */
export interface WorkerInfo {
  id: string;
  host: string;
  pid: number;
  queues: string[];
  concurrency: number;
  backend: string;
  startedAt: string;
  /** When the worker last refreshed this entry (every 5 s while it lives). */
  heartbeatAt?: string;
  currentJobs: { id: string; queue: string }[];
}
