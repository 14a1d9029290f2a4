/**
 * The one place that imports bullmq: queue names, Queue and Worker factories, the options every job
 * gets, and the Redis connections they share.
 */
import { Job, Queue, QueueEvents, UnrecoverableError, WaitingError, Worker, type JobsOptions, type WorkerOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { jobNames, type JobName } from '@mlq/core';

export { Job, Queue, QueueEvents, UnrecoverableError, WaitingError, Worker };
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
 * maxStalledCount: a job may lose its worker (kill -9, OOM, power) 5 times and still resume from its
 * checkpoint; the 6th time it fails, so a job that crashes its worker cannot take every worker down forever.
 */
const stallSettings = { maxStalledCount: 5 } as const;

export function createWorker(
  name: JobName,
  processorFile: string,
  connection: Redis,
  opts: Omit<WorkerOptions, 'connection'>,
): Worker {
  return new Worker(name, processorFile, { ...stallSettings, ...opts, connection, useWorkerThreads: false });
}
