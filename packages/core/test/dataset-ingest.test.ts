/**
 * Uploads from bytes to registered versions, with a real file store, a real S3-compatible server
 * (s3rver) and real Redis: validation errors name the line or entry and leave nothing in the store,
 * identical bytes are kept once, and a worker-side locate reads the version back.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAll } from '../src/data/dataset.ts';
import { openDataset } from '../src/data/open.ts';
import { ingestDataset, type IngestOptions } from '../src/datasets/ingest.ts';
import { datasetLocator } from '../src/datasets/locate.ts';
import { EgressPolicy } from '../src/remote/egress.ts';
import { FetchCache } from '../src/remote/fetch-cache.ts';
import type { UploadFormat } from '@mlq/contract';
import { DatasetRegistry } from '../src/registry/dataset-registry.ts';
import { datasetBlobKey as blobKey } from '../src/storage/layout.ts';
import type { ArtifactStore } from '../src/storage/artifact-store.ts';
import { FileArtifactStore } from '../src/storage/file-store.ts';
import { S3ArtifactStore } from '../src/storage/s3-store.ts';
import { ConflictError, DataError, TooLargeError } from '../src/util/errors.ts';
import { startS3rver, type S3rver } from '../../../test/support/s3rver.ts';
import { deletePrefix, REDIS_URL } from '../../../test/support/stack.ts';
import { makeTarGz, makeZip, png } from './fixtures/archives.ts';

const prefix = `test-ingest-${randomUUID().slice(0, 8)}`;
let redis: Redis;
let tmp: string;
let s3: S3rver;

beforeAll(async () => {
  redis = new Redis(REDIS_URL);
  tmp = await mkdtemp(path.join(os.tmpdir(), 'mlq-ingest-'));
  s3 = await startS3rver(path.join(tmp, 's3'), 'mlq-ingest');
  Object.assign(process.env, s3.env);
});
afterAll(async () => {
  await deletePrefix(redis, prefix);
  await redis.quit();
  await s3?.stop();
  await rm(tmp, { recursive: true, force: true });
});

/** Body streams in small chunks, so lines and entries straddle chunk boundaries. */
const body = (b: Buffer | string) => {
  const buf = Buffer.from(b);
  return Readable.from(
    (function* () {
      for (let i = 0; i < buf.length; i += 7) yield buf.subarray(i, i + 7);
    })(),
  );
};

const limits = { maxFiles: 100, maxExpandedBytes: 1 << 20 };

function setup(store: ArtifactStore, sub: string) {
  const registry = new DatasetRegistry(redis, `${prefix}:${sub}`);
  const opts = (name: string, format: UploadFormat, extra: Partial<IngestOptions> = {}): IngestOptions => ({
    name,
    format,
    store,
    registry,
    maxBytes: 1 << 20,
    limits,
    tmpDir: tmp,
    ...extra,
  });
  return { registry, opts };
}

const csv = 'a,b,label\n1,2,cat\n3,4,dog\n5,"6",cat\n';

describe.each([
  ['file store', () => new FileArtifactStore(path.join(tmp, 'store'))],
  ['s3 store', () => new S3ArtifactStore('s3://mlq-ingest/pre')],
])('uploads to a %s', (kind, makeStore) => {
  let store: ArtifactStore;
  let up: ReturnType<typeof setup>;
  beforeAll(() => {
    store = makeStore();
    up = setup(store, kind.replace(' ', '-'));
  });

  const refused = async (data: Buffer | string, format: UploadFormat, message: RegExp, extra = {}) => {
    const before = await store.list('datasets');
    const err = await ingestDataset(body(data), up.opts('bad', format, extra)).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(message);
    // Nothing left behind: not the staging object, not a blob.
    expect(await store.list('datasets')).toEqual(before);
    return err as Error;
  };

  it('registers a CSV with what validation learned, and keeps identical bytes once', async () => {
    const a = await ingestDataset(body(csv), up.opts('pets', 'csv'));
    expect(a).toMatchObject({
      name: 'pets',
      version: 1,
      uri: 'dataset://pets@1',
      bytes: csv.length,
      format: 'csv',
      rows: 3,
      columns: ['a', 'b', 'label'],
      label: 'label',
      classes: { cat: 2, dog: 1 },
    });
    expect(a.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(a.warnings).toEqual([]);
    const b = await ingestDataset(body(csv), up.opts('pets', 'csv'));
    expect(b.version).toBe(2);
    expect(b.sha256).toBe(a.sha256);
    expect(await store.list('datasets')).toEqual([blobKey(a.sha256)]);
    expect((await store.get(blobKey(a.sha256))).toString()).toBe(csv);
    expect((await up.registry.resolve('dataset://pets')).version).toBe(2);
  });

  it('refuses a ragged CSV row, naming its line', async () => {
    const err = await refused(
      'a,b\n1,2\n3,4\n5\n',
      'csv',
      /^line 4: ragged row: 1 columns, the header has 2$/,
    );
    expect(err).toBeInstanceOf(DataError);
    await refused('a,b\n1,"2\n', 'csv', /^line 2: field 2 \("b"\): a quoted field is not closed/);
    // Lines end at LF, CRLF or a lone CR (old Mac exports), as the reader reads them.
    const cr = await ingestDataset(body('a,label\r1,x\r\n2,y\r3,x\n'), up.opts('cr', 'csv'));
    expect(cr).toMatchObject({ rows: 3, classes: { x: 2, y: 1 } });
    await refused('a,b\r1,2\r3\r', 'csv', /^line 3: ragged row/);
    await refused('a,b\n', 'csv', /header but no rows/);
    await refused('a,b\n1,2\n', 'csv', /label: no column "y"/, { label: 'y' });
  });

  it('refuses an upload over the size limit', async () => {
    const err = await refused('x'.repeat(5000), 'csv', /larger than 4096 bytes/, { maxBytes: 4096 });
    expect(err).toBeInstanceOf(TooLargeError);
  });

  it('validates JSONL', async () => {
    const v = await ingestDataset(
      body('{"x":[[1,2],[3,4]],"y":0}\n\n{"x":[[5,6],[7,8]],"y":1}\n'),
      up.opts('grid', 'jsonl'),
    );
    expect(v).toMatchObject({ format: 'jsonl', rows: 2, featureShape: [2, 2], classes: { '0': 1, '1': 1 } });
    expect(v.warnings).toEqual([]);
    // Lines without "y" are valid (batch-predict reads them); the upload says what training needs.
    const bare = await ingestDataset(body('{"x":[1],"id":7}\n{"x":[2],"id":8}\n'), up.opts('bare', 'jsonl'));
    expect(bare).toMatchObject({ format: 'jsonl', rows: 2, featureShape: [1] });
    expect(bare.classes).toBeUndefined();
    expect(bare.warnings).toEqual([
      'no "y" on the lines: training and evaluation need a label ("y": a class index or name) on every line; the first line\'s keys are x, id',
    ]);
    // The warnings are the upload's answer, not part of the version kept.
    expect(await up.registry.resolve('dataset://bare@1')).not.toHaveProperty('warnings');
    await refused('{"x":[1,2],"y":0}\n{"x":[1],"y":0}\n', 'jsonl', /line 2: "x" has shape \[1\]/);
    await refused('{"x":[1,2],"y":0}\n{"x":[1,2]\n', 'jsonl', /line 2: not JSON/);
    await refused('{"x":[1,2],"y":0}\n{"x":[1,1e39],"y":0}\n', 'jsonl', /line 2: .*fit float32/);
  });

  it('registers an image-folder zip (inside a wrapping folder) with its classes', async () => {
    const zip = makeZip([
      { name: 'pets/' },
      { name: 'pets/cat/1.png', data: png(10), deflate: true },
      { name: 'pets/cat/2.png', data: png(20) },
      { name: 'pets/dog/3.png', data: png(200) },
      { name: 'pets/dog/notes.txt', data: 'not an image' },
      { name: '__MACOSX/pets/cat/._1.png', data: 'resource fork' },
    ]);
    const v = await ingestDataset(body(zip), up.opts('pets-img', 'zip'));
    expect(v).toMatchObject({
      format: 'image-folder',
      archive: 'zip',
      rows: 3,
      classes: { cat: 2, dog: 1 },
      root: 'pets',
      files: 5,
    });
  });

  it('refuses unsafe or broken zips, naming the entry', async () => {
    const ok = { name: 'cat/1.png', data: png(1) };
    await refused(
      makeZip([ok, { name: '../evil.png', data: png(1) }]),
      'zip',
      /"\.\.\/evil\.png".*relative path/,
    );
    await refused(
      makeZip([ok, { name: '/etc/evil.png', data: png(1) }]),
      'zip',
      /"\/etc\/evil\.png": absolute path/,
    );
    await refused(
      makeZip([ok, { name: 'cat/l.png', data: '/etc/passwd', mode: 0o120777 }]),
      'zip',
      /"cat\/l\.png": symbolic links/,
    );
    await refused(makeZip([{ name: '1.png', data: png(1) }]), 'zip', /no class folders/);
    await refused(
      makeZip([ok, { name: 'dog/x.webp', data: 'RIFF' }]),
      'zip',
      /class dog has no PNG or JPEG images; found 1 \.webp/,
    );
    await refused(
      makeZip([ok, { name: 'cat/2.png', data: 'not a png' }]),
      'zip',
      /"cat\/2\.png": not a PNG image/,
    );
    await refused(makeZip([ok]).subarray(0, 40), 'zip', /broken zip archive/);
    // A bomb: 2 MiB of zeros deflate to a few KiB, over the 1 MiB limit.
    const bomb = makeZip([ok, { name: 'cat/zeros.png', data: Buffer.alloc(2 << 20), deflate: true }]);
    expect(bomb.length).toBeLessThan(10_000);
    await refused(bomb, 'zip', /expands to more than 1048576 bytes.*"cat\/zeros\.png"/);
    const many = Array.from({ length: 101 }, (_, i) => ({ name: `cat/${i}.png`, data: png(1) }));
    await refused(makeZip(many), 'zip', /more than 100 entries/);
  });

  it('registers a tar.gz and refuses unsafe ones', async () => {
    const ok = { name: 'cat/1.png', data: png(1) };
    const good = await makeTarGz([
      { name: 'cat/1.png', data: png(1) },
      { name: './dog/2.png', data: png(2) },
      { name: 'dog/', type: 'directory' },
    ]);
    const v = await ingestDataset(body(good), up.opts('pets-tar', 'tar.gz'));
    expect(v).toMatchObject({ archive: 'tar.gz', rows: 2, classes: { cat: 1, dog: 1 }, root: '' });
    // Images in sub-folders of a class folder count for that class (as torchvision's ImageFolder reads them).
    const nested = await makeTarGz([
      ok,
      { name: 'dog/a/b/2.png', data: png(2) },
      { name: 'dog/3.png', data: png(3) },
    ]);
    const n = await ingestDataset(body(nested), up.opts('nested', 'tar.gz'));
    expect(n.classes).toEqual({ cat: 1, dog: 2 });
    await refused(
      await makeTarGz([ok, { name: 'dog/../../x.png', data: png(1) }]),
      'tar.gz',
      /"dog\/\.\.\/\.\.\/x\.png".*"\.\."/,
    );
    await refused(
      await makeTarGz([ok, { name: 'dog/s.png', type: 'symlink', linkname: '/etc/passwd' }]),
      'tar.gz',
      /symbolic links/,
    );
    await refused(
      await makeTarGz([ok, { name: 'dog/h.png', type: 'link', linkname: 'cat/1.png' }]),
      'tar.gz',
      /hard links/,
    );
    await refused(
      await makeTarGz([ok, { name: 'cat/big.png', data: Buffer.alloc(2 << 20) }]),
      'tar.gz',
      /expands to more than/,
    );
    await refused(gzipSync(Buffer.from('not a tar at all')), 'tar.gz', /broken tar\.gz archive/);
  });

  it('refuses a binary body sent as CSV or JSONL, saying where and what it looks like', async () => {
    const zip = makeZip([{ name: 'cat/1.png', data: png(1) }]);
    const z = await refused(zip, 'csv', /this looks like a zip archive: send it as application\/zip$/);
    expect(z).toBeInstanceOf(DataError);
    expect(z.message).toMatch(/^line \d+: (a NUL byte|bytes that are not UTF-8)/);
    // Latin-1 text: the bad byte's line is named, with how to fix it.
    const latin1 = Buffer.concat([
      Buffer.from('a,b,label\n1,2,cat\n3,4,'),
      Buffer.from([0xe9]),
      Buffer.from('t\n'),
    ]);
    const l = await refused(latin1, 'csv', /^line 3: bytes that are not UTF-8: the body is not text; /);
    expect(l.message).toContain('save the file as UTF-8');
    // The same bytes as one chunk (the whole-chunk check fails, then each line is checked).
    const one = await ingestDataset(Readable.from([latin1]), up.opts('bad', 'csv')).catch((e: Error) => e);
    expect((one as Error).message).toMatch(/^line 3: bytes that are not UTF-8/);
    await refused(
      Buffer.from('{"x":[1],"y":0}\n{"x":[2],"y":\u0000}\n'),
      'jsonl',
      /^line 2: a NUL byte \(byte 14 of the line\)/,
    );
    // Multi-byte UTF-8 split across the 7-byte chunks of body() is text.
    const ok = await ingestDataset(body('a,b,label\n1,2,café\n3,4,thé\n'), up.opts('utf8-ok', 'csv'));
    expect(ok.classes).toEqual({ café: 1, thé: 1 });
    await refused(Buffer.from('not gzip'), 'tar.gz', /broken tar\.gz archive/);
  });

  it('reads a version back on a worker, from an empty cache', async () => {
    const cache = new FetchCache({
      dir: await mkdtemp(path.join(tmp, 'cache-')),
      maxBytes: 1 << 20,
      policy: new EgressPolicy({ allowHosts: [], timeoutMs: 5000, maxBytes: 1 << 20 }),
    });
    const locate = datasetLocator({ registry: up.registry, store, cache })({ holder: 'reader' });
    const t = openDataset({ format: 'csv', uri: 'dataset://pets@1' }, { dataRoots: [], locate });
    expect(await t.info()).toMatchObject({ rows: 3, featureShape: [2], classNames: ['cat', 'dog'] });
    const img = openDataset(
      { format: 'image-folder', uri: 'dataset://pets-img', imageSize: [8, 8], channels: 1 },
      { dataRoots: [], locate },
    );
    const info = await img.info();
    expect(info).toMatchObject({ rows: 3, classNames: ['cat', 'dog'], featureShape: [8, 8, 1] });
    const cached = (await cache.entries()).map((e) => e.uri).sort();
    // A file store is read in place; an S3 store's bytes are copied, and archives kept only extracted.
    if (store instanceof FileArtifactStore) expect(cached).toEqual(['dataset://pets-img@1']);
    else expect(cached).toEqual(['dataset://pets-img@1', 'dataset://pets@1']);
    const tree = await locate('dataset://pets-img');
    expect(tree.inside).toBe('pets');
    expect((await stat(path.join(tree.path, 'dog', '3.png'))).isFile()).toBe(true);
    expect(path.relative(cache.options.dir, tree.path).split(path.sep).slice(1)).toEqual(['tree', 'pets']);
    // A bad row is named by the dataset the user gave (with its version), never the store's path.
    await ingestDataset(body('a,b,label\n1,hello,cat\n'), up.opts('t-text', 'csv'));
    const bad = openDataset({ format: 'csv', uri: 'dataset://t-text' }, { dataRoots: [], locate });
    await expect(bad.info()).rejects.toThrow(
      /^dataset:\/\/t-text@1, line 2: column "b" is not a number: "hello"$/,
    );
    // Inside an archive, a folder is named by its path in the archive and the upload's URI.
    const other = openDataset(
      { format: 'image-folder', uri: 'dataset://pets-img', imageSize: [8, 8], channels: 1 },
      { dataRoots: [], locate, classNames: ['bird', 'dog'] },
    );
    await expect(other.info()).rejects.toThrow(
      /^pets\/cat in dataset:\/\/pets-img@1: unknown label "cat"; the model's classes are bird, dog$/,
    );
    await expect(locate('dataset://nope')).rejects.toThrow(/dataset "nope" not found/);
    await expect(locate('s3://b/x.csv')).rejects.toThrow(/workers read file:\/\/ URIs/);
  });

  it('refuses an image over IMAGE_MAX_PIXELS from its header: at upload, and on a worker reading an older upload', async () => {
    const zip = makeZip([
      { name: 'cat/1.png', data: png(1) },
      { name: 'dog/big.png', data: png(1, 40, 30), deflate: true },
    ]);
    const tooBig = (entry: string) =>
      `archive entry "${entry}": the PNG is 40x30 pixels, more than the 1000 IMAGE_MAX_PIXELS allows`;
    await refused(zip, 'zip', new RegExp(`^${tooBig('dog/big.png')}$`), { imageMaxPixels: 1000 });
    const tgz = await makeTarGz([
      { name: 'cat/1.png', data: png(1) },
      { name: 'cat/big.png', data: png(1, 40, 30) },
    ]);
    await refused(tgz, 'tar.gz', new RegExp(`^${tooBig('cat/big.png')}$`), { imageMaxPixels: 1000 });
    // Uploaded under a larger limit (or before there was one): the worker's reader refuses it when it
    // lists the dataset, naming the image inside the upload, before decoding anything.
    await ingestDataset(body(zip), up.opts('big-img', 'zip'));
    const cache = new FetchCache({
      dir: await mkdtemp(path.join(tmp, 'cache-')),
      maxBytes: 1 << 20,
      policy: new EgressPolicy({ allowHosts: [], timeoutMs: 5000, maxBytes: 1 << 20 }),
    });
    const locate = datasetLocator({ registry: up.registry, store, cache })({ holder: 'reader' });
    const d = openDataset(
      { format: 'image-folder', uri: 'dataset://big-img', imageSize: [8, 8], channels: 1 },
      { dataRoots: [], locate, imageMaxPixels: 1000 },
    );
    const err = await d.info().catch((e: Error) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as Error).message).toBe(
      'image dog/big.png in dataset://big-img@1: the PNG is 40x30 pixels, more than the 1000 IMAGE_MAX_PIXELS allows',
    );
  });

  it('reads a CSV back on a worker as its upload was validated: spaces around quotes, doubled quotes', async () => {
    const text = 'a, "b" ,label\n1, "2" , "cat, big" \n3,"4","say ""hi"""\n5,6,\t"cat, big"\n';
    const v = await ingestDataset(body(text), up.opts('quoted', 'csv'));
    expect(v).toMatchObject({
      rows: 3,
      columns: ['a', 'b', 'label'],
      label: 'label',
      classes: { 'cat, big': 2, 'say "hi"': 1 },
    });
    const cache = new FetchCache({
      dir: await mkdtemp(path.join(tmp, 'cache-')),
      maxBytes: 1 << 20,
      policy: new EgressPolicy({ allowHosts: [], timeoutMs: 5000, maxBytes: 1 << 20 }),
    });
    const locate = datasetLocator({ registry: up.registry, store, cache })({ holder: 'reader' });
    const d = await loadAll(
      openDataset({ format: 'csv', uri: 'dataset://quoted' }, { dataRoots: [], locate }),
    );
    expect(d.info).toMatchObject({
      rows: 3,
      columns: ['a', 'b', 'label'],
      classNames: ['cat, big', 'say "hi"'],
      classCounts: [2, 1],
    });
    expect(Array.from(d.x)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Array.from(d.y)).toEqual([0, 1, 0]);
    // What the reader could not read is refused at upload, naming the line and the field.
    await refused(
      'a,label\n1,x\n2,"x" y\n',
      'csv',
      /^line 3: field 2 \("label"\): text after the closing quote: "x" y \(a quote inside a quoted field is written twice: ""\)$/,
    );
  });

  it('deletes a version: 409 while a job may use it, and the blob goes with its last version', async () => {
    const v = await up.registry.resolve('dataset://pets@1');
    await up.registry.markUse(v, 'job-1');
    const busy = async (ids: string[]) => ids.filter((id) => id === 'job-1');
    const dropped: string[] = [];
    const drop = async (sha: string) => void dropped.push(sha);
    await expect(up.registry.remove('pets', 1, busy, drop)).rejects.toThrow(ConflictError);
    await up.registry.remove('pets', 1, async () => [], drop);
    expect(dropped).toEqual([]);
    await up.registry.remove('pets', 2, async () => [], drop);
    expect(dropped).toEqual([v.sha256]);
    await expect(up.registry.resolve('dataset://pets')).rejects.toThrow(/not found/);
  });
});

it('keeps the bytes exact through a multipart S3 upload (20 MiB, several parts)', async () => {
  const store = new S3ArtifactStore('s3://mlq-ingest/big');
  const data = Buffer.alloc(20 << 20);
  for (let i = 0; i < data.length; i += 4) data.writeUInt32LE(i, i);
  await store.putStream('blob', Readable.from([data.subarray(0, 9 << 20), data.subarray(9 << 20)]));
  const { body: got, bytes } = await store.getStream('blob');
  expect(bytes).toBe(data.length);
  const chunks: Buffer[] = [];
  for await (const c of got) chunks.push(c as Buffer);
  expect(Buffer.concat(chunks).equals(data)).toBe(true);
  await store.move('blob', 'moved/blob');
  expect(await store.list('')).toEqual(['moved/blob']);
  // A stream that fails leaves nothing.
  const failing = new Readable({ read() {} });
  failing.push(data.subarray(0, 9 << 20));
  setTimeout(() => failing.destroy(new Error('client went away')), 50);
  await expect(store.putStream('half', failing)).rejects.toThrow(/client went away/);
  expect(await store.list('')).toEqual(['moved/blob']);
});
