/**
 * A job whose worker stopped answering (kill -9, OOM, a hang, a long Redis outage) keeps its place in
 * the active list until its lock expires (WORKER_LOCK_DURATION_MS) and a stalled-job check (every
 * WORKER_STALLED_INTERVAL_MS, run by every worker) puts it back in the wait list; another worker then
 * takes it over. Without a word in the job's log, a user watching it sees nothing happen meanwhile.
 *
 * Two lines say what happened. The worker whose stalled-job check found the job writes one at once
 * (stalledLine: BullMQ reports each stalled job to exactly one worker); the worker that takes it over
 * writes one when it starts, with where the job resumes (takeoverLine). Which worker held the job is
 * recorded at each take (keys.jobHolder), so both lines can name it, and a take tells a takeover
 * apart from a retry or a hand-back by BullMQ's stalled count having grown since the last take.
 */
import type { RedisKeys } from '@mlq/contract';
import type { RedisClient } from '@mlq/queues';

/** Who took a job last: the record at keys.jobHolder. */
export interface Holder {
  /** The worker's id (WORKER_NAME, or host-pid-random). */
  worker: string;
  /** BullMQ's stalled count of the job when this worker took it. */
  stalls: number;
  /** The worker's lock duration, in ms. */
  lockMs: number;
}

const HOLDER_TTL_S = 30 * 24 * 3600;

function parse(h: Record<string, string>): Holder | undefined {
  if (!h['worker']) return undefined;
  return { worker: h['worker'], stalls: Number(h['stalls'] ?? 0), lockMs: Number(h['lockMs'] ?? 0) };
}

/** The worker that last took job `jobId`, if one was recorded. */
export async function readHolder(
  redis: RedisClient,
  keys: RedisKeys,
  jobId: string,
): Promise<Holder | undefined> {
  return parse(await redis.hgetall(keys.jobHolder(jobId)));
}

/** Records `me` as the holder of job `jobId`, and returns the holder before (if any), in one step. */
export async function takeHolder(
  redis: RedisClient,
  keys: RedisKeys,
  jobId: string,
  me: Holder,
): Promise<Holder | undefined> {
  const key = keys.jobHolder(jobId);
  const replies = await redis
    .multi()
    .hgetall(key)
    .del(key)
    .hset(key, { worker: me.worker, stalls: me.stalls, lockMs: me.lockMs })
    .expire(key, HOLDER_TTL_S)
    .exec();
  const [err, before] = replies?.[0] ?? [new Error('the transaction was discarded'), undefined];
  if (err) throw err;
  return parse(before as Record<string, string>);
}

/** Forgets who held job `jobId` (it completed). */
export async function forgetHolder(redis: RedisClient, keys: RedisKeys, jobId: string): Promise<void> {
  await redis.del(keys.jobHolder(jobId));
}

/** "3 s", "1.5 s". */
const seconds = (ms: number) => `${Number((ms / 1000).toFixed(1))} s`;

/** "worker host-a", or a description when no take was recorded (a job taken before this record existed). */
const named = (h: Holder | undefined) => (h ? `worker ${h.worker}` : 'the worker running this job');

/**
 * The line the worker `detector` writes into a job's log when its stalled-job check finds the job's
 * lock gone: the job's `stalls`-th stall (BullMQ's count), `max` allowed before it fails, `previous`
 * the holder recorded (its lockMs, else `lockMs`, says how long the lock had lasted).
 */
export function stalledLine(
  previous: Holder | undefined,
  detector: string,
  stalls: number,
  max: number,
  lockMs: number,
): string {
  const lock = seconds(previous?.lockMs || lockMs);
  const head =
    `${named(previous)} stopped answering: its lock on this job expired (not renewed for ${lock}: the worker ` +
    `was killed, hung or cut off from Redis)`;
  if (stalls > max)
    return `${head}; the job has now lost its worker ${stalls} times, more than the ${max} allowed, so it fails instead of running again`;
  return `${head}, and the stalled-job check of worker ${detector} put the job back in the queue for the next free worker (stall ${stalls} of the ${max} allowed)`;
}

/**
 * The line worker `me` writes into a job's log when it takes the job over after its `stalls`-th stall
 * (`max` allowed): `previous` the holder recorded, `resume` how the job starts again (core's
 * resumeNote: `resumes from the checkpoint at the end of epoch 2`, `starts over, as …`).
 */
export function takeoverLine(
  previous: Holder | undefined,
  me: Holder,
  stalls: number,
  max: number,
  resume: string,
): string {
  const lock = seconds(previous?.lockMs || me.lockMs);
  return (
    `${named(previous)} stopped answering (its lock on this job expired after ${lock} without renewal: killed, ` +
    `hung or cut off from Redis), so worker ${me.worker} takes the job over: it ${resume} (stall ${stalls} of the ${max} allowed)`
  );
}
