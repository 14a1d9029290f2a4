/**
 * Datasets and models from s3:// and http(s):// URIs, through the real API and a real worker process:
 * a CSV served over http by a server of this test (allowed by FETCH_ALLOW_HOSTS=127.0.0.1) trains, and
 * a second job on it is a cache hit (one body sent, then a 304); a CSV in s3rver trains; a model split
 * into two weight shards loads from s3:// and from http://; an image folder packed as a .zip trains.
 * The worker refuses, failing the job at once, a redirect to the cloud metadata address and a body
 * past FETCH_MAX_MB.
 */
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EgressPolicy, FetchCache } from '@mlq/core/remote';
import { FileArtifactStore, S3ArtifactStore } from '@mlq/core/storage';
import { makeZip, png } from '../../../packages/core/test/fixtures/archives.ts';
import { startS3rver, type S3rver } from '../../../test/support/s3rver.ts';
import { http, startStack, waitForJob, type JobBody, type Stack } from '../../../test/support/stack.ts';

/** 40 rows, two classes a line apart: trains in a blink. */
function csv(): string {
  const rows = ['a,b,label'];
  for (let i = 0; i < 40; i++) {
    const c = i % 2;
    rows.push(
      `${(c * 2 + (i % 5) * 0.1).toFixed(2)},${(1 - c + (i % 3) * 0.1).toFixed(2)},${c ? 'yes' : 'no'}`,
    );
  }
  return `${rows.join('\n')}\n`;
}

describe('datasets and models from s3:// and http(s)://', () => {
  let stack: Stack;
  let s3: S3rver;
  let tmp: string;
  let server: Server;
  let site: string;
  /** Every request the server saw: path, status answered, and the If-None-Match it carried. */
  const seen: { path: string; status: number; ifNoneMatch?: string | undefined }[] = [];
  const files = new Map<string, { body: Buffer; etag?: string }>();

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mlq-remote-'));
    s3 = await startS3rver(path.join(tmp, 's3'), 'data');
    // This process writes to the bucket too, with s3rver's key pair.
    Object.assign(process.env, s3.env);
    files.set('/train.csv', { body: Buffer.from(csv()), etag: '"train-v1"' });
    const zip = makeZip([
      ...Array.from({ length: 6 }, (_, i) => ({ name: `shapes/dark/${i}.png`, data: png(10 + i) })),
      ...Array.from({ length: 6 }, (_, i) => ({ name: `shapes/light/${i}.png`, data: png(240 - i) })),
    ]);
    files.set('/shapes.zip', { body: zip });
    files.set('/bad.csv', { body: Buffer.from('a,b,label\n1,hello,x\n2,3,y\n') });
    server = createServer((req, res) => {
      const p = req.url!;
      const answer = (status: number, headers: Record<string, string | number> = {}, body?: Buffer) => {
        seen.push({ path: p, status, ifNoneMatch: req.headers['if-none-match'] });
        res.writeHead(status, headers);
        res.end(body);
      };
      if (p === '/moved.csv') return answer(302, { location: 'http://169.254.169.254/latest/meta-data/' });
      if (p === '/moved-tls.csv')
        return answer(307, { location: 'https://169.254.169.254/latest/meta-data/' });
      if (p === '/huge.csv') {
        // 256 KiB without a Content-Length, past the worker's FETCH_MAX_MB of 0.1.
        seen.push({ path: p, status: 200 });
        res.writeHead(200, { 'content-type': 'text/csv' });
        res.write('a,b,label\n');
        for (let i = 0; i < 64; i++) res.write(`${'1,2,x\n'.repeat(680)}`);
        return void res.end();
      }
      const f = files.get(p);
      if (!f) return answer(404);
      if (f.etag && req.headers['if-none-match'] === f.etag) return answer(304, { etag: f.etag });
      answer(200, { 'content-length': f.body.length, ...(f.etag ? { etag: f.etag } : {}) }, f.body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    site = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const fetchEnv = { FETCH_ALLOW_HOSTS: '127.0.0.1', FETCH_MAX_MB: '0.1', FETCH_TIMEOUT_MS: '10000' };
    stack = await startStack('remote-data', {
      apiEnv: fetchEnv,
      workerEnv: { ...fetchEnv, ...s3.env, WORKER_CACHE_DIR: path.join(tmp, 'cache'), WORKER_CACHE_MB: '64' },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    await new Promise((r) => server?.close(r));
    await s3?.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  const submit = async (type: string, body: object) => {
    const r = await http<JobBody>(`${stack.url}/v1/jobs/${type}`, 'POST', body);
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    return waitForJob(stack.url, r.body.id);
  };
  const logsOf = async (id: string) =>
    (await http<{ logs: string[] }>(`${stack.url}/v1/jobs/${id}/logs`)).body.logs;
  const fineTune = (model: string, uri: string) =>
    submit('fine-tune', {
      model,
      architecture: 'mlp',
      architectureOptions: { units: [8] },
      dataset: { format: 'csv', uri },
      epochs: 2,
      batchSize: 8,
    });
  let trained: string;

  it('trains on a CSV served over http; a second job on it is a cache hit (a 304, no body sent again)', async () => {
    const uri = `${site}/train.csv`;
    const first = await fineTune('over-http', uri);
    expect(first.state, first.error).toBe('completed');
    expect((await logsOf(first.id)).some((l) => l.includes(`fetched ${uri}`))).toBe(true);
    trained = first.result!.model!.uri;

    const second = await fineTune('over-http', uri);
    expect(second.state, second.error).toBe('completed');
    expect((await logsOf(second.id)).some((l) => l.includes(`cache hit: ${uri} (ETag "train-v1"`))).toBe(
      true,
    );
    // One body sent; the second job only asked whether it changed (If-None-Match) and heard 304.
    expect(seen.filter((s) => s.path === '/train.csv')).toEqual([
      { path: '/train.csv', status: 200, ifNoneMatch: undefined },
      { path: '/train.csv', status: 304, ifNoneMatch: '"train-v1"' },
    ]);
  });

  it('trains on a CSV in an S3 bucket (s3rver)', async () => {
    const bucket = new S3ArtifactStore(
      `s3://data?endpoint=${s3.endpoint}&region=us-east-1&forcePathStyle=true`,
    );
    await bucket.put('sets/train.csv', csv());
    const j = await fineTune('over-s3', 's3://data/sets/train.csv');
    expect(j.state, j.error).toBe('completed');
    expect((await logsOf(j.id)).some((l) => l.includes(' fetched s3://data/sets/train.csv: '))).toBe(true);
    // The next job asks S3 for the ETag only (HEAD) and reads its copy.
    const again = await fineTune('over-s3', 's3://data/sets/train.csv');
    expect(again.state, again.error).toBe('completed');
    expect(
      (await logsOf(again.id)).some((l) => l.includes(' cache hit: s3://data/sets/train.csv (ETag ')),
    ).toBe(true);
  });

  it('loads a model whose weights are split in two shards, from http:// and from s3://', async () => {
    // The model the first test trained, rewritten as two shards as tensorflowjs_converter writes them.
    const store = new FileArtifactStore(stack.storeUri);
    const key = store.keyOf(trained)!;
    const dir = key.slice(0, key.lastIndexOf('/'));
    const json = JSON.parse((await store.get(`${dir}/model.json`)).toString()) as {
      weightsManifest: { paths: string[] }[];
    };
    const weights = await store.get(`${dir}/weights.bin`);
    const half = Math.floor(weights.length / 8) * 4;
    json.weightsManifest[0]!.paths = ['group1-shard1of2.bin', 'group1-shard2of2.bin'];
    const parts = {
      'model.json': Buffer.from(JSON.stringify(json)),
      'group1-shard1of2.bin': weights.subarray(0, half),
      'group1-shard2of2.bin': weights.subarray(half),
    };
    const bucket = new S3ArtifactStore(
      `s3://data?endpoint=${s3.endpoint}&region=us-east-1&forcePathStyle=true`,
    );
    for (const [name, body] of Object.entries(parts)) {
      files.set(`/models/two/${name}`, { body });
      await bucket.put(`models/two/${name}`, body);
    }
    const dataset = { format: 'csv', uri: `${site}/train.csv` };
    for (const model of [`${site}/models/two/model.json`, 's3://data/models/two/model.json']) {
      const e = await submit('evaluate', { model, dataset });
      expect(e.state, `${model}: ${e.error}`).toBe('completed');
      expect(e.result).toMatchObject({ metrics: { samples: 40 } });
    }
    for (const name of Object.keys(parts))
      expect(seen.filter((s) => s.path === `/models/two/${name}` && s.status === 200)).toHaveLength(1);
  });

  it('trains on an image folder packed as a .zip served over http', async () => {
    const j = await submit('fine-tune', {
      model: 'shapes',
      architecture: 'mlp',
      architectureOptions: { units: [4] },
      dataset: { format: 'image-folder', uri: `${site}/shapes.zip`, imageSize: [8, 8], channels: 1 },
      epochs: 1,
      batchSize: 4,
    });
    expect(j.state, j.error).toBe('completed');
    const v = await http<{ classNames?: string[] }>(`${stack.url}/v1/models/shapes/versions/1`);
    expect(v.body.classNames).toEqual(['dark', 'light']);
  });

  it("names the URL, not the worker's cache path, when the data is bad or cannot be fetched", async () => {
    const bad = await fineTune('bad', `${site}/bad.csv`);
    expect(bad.state).toBe('failed');
    expect(bad.attempts).toBe(1);
    expect(bad.error).toBe(`${site}/bad.csv, line 2: column "b" is not a number: "hello"`);
    // A network error is retried (it may pass), and the last attempt's reason names the URL.
    const refused = await fineTune('refused', 'http://127.0.0.1:1/x.csv');
    expect(refused.state).toBe('failed');
    expect(refused.attempts).toBe(3);
    expect(refused.error).toBe('cannot fetch http://127.0.0.1:1/x.csv: connect ECONNREFUSED 127.0.0.1:1');
  }, 60_000);

  it('fails a job at once when a redirect leads to the metadata address, or a body passes FETCH_MAX_MB', async () => {
    const moved = await fineTune('moved', `${site}/moved.csv`);
    expect(moved.state).toBe('failed');
    expect(moved.attempts).toBe(1);
    expect(moved.error).toMatch(
      /^http:\/\/169\.254\.169\.254\/latest\/meta-data\/: plain http:\/\/ is only allowed to hosts in FETCH_ALLOW_HOSTS .*\(redirected from http:\/\/127\.0\.0\.1:\d+\/moved\.csv\)$/,
    );
    // Over https too: the address itself is refused, before any connection.
    const tls = await fineTune('moved', `${site}/moved-tls.csv`);
    expect(tls.state).toBe('failed');
    expect(tls.attempts).toBe(1);
    expect(tls.error).toMatch(
      /^https:\/\/169\.254\.169\.254\/latest\/meta-data\/ is refused: 169\.254\.169\.254 is a link-local address; FETCH_ALLOW_HOSTS does not list it \(redirected from http:\/\/127\.0\.0\.1:\d+\/moved-tls\.csv\)$/,
    );
    const huge = await fineTune('huge', `${site}/huge.csv`);
    expect(huge.state).toBe('failed');
    expect(huge.attempts).toBe(1);
    expect(huge.error).toMatch(/huge\.csv is larger than FETCH_MAX_MB \(more than 104857 bytes/);
    // Nothing of it stays in the worker's cache; what the other jobs fetched does.
    const cache = new FetchCache({
      dir: path.join(tmp, 'cache', 'fetch'),
      maxBytes: 64 << 20,
      policy: new EgressPolicy({ allowHosts: [], timeoutMs: 1000, maxBytes: 1 }),
    });
    const uris = (await cache.entries()).map((e) => e.uri);
    expect(uris).toContain(`${site}/train.csv`);
    expect(uris).toContain('s3://data/sets/train.csv');
    expect(uris.filter((u) => /huge|moved/.test(u))).toEqual([]);
  });
});
