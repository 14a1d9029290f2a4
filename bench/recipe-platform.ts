/**
 * Part (c) of bench/recipe.ts: the recipe through the real platform. An API and one worker run as their
 * own processes on a fresh QUEUE_PREFIX and an empty temp artifact store (so the embedding cache starts
 * cold); jobs go through the SDK and are timed submit → completed, as a user would see them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { MlqClient } from '../packages/sdk/src/index.ts';
import { deletePrefix, REDIS_URL, repoRoot, spawnWorkerProcess } from '../test/support/stack.ts';
import type { AdadeltaConstants } from './plain-mnist-cnn.ts';

export interface JobRun {
  ref: string;
  /** Submit → completed, wall clock, seen from the client. */
  seconds: number;
  /** CPU seconds of the worker (with its sandbox child) and the API during the job. */
  cpuSeconds: number;
  /** Created → started (waiting in the queue). */
  queuedSeconds: number;
  /** The fit loop alone, as the job reports it (epochs only, no checkpoints). */
  trainSeconds: number;
  samplesPerSec: number;
  rows: number;
  backend: string;
  /** From an evaluate job on the test split (not timed). */
  accuracy: number;
  testRows: number;
  logs: string[];
}

export interface PlatformRun {
  warmupSeconds: number;
  pretrain: JobRun;
  /** Seed 0, the worker's first transfer job (cold embedding cache). */
  transfer: JobRun;
  /** Seed 1, the same job again (warm cache). */
  transferWarm: JobRun;
  /** The transfer job with seeds 0..n-1 (0 and 1 are the two above): accuracy over seeds. */
  transferSeeds: JobRun[];
}

type FineTuneInput = Parameters<MlqClient['fineTune']>[0];

/**
 * CPU seconds (user + system) a process and its descendants have used, from /proc (Linux; NaN
 * elsewhere). The machine may be shared: CPU time, unlike wall time, does not count others' load.
 */
async function treeCpuSeconds(pid: number | undefined): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    let s = (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in USER_HZ (100)
    const kids = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8');
    for (const k of kids.trim().split(/\s+/).filter(Boolean)) s += await treeCpuSeconds(Number(k));
    return s;
  } catch {
    return NaN;
  }
}

/** `node apps/api/src/main.ts` (as the image runs it) on an ephemeral port; resolves with its URL. */
function startApi(env: Record<string, string>): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, [path.join(repoRoot, 'apps/api/src/main.ts')], {
    cwd: repoRoot,
    env: { ...process.env, ...env, PORT: '0', HOST: '127.0.0.1', RATE_LIMIT_PER_MINUTE: '0', API_KEYS: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /api listening on (http:\/\/[\d.:]+)/.exec(out);
      if (m) resolve({ proc, url: m[1]! });
    });
    proc.on('exit', (code) => reject(new Error(`api exited (${code}) before listening:\n${out}`)));
  });
}

async function timedFineTune(
  client: MlqClient,
  pids: (number | undefined)[],
  payload: FineTuneInput,
): Promise<Omit<JobRun, 'accuracy' | 'testRows'>> {
  const cpu = async () => (await Promise.all(pids.map(treeCpuSeconds))).reduce((a, b) => a + b, 0);
  const cpu0 = await cpu();
  const t0 = performance.now();
  const submitted = await client.fineTune(payload);
  const job = await client.waitForJob(submitted, { timeoutMs: 60 * 60_000 });
  const seconds = (performance.now() - t0) / 1000;
  const cpuSeconds = (await cpu()) - cpu0;
  const r = job.result!;
  const trainSeconds = r.trainSeconds ?? NaN;
  const samplesPerSec = r.samplesPerSec ?? NaN;
  const queuedSeconds = job.startedAt ? (Date.parse(job.startedAt) - Date.parse(job.createdAt)) / 1000 : NaN;
  return {
    ref: `${r.model.name}@${r.model.version}`,
    seconds,
    cpuSeconds,
    queuedSeconds,
    trainSeconds,
    samplesPerSec,
    rows: Math.round((samplesPerSec * trainSeconds) / payload.epochs),
    backend: r.backend,
    logs: await client.jobLogs(submitted.id),
  };
}

async function evaluate(client: MlqClient, ref: string, digits: number[]): Promise<[number, number]> {
  const job = await client.evaluate({ model: ref, dataset: { format: 'mnist', digits, split: 'test' } });
  const m = (await client.waitForJob(job, { timeoutMs: 10 * 60_000 })).result!.metrics;
  return [m.accuracy, m.samples ?? m.perClass.reduce((s, c) => s + c.support, 0)];
}

export async function runPlatform(
  epochs: number,
  adadelta: AdadeltaConstants,
  log: (line: string) => void,
  seeds = 1,
  allLogs = false,
): Promise<PlatformRun> {
  const prefix = `bench-recipe-${randomUUID().slice(0, 8)}`;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'mlq-bench-platform-'));
  const env = {
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    ARTIFACT_STORE: pathToFileURL(path.join(dataDir, 'artifacts')).href,
    DATA_ROOTS: dataDir,
    // The backend plain tfjs ran on: the ratio compares platform overhead, not backends.
    TFJS_BACKEND: 'wasm',
  };
  const redis = new Redis(REDIS_URL);
  let api: ChildProcess | undefined;
  const worker = await spawnWorkerProcess(env);
  try {
    const started = await startApi(env);
    api = started.proc;
    const client = new MlqClient({ baseUrl: started.url });
    const pids = [worker.proc.pid, api.pid];
    log(`API ${started.url}, prefix ${prefix}, store ${env.ARTIFACT_STORE}`);

    // A worker is long-lived: its first job also pays for forking the sandbox child and loading tfjs.
    // A tiny CSV job takes that one-time cost (it reads no MNIST digit, so no data is pre-parsed).
    const csv = path.join(dataDir, 'warmup.csv');
    await writeFile(
      csv,
      'a,b,label\n' + Array.from({ length: 16 }, (_, i) => `${i % 2},${i % 3},${i % 2}`).join('\n'),
    );
    const warm0 = performance.now();
    const warm = await client.fineTune({
      model: 'warmup',
      architecture: 'mlp',
      dataset: { format: 'csv', uri: pathToFileURL(csv).href },
      epochs: 1,
    });
    await client.waitForJob(warm, { timeoutMs: 10 * 60_000 });
    const warmupSeconds = (performance.now() - warm0) / 1000;
    log(`warm-up job (cold worker): ${warmupSeconds.toFixed(1)} s`);

    const recipe = {
      epochs,
      batchSize: 128,
      optimizer: 'adadelta',
      learningRate: 1.0,
      optimizerOptions: adadelta,
    } as const;
    const pre = await timedFineTune(client, pids, {
      model: 'mnist-0-4',
      architecture: 'mnist-cnn',
      dataset: { format: 'mnist', digits: [0, 1, 2, 3, 4], split: 'train' },
      ...recipe,
    });
    log(`pretrain ${pre.ref}: ${pre.seconds.toFixed(1)} s (fit ${pre.trainSeconds.toFixed(1)} s)`);
    const transferJob = (seed: number) =>
      timedFineTune(client, pids, {
        seed,
        model: 'mnist-5-9',
        base: pre.ref,
        trainableLayers: 0,
        // Like PyTorch's and Keras' recipe: the pretrained dense layers go on training.
        reuseBaseHead: true,
        dataset: { format: 'mnist', digits: [5, 6, 7, 8, 9], split: 'train' },
        ...recipe,
      });
    const cold = await transferJob(0);
    log(
      `transfer ${cold.ref}, cold cache: ${cold.seconds.toFixed(1)} s (fit ${cold.trainSeconds.toFixed(1)} s)`,
    );
    const warmT = await transferJob(1);
    log(
      `transfer ${warmT.ref}, warm cache: ${warmT.seconds.toFixed(1)} s (fit ${warmT.trainSeconds.toFixed(1)} s)`,
    );
    for (const l of [...pre.logs, ...cold.logs, ...warmT.logs].filter(
      (x) => allLogs || /embed|parallel/.test(x),
    ))
      log(`  job log: ${l}`);

    const withAcc = async (j: Omit<JobRun, 'accuracy' | 'testRows'>, digits: number[]): Promise<JobRun> => {
      const [accuracy, testRows] = await evaluate(client, j.ref, digits);
      return { ...j, accuracy, testRows };
    };
    const more = [];
    for (let seed = 2; seed < seeds; seed++) more.push(await transferJob(seed));
    const transferSeeds = [];
    for (const j of [cold, warmT, ...more].slice(0, Math.max(seeds, 1)))
      transferSeeds.push(await withAcc(j, [5, 6, 7, 8, 9]));
    return {
      warmupSeconds,
      pretrain: await withAcc(pre, [0, 1, 2, 3, 4]),
      transfer: transferSeeds[0]!,
      transferWarm: seeds > 1 ? transferSeeds[1]! : await withAcc(warmT, [5, 6, 7, 8, 9]),
      transferSeeds,
    };
  } finally {
    worker.kill('SIGTERM');
    api?.kill('SIGTERM');
    await worker.exited;
    await deletePrefix(redis, prefix);
    await redis.quit();
    await rm(dataDir, { recursive: true, force: true });
  }
}
