/**
 * Jobs and workers as the HTTP API shows them: the API builds these, the SDK receives them, and the
 * OpenAPI document (apps/api/src/openapi/) describes them with these schemas. Framework-free (zod
 * only), so the browser SDK can import it.
 */
import { z } from 'zod';
import { jobCatalog, jobNames, type JobName, type JobOf, type ProgressOf, type ResultOf } from './catalog.ts';

/** BullMQ's job states, plus `cancelled` (a job failed by a user's cancel). */
export const jobStates = [
  'waiting',
  'active',
  'completed',
  'failed',
  'cancelled',
  'delayed',
  'prioritized',
  'waiting-children',
  'unknown',
] as const;
export const jobStateSchema = z.enum(jobStates);
export type JobState = (typeof jobStates)[number];

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
  /** Attempts made in the current run (since submit, or the last retry), a cancelled one included. */
  attempts: number;
  /** Attempts a run may make (the type's policy). */
  attemptsAllowed: number;
  /** When the job was submitted (ISO). */
  createdAt: string;
  /**
   * When the job's current run (since submit, or the last retry) first became active (ISO): a tune
   * resuming after its trials, a later attempt, a resume on another worker keep it.
   */
  startedAt?: string;
  /** When the job completed or failed (ISO); `finishedAt - startedAt` is the whole run. */
  finishedAt?: string;
  links: { self: string; events: string; logs: string };
}

/** Where a job's own routes are. */
export const jobLinksSchema = z.object({ self: z.string(), events: z.string(), logs: z.string() });

function buildJobViewSchema(name: JobName) {
  const def = jobCatalog[name];
  return z.object({
    id: z.string().describe('A UUID, unique across job types.'),
    type: z.literal(name),
    state: jobStateSchema,
    progress: z.union([def.progress, z.number()]),
    /** The payload as the API parsed it (defaults filled in); kept as the catalog's instance, which the OpenAPI document names. */
    params: def.payload,
    result: def.result.optional().describe('Present once the job completed.'),
    error: z.string().optional().describe('Why the job failed (or was cancelled).'),
    attempts: z
      .number()
      .int()
      .describe(
        "Attempts made in the job's current run (since it was submitted, or last retried: a retry counts from 0 again); a cancelled attempt counts.",
      ),
    attemptsAllowed: z.number().int().describe("Attempts a run of the job may make (its type's policy)."),
    createdAt: z.iso.datetime().describe('When the job was submitted.'),
    startedAt: z.iso
      .datetime()
      .optional()
      .describe(
        "When the job's current run (since it was submitted, or last retried) first became active; a tune resuming after its trials, a later attempt after a failed one and a resume on another worker keep it. Absent until then.",
      ),
    finishedAt: z.iso
      .datetime()
      .optional()
      .describe(
        'When the job completed or failed (or was cancelled): finishedAt - startedAt is the whole run.',
      ),
    links: jobLinksSchema,
  });
}
type JobViewSchema = ReturnType<typeof buildJobViewSchema>;

const viewSchemas = new Map<JobName, JobViewSchema>();

/**
 * The schema of a job view of type `name` (JobView<N> above): `params`, `result` and `progress` are
 * the catalog's schemas of that type, so a new job type's view follows from its definition. Always
 * the same instance for a type (the OpenAPI document names it once).
 */
export function jobViewSchemaOf(name: JobName): JobViewSchema {
  let s = viewSchemas.get(name);
  if (!s) viewSchemas.set(name, (s = buildJobViewSchema(name)));
  return s;
}

/** A job of any type (`GET /v1/jobs/{id}`), told apart by `type`. */
export const anyJobViewSchema = z.discriminatedUnion(
  'type',
  jobNames.map(jobViewSchemaOf) as [JobViewSchema, ...JobViewSchema[]],
);

/** A live worker process (`GET /v1/workers`). */
export const workerInfoSchema = z.object({
  id: z.string(),
  host: z.string(),
  pid: z.number().int(),
  queues: z.array(z.string()),
  concurrency: z.number().int().describe('Jobs at once per queue.'),
  backend: z.string().describe('The tfjs backend its jobs run on.'),
  startedAt: z.iso.datetime(),
  heartbeatAt: z.iso
    .datetime()
    .optional()
    .describe('When the worker last refreshed this entry (every 5 s while it lives).'),
  currentJobs: z.array(z.object({ id: z.string(), queue: z.string() })),
});
export type WorkerInfo = z.infer<typeof workerInfoSchema>;
