/**
 * The egress policy on the endpoint a user's `s3://…?endpoint=` URI names: the S3 client connects
 * through the policy's own lookup (remote/egress.ts `lookup`, storage/s3-store.ts `s3ObjectOf`), so
 * the address checked is the address connected to, as for http(s):// (remote/fetch-cache.ts). Against
 * s3rver on 127.0.0.1, reached by the name `localhost` through a TCP relay of this test that counts
 * the connections it is given: a refused endpoint gets none. The operator's artifact store keeps the
 * system's lookup, and no redirect takes the SDK to another host.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import {
  connect,
  createServer as createTcpServer,
  type AddressInfo,
  type LookupFunction,
  type Server as TcpServer,
  type Socket,
} from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EgressPolicy, EgressRefusedError } from '../src/remote/egress.ts';
import { FetchCache } from '../src/remote/fetch-cache.ts';
import { S3ArtifactStore, s3ObjectOf } from '../src/storage/s3-store.ts';
import { startS3rver, type S3rver } from '../../../test/support/s3rver.ts';

const bucket = 'mlq-s3-egress';
const csv = 'a,b,label\n1,2,x\n3,4,y\n';
let tmp: string;
let s3: S3rver;
/** A TCP relay on 127.0.0.1 to s3rver, and how many connections it was given. */
let relay: TcpServer;
let relayPort: number;
let relayed = 0;
const sockets = new Set<Socket>();
/** An S3 endpoint of a user that redirects its GETs to `target`, which records what reaches it. */
let redirector: Server;
const redirected: string[] = [];
let target: Server;
const targetSeen: string[] = [];

/** The query of an s3:// URI that names `endpoint` (path-style, a region for signing), as s3rver needs. */
const query = (endpoint: string) => `?endpoint=${endpoint}&region=us-east-1&forcePathStyle=true`;
const policyFor = (allowHosts: string[]) =>
  new EgressPolicy({ allowHosts, timeoutMs: 5000, maxBytes: 1 << 20 });
const cacheFor = (policy: EgressPolicy, store?: S3ArtifactStore) =>
  new FetchCache({ dir: path.join(tmp, 'fetch', randomUUID()), maxBytes: 1 << 20, policy, store });
const portOf = (s: Server | TcpServer) => (s.address() as AddressInfo).port;
const LOOPBACK_REFUSED =
  /^localhost is refused: it resolves to (127\.0\.0\.1|::1), a loopback address; FETCH_ALLOW_HOSTS does not list it$/;

/**
 * A host whose DNS answer changes after the check (rebinding): when `check` resolved it, it was public.
 * Only `check`'s own resolution is skipped; what it checks without DNS, and every lookup, are the policy's.
 */
class RebindingPolicy extends EgressPolicy {
  override async check(raw: string): Promise<URL> {
    return this.checkStatic(raw);
  }
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'mlq-s3-egress-'));
  s3 = await startS3rver(path.join(tmp, 's3'), bucket);
  // s3rver's key pair and a region through the SDK's chain; no default endpoint: each store names its own.
  const { AWS_ENDPOINT_URL_S3: _, ...creds } = s3.env;
  Object.assign(process.env, creds);
  const s3Port = Number(new URL(s3.endpoint).port);
  relay = createTcpServer((down) => {
    relayed++;
    const up = connect(s3Port, '127.0.0.1');
    for (const s of [down, up]) {
      sockets.add(s);
      s.on('error', () => undefined).on('close', () => sockets.delete(s));
    }
    down.pipe(up).pipe(down);
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  relayPort = portOf(relay);
  target = createServer((req, res) => {
    targetSeen.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'content-length': csv.length }).end(csv);
  });
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  redirector = createServer((req, res) => {
    redirected.push(`${req.method} ${req.url!.split('?')[0]}`);
    // The HEAD finds an object; its GET is sent elsewhere.
    if (req.method === 'HEAD')
      return void res.writeHead(200, { 'content-length': csv.length, etag: '"r1"' }).end();
    res.writeHead(307, { location: `http://localhost:${portOf(target)}${req.url}` }).end();
  });
  await new Promise<void>((r) => redirector.listen(0, '127.0.0.1', r));
  // The operator's store: written over the system's lookup.
  await new S3ArtifactStore(`s3://${bucket}${query(s3.endpoint)}`).put('data/train.csv', csv);
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  for (const srv of [redirector, target]) {
    srv?.closeAllConnections();
    await new Promise((r) => srv?.close(r));
  }
  await new Promise((r) => relay?.close(r));
  await s3?.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('an s3:// URI that names its own endpoint', () => {
  it("connects through the policy's lookup: a refused address is never connected to", async () => {
    const policy = policyFor([]);
    const endpoint = `https://localhost:${relayPort}`;
    // Nothing checks first here: only the connection's own lookup can refuse it.
    const lookedUp: string[] = [];
    const lookup: LookupFunction = (hostname, options, callback) => {
      lookedUp.push(hostname);
      policy.lookup(hostname, options, callback);
    };
    const { store, key } = s3ObjectOf(`s3://${bucket}/data/train.csv${query(endpoint)}`, undefined, {
      endpointLookup: lookup,
    });
    const before = relayed;
    const e = await store.head(key).catch((x: unknown) => x as Error);
    expect(e).toBeInstanceOf(EgressRefusedError);
    expect((e as Error).message).toMatch(LOOPBACK_REFUSED);
    expect(lookedUp).toEqual(['localhost']);
    expect(relayed - before).toBe(0);
    await policy.close();
  });

  it('connects through it for every request, a large PUT (Expect: 100-continue) too', async () => {
    const policy = policyFor([]);
    const { store } = s3ObjectOf(
      `s3://${bucket}/up/x.bin${query(`http://localhost:${relayPort}`)}`,
      undefined,
      { endpointLookup: policy.lookup },
    );
    const before = relayed;
    // 3 MiB: above the SDK's 2 MiB threshold for `Expect: 100-continue`.
    const e = await store.put('x.bin', Buffer.alloc(3 << 20)).catch((x: unknown) => x as Error);
    expect(e).toBeInstanceOf(EgressRefusedError);
    expect((e as Error).message).toMatch(LOOPBACK_REFUSED);
    expect(relayed - before).toBe(0);
    await policy.close();
  });

  it('is refused by the fetch cache when connecting, though the check before passed (DNS rebinding)', async () => {
    const policy = new RebindingPolicy({ allowHosts: [], timeoutMs: 5000, maxBytes: 1 << 20 });
    const endpoint = `https://localhost:${relayPort}`;
    // https:// and a name: what can be checked before connecting passes.
    await expect(policy.check(endpoint)).resolves.toBeInstanceOf(URL);
    const before = relayed;
    const e = await cacheFor(policy)
      .get(`s3://${bucket}/data/train.csv${query(endpoint)}`, { holder: 'test' })
      .catch((x: unknown) => x as Error);
    expect(e).toBeInstanceOf(EgressRefusedError);
    expect((e as Error).message).toMatch(LOOPBACK_REFUSED);
    expect(relayed - before).toBe(0);
    await policy.close();
  });

  it('is read when FETCH_ALLOW_HOSTS names it (by name, or by address)', async () => {
    for (const [allow, endpoint] of [
      ['localhost', `http://localhost:${relayPort}`],
      ['127.0.0.1', `http://127.0.0.1:${relayPort}`],
    ] as const) {
      const policy = policyFor([allow]);
      const before = relayed;
      const file = await cacheFor(policy).get(`s3://${bucket}/data/train.csv${query(endpoint)}`, {
        holder: 'test',
      });
      expect(await readFile(file, 'utf8'), allow).toBe(csv);
      expect(relayed - before, allow).toBeGreaterThan(0);
      await policy.close();
    }
  });

  it('plain http:// to a host FETCH_ALLOW_HOSTS does not name is refused before connecting', async () => {
    const policy = policyFor(['127.0.0.0/8']);
    const before = relayed;
    await expect(
      cacheFor(policy).get(`s3://${bucket}/data/train.csv${query(`http://localhost:${relayPort}`)}`, {
        holder: 'test',
      }),
    ).rejects.toThrow(/plain http:\/\/ is only allowed to hosts in FETCH_ALLOW_HOSTS \(localhost is not\)/);
    expect(relayed - before).toBe(0);
    await policy.close();
  });

  it('is not followed to another host when it answers with a redirect', async () => {
    const policy = policyFor(['127.0.0.1', 'localhost']);
    const endpoint = `http://127.0.0.1:${portOf(redirector)}`;
    const e = (await cacheFor(policy)
      .get(`s3://${bucket}/data/train.csv${query(endpoint)}`, { holder: 'test' })
      .catch((x: unknown) => x)) as Error & { cause?: { $metadata?: { httpStatusCode?: number } } };
    expect(e).toBeInstanceOf(Error);
    expect(e.message).toMatch(
      /^cannot fetch s3:\/\/mlq-s3-egress\/data\/train\.csv\?endpoint=http:\/\/127\.0\.0\.1:\d+/,
    );
    // The GET's 307 is the error: neither it nor the HEAD before was followed.
    expect(e.cause?.$metadata?.httpStatusCode).toBe(307);
    expect(redirected).toEqual(['HEAD /mlq-s3-egress/data/train.csv', 'GET /mlq-s3-egress/data/train.csv']);
    expect(targetSeen).toEqual([]);
    await policy.close();
  });
});

describe("the operator's artifact store", () => {
  it("keeps the system's lookup: a URI without an endpoint of its own is read over it, loopback or not", async () => {
    const policy = policyFor([]);
    const store = new S3ArtifactStore(`s3://${bucket}/models${query(`http://localhost:${relayPort}`)}`);
    const file = await cacheFor(policy, store).get(`s3://${bucket}/data/train.csv`, { holder: 'test' });
    expect(await readFile(file, 'utf8')).toBe(csv);
    // So does the SDK's default endpoint (AWS_ENDPOINT_URL_S3) under a query that names none.
    process.env.AWS_ENDPOINT_URL_S3 = `http://localhost:${relayPort}`;
    try {
      const again = await cacheFor(policy).get(`s3://${bucket}/data/train.csv?region=us-east-1`, {
        holder: 'test',
      });
      expect(await readFile(again, 'utf8')).toBe(csv);
    } finally {
      delete process.env.AWS_ENDPOINT_URL_S3;
    }
    await policy.close();
  });
});
