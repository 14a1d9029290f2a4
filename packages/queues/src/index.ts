/**
 * The one place that imports bullmq: queue names, Queue and Worker factories, the options every job
 * gets, and the Redis connections they share.
 */
import { Job, Queue, QueueEvents, UnrecoverableError, Worker, type JobsOptions, type WorkerOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { jobNames, type JobName } from '@mlq/core';

export { Job, Queue, QueueEvents, UnrecoverableError, Worker };
export type { JobsOptions };

/** A Redis connection as BullMQ wants it (blocking commands must never time out). */
export function connect(redisUrl: string, name = 'mlq'): Redis {
  return new Redis(redisUrl, { maxRetriesPerRequest: null, connectionName: name, lazyConnect: false });
}

export type Queues = Record<JobName, Queue>;

/** One queue per job type, under the install's prefix. */
export function createQueues(connection: Redis, prefix: string): Queues {
  return Object.fromEntries(jobNames.map((n) => [n, new Queue(n, { connection, prefix })])) as Queues;
}

export async function closeQueues(queues: Queues): Promise<void> {
  await Promise.all(Object.values(queues).map((q) => q.close()));
}

/**
 * Options of every job: retried with exponential backoff on transient errors (bad input is thrown as
 * UnrecoverableError and never retried), finished jobs kept long enough for users to read them.
 */
export function jobOptions(name: JobName, jobId: string): JobsOptions {
  const training = name === 'fine-tune' || name === 'tune';
  return {
    jobId,
    attempts: training ? 3 : 5,
    backoff: { type: 'exponential', delay: 2000 },
    removeOnComplete: { age: 14 * 24 * 3600, count: 10_000 },
    removeOnFail: { age: 30 * 24 * 3600 },
  };
}

/**
 * Lock settings for training workers. The processor runs in a child process, so the parent's event
 * loop is free to renew the lock every lockDuration/2; 60 s tolerates a long GC pause or a loaded
 * machine, while a killed worker's job is seen stalled within lockDuration + stalledInterval (~90 s).
 */
export const lockSettings = { lockDuration: 60_000, stalledInterval: 30_000, maxStalledCount: 3 } as const;

export function createWorker(
  name: JobName,
  processorFile: string,
  connection: Redis,
  opts: Omit<WorkerOptions, 'connection'>,
): Worker {
  return new Worker(name, processorFile, { ...lockSettings, ...opts, connection, useWorkerThreads: false });
}
