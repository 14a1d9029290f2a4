/**
 * FETCH_TIMEOUT_MS on s3:// reads of the fetch cache (remote/fetch-cache.ts, storage/s3-store.ts
 * `s3ObjectOf`): each wait (the connection, the answer to the HEAD and to the GET, each pause in the
 * body) is bounded, and past it the job fails at once naming the URI, as for http(s):// URIs. Against
 * s3rver behind TCP relays of this test, one per behaviour (each its own port, so no relay's connection
 * is reused by another's client): one passes everything, one accepts and never answers, one answers
 * the HEAD but not the GET, one sends the GET's headers and a first part of its body and then stops,
 * and one sends the body in slices, each pause shorter than the bound but the whole longer. And a
 * listener that accepts no connection (its accept queue full), so that connecting never ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import {
  connect,
  createServer as createTcpServer,
  type AddressInfo,
  type Server as TcpServer,
  type Socket,
} from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EgressPolicy, FetchLimitError } from '../src/remote/egress.ts';
import { FetchCache } from '../src/remote/fetch-cache.ts';
import { S3ArtifactStore, s3ObjectOf } from '../src/storage/s3-store.ts';
import { isPermanentError } from '../src/util/errors.ts';
import { startS3rver, type S3rver } from '../../../test/support/s3rver.ts';

const bucket = 'mlq-s3-timeout';
/** 64 KiB: the stopped body has a first part and a rest that never comes. */
const data = Buffer.alloc(64 << 10, 7);
/** FETCH_TIMEOUT_MS of these tests. */
const TIMEOUT = 400;
/** Body bytes the `pause` relay lets through before it stops. */
const FIRST_PART = 1024;
/** A test that waits longer than this hangs: without the bound it would wait forever. */
const HANG = 15_000;

/**
 * What a relay does with the answer to a GET once its request went up: `pass` it, send `nothing`, send
 * its headers and FIRST_PART bytes then `pause` for good, or `trickle` it in 4 KiB slices TIMEOUT / 4 apart.
 * `silent` accepts the connection and never answers anything.
 */
type Behaviour = 'pass' | 'silent' | 'nothing' | 'pause' | 'trickle';

let tmp: string;
let s3: S3rver;
const relays: TcpServer[] = [];
const endpoints = {} as Record<Behaviour, string>;
const sockets = new Set<Socket>();
const timers = new Set<NodeJS.Timeout>();
/** The process whose listener accepts nothing, and the port it listens on. */
let deaf: ChildProcess;
let deafPort: number;

const track = (s: Socket) => {
  sockets.add(s);
  s.on('error', () => undefined).on('close', () => sockets.delete(s));
};

/** A relay to s3rver that treats the answer to each GET as `behaviour` says. */
async function startRelay(s3Port: number, behaviour: Behaviour): Promise<string> {
  const relay = createTcpServer((down) => {
    track(down);
    if (behaviour === 'silent') return void down.resume();
    const up = connect(s3Port, '127.0.0.1');
    track(up);
    down.on('close', () => up.destroy());
    // s3rver closes a connection idle for 5 s (its keep-alive timeout): only `pass` says so downstream,
    // the others hold their connection open as a stalled server does.
    if (behaviour === 'pass') up.on('close', () => down.destroy());
    // Requests on a connection go one after the other: once a GET went up, what comes back is its answer.
    let getSent = false;
    down.on('data', (b: Buffer) => {
      if (b.subarray(0, 4).toString() === 'GET ') getSent = true;
      up.write(b);
    });
    let answer = Buffer.alloc(0);
    let headersDone = false;
    up.on('data', (b: Buffer) => {
      if (!getSent || behaviour === 'pass') return void down.write(b);
      if (behaviour === 'nothing' || headersDone) return;
      answer = Buffer.concat([answer, b]);
      const end = answer.indexOf('\r\n\r\n');
      if (end < 0) return;
      headersDone = true;
      down.write(answer.subarray(0, end + 4));
      const body = answer.subarray(end + 4);
      if (behaviour === 'pause') return void down.write(body.subarray(0, FIRST_PART));
      // trickle: the rest of the body as it comes, in slices; s3rver sends all 64 KiB at once.
      let rest = body;
      up.on('data', (more: Buffer) => (rest = Buffer.concat([rest, more])));
      const slice = () => {
        const t = setTimeout(() => {
          timers.delete(t);
          if (down.destroyed) return;
          down.write(rest.subarray(0, 4096));
          rest = rest.subarray(4096);
          if (rest.length > 0) slice();
        }, TIMEOUT / 4);
        timers.add(t);
      };
      slice();
    });
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  relays.push(relay);
  return `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;
}

/**
 * A listener on 127.0.0.1 that never accepts: a child process that listens with a backlog of 1, then
 * blocks its event loop (for 2 minutes, so it ends even if this test cannot stop it). Once two
 * connections wait in its accept queue, the kernel drops every further connection request, so
 * connecting to it does not end.
 */
async function startDeaf(): Promise<void> {
  const code = `const s = require('node:net').createServer().listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
    require('node:fs').writeSync(1, s.address().port + '\\n');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120000);
    process.exit();
  });`;
  deaf = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(deaf.stdout!, 'data')) as [Buffer];
  deafPort = Number(line.toString().trim());
  for (let i = 0; i < 2; i++) {
    const filler = connect(deafPort, '127.0.0.1');
    track(filler);
    await once(filler, 'connect');
  }
}

/** The query of an s3:// URI that names `endpoint` (path-style, a region for signing), as s3rver needs. */
const query = (endpoint: string) => `?endpoint=${endpoint}&region=us-east-1&forcePathStyle=true`;
const uriVia = (b: Behaviour) => `s3://${bucket}/data/blob.bin${query(endpoints[b])}`;
const policy = () => new EgressPolicy({ allowHosts: ['127.0.0.1'], timeoutMs: TIMEOUT, maxBytes: 1 << 20 });
const cacheFor = (p: EgressPolicy, store?: S3ArtifactStore) =>
  new FetchCache({ dir: path.join(tmp, 'fetch', randomUUID()), maxBytes: 1 << 20, policy: p, store });

/** Reads `uri` through a new cache; the error it fails with (or undefined) and how long it took. */
async function read(
  uri: string,
  store?: S3ArtifactStore,
): Promise<{ error?: Error; ms: number; file?: string }> {
  const p = policy();
  const t0 = performance.now();
  try {
    const file = await cacheFor(p, store).get(uri, { holder: 'test' });
    return { file, ms: performance.now() - t0 };
  } catch (e) {
    return { error: e as Error, ms: performance.now() - t0 };
  } finally {
    await p.close();
  }
}

/**
 * `<uri>: no answer within FETCH_TIMEOUT_MS (400 ms; <what>)`, permanent, well before the test's own
 * bound (a request is tried 3 times by the S3 client, so a few bounds pass; a body is not tried again).
 */
function expectTimeout(r: { error?: Error; ms: number }, uri: string, what: RegExp) {
  expect(r.error).toBeInstanceOf(FetchLimitError);
  expect(isPermanentError(r.error)).toBe(true);
  const message = r.error!.message;
  expect(message.startsWith(`${uri}: no answer within FETCH_TIMEOUT_MS (${TIMEOUT} ms; `), message).toBe(
    true,
  );
  expect(message).toMatch(what);
  expect(r.ms).toBeLessThan(5000);
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'mlq-s3-timeout-'));
  s3 = await startS3rver(path.join(tmp, 's3'), bucket);
  // s3rver's key pair and a region through the SDK's chain; no default endpoint: each URI names its own.
  const { AWS_ENDPOINT_URL_S3: _, ...creds } = s3.env;
  Object.assign(process.env, creds);
  const s3Port = Number(new URL(s3.endpoint).port);
  for (const b of ['pass', 'silent', 'nothing', 'pause', 'trickle'] as const)
    endpoints[b] = await startRelay(s3Port, b);
  await new S3ArtifactStore(`s3://${bucket}${query(s3.endpoint)}`).put('data/blob.bin', data);
  await startDeaf();
});

afterAll(async () => {
  for (const t of timers) clearTimeout(t);
  for (const s of sockets) s.destroy();
  await Promise.all(relays.map((r) => new Promise((done) => r.close(done))));
  deaf?.kill();
  await s3?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('FETCH_TIMEOUT_MS on an s3:// read', () => {
  it('lets a read that keeps coming through', async () => {
    const r = await read(uriVia('pass'));
    expect(r.error).toBeUndefined();
    expect(await readFile(r.file!)).toEqual(data);
  });

  it('bounds each pause, not the whole read: a body slower than the bound in all arrives', async () => {
    const r = await read(uriVia('trickle'));
    expect(r.error).toBeUndefined();
    expect(await readFile(r.file!)).toEqual(data);
    // 16 slices TIMEOUT / 4 apart: the read took longer than one bound.
    expect(r.ms).toBeGreaterThan(TIMEOUT);
  });

  it(
    'fails at once when the connection is never accepted',
    async () => {
      const uri = `s3://${bucket}/data/blob.bin${query(`http://127.0.0.1:${deafPort}`)}`;
      expectTimeout(await read(uri), uri, /; the S3 endpoint did not accept a connection\)$/);
    },
    HANG,
  );

  it(
    'fails at once when the server accepts the connection and never answers',
    async () => {
      const uri = uriVia('silent');
      expectTimeout(await read(uri), uri, /; S3 sent no answer to the HEAD request\)$/);
    },
    HANG,
  );

  it(
    'fails at once when the GET is never answered',
    async () => {
      const uri = uriVia('nothing');
      expectTimeout(await read(uri), uri, /; S3 sent no answer to the GET request\)$/);
    },
    HANG,
  );

  it(
    'fails at once when the body stops part way, and keeps nothing of it',
    async () => {
      const uri = uriVia('pause');
      const p = policy();
      const cache = cacheFor(p);
      const t0 = performance.now();
      const error = await cache.get(uri, { holder: 'test' }).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      await p.close();
      expectTimeout(
        { error, ms: performance.now() - t0 },
        uri,
        new RegExp(`; the body stopped after ${FIRST_PART} of ${data.length} bytes\\)$`),
      );
      expect(await cache.entries()).toEqual([]);
    },
    HANG,
  );

  it(
    "bounds a read over the artifact store's connection too, not the store's own client",
    async () => {
      // The operator's store, on the relay that stops bodies; the URI names no endpoint: read over its connection.
      const store = new S3ArtifactStore(`s3://${bucket}/data${query(endpoints.pause)}`);
      const uri = `s3://${bucket}/data/blob.bin`;
      expectTimeout(
        await read(uri, store),
        uri,
        new RegExp(`; the body stopped after ${FIRST_PART} of ${data.length} bytes\\)$`),
      );
      // The store's own client (its uploads, its reads of the job's artifacts) is not the fetch cache's,
      // and keeps the SDK's defaults: no bound on a pause.
      expect(s3ObjectOf(uri, store, { timeoutMs: TIMEOUT }).store.client).not.toBe(store.client);
      const { body } = await store.getStream('blob.bin');
      let failed: unknown;
      body.on('error', (e) => (failed = e)).resume();
      await new Promise((r) => setTimeout(r, 3 * TIMEOUT));
      expect(failed).toBeUndefined();
      expect(body.destroyed).toBe(false);
      body.destroy();
    },
    HANG,
  );
});
