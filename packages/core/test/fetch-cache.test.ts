/**
 * The egress policy and the worker's fetch cache against a real HTTP server on 127.0.0.1 and real
 * files: which addresses are refused, revalidation by ETag (a 304 is a cache hit), and eviction of the
 * least recently used entries by size, never of one a job holds.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EgressPolicy, EgressRefusedError, FetchLimitError, egressGet } from '../src/remote/egress.ts';
import { createServer as createTcpServer } from 'node:net';
import { openDataset } from '../src/data/open.ts';
import { FetchCache } from '../src/remote/fetch-cache.ts';
import { uriResolver } from '../src/remote/resolve-uri.ts';
import { DataError } from '../src/util/errors.ts';
import { makeZip, png } from './fixtures/archives.ts';

let dir: string;
let server: Server;
let site: string;
/** Requests per path, with the If-None-Match each carried. */
const seen: { path: string; ifNoneMatch?: string | undefined }[] = [];
const bodies: Record<string, { body: Buffer; etag?: string }> = {
  '/a.bin': { body: Buffer.alloc(1000, 1), etag: '"a1"' },
  '/b.bin': { body: Buffer.alloc(1000, 2), etag: '"b1"' },
  '/c.bin': { body: Buffer.alloc(1000, 3), etag: '"c1"' },
  '/plain.bin': { body: Buffer.alloc(10, 4) },
  '/bad.csv': { body: Buffer.from('a,b,label\n1,hello,x\n') },
  '/big-image.zip': {
    body: makeZip([
      { name: 'cat/1.png', data: png(1) },
      { name: 'dog/big.png', data: png(1, 40, 30), deflate: true },
    ]),
  },
};
/** Entries are ordered by last use as the file system stamps it: a few ms apart, so no two tie. */
const tick = () => new Promise((r) => setTimeout(r, 15));
const policyFor = (o: Partial<ConstructorParameters<typeof EgressPolicy>[0]> = {}) =>
  new EgressPolicy({ allowHosts: ['127.0.0.1'], timeoutMs: 5000, maxBytes: 1 << 20, ...o });

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'mlq-fetch-cache-'));
  server = createServer((req: IncomingMessage, res) => {
    const p = req.url!;
    seen.push({ path: p, ifNoneMatch: req.headers['if-none-match'] });
    if (p === '/to-metadata') {
      res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' });
      return void res.end();
    }
    if (p === '/hop') {
      res.writeHead(307, { location: '/a.bin' });
      return void res.end();
    }
    if (p === '/stall') return; // never answers: only FETCH_TIMEOUT_MS ends the wait
    if (p === '/endless') {
      // 3 MiB without a Content-Length: only counting the bytes can stop it.
      res.writeHead(200);
      for (let i = 0; i < 48; i++) res.write(Buffer.alloc(65536));
      return void res.end();
    }
    const f = bodies[p];
    if (!f) return void res.writeHead(404).end();
    if (f.etag && req.headers['if-none-match'] === f.etag) return void res.writeHead(304).end();
    res.writeHead(200, { 'content-length': f.body.length, ...(f.etag ? { etag: f.etag } : {}) });
    res.end(f.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  site = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

describe('the egress policy', () => {
  const refusal = (p: EgressPolicy, url: string) => {
    try {
      p.checkStatic(url);
      return undefined;
    } catch (e) {
      expect(e).toBeInstanceOf(EgressRefusedError);
      return (e as Error).message;
    }
  };

  it('refuses every non-public address by default, in any spelling, and plain http://', () => {
    const p = policyFor({ allowHosts: [] });
    const cases: [string, RegExp][] = [
      ['https://169.254.169.254/latest/meta-data/', /link-local/],
      ['https://127.0.0.1/x', /loopback/],
      ['https://2130706433/x', /127\.0\.0\.1 is a loopback/],
      ['https://0x7f.1/x', /loopback/],
      ['https://[::1]/x', /loopback/],
      ['https://[::ffff:127.0.0.1]/x', /loopback/],
      ['https://[::ffff:a9fe:a9fe]/x', /link-local/],
      ['https://[fe80::1]/x', /link-local/],
      ['https://10.1.2.3/x', /private/],
      ['https://172.16.0.1/x', /private/],
      ['https://192.168.1.1/x', /private/],
      ['https://100.64.0.1/x', /carrier-grade NAT/],
      ['https://[fd00::1]/x', /unique-local/],
      ['https://0.0.0.0/x', /unspecified/],
      ['https://224.0.0.1/x', /multicast/],
      ['http://93.184.215.14/x', /plain http:\/\/ is only allowed to hosts in FETCH_ALLOW_HOSTS/],
      ['ftp://93.184.215.14/x', /only https:\/\//],
    ];
    for (const [url, why] of cases) expect(refusal(p, url), url).toMatch(why);
    expect(refusal(p, 'https://93.184.215.14/x.csv')).toBeUndefined();
    expect(refusal(p, 'https://[2606:2800:220:1::1]/x.csv')).toBeUndefined();
  });

  it('allows what FETCH_ALLOW_HOSTS lists: names, addresses and CIDRs, http:// too', () => {
    const p = policyFor({ allowHosts: ['minio', '10.0.0.0/8', '::1', '127.0.0.1'] });
    expect(refusal(p, 'http://minio:9000/bucket/x')).toBeUndefined();
    expect(refusal(p, 'http://10.20.30.40/x')).toBeUndefined();
    expect(refusal(p, 'https://[::ffff:10.0.0.1]/x')).toBeUndefined();
    expect(refusal(p, 'http://[::1]:8080/x')).toBeUndefined();
    expect(refusal(p, 'http://2130706433/x')).toBeUndefined();
    expect(refusal(p, 'https://11.0.0.1/x')).toBeUndefined();
    expect(refusal(p, 'http://11.0.0.1/x')).toMatch(/plain http/);
    expect(refusal(p, 'https://192.168.0.1/x')).toMatch(/private/);
  });

  it('checks what a host name resolves to (localhost is loopback)', async () => {
    const p = policyFor({ allowHosts: [] });
    await expect(p.check('https://localhost/x.csv')).rejects.toThrow(/localhost resolves to .* loopback/);
    await expect(
      policyFor({ allowHosts: ['localhost'] }).check('https://localhost/x.csv'),
    ).resolves.toBeTruthy();
  });

  it('checks the address each connection resolves to, before connecting', async () => {
    // https and a host name pass the static check; the connection's own lookup finds loopback.
    const port = (server.address() as AddressInfo).port;
    const e = await egressGet(`https://localhost:${port}/a.bin`, policyFor({ allowHosts: [] })).catch(
      (x: unknown) => x as Error,
    );
    expect(e).toBeInstanceOf(EgressRefusedError);
    expect((e as Error).message).toMatch(
      /^localhost is refused: it resolves to (127\.0\.0\.1|::1), a loopback address/,
    );
  });

  it('checks every redirect before following it', async () => {
    const p = policyFor();
    const e = await egressGet(`${site}/to-metadata`, p).catch((x: unknown) => x as Error);
    expect(e).toBeInstanceOf(EgressRefusedError);
    expect((e as Error).message).toMatch(
      /169\.254\.169\.254\/latest\/meta-data\/: plain http:\/\/ .*\(redirected from http:\/\/127\.0\.0\.1:\d+\/to-metadata\)/,
    );
    const ok = await egressGet(`${site}/hop`, p);
    expect(ok.status).toBe(200);
    expect(ok.url).toBe(`${site}/a.bin`);
    expect(Buffer.concat(await ok.body.toArray())).toEqual(bodies['/a.bin']!.body);
    await p.close();
  });
});

describe('the fetch cache', () => {
  const count = (p: string) => seen.filter((s) => s.path === p).length;

  it('fetches once, then revalidates by ETag: a 304 is a cache hit', async () => {
    const lines: string[] = [];
    const cache = new FetchCache({
      dir: path.join(dir, 'revalidate'),
      maxBytes: 1 << 20,
      policy: policyFor(),
    });
    const before = count('/a.bin');
    const p1 = await cache.get(`${site}/a.bin`, { holder: 'job-1', log: (l) => lines.push(l) });
    expect(await readFile(p1)).toEqual(bodies['/a.bin']!.body);
    const p2 = await cache.get(`${site}/a.bin`, { holder: 'job-2', log: (l) => lines.push(l) });
    expect(p2).toBe(p1);
    expect(count('/a.bin') - before).toBe(2);
    expect(seen.filter((s) => s.path === '/a.bin').at(-1)!.ifNoneMatch).toBe('"a1"');
    expect(lines[0]).toMatch(
      /^fetched http:\/\/127\.0\.0\.1:\d+\/a\.bin: 0\.0 MiB in [\d.]+ s \(ETag "a1"\)$/,
    );
    expect(lines[1]).toMatch(/^cache hit: http:\/\/127\.0\.0\.1:\d+\/a\.bin \(ETag "a1", 0\.0 MiB\)$/);
    // Changed on the server: a new entry with the new bytes.
    bodies['/a.bin'] = { body: Buffer.alloc(1000, 9), etag: '"a2"' };
    const p3 = await cache.get(`${site}/a.bin`, { holder: 'job-3' });
    expect(p3).not.toBe(p1);
    expect(await readFile(p3)).toEqual(bodies['/a.bin']!.body);
  });

  it('gives a later attempt of a job the copy its first attempt read, asking nothing', async () => {
    const cache = new FetchCache({ dir: path.join(dir, 'attempts'), maxBytes: 1 << 20, policy: policyFor() });
    const lines: string[] = [];
    const first = await cache.get(`${site}/b.bin`, { holder: '1-job-9', job: 'job-9' });
    await cache.release('1-job-9');
    const before = count('/b.bin');
    const retry = await cache.get(`${site}/b.bin`, {
      holder: '2-job-9',
      job: 'job-9',
      log: (l) => lines.push(l),
    });
    expect(retry).toBe(first);
    expect(count('/b.bin')).toBe(before);
    expect(lines).toEqual([
      expect.stringMatching(
        /^cache hit: .*\/b\.bin \(ETag "b1", 0\.0 MiB; the copy an earlier attempt of this job read\)$/,
      ),
    ]);
  });

  it('stops a body past FETCH_MAX_MB and leaves nothing behind', async () => {
    const cache = new FetchCache({
      dir: path.join(dir, 'limit'),
      maxBytes: 1 << 30,
      policy: policyFor({ maxBytes: 1 << 20 }),
    });
    const e = await cache.get(`${site}/endless`, { holder: 'job' }).then(
      () => undefined,
      (x: unknown) => x as Error,
    );
    expect(e).toBeInstanceOf(FetchLimitError);
    expect(e!.message).toMatch(/is larger than FETCH_MAX_MB \(more than 1048576 bytes/);
    expect(await cache.entries()).toEqual([]);
  });

  it('gives up on a server that does not answer within FETCH_TIMEOUT_MS, for good', async () => {
    const cache = new FetchCache({
      dir: path.join(dir, 'timeout'),
      maxBytes: 1 << 20,
      policy: policyFor({ timeoutMs: 300 }),
    });
    const t0 = performance.now();
    const e = await cache.get(`${site}/stall`, { holder: 'job' }).then(
      () => undefined,
      (x: unknown) => x as Error,
    );
    expect(e).toBeInstanceOf(FetchLimitError);
    expect(e!.message).toMatch(/\/stall: no answer within FETCH_TIMEOUT_MS \(300 ms; /);
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it('evicts the least recently used entries past maxBytes, never one a job holds', async () => {
    const cache = new FetchCache({ dir: path.join(dir, 'evict'), maxBytes: 2500, policy: policyFor() });
    const uri = (n: string) => `${site}/${n}.bin`;
    const pathA = await cache.get(uri('a'), { holder: 'job-a' });
    await cache.release('job-a');
    await tick();
    // b stays held by a running job (this process) for the whole test.
    await cache.get(uri('b'), { holder: 'job-b' });
    await tick();
    await cache.get(uri('c'), { holder: 'job-c' });
    await cache.release('job-c');
    // 3000 bytes > 2500: a, the least recently used entry no job holds, is gone.
    let left = (await cache.entries()).map((e) => e.uri);
    expect(left).toEqual([uri('b'), uri('c')]);
    await expect(stat(pathA)).rejects.toThrow();
    // a again: the oldest is b, held, so c goes instead.
    await tick();
    await cache.get(uri('a'), { holder: 'job-a2' });
    left = (await cache.entries()).map((e) => e.uri);
    expect(left).toEqual([uri('b'), uri('a')]);
    expect((await cache.entries()).reduce((s, e) => s + e.size, 0)).toBe(2000);
    // Released, b is evictable too.
    await cache.release('job-b');
    await tick();
    await cache.get(uri('c'), { holder: 'job-c2' });
    left = (await cache.entries()).map((e) => e.uri);
    expect(left).toEqual([uri('a'), uri('c')]);
  });
});

describe('what a failed fetch or read says', () => {
  const cache = () =>
    new FetchCache({ dir: path.join(dir, `msgs-${Math.random()}`), maxBytes: 1 << 20, policy: policyFor() });

  it('a network error names the URI, its password redacted', async () => {
    const err = await cache()
      .get('http://user:secret@127.0.0.1:1/x.csv', { holder: 't' })
      .catch((e: Error) => e);
    expect((err as Error).message).toBe(
      'cannot fetch http://***@127.0.0.1:1/x.csv: connect ECONNREFUSED 127.0.0.1:1',
    );
    expect((err as Error).message).not.toContain('secret');
  });

  it('a port that does not speak HTTP (a Redis, say) is named too', async () => {
    const sockets = new Set<import('node:net').Socket>();
    const junk = createTcpServer((s) => {
      sockets.add(s);
      s.end('-ERR unknown command\r\n');
    });
    await new Promise<void>((r) => junk.listen(0, '127.0.0.1', r));
    try {
      const uri = `http://127.0.0.1:${(junk.address() as AddressInfo).port}/`;
      const err = await cache()
        .get(uri, { holder: 't' })
        .catch((e: Error) => e);
      expect((err as Error).message).toMatch(new RegExp(`^cannot fetch ${uri}: \\S`));
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => junk.close(r));
    }
  }, 15_000);

  it('an archive with an image over IMAGE_MAX_PIXELS is refused before it is extracted, naming the entry', async () => {
    const c = new FetchCache({
      dir: path.join(dir, 'pixels'),
      maxBytes: 1 << 20,
      policy: policyFor(),
      imageMaxPixels: 1000,
    });
    const err = await c.get(`${site}/big-image.zip`, { holder: 't', extract: true }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as Error).message).toBe(
      'archive entry "dog/big.png": the PNG is 40x30 pixels, more than the 1000 IMAGE_MAX_PIXELS allows',
    );
    expect(await c.entries()).toEqual([]);
  });

  it('a bad row of a fetched CSV is named by its URL and line, not the cache path', async () => {
    const locate = uriResolver({ dataRoots: [], fetch: { cache: cache(), holder: 't' } });
    const src = openDataset({ format: 'csv', uri: `${site}/bad.csv` }, { dataRoots: [], locate });
    await expect(src.info()).rejects.toThrow(`${site}/bad.csv, line 2: column "b" is not a number: "hello"`);
  });
});
