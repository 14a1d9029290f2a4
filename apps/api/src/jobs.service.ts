/**
 * Jobs as the API shows them: submit (validated, idempotent), look up by id across queues, list,
 * logs, cancel, retry. Ids are UUIDs, unique across types; `{prefix}:job-types` maps id → queue.
 */
import { randomUUID } from 'node:crypto';
import {
  jobNames,
  type JobName,
  type JobOf,
  type JobState,
  type JobView,
  type RedisKeys,
} from '@mlq/contract';
import { jobOptions, type Job, type Queues, type RedisClient } from '@mlq/queues';
import { conflict, notFound } from './errors.ts';

const IDEMPOTENCY_TTL_S = 24 * 3600;

export class JobsService {
  constructor(
    private readonly queues: Queues,
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  private typesKey = () => this.keys.jobTypes;
  /** The channel on which workers hear cancel requests for jobs they may hold. */
  get cancelChannel(): string {
    return this.keys.cancelChannel;
  }

  async submit<N extends JobName>(
    type: N,
    payload: JobOf<N>,
    idempotencyKey?: string,
  ): Promise<{ view: JobView; created: boolean }> {
    const id = randomUUID();
    if (idempotencyKey) {
      const key = this.keys.idempotency(idempotencyKey);
      const won = await this.redis.set(key, `${type}:${id}`, 'EX', IDEMPOTENCY_TTL_S, 'NX');
      if (won !== 'OK') {
        const prior = (await this.redis.get(key)) ?? '';
        const [priorType, priorId] = [
          prior.slice(0, prior.indexOf(':')),
          prior.slice(prior.indexOf(':') + 1),
        ];
        if (priorType !== type)
          throw conflict(`Idempotency-Key "${idempotencyKey}" was used for a ${priorType} job`);
        // The first request may still be adding its job: wait briefly for it.
        for (let i = 0; i < 50; i++) {
          const j = await this.find(priorId);
          if (j) return { view: await this.view(j, type), created: false };
          await new Promise((r) => setTimeout(r, 20));
        }
        throw notFound(`the job of Idempotency-Key "${idempotencyKey}" no longer exists`);
      }
    }
    await this.redis.hset(this.typesKey(), id, type);
    const job = await this.queues[type].add(type, payload, jobOptions(type, id));
    return { view: await this.view(job, type), created: true };
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
    const cancelled = s === 'failed' && /^cancelled/.test(job.failedReason ?? '');
    return {
      id: job.id!,
      type,
      state: cancelled ? 'cancelled' : (s as JobState),
      // BullMQ's progress is whatever the processor reported: one of the catalog's progress shapes.
      progress: job.progress as JobView['progress'],
      params: job.data,
      ...(job.returnvalue !== null && job.returnvalue !== undefined ? { result: job.returnvalue } : {}),
      ...(job.failedReason ? { error: job.failedReason } : {}),
      attempts: job.attemptsMade,
      attemptsAllowed: job.opts.attempts ?? 1,
      createdAt: new Date(job.timestamp).toISOString(),
      ...(job.processedOn ? { startedAt: new Date(job.processedOn).toISOString() } : {}),
      ...(job.finishedOn ? { finishedAt: new Date(job.finishedOn).toISOString() } : {}),
      links: {
        self: `/v1/jobs/${job.id}`,
        events: `/v1/jobs/${job.id}/events`,
        logs: `/v1/jobs/${job.id}/logs`,
      },
    };
  }

  async list(opts: {
    type?: JobName | undefined;
    state?: string | undefined;
    limit: number;
    offset: number;
  }): Promise<JobView[]> {
    const types = opts.type ? [opts.type] : jobNames;
    const states = opts.state
      ? [opts.state === 'cancelled' ? 'failed' : opts.state]
      : ['active', 'waiting', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed'];
    const end = opts.offset + opts.limit - 1;
    const jobs = (
      await Promise.all(types.map((t) => this.queues[t].getJobs(states as never, 0, end, false)))
    ).flat();
    jobs.sort((a, b) => b.timestamp - a.timestamp);
    const page = jobs.slice(opts.offset, opts.offset + opts.limit);
    const views = await Promise.all(page.map((j) => this.view(j)));
    return opts.state === 'cancelled' ? views.filter((v) => v.state === 'cancelled') : views;
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
  async cancel(id: string): Promise<{ state: string }> {
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

  async retry(id: string): Promise<JobView> {
    const job = await this.get(id);
    const state = await job.getState();
    if (state !== 'failed') throw conflict(`job "${id}" is ${state}: only failed jobs can be retried`);
    // A cancelled tune leaves a mark that would end its next run as cancelled again.
    await this.redis.del(this.keys.cancelMark(id));
    await job.retry('failed');
    return this.view(job);
  }
}
