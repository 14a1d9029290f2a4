/**
 * Browser sign-in and what the console needs from the API, over real HTTP with auth on: the session
 * cookie (signed, HttpOnly, SameSite=Strict, expiring, ended by removing its key), cross-site
 * refusals, logout ending the session on the server (and staying ended when Redis loses its data),
 * case-insensitive Bearer, the /ui history fallback
 * (and 404 for missing files), /docs, /v1/events and the history routes.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiEnvSchema, startApi, type RunningApi } from '../src/index.ts';
import { startStack, uniquePrefix, type Stack } from '../../../test/support/stack.ts';
import {
  redisServerMissing,
  startRedisServer,
  type RedisServer,
} from '../../../test/support/redis-server.ts';

const KEY = 'session-test-key-abcdefghijklmnop';
const SECRET = 'a-session-secret-of-at-least-32-characters';

/** A request without following redirects; returns status, headers and text. */
async function req(url: string, init: RequestInit & { cookie?: string } = {}) {
  const headers = new Headers(init.headers);
  if (init.cookie) headers.set('cookie', init.cookie);
  const res = await fetch(url, { ...init, headers, redirect: 'manual' });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

async function login(
  url: string,
  key: string,
): Promise<{ status: number; cookie?: string; setCookie: string }> {
  const r = await req(`${url}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: url },
    body: new URLSearchParams({ key, next: '/ui/jobs' }).toString(),
  });
  const setCookie = r.headers.get('set-cookie') ?? '';
  return { status: r.status, setCookie, cookie: setCookie.split(';')[0] || undefined };
}

describe('browser sign-in and the console routes', () => {
  let stack: Stack;
  let consoleDir: string;
  beforeAll(async () => {
    consoleDir = await mkdtemp(path.join(os.tmpdir(), 'mlq-console-dist-'));
    await mkdir(path.join(consoleDir, 'assets'));
    await writeFile(path.join(consoleDir, 'index.html'), '<!doctype html><div id="app"></div>');
    await writeFile(path.join(consoleDir, 'assets/app-1234.js'), 'console.log(1)');
    stack = await startStack('session', {
      workers: 0,
      apiEnv: { API_KEYS: KEY, SESSION_SECRET: SECRET, CONSOLE_DIR: consoleDir },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    await rm(consoleDir, { recursive: true, force: true });
  });

  it('sends pages to the login page and API calls to 401; Bearer works in any case', async () => {
    const page = await req(`${stack.url}/ui/jobs/abc`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/login?next=%2Fui%2Fjobs%2Fabc');
    for (const p of ['/docs', '/admin/queues'])
      expect((await req(`${stack.url}${p}`, { headers: { accept: 'text/html' } })).status).toBe(303);
    const api = await req(`${stack.url}/v1/jobs`, { headers: { accept: 'application/json' } });
    expect(api.status).toBe(401);
    expect(api.headers.get('www-authenticate')).toBe('Bearer');
    for (const scheme of ['Bearer', 'bearer', 'BEARER'])
      expect(
        (await req(`${stack.url}/v1/jobs`, { headers: { authorization: `${scheme} ${KEY}` } })).status,
      ).toBe(200);
    const form = await req(`${stack.url}/login?next=/ui/models`);
    expect(form.text).toContain('name="key"');
    expect(form.text).not.toContain('<script');
  });

  it('signs in with a key: a signed, HttpOnly, SameSite=Strict cookie holding no key', async () => {
    expect((await login(stack.url, 'not-a-key')).status).toBe(401);
    const ok = await login(stack.url, KEY);
    expect(ok.status).toBe(303);
    expect(ok.setCookie).toMatch(
      /^mlq_session=s%3Av3\.[0-9a-f]{12}\.\d+\.[0-9a-f]{16}\.[0-9a-f]{32}\.[^;]+; Max-Age=43200; Path=\/; Expires=.+; HttpOnly; SameSite=Strict$/,
    );
    expect(ok.setCookie).not.toContain(KEY);
    for (const p of ['/ui/jobs/abc', '/docs', '/admin/queues', '/v1/jobs']) {
      const r = await req(`${stack.url}${p}`, { cookie: ok.cookie, headers: { accept: 'text/html' } });
      expect(r.status, p).toBe(200);
    }
    // A tampered cookie is refused.
    const forged = ok.cookie!.replace(/\.(\d+)\./, (_m, exp: string) => `.${Number(exp) + 1}.`);
    expect((await req(`${stack.url}/v1/jobs`, { cookie: forged })).status).toBe(401);
  });

  it('refuses unsafe requests with the cookie unless they come from this origin', async () => {
    const { cookie } = await login(stack.url, KEY);
    const put = (headers: Record<string, string>) =>
      req(`${stack.url}/v1/models/nope/labels/production`, {
        method: 'PUT',
        cookie,
        headers: { 'content-type': 'application/json', ...headers },
        body: '{"version": 1}',
      });
    expect((await put({ 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await put({ 'sec-fetch-site': 'same-site' })).status).toBe(403);
    expect((await put({ origin: 'http://evil.example' })).status).toBe(403);
    expect((await put({})).status).toBe(403);
    // From the page itself: past auth, to the route (the model does not exist).
    expect((await put({ 'sec-fetch-site': 'same-origin' })).status).toBe(404);
    expect((await put({ origin: stack.url })).status).toBe(404);
    // Safe methods need no check; a Bearer key needs none either.
    expect(
      (await req(`${stack.url}/v1/jobs`, { cookie, headers: { 'sec-fetch-site': 'cross-site' } })).status,
    ).toBe(200);
    // Logging in from another site is refused too (login CSRF).
    const cross = await req(`${stack.url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'cross-site' },
      body: `key=${KEY}`,
    });
    expect(cross.status).toBe(403);
  });

  it('logout ends the session on the server: a copy of the cookie kept from before gets 401', async () => {
    const { cookie } = await login(stack.url, KEY);
    const other = await login(stack.url, KEY);
    expect((await req(`${stack.url}/v1/jobs`, { cookie })).status).toBe(200);
    const out = await req(`${stack.url}/logout`, { method: 'POST', cookie, headers: { origin: stack.url } });
    expect(out.status).toBe(303);
    expect(out.headers.get('location')).toBe('/login');
    expect(out.headers.get('set-cookie')).toMatch(/^mlq_session=;/);
    // The browser dropped it; a copy saved before is refused, on the API and on the pages.
    expect((await req(`${stack.url}/v1/jobs`, { cookie })).status).toBe(401);
    const page = await req(`${stack.url}/ui/jobs`, { cookie, headers: { accept: 'text/html' } });
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/login?next=%2Fui%2Fjobs');
    // Only that session: another sign-in of the same key goes on.
    expect((await req(`${stack.url}/v1/jobs`, { cookie: other.cookie })).status).toBe(200);
    // The revocation lasts as long as the cookie would have (SESSION_TTL_HOURS 12), then goes.
    const revoked = await stack.redis.keys(`${stack.prefix}:session-revoked:*`);
    expect(revoked).toHaveLength(1);
    const ttl = await stack.redis.pttl(revoked[0]!);
    expect(ttl).toBeGreaterThan(12 * 3600_000 - 60_000);
    expect(ttl).toBeLessThanOrEqual(12 * 3600_000);
  });

  it('ends sessions whose key was removed, and expired ones', async () => {
    const { cookie } = await login(stack.url, KEY);
    const base = {
      ...stack.env,
      PORT: '0',
      HOST: '127.0.0.1',
      SESSION_SECRET: SECRET,
      CONSOLE_DIR: consoleDir,
    };
    const other: RunningApi = await startApi(apiEnvSchema.parse({ ...base, API_KEYS: 'another-key' }));
    const short: RunningApi = await startApi(
      apiEnvSchema.parse({ ...base, API_KEYS: KEY, SESSION_TTL_HOURS: '0.0003' }),
    );
    try {
      // Same secret, same cookie: accepted while its key is, refused once the key is gone.
      expect((await req(`${other.url}/v1/jobs`, { cookie })).status).toBe(401);
      const s = await login(short.url, KEY);
      expect((await req(`${short.url}/v1/jobs`, { cookie: s.cookie })).status).toBe(200);
      await new Promise((r) => setTimeout(r, 1300));
      expect((await req(`${short.url}/v1/jobs`, { cookie: s.cookie })).status).toBe(401);
    } finally {
      await other.stop();
      await short.stop();
    }
  });

  it('answers every /ui path with the app, caches hashed assets, serves /docs locally', async () => {
    const auth = { authorization: `Bearer ${KEY}` };
    const bare = await req(`${stack.url}/ui`, { headers: auth });
    expect([bare.status, bare.headers.get('location')]).toEqual([301, '/ui/']);
    for (const p of ['/ui/', '/ui/jobs', '/ui/models/m/versions/3', '/ui/workers']) {
      const r = await req(`${stack.url}${p}`, { headers: auth });
      expect(r.status, p).toBe(200);
      expect(r.text).toContain('<div id="app">');
      expect(r.headers.get('cache-control')).toBe('no-cache');
    }
    const asset = await req(`${stack.url}/ui/assets/app-1234.js`, { headers: auth });
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    // A file the build does not have is a 404, never the app page (a browser would run it as a script).
    for (const p of ['/ui/assets/nope.js', '/ui/assets/nope', '/ui/assets/sub/x.css', '/ui/favicon.ico']) {
      const r = await req(`${stack.url}${p}`, { headers: auth });
      expect([r.status, r.headers.get('content-type')], p).toEqual([404, 'application/json; charset=utf-8']);
      expect(JSON.parse(r.text)).toEqual({
        error: { code: 'not_found', message: `no file ${p} in the console` },
      });
    }
    // Deeper paths are client routes even with a dot: a model may be named so.
    const dotted = await req(`${stack.url}/ui/models/digits.v2`, { headers: auth });
    expect([dotted.status, dotted.text.includes('<div id="app">')]).toEqual([200, true]);
    const docs = await req(`${stack.url}/docs`, { headers: auth });
    expect(docs.text).toContain('src="/docs/swagger-ui-bundle.js"');
    expect(docs.text).not.toMatch(/<script>|https?:\/\//);
    for (const f of ['/docs/swagger-ui-bundle.js', '/docs/swagger-ui.css', '/docs/docs-init.js'])
      expect((await req(`${stack.url}${f}`, { headers: auth })).status, f).toBe(200);
    expect((await req(`${stack.url}/docs/index.html`, { headers: auth })).status).toBe(404);
  });

  it('streams every job event on /v1/events and serves histories', async () => {
    const auth = { authorization: `Bearer ${KEY}` };
    const ctl = new AbortController();
    const res = await fetch(`${stack.url}/v1/events`, { headers: auth, signal: ctl.signal });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.getReader();
    let text = '';
    const until = async (re: RegExp) => {
      while (!re.test(text)) text += new TextDecoder().decode((await reader.read()).value);
    };
    // Accepted (a file:// model that does not exist is now a 400 at submit); no worker runs it here.
    const submitted = await fetch(`${stack.url}/v1/jobs/fine-tune`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'events-probe',
        architecture: 'mlp',
        dataset: { format: 'mnist' },
        epochs: 1,
      }),
    });
    expect(submitted.status, await submitted.clone().text()).toBe(202);
    const { id } = (await submitted.json()) as { id: string };
    await until(new RegExp(`event: state\\ndata: \\{"id":"${id}","type":"fine-tune","state":"waiting"\\}`));
    const job = await stack.api.jobs.get(id);
    await job.updateProgress({ rows: 10, total: 100 });
    await until(/event: progress\ndata: .*"rows":10,"total":100/);
    expect(stack.api.hub.size).toBe(1);
    ctl.abort();
    await expect.poll(() => stack.api.hub.size).toBe(0);

    const h = await req(`${stack.url}/v1/jobs/${id}/history`, { headers: auth });
    expect(JSON.parse(h.text)).toEqual({ epochs: [], points: [] });
    expect(
      (await req(`${stack.url}/v1/jobs/00000000-0000-0000-0000-000000000000/history`, { headers: auth }))
        .status,
    ).toBe(404);
    expect((await req(`${stack.url}/v1/events?type=nope`, { headers: auth })).status).toBe(400);
  });
});

const noRedisServer = redisServerMissing();
if (noRedisServer && process.env.CI)
  throw new Error(`these tests need the local redis-server: ${noRedisServer}`);

describe.skipIf(noRedisServer)('sessions when Redis loses its data', { timeout: 60_000 }, () => {
  let redis: RedisServer;
  let dataDir: string;
  const apis: RunningApi[] = [];
  beforeAll(async () => {
    // A Redis of the test's own, without persistence (like the demo's): a restart empties it.
    redis = await startRedisServer(['--appendonly', 'no']);
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'mlq-session-epoch-'));
    const env = apiEnvSchema.parse({
      REDIS_URL: redis.url,
      QUEUE_PREFIX: uniquePrefix('session-epoch'),
      ARTIFACT_STORE: pathToFileURL(path.join(dataDir, 'artifacts')).href,
      DATA_ROOTS: dataDir,
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      API_KEYS: KEY,
      SESSION_SECRET: SECRET,
    });
    // Two API processes on one Redis, as behind a load balancer: they must agree on the epoch.
    apis.push(await startApi(env), await startApi(env));
  });
  afterAll(async () => {
    await Promise.all(apis.map((a) => a.stop()));
    await redis?.remove();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('refuses every cookie issued before the loss, revoked or not; a new sign-in works', async () => {
    const [a, b] = apis.map((x) => x.url) as [string, string];
    const out = await login(a, KEY);
    const kept = await login(b, KEY);
    // Either process accepts a cookie the other issued.
    expect((await req(`${b}/v1/jobs`, { cookie: out.cookie })).status).toBe(200);
    expect((await req(`${a}/v1/jobs`, { cookie: kept.cookie })).status).toBe(200);
    const bye = await req(`${a}/logout`, { method: 'POST', cookie: out.cookie, headers: { origin: a } });
    expect(bye.status).toBe(303);
    expect((await req(`${a}/v1/jobs`, { cookie: out.cookie })).status).toBe(401);

    // Redis restarts empty: the revocation is gone.
    await redis.stop('SIGKILL');
    await redis.start();
    for (const url of [a, b]) {
      const until = Date.now() + 20_000;
      while ((await req(`${url}/v1/jobs`, { headers: { authorization: `Bearer ${KEY}` } })).status !== 200) {
        if (Date.now() > until) throw new Error(`${url} did not reconnect to Redis`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    for (const url of [a, b]) {
      // The logged-out cookie stays refused, and so does the one never logged out: sign in again.
      expect((await req(`${url}/v1/jobs`, { cookie: out.cookie })).status, url).toBe(401);
      expect((await req(`${url}/v1/jobs`, { cookie: kept.cookie })).status, url).toBe(401);
      const page = await req(`${url}/ui/jobs`, { cookie: out.cookie, headers: { accept: 'text/html' } });
      expect([page.status, page.headers.get('location')]).toEqual([303, '/login?next=%2Fui%2Fjobs']);
    }
    const again = await login(a, KEY);
    expect(again.status).toBe(303);
    expect((await req(`${a}/v1/jobs`, { cookie: again.cookie })).status).toBe(200);
    expect((await req(`${b}/v1/jobs`, { cookie: again.cookie })).status).toBe(200);
  });
});
