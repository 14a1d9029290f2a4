/**
 * The rate limit on real Redis: IETF RateLimit headers, 429 with Retry-After, Redis keys that hold a
 * hash prefix of the API key and never the key, predict spending leased points (one Redis INCRBY per
 * lease, not per request), and the limit shared by two API processes.
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import express from 'express';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiEnvSchema, startApi, type RunningApi } from '../src/index.ts';
import { rateLimit } from '../src/limits/rate-limit.ts';
import { deletePrefix, startStack, type Stack } from '../../../test/support/stack.ts';

const KEY = 'rl-secret-7c1d9e0a52';
const OTHER = 'rl-secret-2b8f6d3e91';
const keyId = (k: string) => createHash('sha256').update(k).digest('hex').slice(0, 12);
const get = (url: string, key: string) => fetch(url, { headers: { authorization: `Bearer ${key}` } });

describe('rate limit', () => {
  let stack: Stack;
  const apis: RunningApi[] = [];
  const prefixes: string[] = [];
  const start = async (extra: Record<string, string>) => {
    // Another QUEUE_PREFIX is another install: it gets its own artifact store (install-claim.ts).
    const own = extra.QUEUE_PREFIX;
    if (own) prefixes.push(own);
    const env = apiEnvSchema.parse({
      ...stack.env,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      API_KEYS: `${KEY}:read,${OTHER}`,
      ...(own ? { ARTIFACT_STORE: pathToFileURL(path.join(stack.dataDir, `artifacts-${own}`)).href } : {}),
      ...extra,
    });
    const api = await startApi(env);
    apis.push(api);
    return api;
  };

  beforeAll(async () => {
    stack = await startStack('ratelimit', { workers: 0 });
  });
  afterAll(async () => {
    for (const a of apis) await a.stop();
    for (const p of prefixes) await deletePrefix(stack.redis, p);
    await stack?.stop();
  });

  it('counts per key across API processes, sends RateLimit-* headers, then 429 with Retry-After', async () => {
    const a = await start({ RATE_LIMIT_PER_MINUTE: '5' });
    const b = await start({ RATE_LIMIT_PER_MINUTE: '5' });
    const remaining: string[] = [];
    for (const api of [a, b, a, b, a]) {
      const res = await get(`${api.url}/v1/models`, KEY);
      expect(res.status).toBe(200);
      expect(res.headers.get('ratelimit-limit')).toBe('5');
      expect(res.headers.get('ratelimit-policy')).toBe('5;w=60');
      const reset = Number(res.headers.get('ratelimit-reset'));
      expect(reset).toBeGreaterThan(0);
      expect(reset).toBeLessThanOrEqual(60);
      remaining.push(res.headers.get('ratelimit-remaining')!);
    }
    expect(remaining).toEqual(['4', '3', '2', '1', '0']);
    const over = await get(`${b.url}/v1/models`, KEY);
    expect(over.status).toBe(429);
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(over.headers.get('ratelimit-remaining')).toBe('0');
    expect(((await over.json()) as { error: { code: string } }).error.code).toBe('rate_limited');
    // Another key has its own budget.
    expect((await get(`${a.url}/v1/models`, OTHER)).status).toBe(200);
    // Public routes are not counted.
    expect((await fetch(`${a.url}/healthz`)).status).toBe(200);

    const keys = await stack.redis.keys(`${stack.prefix}:ratelimit:*`);
    expect(keys.sort()).toEqual(
      [`${stack.prefix}:ratelimit:${keyId(KEY)}`, `${stack.prefix}:ratelimit:${keyId(OTHER)}`].sort(),
    );
    for (const k of keys) {
      expect(k).not.toContain(KEY);
      expect(k).not.toContain(OTHER);
      expect(await stack.redis.get(k)).toMatch(/^\d+$/);
    }
    const metrics = await (await get(`${a.url}/metrics`, OTHER)).text();
    const b2 = await (await get(`${b.url}/metrics`, OTHER)).text();
    expect(metrics + b2).toMatch(/^mlq_rate_limited_requests_total 1$/m);
    await Promise.all([a.stop(), b.stop()]);
    apis.length = 0;
    await stack.redis.del(...keys);
  });

  it('predict spends points leased from Redis: one INCRBY per 1% of the limit, not one per request', async () => {
    const api = await start({ RATE_LIMIT_PER_MINUTE: '1000' }); // leases of 10 points
    const counter = `${stack.prefix}:ratelimit:${keyId(KEY)}`;
    const predict = () =>
      fetch(`${api.url}/v1/models/none:predict`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}` },
        body: '{"instances": [[0]]}',
      });
    const first = await predict();
    expect(first.status).toBe(404); // past the limiter: the model does not exist
    expect(first.headers.get('ratelimit-limit')).toBe('1000');
    expect(await stack.redis.get(counter)).toBe('10');
    for (let i = 0; i < 9; i++) expect((await predict()).status).toBe(404);
    expect(await stack.redis.get(counter)).toBe('10');
    // Concurrent requests past the lease share one refill.
    await Promise.all(Array.from({ length: 10 }, predict));
    expect(await stack.redis.get(counter)).toBe('20');
    // Other routes count one by one, in the same budget.
    const res = await get(`${api.url}/v1/models`, KEY);
    expect(res.headers.get('ratelimit-remaining')).toBe('979');
    expect(await stack.redis.get(counter)).toBe('21');
  });

  it('refuses predict once leases have used up the window, without another round trip', async () => {
    const api = await start({ RATE_LIMIT_PER_MINUTE: '3', QUEUE_PREFIX: `${stack.prefix}-small` });
    const counter = `${stack.prefix}-small:ratelimit:${keyId(OTHER)}`;
    const predict = () =>
      fetch(`${api.url}/v1/models/none:predict`, {
        method: 'POST',
        headers: { authorization: `Bearer ${OTHER}` },
        body: '{"instances": [[0]]}',
      });
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await predict()).status);
    expect(statuses).toEqual([404, 404, 404, 429, 429]);
    // Three leases of 1 point; the third used the window up, so the refusals asked Redis nothing.
    expect(Number(await stack.redis.get(counter))).toBe(3);
    await stack.redis.del(counter);
  });

  it('falls back to the in-memory limit while Redis is unreachable', async () => {
    // A real client pointed at a port where nothing listens: never "ready".
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const { port } = probe.address() as AddressInfo;
    await new Promise((r) => probe.close(r));
    const down = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: null });
    const refused: string[] = [];
    down.on('error', (e: Error) => refused.push(e.message));
    const app = express();
    app.use(
      rateLimit({
        redis: down,
        keyPrefix: 'unreachable:ratelimit',
        perMinute: 2,
        leased: () => false,
        exempt: () => false,
      }),
    );
    app.get('/x', (_req, res) => void res.json({ ok: true }));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/x`;
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await fetch(url)).status);
    expect(statuses).toEqual([200, 200, 429]);
    expect(down.status).not.toBe('ready');
    expect(refused.join()).toMatch(/ECONNREFUSED/);
    server.close();
    down.disconnect();
  });

  it('refuses predict when other routes used the window up, though this process holds no lease', async () => {
    const api = await start({ RATE_LIMIT_PER_MINUTE: '3', QUEUE_PREFIX: `${stack.prefix}-mixed` });
    for (let i = 0; i < 3; i++) expect((await get(`${api.url}/v1/models`, KEY)).status).toBe(200);
    const res = await fetch(`${api.url}/v1/models/none:predict`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}` },
      body: '{"instances": [[0]]}',
    });
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    await stack.redis.del(`${stack.prefix}-mixed:ratelimit:${keyId(KEY)}`);
  });
});
