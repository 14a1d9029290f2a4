/**
 * Starting with Redis unreachable, as a new user does when they forget it: the API and a worker as
 * real processes pointed at a port where nothing listens, then a real redis-server started there.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { API_ENTRY, spawnApp, WORKER_ENTRY, type AppProcess } from '../../../test/support/app-process.ts';
import {
  freePort,
  redisServerMissing,
  startRedisServer,
  type RedisServer,
} from '../../../test/support/redis-server.ts';
import { http, uniquePrefix, waitForJob, type JobBody } from '../../../test/support/stack.ts';

const missing = redisServerMissing();
if (missing && process.env.CI) throw new Error(`these tests need the local redis-server: ${missing}`);
if (missing) console.log(`skipping the Redis start-up tests: ${missing}`);

const NOT_REACHABLE =
  /Redis not reachable at redis:\/\/127\.0\.0\.1:\d+: start redis-server or set REDIS_URL/g;

/** One request, with how long its answer took. */
async function timed(url: string, method = 'GET', body?: unknown) {
  const t0 = performance.now();
  const res = await fetch(url, {
    method,
    ...(body !== undefined
      ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }
      : {}),
  });
  const text = await res.text();
  return {
    status: res.status,
    ms: performance.now() - t0,
    body: text,
    retryAfter: res.headers.get('retry-after'),
  };
}

/** What a person sees: one line about Redis, no stack traces, no flood. */
function expectCalmOutput(name: string, out: string): void {
  expect(out.match(NOT_REACHABLE)?.length, `${name} output:\n${out}`).toBe(1);
  expect(out, `${name} printed a stack trace`).not.toMatch(/^\s+at .+\(.+:\d+:\d+\)$|"stack":/m);
  expect(out).not.toMatch(/Unhandled error event/);
  // No flood: request lines aside, only the outage's own lines mention Redis.
  const aboutRedis = out.split('\n').filter((l) => /redis|ECONNREFUSED/i.test(l));
  expect(aboutRedis.length, `${name} output:\n${out}`).toBeLessThanOrEqual(3);
}

describe.skipIf(missing)('starting with Redis unreachable', { timeout: 360_000 }, () => {
  const procs: AppProcess[] = [];
  const servers: RedisServer[] = [];
  let dataDir = '';
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    await Promise.all(servers.map((r) => r.remove()));
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('says so once, answers 503 at once, stops on a signal within 2 s, and recovers when Redis starts', async () => {
    const port = await freePort();
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'mlq-start-down-'));
    const env = {
      REDIS_URL: `redis://127.0.0.1:${port}`,
      QUEUE_PREFIX: uniquePrefix('start-down'),
      ARTIFACT_STORE: pathToFileURL(path.join(dataDir, 'artifacts')).href,
      DATA_ROOTS: dataDir,
      PORT: '0',
      SERVING_THREADS: '1',
      WORKER_QUEUES: 'fine-tune',
      TFJS_BACKEND: process.env.TFJS_BACKEND ?? 'auto',
    };
    const api = spawnApp(API_ENTRY, env);
    const worker = spawnApp(WORKER_ENTRY, env);
    procs.push(api, worker);
    const url = (await api.waitFor(/api listening on (http:\/\/\S+)/))[1]!;
    await api.waitFor(NOT_REACHABLE);
    await worker.waitFor(NOT_REACHABLE);

    expect((await timed(`${url}/healthz`)).status).toBe(200);
    const ready = await timed(`${url}/readyz`);
    expect(ready.status).toBe(503);
    expect(ready.ms).toBeLessThan(1000);
    // The Open Inference Protocol's probe says why in its own words, not the Redis client's.
    const v2 = await timed(`${url}/v2/health/ready`);
    expect(v2.status).toBe(503);
    expect(Number(v2.retryAfter)).toBeGreaterThan(0);
    expect(JSON.parse(v2.body)).toEqual({
      error: expect.stringMatching(/^not ready: the registry \(Redis\) is not reachable \(\w+\)$/),
    });
    const tiny = {
      model: 'tiny',
      architecture: 'mlp',
      architectureOptions: { units: [8] },
      dataset: { format: 'mnist', digits: [0, 1], limit: 100 },
      epochs: 1,
    };
    for (const [method, route, body] of [
      ['POST', '/v1/jobs/fine-tune', tiny],
      ['GET', '/v1/jobs', undefined],
      ['GET', '/v1/jobs/00000000-0000-0000-0000-000000000000', undefined],
      ['GET', '/v1/models', undefined],
      ['GET', '/v1/workers', undefined],
      ['POST', '/v1/models/tiny:predict', { instances: [[0]] }],
    ] as const) {
      const r = await timed(`${url}${route}`, method, body);
      expect(r.status, `${method} ${route}: ${r.body}`).toBe(503);
      expect(JSON.parse(r.body)).toMatchObject({ error: { code: 'unavailable' } });
      expect(Number(r.retryAfter)).toBeGreaterThan(0);
      expect(r.ms).toBeLessThan(2000);
    }
    console.log(`Redis unreachable at start: /readyz 503 in ${ready.ms.toFixed(0)} ms`);

    // A few reconnect rounds later: still one line each.
    await new Promise((r) => setTimeout(r, 4000));
    expectCalmOutput('api', api.output());
    expectCalmOutput('worker', worker.output());

    // Signals while Redis has never been there: both exit within 2 s.
    const api2 = spawnApp(API_ENTRY, env);
    const worker2 = spawnApp(WORKER_ENTRY, env);
    procs.push(api2, worker2);
    await api2.waitFor(NOT_REACHABLE);
    await worker2.waitFor(NOT_REACHABLE);
    const [a2, w2] = await Promise.all([api2.stop('SIGINT'), worker2.stop('SIGTERM')]);
    console.log(
      `Redis unreachable: api SIGINT → exit in ${a2.ms.toFixed(0)} ms, worker SIGTERM → ${w2.ms.toFixed(0)} ms`,
    );
    expect(a2).toMatchObject({ code: 0 });
    expect(w2).toMatchObject({ code: 0 });
    expect(a2.ms).toBeLessThan(2000);
    expect(w2.ms).toBeLessThan(2000);

    // Redis starts: both recover without a restart.
    const redis = await startRedisServer([], { port });
    servers.push(redis);
    const t0 = performance.now();
    while ((await timed(`${url}/readyz`)).status !== 200) await new Promise((r) => setTimeout(r, 50));
    const readyMs = performance.now() - t0;
    await worker.waitFor(/worker \S+ serving fine-tune/, 30_000);
    const workerMs = performance.now() - t0;
    await api.waitFor(/Redis reachable again at redis:\/\/127\.0\.0\.1:\d+ after/, 30_000);
    console.log(
      `Redis started: API ready ${readyMs.toFixed(0)} ms later, worker serving ${workerMs.toFixed(0)} ms later (reconnect backoff ≤ 2 s)`,
    );
    const said = api
      .output()
      .split('\n')
      .filter((l) => /Redis|api listening/.test(l));
    console.log(`what the API said about Redis:\n${said.join('\n')}`);
    const { status, body } = await http<JobBody>(`${url}/v1/jobs/fine-tune`, 'POST', tiny);
    expect(status).toBe(202);
    expect((await waitForJob(url, body.id)).state).toBe('completed');

    // And with Redis there, a signal still stops both within 2 s.
    const [a, w] = await Promise.all([api.stop('SIGTERM'), worker.stop('SIGINT')]);
    console.log(
      `Redis up: api SIGTERM → exit in ${a.ms.toFixed(0)} ms, worker SIGINT → ${w.ms.toFixed(0)} ms`,
    );
    expect(a.ms).toBeLessThan(2000);
    expect(w.ms).toBeLessThan(2000);
    expect(api.output()).not.toMatch(/^\s+at .+\(.+:\d+:\d+\)$|"stack":/m);
    expect(worker.output()).not.toMatch(/^\s+at .+\(.+:\d+:\d+\)$|"stack":/m);
  });

  it('stops on a signal within 2 s while Redis is frozen (connected, never answering)', async () => {
    const frozen = await startRedisServer();
    servers.push(frozen);
    dataDir ||= await mkdtemp(path.join(os.tmpdir(), 'mlq-start-down-'));
    const env = {
      REDIS_URL: frozen.url,
      QUEUE_PREFIX: uniquePrefix('frozen'),
      // Another install (another Redis) than the first test's: its own store.
      ARTIFACT_STORE: pathToFileURL(path.join(dataDir, 'artifacts-frozen')).href,
      DATA_ROOTS: dataDir,
      PORT: '0',
      SERVING_THREADS: '1',
      WORKER_QUEUES: 'fine-tune',
    };
    const api = spawnApp(API_ENTRY, env);
    const worker = spawnApp(WORKER_ENTRY, env);
    procs.push(api, worker);
    await api.waitFor(/api listening on/);
    await worker.waitFor(/worker \S+ serving fine-tune/);
    frozen.freeze(true);
    try {
      const [a, w] = await Promise.all([api.stop('SIGINT'), worker.stop('SIGTERM')]);
      console.log(
        `Redis frozen: api SIGINT → exit in ${a.ms.toFixed(0)} ms, worker SIGTERM → ${w.ms.toFixed(0)} ms`,
      );
      expect(a.ms).toBeLessThan(2000);
      expect(w.ms).toBeLessThan(2000);
    } finally {
      frozen.freeze(false);
    }
  });
});
