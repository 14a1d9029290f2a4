/**
 * What open consoles cost the API (issue 18's bar): its event-loop delay p99 with 5 jobs training and
 * 5 consoles open on them, against the same 5 jobs and no console.
 *
 *   npx tsx bench/console-load.ts [--window=20] [--rounds=3] [--consoles=5] [--jobs=5]
 *
 * The API runs in its own process and measures its own event loop (console-load.api.ts); one worker
 * process trains the jobs (WORKER_CONCURRENCY = jobs, one thread each: mlp on all MNIST digits, many
 * epochs, so they report progress within epochs about once a second for the whole run). A console is
 * what the pages ask of the API: the job list's `GET /v1/events` stream, one job page's
 * `GET /v1/jobs/{id}/events` stream with its job, history and logs, and the logs again after each
 * epoch; the consoles run in their own process at the lowest CPU priority (browsers are normally on
 * other machines). Windows without and with consoles alternate, so drifts in the machine's load hit
 * both alike. Besides the delay, the API process's CPU time per second of each window is printed.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { MlqClient } from '../packages/sdk/src/index.ts';
import { deletePrefix, REDIS_URL, spawnWorkerProcess, uniquePrefix } from '../test/support/stack.ts';

const arg = (name: string, dflt: number) =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt);
const WINDOW_S = arg('window', 20);
const ROUNDS = arg('rounds', 3);
const CONSOLES = arg('consoles', 5);
const JOBS = arg('jobs', 5);

interface Delay {
  p50: number;
  p99: number;
  max: number;
  mean: number;
  cpuMsPerSec: number;
  hubSubscribers: number;
}

function ask<T>(proc: ChildProcess, msg: string): Promise<T> {
  return new Promise((resolve) => {
    proc.once('message', (m) => resolve(m as T));
    proc.send(msg);
  });
}

/** Opens the consoles in their own low-priority process (console-load.consoles.ts). */
async function openConsoles(url: string, jobIds: string[]): Promise<ChildProcess> {
  const proc = fork(path.join(import.meta.dirname, 'console-load.consoles.ts'), [url, ...jobIds], {
    execArgv: ['--import', 'tsx'],
  });
  await new Promise((r) => proc.once('message', r));
  return proc;
}

async function measure(api: ChildProcess, seconds: number): Promise<Delay> {
  api.send('reset');
  await new Promise((r) => setTimeout(r, seconds * 1000));
  return ask<Delay>(api, 'report');
}

const prefix = uniquePrefix('console-load');
const dataDir = await mkdtemp(path.join(os.tmpdir(), 'mlq-console-load-'));
const env = {
  REDIS_URL,
  QUEUE_PREFIX: prefix,
  ARTIFACT_STORE: pathToFileURL(path.join(dataDir, 'artifacts')).href,
  DATA_ROOTS: dataDir,
  RATE_LIMIT_PER_MINUTE: '0',
};
const api = fork(path.join(import.meta.dirname, 'console-load.api.ts'), {
  execArgv: ['--import', 'tsx'],
  env: { ...process.env, ...env },
});
const { url } = await new Promise<{ url: string }>((r) =>
  api.once('message', (m) => r(m as { url: string })),
);
const worker = await spawnWorkerProcess({
  ...env,
  WORKER_CONCURRENCY: String(JOBS),
  WORKER_QUEUES: 'fine-tune',
  WORKER_TRAIN_THREADS: '1',
  TFJS_BACKEND: 'wasm',
});
const client = new MlqClient({ baseUrl: url });
const ids: string[] = [];
for (let i = 0; i < JOBS; i++) {
  const job = await client.fineTune({
    model: `load-${i}`,
    architecture: 'mlp',
    architectureOptions: { units: [256, 128] },
    dataset: { format: 'mnist' },
    epochs: 1000,
    batchSize: 32,
    validationSplit: 0.1,
    seed: i,
  });
  ids.push(job.id);
}
const redis = new Redis(REDIS_URL);
try {
  // Every job training and reporting before the first window.
  for (;;) {
    const jobs = await Promise.all(ids.map((id) => client.getJob(id)));
    if (jobs.every((j) => j.state === 'active' && typeof j.progress === 'object')) break;
    if (jobs.some((j) => j.state === 'failed')) throw new Error(`a job failed: ${JSON.stringify(jobs)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  console.log(
    `${JOBS} jobs training; ${ROUNDS} rounds of ${WINDOW_S} s without and with ${CONSOLES} consoles`,
  );
  const without: Delay[] = [];
  const withConsoles: Delay[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    without.push(await measure(api, WINDOW_S));
    const consoles = await openConsoles(
      url,
      Array.from({ length: CONSOLES }, (_, c) => ids[c % ids.length]!),
    );
    await new Promise((r) => setTimeout(r, 1000)); // let the pages load before the window
    withConsoles.push(await measure(api, WINDOW_S));
    const closed = new Promise((r) => consoles.once('exit', r));
    consoles.kill('SIGKILL');
    await closed;
    const [a, b] = [without.at(-1)!, withConsoles.at(-1)!];
    console.log(
      `round ${round}: p99 ${a.p99.toFixed(1)} ms without, ${b.p99.toFixed(1)} ms with consoles (${b.hubSubscribers} list streams); API CPU ${a.cpuMsPerSec.toFixed(0)} vs ${b.cpuMsPerSec.toFixed(0)} ms/s; load ${os.loadavg()[0]!.toFixed(1)}`,
    );
    await new Promise((r) => setTimeout(r, 1000));
  }
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  const line = (name: string, ds: Delay[]) =>
    `${name.padEnd(12)} p50 ${median(ds.map((d) => d.p50)).toFixed(1)} ms  p99 ${median(ds.map((d) => d.p99)).toFixed(1)} ms (rounds ${Math.min(...ds.map((d) => d.p99)).toFixed(1)}-${Math.max(...ds.map((d) => d.p99)).toFixed(1)})  max ${Math.max(...ds.map((d) => d.max)).toFixed(1)} ms  API CPU ${median(ds.map((d) => d.cpuMsPerSec)).toFixed(0)} ms/s`;
  console.log(line('no console', without));
  console.log(line(`${CONSOLES} consoles`, withConsoles));
  const diff = median(withConsoles.map((d) => d.p99)) - median(without.map((d) => d.p99));
  console.log(`p99 difference (median of ${ROUNDS} rounds): ${diff >= 0 ? '+' : ''}${diff.toFixed(1)} ms`);
} finally {
  await Promise.all(ids.map((id) => client.cancelJob(id).catch(() => undefined)));
  worker.kill('SIGKILL');
  await worker.exited;
  const apiExited = new Promise((r) => api.once('exit', r));
  api.send('stop');
  await apiExited;
  await deletePrefix(redis, prefix);
  await redis.quit();
  await rm(dataDir, { recursive: true, force: true });
}
