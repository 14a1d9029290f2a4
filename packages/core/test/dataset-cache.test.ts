/**
 * Uploaded datasets on a worker are entries of the same bounded cache as fetched files
 * (remote/fetch-cache.ts): copied from a real S3-compatible server (s3rver) or extracted from a file
 * store, with real files and real Redis, one WORKER_CACHE_MB for both kinds, the least recently used
 * entries evicted first, and never one a running job holds.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { datasetLocator } from '../src/datasets/locate.ts';
import { ingestDataset } from '../src/datasets/ingest.ts';
import { DatasetRegistry } from '../src/registry/dataset-registry.ts';
import { EgressPolicy, FetchLimitError } from '../src/remote/egress.ts';
import { FetchCache } from '../src/remote/fetch-cache.ts';
import type { ArtifactStore } from '../src/storage/artifact-store.ts';
import { FileArtifactStore } from '../src/storage/file-store.ts';
import { S3ArtifactStore } from '../src/storage/s3-store.ts';
import { startS3rver, type S3rver } from '../../../test/support/s3rver.ts';
import { deletePrefix, REDIS_URL } from '../../../test/support/stack.ts';
import { makeZip, png } from './fixtures/archives.ts';

const prefix = `test-dataset-cache-${randomUUID().slice(0, 8)}`;
let redis: Redis;
let tmp: string;
let s3: S3rver;
let server: Server;
let site: string;

beforeAll(async () => {
  redis = new Redis(REDIS_URL);
  tmp = await mkdtemp(path.join(os.tmpdir(), 'mlq-dataset-cache-'));
  s3 = await startS3rver(path.join(tmp, 's3'), 'mlq-dataset-cache');
  Object.assign(process.env, s3.env);
  // A fetched file of 1000 bytes, to show that fetched files and uploads share the bound.
  server = createServer((_req, res) => {
    res.writeHead(200, { 'content-length': 1000, etag: '"f1"' });
    res.end(Buffer.alloc(1000, 7));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  site = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  await deletePrefix(redis, prefix);
  await redis.quit();
  await s3?.stop();
  await rm(tmp, { recursive: true, force: true });
});

/** Entries are ordered by last use as the file system stamps it: a few ms apart, so no two tie. */
const tick = () => new Promise((r) => setTimeout(r, 15));

/** A CSV of exactly 1000 bytes whose rows say `n` (so each upload has its own bytes). */
function csvOf(n: number): Buffer {
  const row = (zeros = 0) => `${'0'.repeat(zeros)}${n},${n + 1},${n % 2 ? 'cat' : 'dog'}\n`;
  let text = 'a,b,label\n';
  while (text.length + 2 * row().length <= 1000) text += row();
  // The last row's first number with leading zeros, to end at exactly 1000 bytes.
  return Buffer.from(text + row(1000 - text.length - row().length));
}

function cacheOf(dir: string, workerCacheMb: number): FetchCache {
  // As the worker builds it from WORKER_CACHE_MB (apps/worker/src/sandbox.ts).
  return new FetchCache({
    dir,
    maxBytes: Math.floor(workerCacheMb * 2 ** 20),
    policy: new EgressPolicy({ allowHosts: ['127.0.0.1'], timeoutMs: 5000, maxBytes: 1 << 20 }),
  });
}

async function upload(store: ArtifactStore, registry: DatasetRegistry, name: string, bytes: Buffer) {
  const format = bytes[0] === 0x50 ? 'zip' : 'csv';
  return ingestDataset(Readable.from([bytes]), {
    name,
    format,
    store,
    registry,
    maxBytes: 1 << 20,
    limits: { maxFiles: 100, maxExpandedBytes: 1 << 20 },
    tmpDir: tmp,
  });
}

describe('uploaded datasets in the worker cache', () => {
  it('are bounded by WORKER_CACHE_MB with fetched files: least recently used out, held ones kept', async () => {
    const store = new S3ArtifactStore('s3://mlq-dataset-cache/lru');
    const registry = new DatasetRegistry(redis, `${prefix}:lru`);
    for (const n of [1, 2, 3, 4]) {
      const v = await upload(store, registry, `d${n}`, csvOf(n));
      expect(v.bytes).toBe(1000);
    }
    // 2.5 entries' worth: 2621 bytes.
    const cache = cacheOf(path.join(tmp, 'cache-lru'), 0.0025);
    const lines: string[] = [];
    const datasets = datasetLocator({ registry, store, cache });
    const read = async (n: number, holder: string) => {
      const located = await datasets({ holder, log: (l) => void lines.push(l) })(`dataset://d${n}`);
      expect(await readFile(located.path)).toEqual(csvOf(n));
      return located.path;
    };
    const names = async () => (await cache.entries()).map((e) => e.uri);

    const p1 = await read(1, 'job-1');
    await cache.release('job-1');
    await tick();
    // d2 stays held by a running job (this process) until it is released below.
    const p2 = await read(2, 'job-2');
    await tick();
    await read(3, 'job-3');
    await cache.release('job-3');
    // 3000 bytes > 2621: d1, the least recently used entry no job holds, is gone.
    expect(await names()).toEqual(['dataset://d2@1', 'dataset://d3@1']);
    await expect(stat(p1)).rejects.toThrow();
    await tick();
    await read(4, 'job-4');
    await cache.release('job-4');
    // d2 is now the oldest, but held: d3 goes instead, and d2's file is still there.
    expect(await names()).toEqual(['dataset://d2@1', 'dataset://d4@1']);
    expect(await readFile(p2)).toEqual(csvOf(2));

    // A fetched file counts in the same bound: it pushes out d4 (d2 still held).
    await tick();
    await cache.get(`${site}/f.bin`, { holder: 'job-5' });
    await cache.release('job-5');
    expect(await names()).toEqual(['dataset://d2@1', `${site}/f.bin`]);
    expect((await cache.entries()).reduce((s, e) => s + e.size, 0)).toBe(2000);

    // Released, d2 is evictable too: reading d1 again copies it anew and evicts d2, the oldest.
    await cache.release('job-2');
    await tick();
    lines.length = 0;
    await read(1, 'job-6');
    await cache.release('job-6');
    expect(await names()).toEqual([`${site}/f.bin`, 'dataset://d1@1']);
    await expect(stat(p2)).rejects.toThrow();
    expect(lines[0]).toMatch(/^copied from the artifact store: dataset:\/\/d1@1 \(sha256 [0-9a-f]{12}, /);
    expect(lines[1]).toBe('cache: removed 1 least recently used entry to stay within WORKER_CACHE_MB');
  });

  it('shares one copy between concurrent jobs, each holding it, and a hit is a hit', async () => {
    const store = new S3ArtifactStore('s3://mlq-dataset-cache/share');
    const registry = new DatasetRegistry(redis, `${prefix}:share`);
    await upload(store, registry, 'shared', csvOf(7));
    const cache = cacheOf(path.join(tmp, 'cache-share'), 1);
    const datasets = datasetLocator({ registry, store, cache });
    const lines: string[] = [];
    const log = (l: string) => void lines.push(l);
    const [a, b] = await Promise.all([
      datasets({ holder: 'job-a', log })('dataset://shared'),
      datasets({ holder: 'job-b', log })('dataset://shared@1'),
    ]);
    expect(a.path).toBe(b.path);
    expect(lines.map((l) => l.split(':')[0])).toEqual(['copied from the artifact store', 'cache hit']);
    // Held by both: one job ending leaves it held by the other.
    await cache.release('job-a');
    expect((await cache.entries()).map((e) => e.held)).toEqual([true]);
    await cache.release('job-b');
    expect((await cache.entries()).map((e) => e.held)).toEqual([false]);
  });

  it('counts an extracted archive by its files, and refuses one larger than the cache', async () => {
    // A file store's blob is read in place: only the extracted folder is an entry of the cache.
    const store = new FileArtifactStore(path.join(tmp, 'file-store'));
    const registry = new DatasetRegistry(redis, `${prefix}:tree`);
    const zip = makeZip([
      { name: 'pets/cat/1.png', data: png(10, 16, 16) },
      { name: 'pets/dog/2.png', data: png(200, 16, 16) },
    ]);
    const v = await upload(store, registry, 'pets', zip);
    await upload(store, registry, 'plain', csvOf(9));
    const cache = cacheOf(path.join(tmp, 'cache-tree'), 0.0025);
    const datasets = datasetLocator({ registry, store, cache })({ holder: 'job-t' });
    const tree = await datasets('dataset://pets');
    expect(tree.inside).toBe('pets');
    expect((await stat(path.join(tree.path, 'dog', '2.png'))).isFile()).toBe(true);
    expect(await cache.entries()).toMatchObject([{ uri: 'dataset://pets@1', size: v.expandedBytes }]);
    // A CSV in a file store is read where it is: no entry.
    const plain = await datasets('dataset://plain');
    expect(plain.path.startsWith(path.join(tmp, 'file-store'))).toBe(true);
    expect(await cache.entries()).toHaveLength(1);

    // An archive that expands past the whole cache could never fit: the job fails at once, saying why.
    // (A PNG's signature, then bytes that zip to little: the upload checks only the signature.)
    const pngOf3000 = Buffer.concat([png(1).subarray(0, 8), Buffer.alloc(2992)]);
    const big = await upload(store, registry, 'big', makeZip([{ name: 'cat/1.png', data: pngOf3000 }]));
    expect(big.expandedBytes).toBe(3000);
    const err = await datasets('dataset://big').catch((e: Error) => e);
    expect(err).toBeInstanceOf(FetchLimitError);
    expect((err as Error).message).toBe(
      "dataset://big@1 is 3000 bytes once extracted, more than the worker's cache holds (WORKER_CACHE_MB: 2621 bytes); raise WORKER_CACHE_MB on the worker to read it",
    );
  });
});
