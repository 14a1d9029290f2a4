/**
 * The job catalog: every job type the platform runs, one registration line each. A new job type is
 * its file in `jobs/`, one line here, and its processor in the worker (apps/worker/src/processors.ts);
 * API routes, queue options, the OpenAPI document, the SDK and the CLI follow from the definition.
 */
import type { z } from 'zod';
import { batchPredictJob } from './jobs/batch-predict.ts';
import { evaluateJob } from './jobs/evaluate.ts';
import { fineTuneJob } from './jobs/fine-tune.ts';
import { tuneJob } from './jobs/tune.ts';
import { describeIssues, type FieldIssue } from './issues.ts';
import type { JobType } from './job-type.ts';

export const jobCatalog = {
  'fine-tune': fineTuneJob,
  evaluate: evaluateJob,
  'batch-predict': batchPredictJob,
  tune: tuneJob,
} as const satisfies Record<string, JobType>;

export type JobName = keyof typeof jobCatalog;
/** Every job type, in the catalog's order. */
export const jobNames = Object.keys(jobCatalog) as JobName[];
export type JobOf<N extends JobName> = z.infer<(typeof jobCatalog)[N]['payload']>;
export type JobInputOf<N extends JobName> = z.input<(typeof jobCatalog)[N]['payload']>;
export type ResultOf<N extends JobName> = z.infer<(typeof jobCatalog)[N]['result']>;
export type ProgressOf<N extends JobName> = z.infer<(typeof jobCatalog)[N]['progress']>;

export function isJobName(s: string): s is JobName {
  return Object.hasOwn(jobCatalog, s);
}

/** The definition of a job type, typed loosely enough to be used generically. */
export function jobType(name: JobName): JobType {
  return jobCatalog[name] as JobType;
}

/**
 * Parses a payload of the named job: its schema, then its type's own `check`. The API answers 400
 * with the issues; the worker fails the job at once with them.
 */
export function parsePayload<N extends JobName>(
  name: N,
  data: unknown,
): { ok: true; value: JobOf<N> } | { ok: false; issues: FieldIssue[] } {
  const def = jobType(name);
  const r = def.payload.safeParse(data);
  if (!r.success) return { ok: false, issues: describeIssues(r.error) };
  const issues = def.check?.(r.data) ?? [];
  return issues.length ? { ok: false, issues } : { ok: true, value: r.data as JobOf<N> };
}
