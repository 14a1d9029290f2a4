/**
 * Redis stops while a worker (a real process) trains: the API answers for itself at once, predict
 * keeps serving loaded models, the job keeps training, and when Redis (a real redis-server of this
 * test, with AOF) returns, everything carries on without a restart: the job completes, having redone
 * at most one epoch, with its model version registered once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setRedisLog } from '@mlq/queues';
import {
  redisServerMissing,
  startRedisServer,
  type RedisServer,
} from '../../../test/support/redis-server.ts';
import { http, startStack, waitForJob, type JobBody, type Stack } from '../../../test/support/stack.ts';

const missing = redisServerMissing();
if (missing && process.env.CI) throw new Error(`these tests need the local redis-server: ${missing}`);
if (missing) console.log(`skipping the Redis outage tests: ${missing}`);

interface Progress {
  epoch: number;
  /** Set on reports within an epoch; absent on the report that ends one. */
  batch?: number;
}

/** An mlp on 5,000 digits: a few seconds per epoch, long enough to lose Redis in the middle. */
const longJob = (model: string, epochs: number) => ({
  model,
  architecture: 'mlp',
  architectureOptions: { units: [256, 128] },
  dataset: { format: 'mnist', digits: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], limit: 5000 },
  epochs,
  batchSize: 16,
  optimizer: 'adam',
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

// Real training on a shared machine: minutes, not the suite's default 2.
describe.skipIf(missing)('Redis stops while a job trains', { timeout: 360_000 }, () => {
  let redis: RedisServer;
  let stack: Stack;
  const apiLines: string[] = [];
  const get = async (id: string) => (await http<JobBody>(`${stack.url}/v1/jobs/${id}`)).body;
  // Epochs finished (and so checkpointed): a report within an epoch counts the one before it.
  const epochOf = async (id: string) => {
    const p = (await get(id)).progress as Progress | null;
    return p?.epoch === undefined ? 0 : p.epoch - (p.batch === undefined ? 0 : 1);
  };
  const checkpointEpoch = async (id: string) => {
    const file = path.join(fileURLToPath(stack.storeUri), 'runs', id, 'checkpoint.json');
    return (JSON.parse(await readFile(file, 'utf8')) as { epoch: number }).epoch;
  };
  const epochRuns = async (id: string) =>
    (await http<{ logs: string[] }>(`${stack.url}/v1/jobs/${id}/logs`)).body.logs.filter((l) =>
      / epoch \d+\/\d+ loss /.test(l),
    ).length;
  const versionsOf = async (model: string) =>
    (await http<{ versions: unknown[] }>(`${stack.url}/v1/models/${model}`)).body.versions.length;

  beforeAll(async () => {
    setRedisLog((line) => apiLines.push(line));
    redis = await startRedisServer(['--appendonly', 'yes']);
    stack = await startStack('outage', {
      workers: 0,
      redisEnv: { REDIS_URL: redis.url },
      workerEnv: { WORKER_QUEUES: 'fine-tune' },
      apiEnv: { SERVING_THREADS: '1' },
    });
  });
  afterAll(async () => {
    await redis?.start().catch(() => undefined); // stack.stop() deletes its keys
    await stack?.stop();
    await redis?.remove();
    setRedisLog((line) => console.warn(line));
  });

  it('keeps answering what it can, keeps training, and recovers without a restart', async () => {
    const worker = await stack.spawnWorker();
    // A model to serve, loaded into the predict thread before the outage.
    const tiny = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', {
      model: 'served',
      architecture: 'mlp',
      architectureOptions: { units: [8] },
      dataset: { format: 'mnist', digits: [0, 1], limit: 200 },
      epochs: 1,
    });
    expect((await waitForJob(stack.url, tiny.body.id)).state).toBe('completed');
    expect(
      (await http(`${stack.url}/v1/models/served/labels/production`, 'PUT', { version: 1 })).status,
    ).toBe(200);
    const instances = { instances: [Array.from({ length: 784 }, (_, i) => (i % 7) / 7)] };
    // Served by label and by name, as traffic would (a lookup racing the label's own announcement
    // is not cached, so each is asked twice).
    const predict = (route: string) =>
      http<{ predictions: number[][] }>(`${stack.url}/v1/models/${route}:predict`, 'POST', instances);
    const before = await predict('served/labels/production');
    expect(before.status).toBe(200);
    await sleep(200);
    for (const route of ['served/labels/production', 'served', 'served'])
      expect((await predict(route)).status).toBe(200);

    const { body: job } = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', longJob('outage', 4));
    await until('epoch 1', async () => ((await epochOf(job.id)) >= 1 ? true : undefined));
    const progressBefore = await epochOf(job.id);
    const checkpointBefore = await checkpointEpoch(job.id);

    // Redis stops (SIGTERM: it writes its AOF and exits).
    const stopped = performance.now();
    await redis.stop();
    await until('/readyz 503', async () =>
      (await http(`${stack.url}/readyz`)).status === 503 ? true : undefined,
    );
    const readyzMs = performance.now() - stopped;
    expect((await http(`${stack.url}/healthz`)).status).toBe(200);
    for (const [method, route, body] of [
      ['POST', '/v1/jobs/fine-tune', longJob('x', 1)],
      ['GET', `/v1/jobs/${job.id}`, undefined],
      ['GET', '/v1/models/outage', undefined],
      ['PUT', '/v1/models/served/labels/staging', { version: 1 }],
      ['POST', '/v1/models/unknown:predict', instances],
    ] as const) {
      const t0 = performance.now();
      const res = await fetch(`${stack.url}${route}`, {
        method,
        ...(body ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      expect(res.status, `${method} ${route}: ${text}`).toBe(503);
      expect(JSON.parse(text)).toMatchObject({ error: { code: 'unavailable' } });
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(performance.now() - t0).toBeLessThan(2000);
    }
    // The loaded model keeps answering, by label and by name, long after its cache entries expired.
    await sleep(5500);
    for (const route of ['served/labels/production', 'served']) {
      const r = await predict(route);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.predictions).toEqual(before.body.predictions);
    }
    // Training goes on without Redis: the next epoch's checkpoint is written.
    await until('an epoch trained without Redis', async () =>
      (await checkpointEpoch(job.id)) > checkpointBefore ? true : undefined,
    );
    const outageMs = performance.now() - stopped;

    await redis.start();
    const returned = performance.now();
    await until('progress after Redis returned', async () =>
      (await epochOf(job.id)) > progressBefore ? true : undefined,
    );
    const progressMs = performance.now() - returned;
    console.log(
      `Redis stopped → /readyz 503 in ${readyzMs.toFixed(0)} ms; outage ${(outageMs / 1000).toFixed(1)} s; ` +
        `Redis returned → job progress seen again in ${progressMs.toFixed(0)} ms`,
    );
    expect(readyzMs).toBeLessThan(1000);

    const done = await waitForJob(stack.url, job.id, undefined, 240_000);
    expect(done.state, JSON.stringify(done)).toBe('completed');
    expect((done.result as { history: Progress[] }).history.map((h) => h.epoch)).toEqual([1, 2, 3, 4]);
    expect(await epochRuns(job.id)).toBeLessThanOrEqual(5);
    expect(await versionsOf('outage')).toBe(1);

    // One line when Redis went, one when it came back; no stack traces anywhere.
    expect(
      apiLines.filter((l) => l.startsWith('Redis not reachable')),
      apiLines.join('\n'),
    ).toHaveLength(1);
    expect(apiLines.filter((l) => l.startsWith('Redis reachable again'))).toHaveLength(1);
    const out = worker.output();
    expect(out.match(/Redis not reachable/g)?.length, out).toBe(1);
    expect(out).not.toMatch(/^\s+at .+:\d+:\d+\)?$|"stack":/m);
  });

  it('after an outage longer than the job lock, resumes the job with at most one epoch redone and registers it once', async () => {
    for (const w of stack.workers.splice(0)) {
      w.kill('SIGKILL');
      await w.exited;
    }
    // A 3 s lock: an 8 s outage outlives it, as a 20 s one outlives the default 30 s lock's renewal.
    const worker = await stack.spawnWorker({
      WORKER_LOCK_DURATION_MS: '3000',
      WORKER_STALLED_INTERVAL_MS: '1000',
    });
    const { body: job } = await http<JobBody>(
      `${stack.url}/v1/jobs/fine-tune`,
      'POST',
      // Long enough that the outage cannot outlast the training on a quiet machine.
      longJob('long-outage', 10),
    );
    await until('epoch 1', async () => ((await epochOf(job.id)) >= 1 ? true : undefined));
    await redis.stop();
    await sleep(8000);
    await redis.start();
    const done = await waitForJob(stack.url, job.id, undefined, 240_000);
    expect(done.state, JSON.stringify(done)).toBe('completed');
    expect((done.result as { history: Progress[] }).history.map((h) => h.epoch)).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
    ]);
    const runs = await epochRuns(job.id);
    console.log(
      `8 s outage with a 3 s lock: ${runs} epoch runs for 10 epochs, ${done.attempts} attempt(s) counted`,
    );
    // Epochs trained while Redis was away could not log; at most one epoch is redone.
    expect(runs).toBeLessThanOrEqual(11);
    expect(await versionsOf('long-outage')).toBe(1);
    // The worker stopped its own run (so two runs never share the checkpoint) and said so once.
    const out = worker.output();
    expect(out.match(/lost its lock while Redis was away/g)?.length, out).toBe(1);
    expect(out).not.toMatch(/could not renew lock|Missing lock/);
    expect(out).not.toMatch(/^\s+at .+:\d+:\d+\)?$|"stack":/m);
    const logs = (await http<{ logs: string[] }>(`${stack.url}/v1/jobs/${job.id}/logs`)).body.logs;
    expect(
      // A quiet machine can finish all epochs during the outage: the resume is then from the end of the last one.
      logs.some((l) => /resuming from the checkpoint at (the end of )?epoch \d+/.test(l)),
      logs.join('\n'),
    ).toBe(true);
  });

  it('on SIGTERM with Redis away exits within 2 s, leaving a mid-epoch checkpoint the next worker resumes from', async () => {
    for (const w of stack.workers.splice(0)) {
      w.kill('SIGKILL');
      await w.exited;
    }
    const fast = { WORKER_LOCK_DURATION_MS: '3000', WORKER_STALLED_INTERVAL_MS: '1000' };
    const a = await stack.spawnWorker(fast);
    const { body: job } = await http<JobBody>(
      `${stack.url}/v1/jobs/fine-tune`,
      'POST',
      longJob('away-sigterm', 4),
    );
    await until('epoch 1', async () => ((await epochOf(job.id)) >= 1 ? true : undefined));
    await redis.stop();
    await sleep(300);
    const t0 = performance.now();
    a.kill('SIGTERM');
    expect(await a.exited).toBe(0);
    const exitMs = performance.now() - t0;
    const file = path.join(fileURLToPath(stack.storeUri), 'runs', job.id, 'checkpoint.json');
    const cp = JSON.parse(await readFile(file, 'utf8')) as { epoch: number; partial?: { batches: number } };
    console.log(
      `SIGTERM with Redis away and a job running: exit in ${exitMs.toFixed(0)} ms, checkpoint at epoch ${cp.epoch + 1}, batch ${cp.partial?.batches}`,
    );
    expect(exitMs).toBeLessThan(2000);
    expect(cp.partial?.batches).toBeGreaterThan(0);

    await redis.start();
    await stack.spawnWorker(fast);
    const done = await waitForJob(stack.url, job.id, undefined, 240_000);
    expect(done.state, JSON.stringify(done)).toBe('completed');
    const logs = (await http<{ logs: string[] }>(`${stack.url}/v1/jobs/${job.id}/logs`)).body.logs;
    expect(
      logs.some((l) => /resuming from the checkpoint at epoch \d+, batch \d+/.test(l)),
      logs.join('\n'),
    ).toBe(true);
    expect(await epochRuns(job.id)).toBeLessThanOrEqual(5);
    expect(await versionsOf('away-sigterm')).toBe(1);
  });
});
