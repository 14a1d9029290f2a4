/**
 * Batch prediction over 1,000,000 CSV rows of 20 features with an mlp: the platform against a plain
 * tfjs script on the same backend, in batches of the same size.
 *
 *   npx tsx bench/batch-predict.ts [rows=1000000] [--chunk=4096] [--rounds=3]
 *
 * (a) The platform: the real API and one worker process (its jobs run in a sandbox child process);
 *     an mlp is trained through the API, a small batch-predict warms the worker's sandbox up, then the
 *     big job runs. rows/s is rows over the job's own processing time (startedAt → finishedAt, which
 *     includes loading the model, the validating first pass over the file and writing the output).
 *     Peak RSS is VmHWM of the worker and of its sandbox child, sampled from /proc.
 * (b) The plain script (this file with --plain, in its own process): parses the CSV the fastest simple
 *     way we found (readFileSync + split + parseFloat; readline is slower, Number() no faster) and calls
 *     model.predict on batches of the same size, keeping only the argmax. It writes no output.
 *
 * The two alternate for `--rounds` rounds and the best of each is compared: other processes on the
 * machine slow either one down at random, never speed it up.
 *
 * Data and artifacts live in bench/.work/ (gitignored); the CSV is generated once and reused.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';

// bench/ has no node_modules: tfjs is loaded from packages/core (the copy core's backend set-up
// configures) and typed through core's own types, as far as this script needs it.
type Model = import('@mlq/core/ml').LoadedModel['model'];
type Tensor = Exclude<ReturnType<Model['predict']>, unknown[]>;
interface TfModule {
  tidy(fn: () => Tensor): Tensor;
  tensor(values: Float32Array, shape: number[]): Tensor;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const work = path.join(here, '.work');
const args = process.argv.slice(2);
const ROWS = Number(args.find((a) => /^\d+$/.test(a)) ?? 1_000_000);
const CHUNK = Number(args.find((a) => a.startsWith('--chunk='))?.slice(8) ?? 4096);
const ROUNDS = Number(args.find((a) => a.startsWith('--rounds='))?.slice(9) ?? 3);
const FEATURES = 20;
const CLASSES = ['low', 'mid', 'high'];

/** Seeded values, so every run predicts the same file. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/** Writes `rows` rows of 20 features (and a class label when `labelled`), streaming. */
async function writeCsv(file: string, rows: number, labelled: boolean, seed: number): Promise<void> {
  const rand = lcg(seed);
  const out = createWriteStream(file);
  const header = Array.from({ length: FEATURES }, (_, i) => `f${i}`);
  out.write(`${[...header, ...(labelled ? ['label'] : [])].join(',')}\n`);
  let buf = '';
  for (let i = 0; i < rows; i++) {
    const x = Array.from({ length: FEATURES }, () => rand() * 4 - 2);
    // The class is a simple function of the features, so the mlp has something to learn.
    const s = x[0]! + x[1]! - x[2]!;
    buf +=
      x.map((v) => v.toFixed(5)).join(',') +
      (labelled ? `,${CLASSES[s < -1 ? 0 : s < 1 ? 1 : 2]}` : '') +
      '\n';
    if (buf.length > 1 << 20) {
      if (!out.write(buf)) await once(out, 'drain');
      buf = '';
    }
  }
  out.end(buf);
  await once(out, 'finish');
}

/** The pids of a process and all its descendants. */
async function processTree(pid: number): Promise<number[]> {
  const out = [pid];
  for (const t of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
    const kids = (await readFile(`/proc/${pid}/task/${t}/children`, 'utf8').catch(() => ''))
      .split(/\s+/)
      .filter(Boolean);
    for (const k of kids) out.push(...(await processTree(Number(k))));
  }
  return out;
}

async function peakKb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

/** (b) The plain script: parse, predict in batches, argmax. Prints one JSON line. */
async function plain(csv: string, modelUri: string, batch: number): Promise<void> {
  const [ml, storage, engine] = await Promise.all([
    import('@mlq/core/ml'),
    import('@mlq/core/storage'),
    import('@mlq/engine'),
  ]);
  const coreRequire = createRequire(new URL('../packages/core/package.json', import.meta.url));
  const tf = coreRequire('@tensorflow/tfjs') as TfModule;
  const backend = await engine.initBackend('auto');
  const store = new storage.FileArtifactStore(path.join(work, 'artifacts'));
  const { model } = await ml.loadModel(modelUri, store);
  const t0 = performance.now();
  const lines = readFileSync(csv, 'utf8').split('\n');
  const x = new Float32Array(batch * FEATURES);
  const counts = new Array<number>(CLASSES.length).fill(0);
  let rows = 0;
  let k = 0;
  const flush = () => {
    // Tensors leave tidy, not typed arrays: tidy would walk an array's every element.
    const t = tf.tidy(() =>
      (
        model.predict(tf.tensor(x.subarray(0, k * FEATURES), [k, FEATURES]), { batchSize: k }) as Tensor
      ).argMax(-1),
    );
    for (const p of t.dataSync()) counts[p]!++;
    t.dispose();
    rows += k;
    k = 0;
  };
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line) continue;
    const f = line.split(',');
    for (let j = 0; j < FEATURES; j++) x[k * FEATURES + j] = parseFloat(f[j]!);
    if (++k === batch) flush();
  }
  if (k) flush();
  const seconds = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ rows, seconds, backend, counts }));
}

async function runPlain(
  csv: string,
  modelUri: string,
): Promise<{ rows: number; seconds: number; backend: string; counts: number[] }> {
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(import.meta.url), '--plain', csv, modelUri, String(CHUNK)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((r) => proc.on('exit', r));
  const last = out.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as { rows: number; seconds: number; backend: string; counts: number[] };
}

async function main(): Promise<void> {
  const { apiEnvSchema, startApi } = await import('../apps/api/src/index.ts');
  const { deletePrefix, http, spawnWorkerProcess, waitForJob } = await import('../test/support/stack.ts');
  await mkdir(work, { recursive: true });
  const big = path.join(work, `predict-${ROWS}.csv`);
  const train = path.join(work, 'train.csv');
  if (!existsSync(big)) {
    console.log(`writing ${big} ...`);
    await writeCsv(big, ROWS, false, 1);
  }
  const small = path.join(work, 'warmup.csv');
  if (!existsSync(train)) await writeCsv(train, 5000, true, 2);
  if (!existsSync(small)) await writeCsv(small, 20_000, false, 3);
  console.log(
    `input: ${ROWS} rows x ${FEATURES} features, ${((await stat(big)).size / 2 ** 20).toFixed(0)} MiB; chunk ${CHUNK}; ${os.cpus().length} cpus, load ${os.loadavg()[0]!.toFixed(1)}`,
  );

  const prefix = `bench-${randomUUID().slice(0, 8)}`;
  const env = {
    REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    QUEUE_PREFIX: prefix,
    ARTIFACT_STORE: pathToFileURL(path.join(work, 'artifacts')).href,
    DATA_ROOTS: work,
    TFJS_BACKEND: process.env.TFJS_BACKEND ?? 'auto',
  };
  const api = await startApi(apiEnvSchema.parse({ ...env, PORT: '0', HOST: '127.0.0.1' }));
  const worker = await spawnWorkerProcess(env);
  const redis = new Redis(env.REDIS_URL);
  const uri = (f: string) => pathToFileURL(f).href;
  const submit = async (type: string, body: unknown) => {
    const r = await http<{ id: string }>(`${api.url}/v1/jobs/${type}`, 'POST', body);
    if (r.status !== 202) throw new Error(`${type}: ${r.status} ${JSON.stringify(r.body)}`);
    const j = await waitForJob(api.url, r.body.id, ['completed', 'failed'], 30 * 60_000);
    if (j.state !== 'completed') throw new Error(`${type} failed: ${j.error}`);
    return (
      await http<{ id: string; result: Record<string, unknown>; startedAt: string; finishedAt: string }>(
        `${api.url}/v1/jobs/${j.id}`,
      )
    ).body;
  };
  try {
    const ft = await submit('fine-tune', {
      model: 'bench-mlp',
      architecture: 'mlp',
      architectureOptions: { units: [64, 32] },
      dataset: { format: 'csv', uri: uri(train) },
      epochs: 3,
      batchSize: 64,
    });
    const modelUri = (ft.result.model as { uri: string }).uri;
    const output = (name: string) => ({ uri: uri(path.join(work, name)), format: 'jsonl' });
    await submit('batch-predict', {
      model: 'bench-mlp',
      input: { format: 'csv', uri: uri(small) },
      output: output('warmup.jsonl'),
      chunkSize: CHUNK,
    });

    const peaks = new Map<number, number>();
    const sample = async () => {
      for (const pid of await processTree(worker.proc.pid!))
        peaks.set(pid, Math.max(peaks.get(pid) ?? 0, await peakKb(pid)));
    };
    const timer = setInterval(() => void sample(), 100);
    let best = { platform: 0, plain: 0 };
    for (let round = 1; round <= ROUNDS; round++) {
      const t0 = performance.now();
      const job = await submit('batch-predict', {
        model: 'bench-mlp',
        input: { format: 'csv', uri: uri(big) },
        output: output('predictions.jsonl'),
        chunkSize: CHUNK,
      });
      const wall = (performance.now() - t0) / 1000;
      const jobSeconds = (Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000;
      const logs = (await http<{ logs: string[] }>(`${api.url}/v1/jobs/${job.id}/logs`)).body.logs;
      const p = await runPlain(big, modelUri);
      const [platform, plainRate] = [ROWS / jobSeconds, p.rows / p.seconds];
      best = { platform: Math.max(best.platform, platform), plain: Math.max(best.plain, plainRate) };
      console.log(`round ${round} (load ${os.loadavg()[0]!.toFixed(1)}):`);
      console.log(
        `  platform ${Math.round(platform)} rows/s: job ${jobSeconds.toFixed(2)} s (submit→done ${wall.toFixed(2)} s); log:\n    ${logs.join('\n    ')}`,
      );
      console.log(`  plain    ${Math.round(plainRate)} rows/s: ${p.seconds.toFixed(2)} s on ${p.backend}`);
    }
    clearInterval(timer);
    await sample();
    const [mainPid, ...children] = [...peaks.keys()];
    const mb = (kb: number | undefined) => ((kb ?? 0) / 1024).toFixed(0);
    const childPeak = Math.max(0, ...children.map((pid) => peaks.get(pid)!));
    console.log(`\nbest of ${ROUNDS} rounds, ${ROWS} rows, batches of ${CHUNK}:`);
    console.log(`(a) platform:              ${Math.round(best.platform)} rows/s`);
    console.log(`(b) plain model.predict:   ${Math.round(best.plain)} rows/s`);
    console.log(`ratio platform / plain:    ${(best.platform / best.plain).toFixed(2)} (target >= 0.9)`);
    console.log(
      `peak RSS, sandbox child:   ${mb(childPeak)} MB (target < 512); worker process ${mb(peaks.get(mainPid!))} MB`,
    );
  } finally {
    worker.kill('SIGTERM');
    await Promise.race([worker.exited, new Promise((r) => setTimeout(r, 10_000))]);
    await api.stop();
    await deletePrefix(redis, prefix);
    await redis.quit();
    await rm(path.join(work, 'artifacts'), { recursive: true, force: true });
    for (const f of ['warmup.jsonl', 'predictions.jsonl']) await rm(path.join(work, f), { force: true });
  }
}

if (args[0] === '--plain') await plain(args[1]!, args[2]!, Number(args[3]));
else await main();
// The API's and the harness's connections would keep the process alive; the run is over.
process.exit(0);
