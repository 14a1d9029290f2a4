/**
 * When a job first started. BullMQ keeps only when it last became active (`processedOn`): it sets that
 * again on every activation, so a tune that resumes after its trials, a later attempt after a failed
 * one and a job resumed after a hand-back or a stall all lose their first start. BullMQ also counts
 * activations (`attemptsStarted`, which POST /v1/jobs/{id}/retry resets with the attempts): the worker
 * that activates a run for the first time copies `processedOn` into a field of the job's own hash, so
 * the copy goes when the job goes, and the API reads it back once the job has been activated again.
 */
import type { Job } from 'bullmq';
import type { RedisClient } from './connection.ts';

/** The field of a job's BullMQ hash (`<root>:<queue>:<id>`) that holds its first start, in ms. */
const FIELD = 'mlqFirstProcessedOn';

const jobKey = (job: Job): string => `${job.queueQualifiedName}:${job.id}`;

/** Sets the field only on a job that still exists: a job removed meanwhile must not come back as one field. */
const SET_ON_EXISTING_JOB = `if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end return -1`;

/**
 * For the worker, on BullMQ's `active` event: keeps the time of a run's first activation (nothing to do
 * on later ones). Rejects with the Redis error when the write fails; the view then falls back on
 * `processedOn`.
 */
export async function recordFirstStart(connection: RedisClient, job: Job): Promise<void> {
  if (job.attemptsStarted !== 1 || !job.processedOn) return;
  await connection.eval(SET_ON_EXISTING_JOB, 1, jobKey(job), FIELD, String(job.processedOn));
}

/**
 * When the job's current run (since it was added, or last retried) first became active, in ms since
 * the epoch; undefined before it has. Reads Redis only for a job activated more than once; falls back
 * on BullMQ's `processedOn` (the last activation) when no first start was recorded, e.g. for a job
 * activated before the worker recorded them.
 */
export async function firstStartOf(connection: RedisClient, job: Job): Promise<number | undefined> {
  if (!job.processedOn) return undefined;
  if ((job.attemptsStarted ?? 0) <= 1) return job.processedOn;
  const first = Number(await connection.hget(jobKey(job), FIELD));
  return first > 0 && first <= job.processedOn ? first : job.processedOn;
}
