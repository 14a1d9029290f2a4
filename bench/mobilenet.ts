/**
 * Throughput of `architecture: "mobilenet-v2"` (the platform's buildFeatures + a softmax head, as a
 * fine-tune job builds it): forward (predict) and one training step (forward + backward + Adam update,
 * batch-norm in training mode) in samples/s, batch 16, on wasm with the project's training kernels
 * (initBackend('wasm')); then, for scale, one small configuration on the pure-JS cpu backend.
 * Forward is timed as the platform predicts (serving, evaluate, batch-predict, embeddings): the model
 * compiled by compileInference (packages/engine/src/inference-plan.ts: batch norms folded into the
 * convolutions, ReLU6 fused); `model.predict`, the plain tfjs call, is printed beside it.
 *
 *   npx tsx bench/mobilenet.ts [--steps=5] [--configs=0.35x96,0.35x128,1x96,1x128] [--cpu=0.35x96] [--cpu-steps=1]
 *                              [--profile] [--torch-threads=1,2] [--no-torch]
 *
 * After each configuration, in the same run, torchvision's `mobilenet_v2` at the same width, input
 * size, batch and step count (bench/torch_mobilenet.py, Debian's python3-torchvision, installed with
 * apt-get if missing) for each --torch-threads count; the ratios are against PyTorch on 1 thread, the
 * wasm backend's one (data-parallel helper threads are not used here).
 *
 * `--profile` also times every kernel of one wasm training step of the first configuration.
 * Each measurement runs one untimed warm-up call first (XNNPACK operator creation, first allocations).
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { buildFeatures } from '@mlq/core/ml';
import { compileInference, initBackend } from '@mlq/engine';

const arg = (name: string, dflt: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt;
const STEPS = Number(arg('steps', '5'));
const CPU_STEPS = Number(arg('cpu-steps', '1'));
const BATCH = 16;
const CLASSES = 10;

interface Config {
  alpha: number;
  size: number;
}
const parse = (list: string): Config[] =>
  list
    .split(',')
    .filter(Boolean)
    .map((c) => {
      const [alpha, size] = c.split('x').map(Number);
      return { alpha: alpha!, size: size! };
    });

interface Result {
  backend: string;
  alpha: number;
  size: number;
  params: number;
  forward: number;
  /** Forward through plain `model.predict`, for comparison. */
  forwardPlain: number;
  train: number;
  trainMs: number;
}

const PYTHON = '/usr/bin/python3'; // Debian's, where apt-get puts python3-torchvision
const TORCH_THREADS = arg('torch-threads', '1,2').split(',').filter(Boolean).map(Number);

interface TorchResult {
  threads: number;
  forward: number;
  train: number;
  params: number;
  torch: string;
}

/** The bench's own setup: Debian's python3-torchvision (with python3-torch), installed only when missing. */
function ensureTorchvision(): void {
  const has = () => spawnSync(PYTHON, ['-c', 'import torch, torchvision'], { stdio: 'ignore' }).status === 0;
  if (has()) return;
  console.log('python3-torchvision missing: installing it from Debian');
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'python3-torchvision'], {
      stdio: 'inherit',
    }).status === 0;
  if (!install() && spawnSync('apt-get', ['update'], { stdio: 'inherit' }).status === 0) install();
  if (!has()) throw new Error('could not install python3-torchvision (apt-get install python3-torchvision)');
}

function runTorch({ alpha, size }: Config, threads: number): TorchResult {
  const script = path.join(import.meta.dirname, 'torch_mobilenet.py');
  const args = [script, String(alpha), String(size), '--batch', String(BATCH), '--steps', String(STEPS)];
  const r = spawnSync(PYTHON, [...args, '--threads', String(threads), '--classes', String(CLASSES)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`torch_mobilenet.py exited with ${r.status}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as TorchResult;
}

/** The model a mobilenet-v2 fine-tune job trains from scratch: features + a softmax layer. */
function buildModel({ alpha, size }: Config): tf.LayersModel {
  const features = buildFeatures('mobilenet-v2', [size, size, 3], { alpha }).model;
  const out = tf.layers
    .dense({ units: CLASSES, activation: 'softmax', name: 'classes' })
    .apply(features.outputs[0]!) as tf.SymbolicTensor;
  const model = tf.model({ inputs: features.inputs, outputs: out });
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  return model;
}

/** Seconds per call of `fn`, after one untimed warm-up call. */
async function perCall(steps: number, fn: () => Promise<void>): Promise<number> {
  await fn();
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await fn();
  return (performance.now() - t0) / 1000 / steps;
}

async function measure(cfg: Config, steps: number): Promise<Result> {
  const model = buildModel(cfg);
  const x = tf.randomUniform([BATCH, cfg.size, cfg.size, 3]);
  const y = tf.oneHot(tf.randomUniform([BATCH], 0, CLASSES, 'int32') as tf.Tensor1D, CLASSES);
  const forwardPlain = await perCall(steps, async () => {
    const p = model.predict(x) as tf.Tensor;
    await p.data(); // wait for the result, as a caller reading predictions would
    p.dispose();
  });
  const plan = compileInference(model);
  const forward = await perCall(steps, async () => {
    const p = plan.predict(x);
    await p.data();
    p.dispose();
  });
  plan.dispose();
  const train = await perCall(steps, async () => {
    await model.trainOnBatch(x, y);
  });
  const params = model.countParams();
  tf.dispose([x, y]);
  model.dispose();
  return {
    backend: tf.getBackend(),
    ...cfg,
    params,
    forward: BATCH / forward,
    forwardPlain: BATCH / forwardPlain,
    train: BATCH / train,
    trainMs: train * 1000,
  };
}

/** Kernel times of one training step (after a warm-up), summed by kernel name: where the step goes. */
async function profileStep(cfg: Config): Promise<void> {
  const model = buildModel(cfg);
  const x = tf.randomUniform([BATCH, cfg.size, cfg.size, 3]);
  const y = tf.oneHot(tf.randomUniform([BATCH], 0, CLASSES, 'int32') as tf.Tensor1D, CLASSES);
  await model.trainOnBatch(x, y);
  const info = await tf.profile(async () => void (await model.trainOnBatch(x, y)));
  const by = new Map<string, { ms: number; n: number }>();
  for (const k of info.kernels) {
    const e = by.get(k.name) ?? { ms: 0, n: 0 };
    by.set(k.name, { ms: e.ms + Number(k.kernelTimeMs), n: e.n + 1 });
  }
  const rows = [...by.entries()].sort((a, b) => b[1].ms - a[1].ms);
  const total = rows.reduce((t, [, e]) => t + e.ms, 0);
  console.log(
    `\nprofile, one training step of alpha ${cfg.alpha}, input ${cfg.size}: ${total.toFixed(0)} ms in kernels`,
  );
  for (const [name, e] of rows.slice(0, 20)) {
    const pct = ((100 * e.ms) / total).toFixed(1);
    console.log(`  ${name.padEnd(38)} ${e.ms.toFixed(1).padStart(8)} ms ${pct.padStart(5)}%  x${e.n}`);
  }
  tf.dispose([x, y]);
  model.dispose();
}

function print(r: Result): void {
  console.log(
    `| ${r.backend} | ${r.alpha} | ${r.size} | ${(r.params / 1e6).toFixed(2)} M | ${r.forward.toFixed(1)} (model.predict ${r.forwardPlain.toFixed(1)}) | ` +
      `${r.train.toFixed(1)} | ${r.trainMs.toFixed(0)} |`,
  );
}

async function main(): Promise<void> {
  const configs = parse(arg('configs', '0.35x96,0.35x128,1x96,1x128'));
  const cpuConfigs = parse(arg('cpu', '0.35x96'));
  const backend = await initBackend('wasm');
  console.log(
    `${os.availableParallelism()} cores, ${os.cpus()[0]?.model ?? '?'}, node ${process.version}, tfjs ${tf.version.tfjs}, ` +
      `load ${os.loadavg()[0]!.toFixed(2)}; batch ${BATCH}, ${STEPS} timed steps (cpu: ${CPU_STEPS})\n`,
  );
  console.log('| backend | alpha | input | params | forward samples/s | train samples/s | ms / train step |');
  console.log('|---|---|---|---|---|---|---|');
  const withTorch = !process.argv.includes('--no-torch');
  if (withTorch) ensureTorchvision();
  const ratios: string[] = [];
  for (const cfg of configs) {
    if (tf.getBackend() !== backend) throw new Error(`backend switched to ${tf.getBackend()}`);
    const ours = await measure(cfg, STEPS);
    print(ours);
    if (!withTorch) continue;
    for (const threads of TORCH_THREADS) {
      const t = runTorch(cfg, threads);
      const who = `PyTorch ${t.torch}, ${threads} thread${threads > 1 ? 's' : ''}`;
      const [f, s] = [t.forward, t.train];
      console.log(
        `| ${who} | ${cfg.alpha} | ${cfg.size} | ${(t.params / 1e6).toFixed(2)} M | ${f.toFixed(1)} | ${s.toFixed(1)} | ${((1000 * BATCH) / s).toFixed(0)} |`,
      );
      ratios.push(
        `alpha ${cfg.alpha}, ${cfg.size} px: wasm ÷ PyTorch on ${threads} thread(s): ` +
          `forward ${(ours.forward / f).toFixed(2)}×, train step ${(ours.train / s).toFixed(2)}×`,
      );
    }
  }
  if (ratios.length > 0)
    console.log(`\nsamples/s ratios (load ${os.loadavg()[0]!.toFixed(2)}):\n  ${ratios.join('\n  ')}`);
  if (process.argv.includes('--profile') && configs[0]) await profileStep(configs[0]);
  if (cpuConfigs.length > 0) {
    // Pure JS, for scale only: what `auto` would fall back to without the wasm backend.
    await tf.setBackend('cpu');
    for (const cfg of cpuConfigs) print(await measure(cfg, CPU_STEPS));
  }
  console.log(`\nload average at the end ${os.loadavg()[0]!.toFixed(2)}`);
}

await main();
