/**
 * One artifact store, one install (packages/core/src/storage/install-claim.ts): installs that shared a
 * store deleted each other's dataset bytes, since each counts its references in its own Redis. The API
 * and the worker as real processes, on their own redis-server (restarted empty: `--save ''`), over one
 * store directory.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { API_ENTRY, spawnApp, WORKER_ENTRY, type AppProcess } from '../../../test/support/app-process.ts';
import { closeClient, connect } from '@mlq/queues';
import {
  redisServerMissing,
  startRedisServer,
  type RedisServer,
} from '../../../test/support/redis-server.ts';
import { uniquePrefix } from '../../../test/support/stack.ts';

const missing = redisServerMissing();
if (missing && process.env.CI) throw new Error(`these tests need the local redis-server: ${missing}`);
if (missing) console.log(`skipping the store-claim tests: ${missing}`);

const LISTENING = /api listening on (http:\/\/\S+)/;

describe.skipIf(missing)('an artifact store belongs to one install', { timeout: 300_000 }, () => {
  const procs: AppProcess[] = [];
  const servers: RedisServer[] = [];
  let dataDir = '';
  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    await Promise.all(servers.map((r) => r.remove()));
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });
  const spawn = (entry: string, env: Record<string, string>) => {
    const p = spawnApp(entry, env);
    procs.push(p);
    return p;
  };
  /** The process exits 78 with one `<app>: ARTIFACT_STORE … belongs to another mlq install` message. */
  async function expectRefused(p: AppProcess, app: string, owner: string, self: string) {
    expect(await p.exited, p.output()).toBe(78);
    const out = p.output();
    expect(out).toMatch(
      new RegExp(`^${app}: ARTIFACT_STORE file://\\S+ belongs to another mlq install`, 'm'),
    );
    expect(out).toContain(`QUEUE_PREFIX "${owner}"`);
    expect(out).toContain(`this is QUEUE_PREFIX "${self}"`);
    expect(out).toContain('Give this install its own ARTIFACT_STORE');
    expect(out).toMatch(/delete file:\/\/\S+\/install\.json/);
    expect(out.match(/belongs to another mlq install/g)).toHaveLength(1);
    expect(out, 'a stack trace').not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
  }

  it('the first install claims it; another QUEUE_PREFIX or another Redis is refused; an emptied Redis takes it back', async () => {
    const redis = await startRedisServer();
    servers.push(redis);
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'mlq-store-claim-'));
    const [a, b] = [uniquePrefix('claim-a'), uniquePrefix('claim-b')];
    const base = {
      REDIS_URL: redis.url,
      ARTIFACT_STORE: pathToFileURL(path.join(dataDir, 'artifacts')).href,
      DATA_ROOTS: dataDir,
      PORT: '0',
      HOST: '127.0.0.1',
      SERVING_THREADS: '1',
      WORKER_QUEUES: 'fine-tune',
      LOG_FORMAT: 'json',
      TFJS_BACKEND: process.env.TFJS_BACKEND ?? 'auto',
    };
    const markerFile = path.join(dataDir, 'artifacts', 'install.json');
    const idIn = async (prefix: string) => {
      const c = connect({ kind: 'single', url: redis.url }, { name: 'mlq-test-claim' });
      try {
        return (await c.get(`${prefix}:install`)) ?? undefined;
      } finally {
        await closeClient(c);
      }
    };

    // Install A starts first: the store's marker names it, with the id its Redis keeps.
    const apiA = spawn(API_ENTRY, { ...base, QUEUE_PREFIX: a });
    await apiA.waitFor(LISTENING);
    const marker = JSON.parse(await readFile(markerFile, 'utf8')) as Record<string, string>;
    expect(marker).toMatchObject({ queuePrefix: a, redis: redis.url });
    expect(marker.install).toMatch(/^[0-9a-f-]{36}$/);
    expect(await idIn(a)).toBe(marker.install);

    // Install B (another QUEUE_PREFIX, same Redis, same store): neither its API nor its worker starts.
    await expectRefused(spawn(API_ENTRY, { ...base, QUEUE_PREFIX: b }), 'api', a, b);
    await expectRefused(spawn(WORKER_ENTRY, { ...base, QUEUE_PREFIX: b }), 'worker', a, b);

    // A's own worker is A: it starts.
    const workerA = spawn(WORKER_ENTRY, { ...base, QUEUE_PREFIX: a });
    await workerA.waitFor(/ serving /);
    await workerA.stop();

    // A's Redis comes back empty (no persistence). The same Redis by another address (localhost) is
    // refused, saying how the owner takes its id back, and writes nothing: it must not make this
    // Redis another install's. Then the marker's own address: A again.
    await apiA.stop();
    await redis.stop();
    await redis.start();
    expect(await idIn(a)).toBeUndefined();
    const byName = spawn(WORKER_ENTRY, {
      ...base,
      QUEUE_PREFIX: a,
      REDIS_URL: redis.url.replace('127.0.0.1', 'localhost'),
    });
    expect(await byName.exited, byName.output()).toBe(78);
    expect(byName.output()).toContain('whose Redis holds no install id');
    expect(byName.output()).toContain(`start once with REDIS_URL=${redis.url}`);
    expect(await idIn(a)).toBeUndefined();
    const again = spawn(API_ENTRY, { ...base, QUEUE_PREFIX: a });
    await again.waitFor(LISTENING);
    expect(await idIn(a)).toBe(marker.install);
    await again.stop();

    // B started while Redis is away listens (503 meanwhile), and stops with the message once it answers.
    await redis.stop();
    const late = spawn(API_ENTRY, { ...base, QUEUE_PREFIX: b });
    const url = (await late.waitFor(LISTENING))[1]!;
    expect((await fetch(`${url}/v1/models`)).status).toBe(503);
    await redis.start();
    await expectRefused(late, 'api', a, b);

    // The same QUEUE_PREFIX on another Redis server is another install.
    const other = await startRedisServer();
    servers.push(other);
    await expectRefused(spawn(API_ENTRY, { ...base, REDIS_URL: other.url, QUEUE_PREFIX: a }), 'api', a, a);
    expect(JSON.parse(await readFile(markerFile, 'utf8'))).toEqual(marker);
    const otherId = connect({ kind: 'single', url: other.url }, { name: 'mlq-test-claim' });
    try {
      expect(await otherId.get(`${a}:install`), 'a refused process wrote an install id').toBeNull();
    } finally {
      await closeClient(otherId);
    }
  });
});
