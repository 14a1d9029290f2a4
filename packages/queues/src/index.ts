/**
 * The one place that imports bullmq: queue names, Queue and Worker factories, the options every job
 * gets, and the Redis connections they share (connection.ts), under the install's keys
 * (packages/contract/src/keys.ts).
 */
import {
  Job,
  Queue,
  QueueEvents,
  UnrecoverableError,
  WaitingChildrenError,
  WaitingError,
  Worker,
  type JobsOptions,
  type WorkerOptions,
} from 'bullmq';
import {
  jobNames,
  jobType,
  type ChildJobs,
  type ChildOutcomes,
  type JobName,
  type RedisKeys,
} from '@mlq/contract';
import type { RedisClient } from './connection.ts';
import { retireAnnouncedChildren } from './sandbox-child.ts';

export * from './connection.ts';
export { afterFailedResultSent, afterResultSent, announceRetirement } from './sandbox-child.ts';
export { firstStartOf, recordFirstStart } from './first-start.ts';
export { installIdRecord } from './install.ts';
export { Job, Queue, QueueEvents, UnrecoverableError, WaitingChildrenError, WaitingError, Worker };
export type { JobsOptions };

export type Queues = Record<JobName, Queue>;

/**
 * One queue per job type, under the install's key root (`keys.root`, or a QUEUE_PREFIX). BullMQ
 * re-emits its connection's errors on each queue: give them to `onError` (the Redis outage log);
 * without it BullMQ prints each one.
 */
export function createQueues(
  connection: RedisClient,
  keys: RedisKeys | string,
  onError?: (e: Error) => void,
): Queues {
  const prefix = typeof keys === 'string' ? keys : keys.root;
  return Object.fromEntries(
    jobNames.map((n) => {
      const q = new Queue(n, { connection, prefix });
      return [n, onError ? q.on('error', onError) : q];
    }),
  ) as Queues;
}

/**
 * Closes BullMQ objects (queues, queue events), giving up after `deadlineMs`: with Redis away their
 * close (QUIT) and even disconnect wait for a connection that never comes. The caller then closes
 * the Redis connections it gave them (closeClient), which ends those waits. Never throws.
 */
export async function closeWithin(
  all: { close(): Promise<void>; disconnect(): Promise<void> }[],
  deadlineMs = 1000,
): Promise<void> {
  const closed = Promise.all(all.map((q) => q.close().catch(() => undefined)));
  const late = await Promise.race([
    closed.then(() => false),
    new Promise<boolean>((r) => setTimeout(() => r(true), deadlineMs).unref()),
  ]);
  if (late) for (const q of all) void q.disconnect().catch(() => undefined);
}

export const closeQueues = (queues: Queues, deadlineMs = 1000): Promise<void> =>
  closeWithin(Object.values(queues), deadlineMs);

/**
 * Queue events (progress, completed…) of one queue. XREAD blocks, so BullMQ runs them on its own
 * copy of `connection` (which may be a never-connected template: `connect(…, { lazy: true })`).
 */
export function createQueueEvents(
  name: JobName,
  connection: RedisClient,
  keys: RedisKeys,
  onError: (e: Error) => void,
): QueueEvents {
  return new QueueEvents(name, { connection, prefix: keys.root }).on('error', onError);
}

/**
 * Options of every job, from its type's queue policy (packages/contract/src/jobs): retried with
 * exponential backoff on transient errors (permanent ones are thrown as UnrecoverableError and never
 * retried), finished jobs kept long enough for users to read them.
 */
export function jobOptions(name: JobName, jobId: string): JobsOptions {
  const { policy } = jobType(name);
  return {
    jobId,
    attempts: policy.attempts,
    backoff: { type: 'exponential', delay: policy.backoffMs },
    removeOnComplete: { age: 14 * 24 * 3600, count: 10_000 },
    removeOnFail: { age: 30 * 24 * 3600 },
  };
}

/**
 * maxStalledCount: a job may lose its worker (kill -9, OOM, power) 5 times and still resume from its
 * checkpoint; the 6th time it fails, so a job that crashes its worker cannot take every worker down forever.
 */
export const MAX_STALLED_COUNT = 5;
const stallSettings = { maxStalledCount: MAX_STALLED_COUNT } as const;

/** A worker of queue `name` under the install's key root (`keys.root`). */
export function createWorker(
  name: JobName,
  processorFile: string,
  connection: RedisClient,
  keys: RedisKeys,
  opts: Omit<WorkerOptions, 'connection' | 'prefix'>,
): Worker {
  retireAnnouncedChildren();
  return new Worker(name, processorFile, {
    ...stallSettings,
    ...opts,
    connection,
    prefix: keys.root,
    useWorkerThreads: false,
  });
}

/** A job as a flow sees it: its queue, its id and, while it runs, its lock token. */
export interface JobRef {
  queue: JobName;
  id: string;
  token?: string | undefined;
}

/** The parent side of a flow: core's ChildJobs, plus what a child needs to report to its parent. */
export interface ParentJob extends ChildJobs {
  data(): Promise<unknown>;
  progress(p: object): Promise<void>;
  /**
   * For a retry of the parent (call it before the parent's own): every failed child is retried in
   * place, its attempts from 0, and counts as pending again; a failed child whose job is gone is
   * forgotten, so the parent's rerun adds it again. Returns the ids of the children retried.
   */
  retryFailed(): Promise<string[]>;
}

/**
 * The parent side of a flow whose children run on `childQueue`, for code in a sandboxed child process.
 * It talks to Redis itself instead of through BullMQ's sandbox job proxy, whose request/response calls
 * (moveToWaitingChildren, getChildrenValues) give up after 5 s, 0.5 s under NODE_ENV=test, on a busy
 * machine; moving a job needs only its id and lock token. Children fail alone
 * (ignoreDependencyOnFailure): their reasons go to `outcomes().failed` and the parent still runs.
 */
export function parentJob(
  queues: Queues,
  connection: RedisClient,
  keys: RedisKeys,
  parent: JobRef,
  childQueue: JobName,
): ParentJob {
  const own = queues[parent.queue];
  const children = queues[childQueue];
  const load = async () => {
    const job = await Job.fromId(own, parent.id);
    if (!job) throw new Error(`job ${parent.id} is no longer in the ${parent.queue} queue`);
    return job;
  };
  // Children are keyed `<root>:<queue>:<id>` in the parent's dependency sets.
  const byId = (values: Record<string, unknown> = {}) =>
    Object.fromEntries(Object.entries(values).map(([key, v]) => [key.slice(key.lastIndexOf(':') + 1), v]));
  return {
    async ids() {
      const d = await (await load()).getDependencies();
      const all = [
        ...Object.keys(d.processed ?? {}),
        ...(d.unprocessed ?? []),
        ...Object.keys(d.ignored ?? {}),
        ...(d.failed ?? []),
      ];
      return new Set(all.map((key) => key.slice(key.lastIndexOf(':') + 1)));
    },
    async dataOf(id) {
      return (await Job.fromId(children, id))?.data as unknown;
    },
    async rerunRequested() {
      return (await connection.exists(keys.rerunMark(parent.id))) === 1;
    },
    async rerunHandled() {
      await connection.del(keys.rerunMark(parent.id));
    },
    async retryFailed() {
      const job = await load();
      const failed = Object.keys(await job.getIgnoredChildrenFailures());
      const retried: string[] = [];
      for (const key of failed) {
        const id = key.slice(key.lastIndexOf(':') + 1);
        const child = await Job.fromId(children, id);
        if (child && (await child.getState()) === 'failed') {
          await child.log(
            `${new Date().toISOString()} retried with its parent ${parent.id}: this run has ` +
              `${child.opts.attempts ?? 1} attempt(s), counted from 0`,
          );
          // BullMQ moves a retried child back into its parent's pending dependencies.
          await child.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
          retried.push(id);
        } else {
          // Gone (removeOnFail): forget its failure, so the parent's rerun adds it again.
          await connection.hdel(`${own.qualifiedName}:${parent.id}:failed`, key);
        }
      }
      return retried;
    },
    async add(list) {
      if (!list.length) return;
      await connection.hset(keys.jobTypes, Object.fromEntries(list.map((c) => [c.id, childQueue])));
      await children.addBulk(
        list.map((c) => ({
          name: childQueue,
          data: c.data,
          opts: {
            ...jobOptions(childQueue, c.id),
            parent: { id: parent.id, queue: own.qualifiedName },
            ignoreDependencyOnFailure: true,
          },
        })),
      );
    },
    async waitForAll() {
      if (!parent.token) throw new Error(`job ${parent.id} holds no lock token: it cannot wait for children`);
      if (await (await load()).moveToWaitingChildren(parent.token)) throw new WaitingChildrenError();
    },
    async outcomes(): Promise<ChildOutcomes> {
      const job = await load();
      const [done, failed] = await Promise.all([job.getChildrenValues(), job.getIgnoredChildrenFailures()]);
      return { done: byId(done), failed: byId(failed) as Record<string, string> };
    },
    async data() {
      return (await load()).data as unknown;
    },
    async progress(p) {
      await (await load()).updateProgress(p);
    },
  };
}
