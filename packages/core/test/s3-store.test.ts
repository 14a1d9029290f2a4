/**
 * S3ArtifactStore against a real S3-compatible server: s3rver (pure JS, from npm) started as its own
 * process on 127.0.0.1 with an ephemeral port and a temp directory. No mocks.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import * as tf from '@tensorflow/tfjs';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '@mlq/engine';
import { loadModel, saveModel } from '../src/ml/model-io.ts';
import { EgressPolicy } from '../src/remote/egress.ts';
import { FetchCache } from '../src/remote/fetch-cache.ts';
import { uriResolver } from '../src/remote/resolve-uri.ts';
import { openArtifactStore } from '../src/storage/file-store.ts';
import { parseS3Uri, S3ArtifactStore } from '../src/storage/s3-store.ts';
import { NotFoundError } from '../src/util/errors.ts';

let tmp: string;
let server: ChildProcess;
let endpoint: string;
const query = () => `?endpoint=${endpoint}&region=us-east-1&forcePathStyle=true`;

/** Starts s3rver's CLI with port 0 and reads the port it prints. */
async function startS3rver(dir: string): Promise<{ proc: ChildProcess; endpoint: string }> {
  const bin = path.join(
    path.dirname(createRequire(import.meta.url).resolve('s3rver/package.json')),
    'bin/s3rver.js',
  );
  // s3rver encrypts ListObjectsV2 continuation tokens with DES, which OpenSSL 3 only has in its legacy provider.
  const args = ['--openssl-legacy-provider', bin, '-d', dir, '-a', '127.0.0.1', '-p', '0', '-s'];
  const proc = spawn(process.execPath, args, { stdio: 'pipe' });
  let out = '';
  const port = await new Promise<string>((resolve, reject) => {
    const onData = (b: Buffer) => {
      out += b.toString();
      const m = /listening on [\d.]+:(\d+)/.exec(out);
      if (m?.[1]) resolve(m[1]);
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code) => reject(new Error(`s3rver exited (${code}): ${out}`)));
    setTimeout(() => reject(new Error(`s3rver did not start: ${out}`)), 20_000).unref();
  });
  return { proc, endpoint: `http://127.0.0.1:${port}` };
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'mlq-s3-'));
  ({ proc: server, endpoint } = await startS3rver(path.join(tmp, 's3')));
  // s3rver accepts only its own fixed key pair; the store takes credentials from the SDK's env chain.
  process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
  process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
  const store = new S3ArtifactStore(`s3://mlq-test${query()}`);
  for (const Bucket of ['mlq-test', 'mlq-other'])
    await store.client.send(new CreateBucketCommand({ Bucket }));
});

afterAll(async () => {
  server?.kill();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('parseS3Uri', () => {
  it('splits bucket, prefix and connection settings', () => {
    expect(parseS3Uri('s3://b-1/a/b/?endpoint=http://m:9000&forcePathStyle=false')).toEqual({
      bucket: 'b-1',
      prefix: 'a/b',
      endpoint: 'http://m:9000',
      region: undefined,
      forcePathStyle: false,
      hasQuery: true,
    });
    expect(() => parseS3Uri('s3://bucket/a/../b')).toThrow(/invalid artifact key/);
    expect(() => parseS3Uri('s3://bucket?endpont=x')).toThrow(/unknown parameter/);
    expect(() => parseS3Uri('s3://B/x')).toThrow(/invalid S3 URI/);
  });
});

describe('S3ArtifactStore on s3rver', () => {
  it('puts, gets, checks and lists keys relative to the prefix', async () => {
    const store = openArtifactStore(`s3://mlq-test/root/${query()}`);
    expect(store).toBeInstanceOf(S3ArtifactStore);
    await store.put('runs/j1/b.txt', 'bee');
    await store.put('runs/j1/a.bin', new Uint8Array([1, 2, 3]));
    await store.put('runs/j10/c.txt', 'not under runs/j1/');
    await store.put('top.txt', 'top');
    expect((await store.get('runs/j1/b.txt')).toString()).toBe('bee');
    expect([...(await store.get('runs/j1/a.bin'))]).toEqual([1, 2, 3]);
    expect(await store.exists('runs/j1/b.txt')).toBe(true);
    expect(await store.exists('runs/j1')).toBe(false);
    expect(await store.list('runs/j1')).toEqual(['runs/j1/a.bin', 'runs/j1/b.txt']);
    expect(await store.list('runs/j1/')).toEqual(['runs/j1/a.bin', 'runs/j1/b.txt']);
    expect(await store.list('')).toEqual(['runs/j1/a.bin', 'runs/j1/b.txt', 'runs/j10/c.txt', 'top.txt']);
    expect(await store.list('nothing')).toEqual([]);
    // Overwrite replaces the object whole.
    await store.put('top.txt', 'new');
    expect((await store.get('top.txt')).toString()).toBe('new');
  });

  it('maps a missing key to NotFoundError and rejects unsafe keys', async () => {
    const store = new S3ArtifactStore(`s3://mlq-test/root${query()}`);
    await expect(store.get('missing/model.json')).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.get('missing/model.json')).rejects.toThrow('s3://mlq-test/root/missing/model.json');
    expect(await store.exists('missing/model.json')).toBe(false);
    await expect(store.put('../escape', 'x')).rejects.toThrow(/invalid artifact key/);
    await expect(store.get('/abs')).rejects.toThrow(/invalid artifact key/);
  });

  it('maps URIs to keys and back', () => {
    const store = new S3ArtifactStore(`s3://mlq-test/root/${query()}`);
    expect(store.uri).toBe(`s3://mlq-test/root${query()}`);
    expect(store.uriOf('runs/x/model.json')).toBe('s3://mlq-test/root/runs/x/model.json');
    expect(store.keyOf('s3://mlq-test/root/runs/x/model.json')).toBe('runs/x/model.json');
    expect(store.keyOf('s3://mlq-test/rootless/x')).toBeUndefined();
    expect(store.keyOf('s3://mlq-other/root/x')).toBeUndefined();
    const bare = new S3ArtifactStore(`s3://mlq-test${query()}`);
    expect(bare.uriOf('a/b')).toBe('s3://mlq-test/a/b');
    expect(bare.keyOf('s3://mlq-test/a/b')).toBe('a/b');
  });

  it('deletes a key, or every key under a prefix, across list and delete pages', async () => {
    // A page size of 7 makes 25 keys span several ListObjectsV2 and DeleteObjects calls. (s3rver's
    // DeleteObjects can answer 500 when two deletions race to remove an emptied directory; the SDK's
    // retry then finds those keys gone and succeeds, as it would after a transient error on real S3.)
    const store = new S3ArtifactStore(`s3://mlq-test/del${query()}`, { pageSize: 7 });
    const keys = Array.from({ length: 25 }, (_, i) => `run/epoch-${String(i).padStart(2, '0')}/w.bin`);
    await Promise.all(keys.map((k) => store.put(k, k)));
    await store.put('run', 'a key named like the prefix');
    await store.put('run-2/keep.txt', 'sibling with the same leading characters');
    expect(await store.list('run')).toEqual(keys);

    await store.delete('run/epoch-00/w.bin');
    expect(await store.exists('run/epoch-00/w.bin')).toBe(false);
    expect((await store.list('run')).length).toBe(24);

    await store.delete('run');
    expect(await store.list('run')).toEqual([]);
    expect(await store.exists('run')).toBe(false);
    expect(await store.list('')).toEqual(['run-2/keep.txt']);
    await store.delete('never/was'); // deleting nothing is not an error
  });

  it('streams a multi-MB file in with putFile', async () => {
    const store = new S3ArtifactStore(`s3://mlq-test/files${query()}`);
    const data = randomBytes(12 * 1024 * 1024 + 123);
    const local = path.join(tmp, 'big.bin');
    await writeFile(local, data);
    await store.putFile('out/big.bin', local);
    const back = await store.get('out/big.bin');
    expect(back.length).toBe(data.length);
    expect(back.equals(data)).toBe(true);
    await expect(store.putFile('out/none.bin', path.join(tmp, 'none.bin'))).rejects.toThrow(/ENOENT/);
  });

  it('streams in a body of unknown length: one PUT when small, 5 MiB parts when large, nothing on error', async () => {
    const store = new S3ArtifactStore(`s3://mlq-test/root${query()}`);
    // Chunks of odd sizes, so parts are filled across chunk boundaries: 12 MiB + 3 bytes = 3 parts.
    const big = randomBytes(12 * 1024 ** 2 + 3);
    const chunks = (b: Buffer, size: number) =>
      Readable.from(
        (function* () {
          for (let o = 0; o < b.length; o += size) yield b.subarray(o, o + size);
        })(),
      );
    await store.putStream('up/big.bin', chunks(big, 777_777));
    expect((await store.get('up/big.bin')).equals(big)).toBe(true);
    await store.putStream('up/small.txt', chunks(Buffer.from('a,b\n1,2\n'), 3));
    expect((await store.get('up/small.txt')).toString()).toBe('a,b\n1,2\n');
    await store.putStream('up/empty.txt', Readable.from([]));
    expect((await store.get('up/empty.txt')).length).toBe(0);
    // A stream that fails after two parts: its error surfaces, and no object appears.
    const failing = Readable.from(
      (async function* () {
        yield big.subarray(0, 11 * 1024 ** 2);
        throw new Error('client went away');
      })(),
    );
    await expect(store.putStream('up/broken.bin', failing)).rejects.toThrow('client went away');
    expect(await store.exists('up/broken.bin')).toBe(false);
  });

  it('saves a tfjs model and loads it back with equal predictions', async () => {
    await initBackend('cpu');
    const store = openArtifactStore(`s3://mlq-test/models${query()}`);
    const model = tf.sequential({
      layers: [
        tf.layers.dense({ inputShape: [4], units: 8, activation: 'relu' }),
        tf.layers.dense({ units: 3 }),
      ],
    });
    const meta = { inputShape: [4], numClasses: 3, classNames: ['a', 'b', 'c'] };
    const uri = await saveModel(model, store, 'runs/m1', meta);
    expect(uri).toBe('s3://mlq-test/models/runs/m1/model.json');
    expect(await store.list('runs/m1')).toEqual(['runs/m1/model.json', 'runs/m1/weights.bin']);

    const x = tf.randomNormal([5, 4]);
    const want = await (model.predict(x) as tf.Tensor).array();
    const loaded = await loadModel(uri, store);
    expect(loaded.meta).toEqual(meta);
    expect(await (loaded.model.predict(x) as tf.Tensor).array()).toEqual(want);

    // A base model in another bucket (not this store) is read over the store's connection, through
    // the worker's fetch cache.
    const other = new S3ArtifactStore(`s3://mlq-other/base${query()}`);
    const baseUri = await saveModel(model, other, 'mnist', meta);
    expect(baseUri).toBe('s3://mlq-other/base/mnist/model.json');
    const policy = new EgressPolicy({ allowHosts: [], timeoutMs: 5000, maxBytes: 1 << 20 });
    const cache = new FetchCache({ dir: path.join(tmp, 'fetch'), maxBytes: 1 << 20, policy, store });
    const locate = uriResolver({ dataRoots: [], fetch: { cache, holder: 'test' } });
    const base = await loadModel(baseUri, store, [], { locate });
    expect(await (base.model.predict(x) as tf.Tensor).array()).toEqual(want);
    await expect(
      loadModel('s3://mlq-other/base/none/model.json', store, [], { locate }),
    ).rejects.toBeInstanceOf(NotFoundError);
    tf.dispose([x]);
    model.dispose();
    loaded.model.dispose();
    base.model.dispose();
  });

  it('takes the endpoint from AWS_ENDPOINT_URL_S3 when the URI has none', async () => {
    process.env.AWS_ENDPOINT_URL_S3 = endpoint;
    try {
      const store = openArtifactStore('s3://mlq-test/env');
      await store.put('a.txt', 'via env');
      expect((await new S3ArtifactStore(`s3://mlq-test/env${query()}`).get('a.txt')).toString()).toBe(
        'via env',
      );
    } finally {
      delete process.env.AWS_ENDPOINT_URL_S3;
    }
  });
});
