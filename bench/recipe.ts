/**
 * The transfer recipe (Keras mnist_transfer_cnn: pretrain digits 0-4, then a head on 5-9 over the frozen
 * convolutions), three ways in one run, on the same split (the platform's: first 80% of each digit):
 *   (a) the PyTorch reference (bench/torch_transfer.py, Debian's python3-torch, 2 threads);
 *   (b) plain tfjs on the wasm backend with the project's kernels (bench/plain-mnist-cnn.ts), in-process;
 *   (c) the platform: an API and one worker as processes, jobs submitted with the SDK, timed
 *       submit → completed; accuracy from evaluate jobs on the test split (not timed).
 * Then the table, accuracy over seeds, and the ratios of issue 17's bar.
 *
 *   npx tsx bench/recipe.ts [--epochs 5] [--torch-threads 2] [--torch-split platform|reference] [--data-dir D]
 *                           [--adadelta torch|keras] [--seeds 5] [--job-logs] [--platform-only]
 *
 * --seeds N: PyTorch's and the platform's transfer phase run with seeds 0..N-1 (the same pretrained
 * model; shuffles and dropout change), and the report gives the mean and lowest test accuracy of each:
 * one run's accuracy is decided by luck. The platform's seed 0 is its cold-cache job, seed 1 the warm one.
 *
 * --job-logs prints every log line of the platform's pretrain and first two transfer jobs (else only the
 * embedding and data-parallel lines). --platform-only runs part (c) alone (no PyTorch, no plain tfjs,
 * no ratios): for looking into the platform's own time.
 * --adadelta: the tfjs contestants' Adadelta constants. Default torch (rho 0.9, eps 1e-6), the reference
 * script's, so that all three run the same optimizer; keras (0.95, 1e-7) is the original recipe's.
 * --data-dir keeps X.npy, Y.npy and split.json in D (default: a temp dir, removed at the end), e.g. to
 * run the unmodified PyTorch reference script on the same data.
 * Needs Redis (REDIS_URL, default redis://127.0.0.1:6379). Installs python3-torch with apt-get if missing.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadDigit, MNIST_TRAIN_FRACTION } from '@mlq/core/data';
import { ADADELTA, initPlainBackend, runPlainRecipe, type PlainPhase } from './plain-mnist-cnn.ts';
import { runPlatform, type PlatformRun } from './recipe-platform.ts';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return dflt;
  return argv[i]!.includes('=') ? argv[i]!.split('=')[1]! : (argv[i + 1] ?? dflt);
};
const EPOCHS = Number(opt('epochs', '5'));
const TORCH_THREADS = Number(opt('torch-threads', '2'));
const TORCH_SPLIT = opt('torch-split', 'platform');
const DATA_DIR = opt('data-dir', '');
const SEEDS = Number(opt('seeds', '5'));
const JOB_LOGS = argv.includes('--job-logs');
const PLATFORM_ONLY = argv.includes('--platform-only');
// Adadelta's constants for the tfjs contestants: PyTorch's defaults (the reference's) or Keras'.
const ADADELTA_NAME = opt('adadelta', 'torch');
if (ADADELTA_NAME !== 'torch' && ADADELTA_NAME !== 'keras') throw new Error('--adadelta is torch or keras');
const ADADELTA_CONSTANTS = ADADELTA[ADADELTA_NAME];
const PYTHON = '/usr/bin/python3'; // Debian's, where apt-get puts python3-torch
const PIXELS = 784;

interface TorchPhase {
  phase: 'pretrain' | 'transfer';
  seed: number | null;
  seconds: number;
  samples_per_sec: number;
  accuracy: number;
  train: number;
  test: number;
  cpu_seconds: number;
  split: string;
  torch: string;
}

/** The bench's own setup: python3-torch and numpy from Debian, installed only when missing. */
function ensureTorch(): void {
  const has = () => spawnSync(PYTHON, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0;
  if (has()) return;
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'python3-torch', 'python3-numpy'], {
      stdio: 'inherit',
    }).status === 0;
  console.log('python3-torch missing: installing it from Debian');
  // The package lists may be stale or absent in a fresh image: refresh them only if needed.
  if (!install() && spawnSync('apt-get', ['update'], { stdio: 'inherit' }).status === 0) install();
  if (!has())
    throw new Error('could not install python3-torch (apt-get install python3-torch python3-numpy)');
}

/** A .npy file (format 1.0): magic, header length, a Python-dict header padded to 64 bytes, raw data. */
function npy(descr: string, shape: number[], data: ArrayBufferView): Buffer {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims}), }`;
  const pre = 10; // "\x93NUMPY" + version 1.0 + uint16 header length
  const header = dict.padEnd(Math.ceil((pre + dict.length + 1) / 64) * 64 - pre - 1, ' ') + '\n';
  const head = Buffer.alloc(pre);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  // Typed arrays are in host byte order; '<' in descr says little-endian, which x86 and arm64 are.
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), body]);
}

/**
 * X.npy / Y.npy with all 10,000 digits in package order (digit 0's samples, then 1's...), and
 * split.json with the platform's split as row indices, so PyTorch sees the platform's digits.
 */
async function writeData(dir: string): Promise<void> {
  const digits = await Promise.all(Array.from({ length: 10 }, (_, d) => loadDigit(d)));
  const n = digits.reduce((s, p) => s + p.length / PIXELS, 0);
  const x = new Float32Array(n * PIXELS);
  const y = new BigInt64Array(n);
  const split = { train: [] as number[], test: [] as number[] };
  let row = 0;
  for (const [d, px] of digits.entries()) {
    const count = px.length / PIXELS;
    const cut = Math.floor(count * MNIST_TRAIN_FRACTION);
    x.set(px, row * PIXELS);
    for (let i = 0; i < count; i++, row++) {
      y[row] = BigInt(d);
      (i < cut ? split.train : split.test).push(row);
    }
  }
  await writeFile(path.join(dir, 'X.npy'), npy('<f4', [n, 28, 28], x));
  await writeFile(path.join(dir, 'Y.npy'), npy('<i8', [n], y));
  await writeFile(path.join(dir, 'split.json'), JSON.stringify(split));
}

function runTorch(dir: string): TorchPhase[] {
  const script = path.join(import.meta.dirname, 'torch_transfer.py');
  const args = [script, dir, String(TORCH_THREADS), '--epochs', String(EPOCHS), '--seeds', String(SEEDS)];
  if (TORCH_SPLIT === 'platform') args.push('--split-index', path.join(dir, 'split.json'));
  const r = spawnSync(PYTHON, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`torch_transfer.py exited with ${r.status}`);
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as TorchPhase);
}

interface Row {
  s: number;
  cpu: number;
  sps: number;
  acc: number;
  n: number;
}

const load1 = () => os.loadavg()[0]!.toFixed(2);
const f = (x: number, d = 1) => x.toFixed(d);

function pick<T extends { phase: string }>(rows: T[], phase: string): T {
  const r = rows.find((x) => x.phase === phase);
  if (!r) throw new Error(`no ${phase} result`);
  return r;
}

function report(torch: TorchPhase[], plain: PlainPhase[], platform: PlatformRun, loads: string[]): void {
  const tp = pick(torch, 'pretrain');
  const tt = pick(torch, 'transfer');
  const pp = pick(plain, 'pretrain');
  const pt = pick(plain, 'transfer');
  const { pretrain: jp, transfer: jt, transferWarm: jw } = platform;
  const { rho, epsilon } = ADADELTA_CONSTANTS;
  console.log(
    `\nrecipe, ${EPOCHS} epochs, batch 128, Adadelta lr 1.0, rho ${rho}, eps ${epsilon} (${ADADELTA_NAME}'s defaults); train/test: platform split`,
  );
  console.log(`(PyTorch split: ${tp.split}); 1-min load average at each stage: ${loads.join(' / ')}\n`);
  console.log('| contestant | phase | timed | seconds | CPU s | train samples/s | test accuracy |');
  console.log('|---|---|---|---|---|---|---|');
  const row = (who: string, phase: string, timed: string, r: Row) =>
    console.log(
      `| ${who} | ${phase} | ${timed} | ${f(r.s)} | ${f(r.cpu)} | ${f(r.sps, 0)} | ${f(r.acc, 4)} (${r.n}) |`,
    );
  const torchWho = `PyTorch ${tp.torch}, ${TORCH_THREADS} threads`;
  for (const [phase, t] of [
    ['pretrain 0-4', tp],
    ['transfer 5-9', tt],
  ] as const) {
    const r = { s: t.seconds, cpu: t.cpu_seconds, sps: t.samples_per_sec, acc: t.accuracy, n: t.test };
    row(torchWho, phase, 'training loop', r);
  }
  for (const [phase, p] of [
    ['pretrain 0-4', pp],
    ['transfer 5-9', pt],
  ] as const) {
    const r = { s: p.fitSeconds, cpu: p.cpuSeconds, sps: p.samplesPerSec, acc: p.accuracy, n: p.test };
    row('plain tfjs, wasm', phase, 'model.fit', r);
  }
  for (const [phase, j] of [
    ['pretrain 0-4', jp],
    ['transfer 5-9, cold cache', jt],
    ['transfer 5-9, warm cache', jw],
  ] as const) {
    // End-to-end samples/s: what the job's wall time buys, not the fit loop's rate (below).
    const r = {
      s: j.seconds,
      cpu: j.cpuSeconds,
      sps: (j.rows * EPOCHS) / j.seconds,
      acc: j.accuracy,
      n: j.testRows,
    };
    row(`platform, ${j.backend}`, phase, 'submit → completed', r);
  }
  console.log('\nplatform jobs: where the submit → completed time went (seconds)');
  console.log(
    '| job | total | queued | fit loop (samples/s) | rest: data, model, embeddings, checkpoints, save |',
  );
  console.log('|---|---|---|---|---|');
  for (const [name, j] of [
    ['pretrain', jp],
    ['transfer, cold', jt],
    ['transfer, warm', jw],
  ] as const) {
    const rest = j.seconds - j.queuedSeconds - j.trainSeconds;
    console.log(
      `| ${name} | ${f(j.seconds)} | ${f(j.queuedSeconds)} | ${f(j.trainSeconds)} (${f(j.samplesPerSec, 0)}) | ${f(rest)} |`,
    );
  }
  console.log(
    `(first job of the cold worker, a tiny warm-up, not in the table: ${f(platform.warmupSeconds)} s)`,
  );

  const torchAcc = torch.filter((t) => t.phase === 'transfer').map((t) => t.accuracy);
  const platformAcc = platform.transferSeeds.map((j) => j.accuracy);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  console.log(`\ntransfer 5-9, test accuracy over seeds 0..${SEEDS - 1}`);
  console.log('| contestant | seeds | mean | lowest | each |');
  console.log('|---|---|---|---|---|');
  for (const [who, accs] of [
    [torchWho, torchAcc],
    ['platform, transfer job', platformAcc],
  ] as const) {
    const each = accs.map((a) => f(a, 4)).join(', ');
    console.log(`| ${who} | ${accs.length} | ${f(mean(accs), 4)} | ${f(Math.min(...accs), 4)} | ${each} |`);
  }

  const bar = (name: string, ratio: number, target: number, extra = true, note = '') =>
    console.log(
      `| ${name} | ${f(ratio, 2)} | ≤ ${target}${note} | ${ratio <= target && extra ? 'met' : 'MISSED'} |`,
    );
  console.log('\n| ratio | measured | bar | |');
  console.log('|---|---|---|---|');
  // Issue 17's bars: times against PyTorch's seed-0 transfer, accuracy as means over the seeds.
  // As numbers of correctly classified test rows: PyTorch's accuracies are float32 (942/975 reads
  // 0.96615385, the platform's exact 0.96615384), so equal results compared as floats would miss.
  const correct = (runs: { accuracy: number; rows: number }[]) =>
    runs.reduce((n, r) => n + Math.round(r.accuracy * r.rows), 0) / runs.length;
  const accOk =
    correct(platform.transferSeeds.map((j) => ({ accuracy: j.accuracy, rows: j.testRows }))) >=
    correct(torch.filter((t) => t.phase === 'transfer').map((t) => ({ accuracy: t.accuracy, rows: t.test })));
  const accNote = `, mean acc over ${SEEDS} seeds ${f(mean(platformAcc), 4)} vs ${f(mean(torchAcc), 4)}`;
  bar('transfer job (cold cache) ÷ PyTorch transfer', jt.seconds / tt.seconds, 0.2, accOk, accNote);
  bar('transfer job (warm cache) ÷ PyTorch transfer', jw.seconds / tt.seconds, 0.2, true, ' (not the bar)');
  bar('pretrain job ÷ PyTorch pretrain', jp.seconds / tp.seconds, 0.6);
  bar('pretrain job ÷ plain tfjs pretrain fit', jp.seconds / pp.fitSeconds, 1.1);
  console.log(
    `\nalso: transfer job (cold) ÷ plain tfjs transfer fit ${f(jt.seconds / pt.fitSeconds, 2)}; ` +
      `plain tfjs pretrain fit ÷ PyTorch pretrain ${f(pp.fitSeconds / tp.seconds, 2)}`,
  );
  // The same ratios in CPU seconds: the work each did, whatever else loaded the machine (PyTorch's
  // 2 threads overlap, so on an idle machine its wall time is below its CPU time).
  console.log(
    `CPU-second ratios (not the bar): transfer job ÷ PyTorch ${f(jt.cpuSeconds / tt.cpu_seconds, 2)}, ` +
      `pretrain job ÷ PyTorch ${f(jp.cpuSeconds / tp.cpu_seconds, 2)}, ` +
      `pretrain job ÷ plain tfjs ${f(jp.cpuSeconds / pp.cpuSeconds, 2)}`,
  );
  // Machine-readable, without the job logs (they are printed above).
  const noLogs = JSON.stringify(platform, (k, v: unknown) => (k === 'logs' ? undefined : v));
  console.log(
    `\nRESULT {"epochs":${EPOCHS},"loads":${JSON.stringify(loads)},"torch":${JSON.stringify(torch)},` +
      `"plain":${JSON.stringify(plain)},"platform":${noLogs}}`,
  );
}

async function main(): Promise<void> {
  console.log(`${os.availableParallelism()} cores, ${os.cpus()[0]?.model ?? '?'}, node ${process.version}`);
  const loads: string[] = [];
  const dir = DATA_DIR ? path.resolve(DATA_DIR) : await mkdtemp(path.join(os.tmpdir(), 'mlq-bench-recipe-'));
  await mkdir(dir, { recursive: true });
  if (PLATFORM_ONLY) {
    console.log(`\n(c) platform alone: API + 1 worker as processes (load ${load1()})`);
    const p = await runPlatform(EPOCHS, ADADELTA_CONSTANTS, (l) => console.log(`  ${l}`), SEEDS, JOB_LOGS);
    const line = (name: string, j: PlatformRun['pretrain']) =>
      console.log(
        `${name}: ${j.seconds.toFixed(1)} s (fit ${j.trainSeconds.toFixed(1)} s), acc ${j.accuracy.toFixed(4)}`,
      );
    line('pretrain', p.pretrain);
    line('transfer, cold cache', p.transfer);
    line('transfer, warm cache', p.transferWarm);
    console.log(`load at the end ${load1()}`);
    return;
  }
  try {
    ensureTorch();
    await writeData(dir);
    loads.push(load1());
    console.log(`\n(a) PyTorch, ${TORCH_THREADS} threads, ${TORCH_SPLIT} split (load ${loads.at(-1)})`);
    const torch = runTorch(dir);
    for (const t of torch) console.log(JSON.stringify(t));

    loads.push(load1());
    console.log(`\n(b) plain tfjs (load ${loads.at(-1)}): ${await initPlainBackend()}`);
    const plain = await runPlainRecipe({
      epochs: EPOCHS,
      transfer: true,
      adadelta: ADADELTA_CONSTANTS,
      log: (l) => console.log(`  ${l}`),
    });

    loads.push(load1());
    console.log(`\n(c) platform: API + 1 worker as processes (load ${loads.at(-1)})`);
    const platform = await runPlatform(
      EPOCHS,
      ADADELTA_CONSTANTS,
      (l) => console.log(`  ${l}`),
      SEEDS,
      JOB_LOGS,
    );
    loads.push(load1());
    report(torch, plain, platform, loads);
  } finally {
    if (!DATA_DIR) await rm(dir, { recursive: true, force: true });
  }
}

await main();
// The wasm backend of (b) keeps nothing alive, but ioredis or a stray socket would: end here.
process.exit(0);
