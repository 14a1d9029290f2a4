/**
 * Dataset upload benchmark (issue 12's bar): a 200 MB CSV sent to `POST /v1/datasets/{name}`.
 *
 *   npx tsx bench/upload.ts [--mb=200] [--rounds=2] [--s3]
 *
 * Starts the API as its own process with the command and NODE_ENV of the Dockerfile's `api` stage
 * (read from the Dockerfile, the ENTRYPOINT's tini aside), with a file artifact store (with --s3, also
 * an s3rver process and an `s3://` store), writes a CSV of ~`mb` MB (20 numeric columns and a label), and uploads it from disk
 * with fetch, streamed. Prints
 *   - upload throughput in MB/s, against a baseline measured in the same run: the same bytes sent to a
 *     bare node:http server that only pipes the body to a file (no hashing, validation or store);
 *   - the API process's resident memory: before, the most seen while uploading (VmRSS sampled every
 *     20 ms) and its peak since start (VmHWM of /proc/<pid>/status, kept by the kernel; bar: under 200 MB).
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createWriteStream, openAsBlob } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { imageConfig } from '../test/support/dockerfile.ts';
import { startHost } from '../test/support/hosts.ts';
import { startS3rver } from '../test/support/s3rver.ts';
import { deletePrefix, REDIS_URL, repoRoot } from '../test/support/stack.ts';

const arg = (name: string, dflt: number) =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt);
const MB = arg('mb', 200);
const ROUNDS = arg('rounds', 2);
const WITH_S3 = process.argv.includes('--s3');

/** ~`mb` MB of CSV: 20 numeric features and a label, written in 1 MB blocks. */
async function writeCsv(file: string, mb: number): Promise<number> {
  const out = createWriteStream(file);
  out.write(`${Array.from({ length: 20 }, (_, i) => `f${i}`).join(',')},label\n`);
  let bytes = 0;
  let row = 0;
  while (bytes < mb * 1e6) {
    let block = '';
    while (block.length < 1e6) {
      const vals = Array.from({ length: 20 }, (_, i) => ((Math.sin(row * 31 + i) + 1) * 50).toFixed(3));
      block += `${vals.join(',')},${row % 3 === 0 ? 'a' : row % 3 === 1 ? 'b' : 'c'}\n`;
      row++;
    }
    bytes += block.length;
    if (!out.write(block)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((r) => out.end(() => r()));
  return row;
}

/** `VmRSS` and `VmHWM` (peak) of a process, in MB. */
async function memory(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

/** Seconds to POST the file to `url`; fails on any answer but `want`. */
async function send(url: string, file: string, type: string, want: number): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': type },
    body: await openAsBlob(file),
  });
  const text = await res.text();
  if (res.status !== want) throw new Error(`${url} answered ${res.status}: ${text.slice(0, 300)}`);
  return (performance.now() - t0) / 1000;
}

/** The baseline: a bare HTTP server that pipes the body to a file. */
async function baselineServer(dir: string) {
  const script = `const http=require('http'),fs=require('fs');let n=0;const s=http.createServer((q,r)=>{const w=fs.createWriteStream(process.argv[1]+'/'+(n++));q.pipe(w);w.on('finish',()=>{r.statusCode=201;r.end('ok')})});s.listen(0,'127.0.0.1',()=>console.log('listening '+s.address().port))`;
  const proc = spawn(process.execPath, ['-e', script, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((r) =>
    proc.stdout!.on('data', (d: Buffer) => r(/listening (\d+)/.exec(d.toString())![1]!)),
  );
  return { url: `http://127.0.0.1:${port}/`, pid: proc.pid!, stop: () => proc.kill() };
}

async function main() {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'mlq-bench-upload-'));
  const redis = new Redis(REDIS_URL);
  const prefix = `bench-upload-${randomUUID().slice(0, 8)}`;
  const stops: (() => unknown)[] = [];
  try {
    const csv = path.join(tmp, 'big.csv');
    const rows = await writeCsv(csv, MB);
    const size = (await stat(csv)).size;
    console.log(
      `CSV: ${(size / 1e6).toFixed(1)} MB, ${rows} rows; load ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')} on ${os.availableParallelism()} cores`,
    );

    const base = await baselineServer(await mkdtemp(path.join(tmp, 'baseline-')));
    stops.push(base.stop);
    const baseBefore = await memory(base.pid);
    const baseSecs: number[] = [];
    for (let i = 0; i < ROUNDS; i++) baseSecs.push(await send(base.url, csv, 'text/csv', 201));
    const baseRate = size / 1e6 / Math.min(...baseSecs);
    const baseAfter = await memory(base.pid);
    console.log(
      `baseline (bare node:http → file): ${baseRate.toFixed(0)} MB/s (best of ${ROUNDS}); its RSS ${baseBefore.rss.toFixed(0)} MB before, VmHWM ${baseAfter.peak.toFixed(0)} MB`,
    );

    const stores: [string, string, Record<string, string>][] = [
      ['file', pathToFileURL(path.join(tmp, 'store')).href, {}],
    ];
    if (WITH_S3) {
      const s3 = await startS3rver(path.join(tmp, 's3'), 'bench-upload');
      stops.push(() => s3.stop());
      stores.push(['s3rver', 's3://bench-upload/mlq', s3.env]);
    }
    // The image's CMD (`node <flags> apps/api/src/main.ts`), with this node and the script's full path.
    const image = imageConfig('Dockerfile', 'api');
    const [node, ...args] = image.cmd;
    if (node !== 'node') throw new Error(`the api stage's CMD does not start node: ${image.cmd.join(' ')}`);
    const command = [process.execPath, ...args.map((a) => (a.endsWith('.ts') ? path.join(repoRoot, a) : a))];
    console.log(`API: ${image.cmd.join(' ')} (the Dockerfile's api stage), NODE_ENV=${image.env.NODE_ENV}`);
    for (const [kind, store, extra] of stores) {
      const api = await startHost(command, {
        cwd: tmp,
        env: {
          REDIS_URL,
          QUEUE_PREFIX: prefix,
          ARTIFACT_STORE: store,
          DATA_ROOTS: tmp,
          PORT: '0',
          HOST: '127.0.0.1',
          RATE_LIMIT_PER_MINUTE: '0',
          ...(image.env.NODE_ENV ? { NODE_ENV: image.env.NODE_ENV } : {}),
          DATASET_MAX_BYTES: String(2 * size),
          ...extra,
        },
        ready: /api listening on (http:\/\/[\d.]+:\d+)/,
      });
      stops.push(() => api.kill());
      const url = api.ready[1]!;
      const pid = api.proc.pid!;
      const before = await memory(pid);
      // VmHWM is the peak since the process started; sampling VmRSS shows the peak during the uploads alone.
      let sampled = 0;
      const sampler = setInterval(
        () => void memory(pid).then((m) => (sampled = Math.max(sampled, m.rss))),
        20,
      );
      const secs: number[] = [];
      for (let i = 0; i < ROUNDS; i++)
        secs.push(await send(`${url}/v1/datasets/big-${kind}`, csv, 'text/csv', 201));
      clearInterval(sampler);
      const after = await memory(pid);
      const rate = size / 1e6 / Math.min(...secs);
      console.log(
        `mlq upload (${kind} store): ${rate.toFixed(0)} MB/s (best of ${ROUNDS}; ${(rate / baseRate).toFixed(2)}× the baseline); ` +
          `API RSS ${before.rss.toFixed(0)} MB before, ${sampled.toFixed(0)} MB at most while uploading (sampled every 20 ms), ` +
          `VmHWM ${after.peak.toFixed(0)} MB (bar: < 200 MB) → ${after.peak < 200 ? 'PASS' : 'FAIL'}`,
      );
      api.kill();
      await api.exited;
    }
  } finally {
    for (const stop of stops.reverse()) await stop();
    await deletePrefix(redis, prefix);
    await redis.quit();
    await rm(tmp, { recursive: true, force: true });
  }
}

await main();
