/**
 * takeover.ts on a real Redis: who took a job last is recorded and handed back in one step, and the
 * lines it makes for a job's log name that worker, its lock, the stall count and the limit.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '@mlq/contract';
import { closeClient, connect, scanKeys } from '@mlq/queues';
import { forgetHolder, readHolder, stalledLine, takeHolder, takeoverLine } from '../src/takeover.ts';

const target = { kind: 'single' as const, url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' };
const keys = new RedisKeys(`test-takeover-${randomUUID().slice(0, 8)}`);
const redis = connect(target, { name: 'mlq-test-takeover' });

describe('job holders', () => {
  afterAll(async () => {
    const all = await scanKeys(redis, keys.all);
    if (all.length) await redis.del(...all);
    await closeClient(redis);
  });

  it('records each take and returns the one before, for 30 days; forgets a completed job', async () => {
    const a = { worker: 'host-a', stalls: 0, lockMs: 30_000 };
    const b = { worker: 'host-b', stalls: 1, lockMs: 3_000 };
    expect(await readHolder(redis, keys, 'j1')).toBeUndefined();
    expect(await takeHolder(redis, keys, 'j1', a)).toBeUndefined();
    expect(await takeHolder(redis, keys, 'j1', b)).toEqual(a);
    expect(await readHolder(redis, keys, 'j1')).toEqual(b);
    const ttl = await redis.ttl(keys.jobHolder('j1'));
    expect(ttl).toBeGreaterThan(29 * 24 * 3600);
    expect(ttl).toBeLessThanOrEqual(30 * 24 * 3600);
    await forgetHolder(redis, keys, 'j1');
    expect(await redis.exists(keys.jobHolder('j1'))).toBe(0);
  });
});

describe('job-log lines', () => {
  const lost = { worker: 'host-a', stalls: 0, lockMs: 30_000 };

  it('name the worker that stopped answering, its lock, the worker that found or took the job, and how it resumes', () => {
    expect(stalledLine(lost, 'host-b', 1, 5, 3000)).toBe(
      'worker host-a stopped answering: its lock on this job expired (not renewed for 30 s: the worker was killed, ' +
        'hung or cut off from Redis), and the stalled-job check of worker host-b put the job back in the queue for the ' +
        'next free worker (stall 1 of the 5 allowed)',
    );
    expect(
      takeoverLine(
        lost,
        { worker: 'host-b', stalls: 2, lockMs: 1500 },
        2,
        5,
        'resumes from the checkpoint at the end of epoch 3',
      ),
    ).toBe(
      'worker host-a stopped answering (its lock on this job expired after 30 s without renewal: killed, hung or cut ' +
        'off from Redis), so worker host-b takes the job over: it resumes from the checkpoint at the end of epoch 3 ' +
        '(stall 2 of the 5 allowed)',
    );
  });

  it('say the job fails past the stall limit, and do without a holder that was never recorded', () => {
    expect(stalledLine(lost, 'host-b', 6, 5, 3000)).toMatch(
      /^worker host-a stopped answering: .*; the job has now lost its worker 6 times, more than the 5 allowed, so it fails instead of running again$/,
    );
    expect(stalledLine(undefined, 'host-b', 1, 5, 1500)).toMatch(
      /^the worker running this job stopped answering: its lock on this job expired \(not renewed for 1\.5 s: /,
    );
    expect(
      takeoverLine(undefined, { worker: 'host-c', stalls: 1, lockMs: 3000 }, 1, 5, 'starts over'),
    ).toMatch(
      /^the worker running this job stopped answering \(its lock on this job expired after 3 s .*so worker host-c takes the job over: it starts over \(stall 1 of the 5 allowed\)$/,
    );
  });
});
