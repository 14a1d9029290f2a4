/**
 * Many hosts: the API and two workers as three processes that share only Redis and an S3-compatible
 * store (s3rver, started here). Each worker has its own empty working directory, DATA_ROOTS and cache;
 * none points at the API's files. A CSV uploaded through the SDK trains; the worker holding the job is
 * killed with kill -9 mid-training, the job's log says so once the other worker finds its lock expired,
 * and that worker resumes it from the checkpoint in the store, saying from which epoch; a
 * batch-predict writes its output to the store and the SDK downloads it through the API.
 */
import { randomUUID } from 'node:crypto';
import { openAsBlob } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAll, mnistSource } from '@mlq/core/data';
import { MlqClient, type DatasetVersion, type ResultOf } from '@mlq/sdk';
import { startHost, type HostProcess } from '../../../test/support/hosts.ts';
import { startS3rver, type S3rver } from '../../../test/support/s3rver.ts';
import { deletePrefix, REDIS_URL } from '../../../test/support/stack.ts';

const ROWS = 6000;

/** MNIST digits as a CSV a user might have: 784 pixel columns and a label. */
async function writeDigitsCsv(file: string): Promise<void> {
  const data = await loadAll(
    mnistSource({ format: 'mnist', digits: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], split: 'train', limit: ROWS }),
  );
  const lines = [[...Array.from({ length: 784 }, (_, i) => `p${i}`), 'label'].join(',')];
  for (let r = 0; r < data.info.rows; r++) {
    const px = data.x.subarray(r * 784, (r + 1) * 784);
    lines.push(`${Array.from(px, (v) => (v === 0 ? '0' : v.toFixed(2))).join(',')},${data.y[r]}`);
  }
  await writeFile(file, `${lines.join('\n')}\n`);
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('many hosts sharing only Redis and an S3 store', () => {
  const prefix = `test-hosts-${randomUUID().slice(0, 8)}`;
  let tmp: string;
  let s3: S3rver;
  let api: HostProcess;
  const workers = new Map<string, HostProcess & { dir: string }>();
  let mlq: MlqClient;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mlq-hosts-'));
    s3 = await startS3rver(path.join(tmp, 's3'), 'mlq-hosts');
    const shared = { REDIS_URL, QUEUE_PREFIX: prefix, ARTIFACT_STORE: 's3://mlq-hosts/mlq', ...s3.env };
    const apiDir = path.join(tmp, 'api');
    await mkdir(path.join(apiDir, 'data'), { recursive: true });
    api = await startHost('apps/api/src/main.ts', {
      cwd: apiDir,
      env: { ...shared, PORT: '0', HOST: '127.0.0.1', DATA_ROOTS: path.join(apiDir, 'data') },
      ready: /api listening on (http:\/\/[\d.]+:\d+)/,
    });
    mlq = new MlqClient({ baseUrl: /api listening on (http:\/\/[\d.]+:\d+)/.exec(api.output())![1]! });
    for (const name of ['host-a', 'host-b']) {
      const dir = path.join(tmp, name);
      await mkdir(path.join(dir, 'data'), { recursive: true });
      const w = await startHost('apps/worker/src/main.ts', {
        cwd: dir,
        env: {
          ...shared,
          DATA_ROOTS: path.join(dir, 'data'),
          WORKER_CACHE_DIR: path.join(dir, 'cache'),
          WORKER_NAME: name,
          WORKER_QUEUES: 'fine-tune,batch-predict',
          // Short locks, so a killed worker's job is taken over in seconds, not the production 45 s.
          WORKER_LOCK_DURATION_MS: '3000',
          WORKER_STALLED_INTERVAL_MS: '1000',
          TFJS_BACKEND: process.env.TFJS_BACKEND ?? 'auto',
        },
        ready: / serving /,
      });
      workers.set(name, { ...w, dir });
    }
  });

  afterAll(async () => {
    for (const w of workers.values()) w.kill('SIGKILL');
    await Promise.all([...workers.values()].map((w) => w.exited));
    api?.kill('SIGTERM');
    await api?.exited;
    await s3?.stop();
    const redis = new Redis(REDIS_URL);
    await deletePrefix(redis, prefix);
    await redis.quit();
    await rm(tmp, { recursive: true, force: true });
  });

  it('trains an uploaded dataset, survives kill -9 across hosts, and hands results back through the API', async () => {
    const csv = path.join(tmp, 'digits.csv');
    await writeDigitsCsv(csv);
    let progressCalls = 0;
    const v: DatasetVersion = await mlq.uploadDataset('digits', await openAsBlob(csv), {
      format: 'csv',
      onProgress: () => void progressCalls++,
    });
    expect(v).toMatchObject({ uri: 'dataset://digits@1', format: 'csv', rows: ROWS, label: 'label' });
    expect(Object.keys(v.classes!)).toHaveLength(10);
    expect(progressCalls).toBeGreaterThan(1);

    const job = await mlq.fineTune({
      model: 'digits-hosts',
      architecture: 'mlp',
      architectureOptions: { units: [256, 128] },
      dataset: { format: 'csv', uri: 'dataset://digits' },
      epochs: 3,
      batchSize: 16,
    });
    expect(job.params.dataset).toMatchObject({ uri: 'dataset://digits@1' });
    // An epoch finished (and checkpointed): a report within an epoch carries `batch`.
    await until('epoch 1', async () => {
      const p = (await mlq.getJob(job.id)).progress as { epoch?: number; batch?: number };
      return (p.epoch ?? 0) - (p.batch === undefined ? 0 : 1) >= 1 || undefined;
    });
    const holder = await until(
      'the holding worker',
      async () => (await mlq.workers()).find((w) => w.currentJobs.some((j) => j.id === job.id))?.id,
    );
    const other = holder === 'host-a' ? 'host-b' : 'host-a';
    const killedAt = Date.now();
    workers.get(holder)!.kill('SIGKILL');
    await workers.get(holder)!.exited;

    // The survivor's stalled-job check finds the lock gone and says so in the job's log at once...
    const stalled = await until('the stall in the job log', async () =>
      (await mlq.jobLogs(job.id)).find((l) => l.includes(' stopped answering: ')),
    );
    expect(stalled).toMatch(
      new RegExp(
        `^\\S+Z worker ${holder} stopped answering: its lock on this job expired \\(not renewed for 3 s: the worker was ` +
          `killed, hung or cut off from Redis\\), and the stalled-job check of worker ${other} put the job back in the ` +
          `queue for the next free worker \\(stall 1 of the 5 allowed\\)$`,
      ),
    );
    const resumed = await until('resume', async () =>
      (await mlq.jobLogs(job.id)).find((l) => l.includes('resuming from the checkpoint')),
    );
    const seconds = (Date.parse(resumed.slice(0, 24)) - killedAt) / 1000;
    const stallSeconds = (Date.parse(stalled.slice(0, 24)) - killedAt) / 1000;
    console.log(
      `kill -9 of ${holder} → the job's log said so after ${stallSeconds.toFixed(1)} s, training resumed on ${other} ` +
        `in ${seconds.toFixed(1)} s (lock 3 s, stalled check 1 s)`,
    );
    // ... and the worker taking it over says from where, before the job's own lines.
    const logs = await mlq.jobLogs(job.id);
    const takeover = logs.find((l) => l.includes(' takes the job over: '));
    expect(takeover).toMatch(
      new RegExp(
        `^\\S+Z worker ${holder} stopped answering \\(its lock on this job expired after 3 s without renewal: killed, hung ` +
          `or cut off from Redis\\), so worker ${other} takes the job over: it resumes from the checkpoint at the end ` +
          `of epoch (\\d+) \\(stall 1 of the 5 allowed\\)$`,
      ),
    );
    const epoch = /at the end of epoch (\d+)/.exec(takeover!)![1];
    expect(resumed).toContain(`resuming from the checkpoint at the end of epoch ${epoch} `);
    expect(logs.indexOf(stalled)).toBeLessThan(logs.indexOf(takeover!));
    expect(logs.indexOf(takeover!)).toBeLessThan(logs.indexOf(resumed));
    const done = await mlq.waitForJob(job, { timeoutMs: 300_000 });
    const result = done.result as ResultOf<'fine-tune'>;
    expect(result.history!.map((h) => h.epoch)).toEqual([1, 2, 3]);
    // The survivor read the upload from the store into its own cache (an entry of its bounded cache,
    // keyed by the bytes' hash); its working directory stayed empty.
    const otherDir = workers.get(other)!.dir;
    const cached = path.join(otherDir, 'cache', 'fetch');
    const entries = (await readdir(cached)).filter((n) => /^[0-9a-f]{64}$/.test(n));
    const metas = await Promise.all(
      entries.map(
        async (n) => JSON.parse(await readFile(path.join(cached, n, 'meta.json'), 'utf8')) as object,
      ),
    );
    expect(metas).toEqual([expect.objectContaining({ uri: v.uri, sha256: v.sha256, size: v.bytes })]);
    expect((await readdir(otherDir)).sort()).toEqual(['cache', 'data']);
    expect(await readdir(path.join(otherDir, 'data'))).toEqual([]);

    const bp = await mlq.batchPredict({ model: 'digits-hosts', input: { format: 'csv', uri: v.uri } });
    const bpDone = await mlq.waitForJob(bp, { timeoutMs: 300_000 });
    expect(bpDone.result!.outputUri).toMatch(/^s3:\/\/mlq-hosts\/mlq\/outputs\/.+\/predictions\.jsonl$/);
    const arts = await mlq.listArtifacts(bp.id);
    expect(arts.map((a) => a.name)).toEqual(['predictions.jsonl']);
    const text = await (await mlq.downloadArtifact(bp.id, 'predictions.jsonl')).text();
    const lines = text.trim().split('\n');
    expect(lines).toHaveLength(ROWS);
    expect(JSON.parse(lines[ROWS - 1]!)).toMatchObject({ index: ROWS - 1, scores: expect.any(Array) });
    const zip = Buffer.from(await (await mlq.downloadArtifact(job.id, 'model.zip')).arrayBuffer());
    expect(zip.readUInt32LE(0)).toBe(0x04034b50);
    expect(zip.includes(Buffer.from('model.json'))).toBe(true);
  }, 300_000);
});
