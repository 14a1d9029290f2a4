/**
 * Scoped keys over real HTTP: every scope against the routes it opens and the ones it does not,
 * Bull Board's read-only mode, security headers, CORS, request ids in the logs, and Idempotency-Key
 * bound to the API key and the body.
 */
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeQueues, createQueues, type Queues } from '@mlq/queues';
import { apiEnvSchema, startApi, type RunningApi } from '../src/index.ts';
import { http, startStack, type JobBody, type Stack } from '../../../test/support/stack.ts';

const READ = 'read-key-0f3b9c2a71';
const SUBMIT = 'submit-key-5d8e1a6b40';
const ADMIN = 'admin-key-c47f0e92b3';
const LEGACY = 'legacy-key-93ab27d1e5';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
// The admin key is configured only by its hash.
const API_KEYS = `${READ}:read,${SUBMIT}:submit,sha256:${sha(ADMIN)}:admin,${LEGACY}`;

const job = {
  model: 'm',
  architecture: 'mlp',
  dataset: { format: 'mnist', digits: [0, 1], limit: 50 },
  epochs: 1,
};
const as = (key: string) => ({ authorization: `Bearer ${key}` });

interface BoardQueues {
  queues: { name: string; readOnlyMode: boolean }[];
}

describe('scoped API keys', () => {
  let stack: Stack;
  let api: RunningApi;
  let url: string;
  let queues: Queues;
  const lines: Record<string, unknown>[] = [];

  beforeAll(async () => {
    stack = await startStack('auth', { workers: 0 });
    // A second API on the same prefix with keys, logging into `lines`.
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const l of chunk.toString().split('\n').filter(Boolean))
          lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    const env = apiEnvSchema.parse({
      ...stack.env,
      PORT: '0',
      HOST: '127.0.0.1',
      API_KEYS,
      CORS_ORIGINS: 'https://console.example',
    });
    api = await startApi(env, { logger: pino({ name: 'api', level: 'info' }, sink) });
    url = api.url;
    queues = createQueues(stack.redis, stack.prefix);
  });
  afterAll(async () => {
    await closeQueues(queues);
    await api?.stop();
    await stack?.stop();
  });

  it('asks for a key on every route but /healthz and /openapi.json', async () => {
    expect((await http(`${url}/healthz`)).status).toBe(200);
    expect((await http(`${url}/openapi.json`)).status).toBe(200);
    const res = await fetch(`${url}/v1/jobs`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect((await http(`${url}/v1/jobs`, 'GET', undefined, as('not-a-key'))).status).toBe(401);
    expect((await http(`${url}/metrics`)).status).toBe(401);
    expect((await http(`${url}/admin/queues/api/queues`)).status).toBe(401);
    // The scheme name is case-insensitive.
    const lower = await http(`${url}/v1/jobs`, 'GET', undefined, { authorization: `bearer ${READ}` });
    expect(lower.status).toBe(200);
  });

  it('read: GET routes, predict and a read-only Bull Board; nothing that changes state', async () => {
    for (const path of ['/v1/jobs', '/v1/models', '/v1/workers', '/readyz', '/metrics'])
      expect((await http(`${url}${path}`, 'GET', undefined, as(READ))).status, path).toBe(200);
    // Predict is a read: the model is missing (404), but the key may ask.
    const p = await http(`${url}/v1/models/nope:predict`, 'POST', { instances: [[1]] }, as(READ));
    expect(p.status).toBe(404);
    const submit = await fetch(`${url}/v1/jobs/fine-tune`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...as(READ) },
      body: JSON.stringify(job),
    });
    expect(submit.status).toBe(403);
    expect(submit.headers.get('www-authenticate')).toBe('Bearer error="insufficient_scope", scope="submit"');
    expect(((await submit.json()) as { error: { code: string } }).error.code).toBe('forbidden');
    expect((await http(`${url}/v1/jobs/x`, 'DELETE', undefined, as(READ))).status).toBe(403);
    expect((await http(`${url}/v1/jobs/x/retry`, 'POST', undefined, as(READ))).status).toBe(403);
    expect((await http(`${url}/v1/datasets`, 'POST', {}, as(READ))).status).toBe(403);
    expect((await http(`${url}/v1/models/m/labels/prod`, 'PUT', { version: 1 }, as(READ))).status).toBe(403);
    const board = await http<BoardQueues>(`${url}/admin/queues/api/queues`, 'GET', undefined, as(READ));
    expect(board.status).toBe(200);
    expect(board.body.queues.length).toBeGreaterThan(0);
    expect(board.body.queues.every((q) => q.readOnlyMode)).toBe(true);
    const pause = await http(`${url}/admin/queues/api/queues/fine-tune/pause`, 'PUT', undefined, as(READ));
    expect(pause.status).toBe(403);
    expect(await queues['fine-tune'].isPaused()).toBe(false);
  });

  it('submit: submits, cancels and retries jobs; labels and Bull Board actions stay closed', async () => {
    const created = await http<JobBody>(`${url}/v1/jobs/fine-tune`, 'POST', job, as(SUBMIT));
    expect(created.status).toBe(202);
    // Retry of a waiting job is a 409 (wrong state), not a 403: the scope lets it through.
    expect(
      (await http(`${url}/v1/jobs/${created.body.id}/retry`, 'POST', undefined, as(SUBMIT))).status,
    ).toBe(409);
    const cancel = await http<{ state: string }>(
      `${url}/v1/jobs/${created.body.id}`,
      'DELETE',
      undefined,
      as(SUBMIT),
    );
    expect(cancel).toMatchObject({ status: 202, body: { state: 'removed' } });
    expect((await http(`${url}/v1/jobs`, 'GET', undefined, as(SUBMIT))).status).toBe(200);
    const label = await http(`${url}/v1/models/m/labels/prod`, 'PUT', { version: 1 }, as(SUBMIT));
    expect(label.status).toBe(403);
    expect((await http(`${url}/v1/models/m/labels/prod`, 'DELETE', undefined, as(SUBMIT))).status).toBe(403);
    const board = await http<BoardQueues>(`${url}/admin/queues/api/queues`, 'GET', undefined, as(SUBMIT));
    expect(board.body.queues.every((q) => q.readOnlyMode)).toBe(true);
  });

  it('admin (configured as a SHA-256): labels, deletes and Bull Board actions', async () => {
    // The model does not exist: 404 from the registry, past the scope check.
    const label = await http(`${url}/v1/models/m/labels/prod`, 'PUT', { version: 1 }, as(ADMIN));
    expect(label.status).toBe(404);
    expect((await http(`${url}/v1/models/m/labels/prod`, 'DELETE', undefined, as(ADMIN))).status).not.toBe(
      403,
    );
    const board = await http<BoardQueues>(`${url}/admin/queues/api/queues`, 'GET', undefined, as(ADMIN));
    expect(board.body.queues.every((q) => !q.readOnlyMode)).toBe(true);
    const queue = queues.evaluate;
    const pause = await http(`${url}/admin/queues/api/queues/evaluate/pause`, 'PUT', undefined, as(ADMIN));
    expect(pause.status).toBeLessThan(300);
    expect(await queue.isPaused()).toBe(true);
    await http(`${url}/admin/queues/api/queues/evaluate/resume`, 'PUT', undefined, as(ADMIN));
    expect(await queue.isPaused()).toBe(false);
    // The hashed form matches only the key, never the hash presented as a key.
    expect((await http(`${url}/v1/jobs`, 'GET', undefined, as(sha(ADMIN)))).status).toBe(401);
  });

  it('a bare key (no scope) keeps every scope, as API_KEYS meant before scopes', async () => {
    expect((await http(`${url}/v1/jobs/fine-tune`, 'POST', job, as(LEGACY))).status).toBe(202);
    const board = await http<BoardQueues>(`${url}/admin/queues/api/queues`, 'GET', undefined, as(LEGACY));
    expect(board.body.queues.every((q) => !q.readOnlyMode)).toBe(true);
  });

  it('sends helmet security headers, and CORS only to the configured origin', async () => {
    const res = await fetch(`${url}/healthz`, { headers: { origin: 'https://console.example' } });
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'self'");
    // Plain-http installs keep loading Bull Board's scripts over http.
    expect(csp).not.toContain('upgrade-insecure-requests');
    // Fonts and stylesheets from this server only: helmet's default also allows any https: host.
    expect(csp).toContain("font-src 'self' data:");
    expect(csp).toContain("style-src 'self' 'unsafe-inline'");
    expect(csp).not.toContain('https:');
    expect(res.headers.get('strict-transport-security')).toMatch(/max-age=/);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://console.example');
    const other = await fetch(`${url}/healthz`, { headers: { origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    // The stack's own API has no CORS_ORIGINS: no CORS headers at all.
    const off = await fetch(`${stack.url}/healthz`, { headers: { origin: 'https://console.example' } });
    expect(off.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('puts a request id on every request line, honouring X-Request-Id, and never logs the key', async () => {
    const res = await fetch(`${url}/v1/jobs?limit=1`, {
      headers: { ...as(READ), 'x-request-id': 'trace-42.a' },
    });
    expect(res.headers.get('x-request-id')).toBe('trace-42.a');
    const fresh = await fetch(`${url}/v1/models`, { headers: as(READ) });
    const freshId = fresh.headers.get('x-request-id');
    expect(freshId).toMatch(/^[0-9a-f-]{36}$/);
    // An id that could break a log line is replaced.
    const bad = await fetch(`${url}/v1/models`, { headers: { ...as(READ), 'x-request-id': 'a b {"x":1}' } });
    expect(bad.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    await new Promise((r) => setTimeout(r, 50));
    const line = lines.find((l) => l.reqId === 'trace-42.a');
    expect(line).toMatchObject({
      name: 'api',
      msg: 'request completed',
      req: { method: 'GET', url: '/v1/jobs?limit=1' },
    });
    expect(line?.keyId).toBe(sha(READ).slice(0, 12));
    expect(lines.some((l) => l.reqId === freshId)).toBe(true);
    const requestLines = lines.filter((l) => l.req !== undefined);
    expect(requestLines.every((l) => typeof l.reqId === 'string')).toBe(true);
    const all = JSON.stringify(lines);
    for (const key of [READ, SUBMIT, ADMIN, LEGACY]) expect(all).not.toContain(key);
  });
});

describe('Idempotency-Key', () => {
  let stack: Stack;
  let api: RunningApi;
  beforeAll(async () => {
    stack = await startStack('idem', { workers: 0 });
    const env = apiEnvSchema.parse({
      ...stack.env,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      API_KEYS,
    });
    api = await startApi(env);
  });
  afterAll(async () => {
    await api?.stop();
    await stack?.stop();
  });

  const submit = (body: unknown, key: string, idem: string) =>
    http<JobBody & { error?: { code: string; details: { field: string }[] } }>(
      `${api.url}/v1/jobs/fine-tune`,
      'POST',
      body,
      { ...as(key), 'idempotency-key': idem },
    );

  it('returns the first job for the same body, 422 for another body, and is scoped to the API key', async () => {
    const first = await submit(job, SUBMIT, 'order-1');
    expect(first.status).toBe(202);
    // The same fields in another order and spacing are the same body.
    const reordered = `{ "epochs": 1, "dataset": {"limit": 50, "digits": [0, 1], "format": "mnist"}, "architecture": "mlp", "model": "m" }`;
    const again = await submit(reordered, SUBMIT, 'order-1');
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    const other = await submit({ ...job, epochs: 2 }, SUBMIT, 'order-1');
    expect(other.status).toBe(422);
    expect(other.body.error).toMatchObject({
      code: 'idempotency_key_reused',
      details: [{ field: 'Idempotency-Key' }],
    });
    // Another API key has its own namespace: the same Idempotency-Key makes a new job.
    const mine = await submit(job, LEGACY, 'order-1');
    expect(mine.status).toBe(202);
    expect(mine.body.id).not.toBe(first.body.id);
    // No secret in the Redis key names.
    const keys = await stack.redis.keys(`${stack.prefix}:idempotency:*`);
    expect(keys).toHaveLength(2);
    for (const k of keys) for (const secret of [SUBMIT, LEGACY]) expect(k).not.toContain(secret);
    expect(keys).toContain(`${stack.prefix}:idempotency:${sha(SUBMIT).slice(0, 12)}:order-1`);
  });
});
