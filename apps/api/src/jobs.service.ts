/**
 * Jobs as the API shows them: submit (validated, idempotent), look up by id across queues, list,
 * logs, cancel, retry. Ids are UUIDs, unique across types; `keys.jobTypes` maps id → queue.
 */
import { createHash, randomUUID } from 'node:crypto';
import {
  jobNames,
  type CancelResult,
  type JobName,
  type JobOf,
  type JobState,
  type JobView,
  type RedisKeys,
} from '@mlq/contract';
import { firstStartOf, jobOptions, parentJob, type Job, type Queues, type RedisClient } from '@mlq/queues';
import { ApiError, conflict, notFound } from './errors.ts';

const IDEMPOTENCY_TTL_S = 24 * 3600;

/** An Idempotency-Key as presented: by which API key (`keyId`, a hash prefix), with which body. */
export interface IdempotencyRequest {
  key: string;
  keyId: string;
  /** Hex SHA-256 of the body's canonical JSON (bodySha256 below). */
  bodySha256: string;
}

export interface ListOptions {
  type?: JobName | undefined;
  state?: string | undefined;
  limit: number;
  offset: number;
}

interface IdempotencyRecord {
  type: JobName;
  id: string;
  bodySha256: string;
}

/** JSON with object keys sorted at every depth, so `{"a":1,"b":2}` and `{"b":2,"a":1}` are one body. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/** Hex SHA-256 of a request body's canonical JSON: same fields and values, same hash, whatever the order or spacing. */
export function bodySha256(body: unknown): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}

/** A failed job whose reason says it was cancelled (the worker's `cancelled: …`): shown as `cancelled`. */
const isCancelled = (job: Job): boolean => /^cancelled/.test(job.failedReason ?? '');

export class JobsService {
  private readonly queues: Queues;
  private readonly redis: RedisClient;
  private readonly keys: RedisKeys;
  constructor(queues: Queues, redis: RedisClient, keys: RedisKeys) {
    this.queues = queues;
    this.redis = redis;
    this.keys = keys;
  }

  private typesKey = () => this.keys.jobTypes;
  /** The channel on which workers hear cancel requests for jobs they may hold. */
  get cancelChannel(): string {
    return this.keys.cancelChannel;
  }

  /**
   * Adds a job. With an Idempotency-Key, the first request (per API key) creates the job and later
   * ones with the same key and the same body get that job back (`created: false`); the same key with
   * another body or job type is a 422, as draft-ietf-httpapi-idempotency-key-header says. `notes`
   * (what submit pinned, e.g. `base bb → bb@1 (pinned at submit)`) go to a new job's log.
   */
  async submit<N extends JobName>(
    type: N,
    payload: JobOf<N>,
    idempotency?: IdempotencyRequest,
    notes: readonly string[] = [],
  ): Promise<{ view: JobView; created: boolean }> {
    const id = randomUUID();
    if (idempotency) {
      const prior = await this.claim(type, id, idempotency);
      if (prior) return { view: prior, created: false };
    }
    await this.redis.hset(this.typesKey(), id, type);
    const job = await this.queues[type].add(type, payload, jobOptions(type, id));
    for (const note of notes) await job.log(`${new Date().toISOString()} ${note}`);
    return { view: await this.view(job, type), created: true };
  }

  /** Claims an Idempotency-Key for job `id`; returns the job that already holds it, if one does. */
  private async claim(type: JobName, id: string, req: IdempotencyRequest): Promise<JobView | undefined> {
    const key = this.keys.idempotency(req.keyId, req.key);
    const record: IdempotencyRecord = { type, id, bodySha256: req.bodySha256 };
    const won = await this.redis.set(key, JSON.stringify(record), 'EX', IDEMPOTENCY_TTL_S, 'NX');
    if (won === 'OK') return undefined;
    const prior = JSON.parse((await this.redis.get(key)) ?? 'null') as IdempotencyRecord | null;
    if (!prior) return undefined; // expired between the two commands: ours to take next time
    if (prior.type !== type || prior.bodySha256 !== req.bodySha256) {
      throw new ApiError(
        422,
        'idempotency_key_reused',
        `Idempotency-Key "${req.key}" was used for another request (${prior.type === type ? 'another body' : `a ${prior.type} job`}); use a new key for a new request`,
        [{ field: 'Idempotency-Key', message: 'already used with a different request' }],
      );
    }
    // The first request may still be adding its job: wait briefly for it.
    for (let i = 0; i < 50; i++) {
      const j = await this.find(prior.id);
      if (j) return this.view(j, type);
      await new Promise((r) => setTimeout(r, 20));
    }
    throw notFound(`the job of Idempotency-Key "${req.key}" no longer exists`);
  }

  private async find(id: string): Promise<Job | undefined> {
    const type = (await this.redis.hget(this.typesKey(), id)) as JobName | null;
    if (!type || !jobNames.includes(type)) return undefined;
    return (await this.queues[type].getJob(id)) ?? undefined;
  }

  async get(id: string): Promise<Job> {
    const job = await this.find(id);
    if (!job) throw notFound(`job "${id}" not found`);
    return job;
  }

  async view(fetched: Job, type = fetched.name as JobName, state?: string): Promise<JobView> {
    const s = state ?? (await fetched.getState());
    // The job may have finished between reading it and reading its state: read it again so a
    // finished job always comes with its result or error.
    let job = fetched;
    if ((s === 'completed' && job.returnvalue == null) || (s === 'failed' && !job.failedReason)) {
      job = (await this.queues[type].getJob(fetched.id!)) ?? fetched;
    }
    const cancelled = s === 'failed' && isCancelled(job);
    const startedOn = await firstStartOf(this.redis, job);
    return {
      id: job.id!,
      type,
      state: cancelled ? 'cancelled' : (s as JobState),
      // BullMQ's progress is whatever the processor reported: one of the catalog's progress shapes.
      progress: job.progress as JobView['progress'],
      params: job.data,
      ...(job.returnvalue !== null && job.returnvalue !== undefined ? { result: job.returnvalue } : {}),
      // A job that completed after a failed attempt keeps BullMQ's failedReason: not an error any
      // more (the attempt's failure stays in the job's log).
      ...(job.failedReason && s !== 'completed' ? { error: job.failedReason } : {}),
      attempts: job.attemptsMade,
      attemptsAllowed: job.opts.attempts ?? 1,
      createdAt: new Date(job.timestamp).toISOString(),
      // The run's first start, not BullMQ's processedOn (its last activation: a tune's is when it
      // resumed after its trials), so finishedAt - startedAt is the whole run.
      ...(startedOn ? { startedAt: new Date(startedOn).toISOString() } : {}),
      ...(job.finishedOn ? { finishedAt: new Date(job.finishedOn).toISOString() } : {}),
      links: {
        self: `/v1/jobs/${job.id}`,
        events: `/v1/jobs/${job.id}/events`,
        logs: `/v1/jobs/${job.id}/logs`,
      },
    };
  }

  /**
   * A page of jobs, newest first. `cancelled` and `failed` are one BullMQ state told apart by the reason
   * (isCancelled): each filter returns only its own, and its pages are full whenever enough such jobs exist.
   */
  async list(opts: ListOptions): Promise<JobView[]> {
    if (opts.state === 'cancelled' || opts.state === 'failed') return this.listFailed(opts, opts.state);
    const types = opts.type ? [opts.type] : jobNames;
    const states = opts.state
      ? [opts.state]
      : ['active', 'waiting', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed'];
    const end = opts.offset + opts.limit - 1;
    const jobs = (
      await Promise.all(types.map((t) => this.queues[t].getJobs(states as never, 0, end, false)))
    ).flat();
    jobs.sort((a, b) => b.timestamp - a.timestamp);
    const page = jobs.slice(opts.offset, opts.offset + opts.limit);
    return Promise.all(page.map((j) => this.view(j)));
  }

  /**
   * Failed jobs that were cancelled (`state: "cancelled"`) or not (`"failed"`): each queue's failed set
   * is read in chunks, newest first, until it has given offset + limit of them or has none left.
   */
  private async listFailed(opts: ListOptions, state: 'cancelled' | 'failed'): Promise<JobView[]> {
    const want = opts.offset + opts.limit;
    const chunk = Math.max(200, want);
    const perType = async (t: JobName): Promise<Job[]> => {
      const found: Job[] = [];
      for (let start = 0; found.length < want; start += chunk) {
        const jobs = await this.queues[t].getJobs(['failed'], start, start + chunk - 1, false);
        found.push(...jobs.filter((j) => isCancelled(j) === (state === 'cancelled')));
        if (jobs.length < chunk) break;
      }
      return found.slice(0, want);
    };
    const types = opts.type ? [opts.type] : jobNames;
    const jobs = (await Promise.all(types.map(perType))).flat();
    jobs.sort((a, b) => b.timestamp - a.timestamp);
    const page = jobs.slice(opts.offset, want);
    return Promise.all(page.map((j) => this.view(j, j.name as JobName, 'failed')));
  }

  async logs(id: string): Promise<string[]> {
    const job = await this.get(id);
    const { logs } = await this.queues[job.name as JobName].getJobLogs(id, 0, -1, true);
    return logs;
  }

  /**
   * A waiting or delayed job is removed. An active job is cancelled on whichever worker holds it:
   * BullMQ's cancelJob reaches only its own process, so the request goes to every worker over pub/sub.
   */
  async cancel(id: string): Promise<Omit<CancelResult, 'id'>> {
    const job = await this.get(id);
    const state = await job.getState();
    if (state === 'waiting' || state === 'delayed' || state === 'prioritized') {
      await job.remove();
      await this.redis.hdel(this.typesKey(), id);
      return { state: 'removed' };
    }
    if (state === 'active') {
      await this.redis.publish(this.cancelChannel, JSON.stringify({ id, reason: 'cancelled by user' }));
      return { state: 'cancelling' };
    }
    if (state === 'waiting-children') {
      // A tune waiting for its trials: mark it so its next run ends as cancelled, then cancel the
      // trials; when the last one ends, BullMQ runs the parent, which sees the mark.
      await this.redis.set(this.keys.cancelMark(id), '1', 'EX', 7 * 24 * 3600);
      const deps = await job.getDependencies();
      for (const key of deps.unprocessed ?? []) {
        const childId = key.slice(key.lastIndexOf(':') + 1);
        await this.cancel(childId).catch(() => undefined);
      }
      return { state: 'cancelling' };
    }
    throw conflict(
      `job "${id}" is ${state}: only waiting, prioritized, delayed, active or waiting-children jobs can be cancelled`,
    );
  }

  /**
   * Runs a failed (or cancelled) job again, as a new run of the same job: its attempts count from 0,
   * so the run gets its type's attempts (`attemptsAllowed`) with their backoff, and `attempts` never
   * exceeds `attemptsAllowed`. BullMQ's retry keeps `attemptsMade` unless told otherwise: a job that
   * had used its 3 attempts then got a single one more, shown as "4 of 3". The log keeps the earlier
   * runs' failed attempts, and gets a line saying where the count started again. 409 unless failed.
   */
  async retry(id: string): Promise<JobView> {
    const job = await this.get(id);
    const state = await job.getState();
    if (state !== 'failed') throw conflict(`job "${id}" is ${state}: only failed jobs can be retried`);
    // A cancelled tune leaves a mark that would end its next run as cancelled again.
    await this.redis.del(this.keys.cancelMark(id));
    if (job.name === 'tune') await this.retryTrials(job);
    const allowed = job.opts.attempts ?? 1;
    await job.log(
      `${new Date().toISOString()} retried after ${job.attemptsMade} attempt${job.attemptsMade === 1 ? '' : 's'}: ` +
        `this run has ${allowed} attempt${allowed === 1 ? '' : 's'}, counted from 0`,
    );
    // attemptsStarted (how often the job became active) too: both count this run only, and its first
    // activation records the run's startedAt (packages/queues/src/first-start.ts).
    await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
    return this.view(job);
  }

  /**
   * A tune's trials ended before it did (failed, cancelled, or removed while waiting): retrying the tune
   * alone would collect the same outcomes and fail again. Its failed trials are retried in place (their
   * attempts from 0, resuming from their checkpoints) and count as pending again; the mark tells the
   * tune's next run to add back the trials that no longer exist (packages/core/src/jobs/tune.job.ts).
   * Completed trials are kept: their models are registered already.
   */
  private async retryTrials(job: Job): Promise<void> {
    const trials = parentJob(this.queues, this.redis, this.keys, { queue: 'tune', id: job.id! }, 'fine-tune');
    const retried = await trials.retryFailed();
    await this.redis.set(this.keys.rerunMark(job.id!), '1', 'EX', 30 * 24 * 3600);
    await job.log(
      `${new Date().toISOString()} retried ${retried.length} failed trial${retried.length === 1 ? '' : 's'}` +
        `${retried.length ? ` (${retried.join(', ')})` : ''}; this run adds back any trial removed before it ended`,
    );
  }
}
