/**
 * Plain-tfjs benchmark of the Keras mnist_transfer_cnn recipe (first stage: digits 0-4; with
 * `--transfer` also the second: digits 5-9 with the convolutions frozen) on the tfjs wasm backend,
 * with the training kernels from packages/engine/src/wasm-kernels.ts.
 *
 *   npx tsx bench/plain-mnist-cnn.ts [epochs=1] [--profile] [--threads=N] [--tfjs-adadelta] [--keras-adadelta] [--transfer]
 *
 * Prints samples/s per epoch and the test accuracy on the held-out 20%. `--profile` also times
 * every kernel of a few training steps (tf.profile) and prints the top ones. `--threads=N` asks
 * for the threaded-SIMD wasm build (see the report: Node is not detected as thread-capable).
 * bench/recipe.ts imports `initPlainBackend` and `runPlainRecipe` to run the same fit in its own run.
 */
import { KerasAdadelta } from '../packages/engine/src/adadelta.ts';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { registerWasmTrainingKernels } from '../packages/engine/src/wasm-kernels.ts';
// Types only (erased): the runtime module comes from engineRequire below.
import type * as TF from '../packages/engine/node_modules/@tensorflow/tfjs/dist/index.js';
import type * as WASM from '../packages/engine/node_modules/@tensorflow/tfjs-backend-wasm/dist/index.js';

// Resolve tfjs from packages/engine, the same copy that wasm-kernels.ts imports, so the kernels
// land in the registry this script trains with; the digits come from packages/core's `mnist`.
const engineRequire = createRequire(new URL('../packages/engine/package.json', import.meta.url));
const coreRequire = createRequire(new URL('../packages/core/package.json', import.meta.url));
const tf = engineRequire('@tensorflow/tfjs') as typeof TF;
const wasm = engineRequire('@tensorflow/tfjs-backend-wasm') as typeof WASM;

const PIXELS = 784;
const BATCH = 128;

interface Split {
  x: Float32Array;
  y: Int32Array;
}

/**
 * First 80% of each digit's samples (package order) train, the rest test (the platform's split);
 * labels are positions in `digits`; train shuffled.
 */
function loadMnist(digits: number[]): { train: Split; test: Split } {
  const dir = path.join(path.dirname(coreRequire.resolve('mnist/package.json')), 'src', 'digits');
  const train: { px: Float32Array; label: number }[] = [];
  const test: { px: Float32Array; label: number }[] = [];
  for (const [label, d] of digits.entries()) {
    const data = (JSON.parse(readFileSync(path.join(dir, `${d}.json`), 'utf8')) as { data: number[] }).data;
    const n = data.length / PIXELS;
    const cut = Math.floor(n * 0.8);
    for (let i = 0; i < n; i++) {
      const px = Float32Array.from(data.slice(i * PIXELS, (i + 1) * PIXELS));
      (i < cut ? train : test).push({ px, label });
    }
  }
  // Seeded Fisher-Yates (LCG) so that runs are comparable.
  let seed = 42;
  const rand = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  for (let i = train.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [train[i], train[j]] = [train[j]!, train[i]!];
  }
  const pack = (rows: typeof train): Split => {
    const x = new Float32Array(rows.length * PIXELS);
    const y = new Int32Array(rows.length);
    rows.forEach((r, i) => {
      x.set(r.px, i * PIXELS);
      y[i] = r.label;
    });
    return { x, y };
  };
  return { train: pack(train), test: pack(test) };
}

function buildModel(opts: PlainOptions): TF.Sequential {
  const model = tf.sequential();
  model.add(tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 32, kernelSize: 3, activation: 'relu' }));
  model.add(tf.layers.conv2d({ filters: 32, kernelSize: 3, activation: 'relu' }));
  model.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  model.add(tf.layers.dropout({ rate: 0.25 }));
  model.add(tf.layers.flatten());
  model.add(tf.layers.dense({ units: 128, activation: 'relu' }));
  model.add(tf.layers.dropout({ rate: 0.5 }));
  model.add(tf.layers.dense({ units: 5, activation: 'softmax' }));
  compileModel(model, opts);
  return model;
}

/**
 * Adadelta's constants: PyTorch's defaults, which the reference script trains with (the default
 * here, so that every contestant runs the same optimizer), or Keras', the original recipe's.
 */
export const ADADELTA = { torch: { rho: 0.9, epsilon: 1e-6 }, keras: { rho: 0.95, epsilon: 1e-7 } } as const;
export type AdadeltaConstants = { rho: number; epsilon: number };

function compileModel(model: TF.Sequential, opts: PlainOptions): void {
  const { rho, epsilon } = opts.adadelta ?? ADADELTA.torch;
  // The recipe's lr is 1.0.
  const optimizer = opts.tfjsAdadelta
    ? tf.train.adadelta(1.0, rho, epsilon)
    : new KerasAdadelta(1.0, rho, epsilon);
  model.compile({ optimizer, loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
}

/**
 * Experimental: start the backend's threaded-SIMD build under Node. Three things stop it as
 * shipped: (1) WASM_HAS_MULTITHREAD_SUPPORT is hard-wired to false under Node; (2) the pthread
 * workers are created from a blob: URL, which Node's worker_threads rejects (ERR_WORKER_PATH), and
 * are sent the main script as a Blob they cannot importScripts; (3) the C++ side caps the pool at
 * os.cpus().length / 2 (it assumes hyper-threading), i.e. 1 thread on a 2-vCPU machine.
 */
async function initThreadedWasm(threads: number, pkgDir: string): Promise<void> {
  const worker = path.join(pkgDir, 'wasm-out/tfjs-backend-wasm-threaded-simd.worker.js');
  const { wasmWorkerContents } = engineRequire(worker) as { wasmWorkerContents: string };
  const factory = path.join(pkgDir, 'wasm-out/tfjs-backend-wasm-threaded-simd.js');
  const workerDir = mkdtempSync(path.join(os.tmpdir(), 'tfjs-wasm-'));
  const workerFile = path.join(workerDir, 'worker.cjs');
  // The worker defines the module factory itself and skips the blob: script it is sent.
  writeFileSync(
    workerFile,
    `var WasmBackendModuleThreadedSimd = require(${JSON.stringify(factory)});\n` +
      wasmWorkerContents.replace(/\n/g, '\\n') +
      `\n;{const load = importScripts; importScripts = (f) => { if (!String(f).startsWith('blob:')) load(f); };}\n`,
  );
  const createObjectURL = URL.createObjectURL.bind(URL);
  const cpus = os.cpus.bind(os);
  URL.createObjectURL = (obj: Blob) =>
    obj.type === 'application/javascript' ? workerFile : createObjectURL(obj);
  os.cpus = () => Array.from({ length: 2 * threads }, (_, i) => cpus()[i % cpus().length]!);
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  wasm.setThreadsCount(threads);
  try {
    await tf.setBackend('wasm');
  } finally {
    URL.createObjectURL = createObjectURL;
    os.cpus = cpus;
    // The pool's 8 workers have all loaded the script once the backend is ready.
    rmSync(workerDir, { recursive: true, force: true });
  }
}

/** The wasm backend with the project's training kernels (threaded build if `threads` is given). */
export async function initPlainBackend(threads?: number): Promise<string> {
  const pkgDir = path.dirname(engineRequire.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  wasm.setWasmPaths(pkgDir + '/dist/');
  if (threads !== undefined) await initThreadedWasm(threads, pkgDir);
  else await tf.setBackend('wasm');
  const registered = registerWasmTrainingKernels();
  return (
    `backend ${tf.getBackend()}, simd ${String(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'))}, ` +
    `threads ${wasm.getThreadsCount()}, registered [${registered.join(', ')}]`
  );
}

export interface PlainPhase {
  phase: 'pretrain' | 'transfer';
  digits: number[];
  /** Wall time of the `model.fit` call, all epochs. */
  fitSeconds: number;
  /** CPU seconds of this process during the fit (on a shared machine, wall time includes others' load). */
  cpuSeconds: number;
  samplesPerSec: number;
  accuracy: number;
  train: number;
  test: number;
}

export interface PlainOptions {
  epochs: number;
  /** Also run the second stage: digits 5-9 with the convolutions frozen (as in Keras and the PyTorch script). */
  transfer?: boolean;
  profile?: boolean;
  tfjsAdadelta?: boolean;
  /** Default: PyTorch's (ADADELTA.torch). */
  adadelta?: AdadeltaConstants;
  log?: (line: string) => void;
}

/** The recipe in plain tfjs on the active backend: model.fit on the whole train split, then test accuracy. */
export async function runPlainRecipe(opts: PlainOptions): Promise<PlainPhase[]> {
  const log = opts.log ?? console.log;
  const model = buildModel(opts);
  const phases: PlainPhase[] = [];
  const stages: { phase: PlainPhase['phase']; digits: number[] }[] = [
    { phase: 'pretrain', digits: [0, 1, 2, 3, 4] },
  ];
  if (opts.transfer) stages.push({ phase: 'transfer', digits: [5, 6, 7, 8, 9] });
  for (const { phase, digits } of stages) {
    if (phase === 'transfer') {
      // Keras' recipe: freeze the feature layers (the two convolutions), keep training the classifier.
      for (const l of model.layers.slice(0, 2)) l.trainable = false;
      compileModel(model, opts);
    }
    phases.push(await fitPhase(model, phase, digits, opts, log));
  }
  model.dispose();
  return phases;
}

async function fitPhase(
  model: TF.Sequential,
  phase: PlainPhase['phase'],
  digits: number[],
  opts: PlainOptions,
  log: (line: string) => void,
): Promise<PlainPhase> {
  const { epochs } = opts;
  const { train, test } = loadMnist(digits);
  const nTrain = train.y.length;
  const xTrain = tf.tensor4d(train.x, [nTrain, 28, 28, 1]);
  const yTrain = tf.tidy(() => tf.oneHot(tf.tensor1d(train.y, 'int32'), digits.length).toFloat());
  const xTest = tf.tensor4d(test.x, [test.y.length, 28, 28, 1]);
  log(`${phase} ${digits.join('')}: train ${nTrain} samples, test ${test.y.length} samples, batch ${BATCH}`);

  if (opts.profile && phase === 'pretrain') {
    const probe = buildModel(opts);
    await profileSteps(probe, xTrain, yTrain, log);
    probe.dispose();
  }

  let t0 = 0;
  let cpu0 = process.cpuUsage();
  const fit0 = performance.now();
  const fitCpu0 = process.cpuUsage();
  await model.fit(xTrain, yTrain, {
    batchSize: BATCH,
    epochs,
    shuffle: true,
    verbose: 0,
    callbacks: {
      onEpochBegin: () => {
        t0 = performance.now();
        cpu0 = process.cpuUsage();
      },
      onEpochEnd: (epoch, logs) => {
        const s = (performance.now() - t0) / 1000;
        const cpu = process.cpuUsage(cpu0);
        // CPU seconds too: on a shared machine the wall clock includes other processes' time.
        const cpuS = (cpu.user + cpu.system) / 1e6;
        log(
          `epoch ${epoch + 1}/${epochs}: ${(nTrain / s).toFixed(0)} samples/s (${s.toFixed(1)} s wall, ` +
            `${cpuS.toFixed(1)} s cpu = ${(nTrain / cpuS).toFixed(0)} samples/cpu-s), ` +
            `loss ${logs?.['loss']?.toFixed(4)}, acc ${logs?.['acc']?.toFixed(4)}, tensors ${tf.memory().numTensors}`,
        );
      },
    },
  });
  const fitSeconds = (performance.now() - fit0) / 1000;
  const fitCpu = process.cpuUsage(fitCpu0);

  const pred = tf.tidy(() => (model.predict(xTest, { batchSize: 512 }) as TF.Tensor).argMax(-1));
  const labels = pred.dataSync();
  const correct = test.y.reduce((n, y, i) => n + (labels[i] === y ? 1 : 0), 0);
  log(`test accuracy ${((100 * correct) / test.y.length).toFixed(2)}% (${correct}/${test.y.length})`);
  tf.dispose([pred, xTrain, yTrain, xTest]);
  return {
    phase,
    digits,
    fitSeconds,
    cpuSeconds: (fitCpu.user + fitCpu.system) / 1e6,
    samplesPerSec: (nTrain * epochs) / fitSeconds,
    accuracy: correct / test.y.length,
    train: nTrain,
    test: test.y.length,
  };
}

/** Time every kernel of a few training steps and print the most expensive ones. */
async function profileSteps(
  model: TF.Sequential,
  x: TF.Tensor,
  y: TF.Tensor,
  log: (line: string) => void,
): Promise<void> {
  const steps = 3;
  const xb = x.slice(0, BATCH);
  const yb = y.slice(0, BATCH);
  await model.trainOnBatch(xb, yb); // warm-up: XNNPACK operator creation, first allocations
  const wall0 = performance.now();
  const info = await tf.profile(async () => {
    for (let i = 0; i < steps; i++) await model.trainOnBatch(xb, yb);
  });
  const wall = (performance.now() - wall0) / steps;
  const byKernel = new Map<string, { ms: number; n: number }>();
  for (const k of info.kernels) {
    const e = byKernel.get(k.name) ?? { ms: 0, n: 0 };
    e.ms += Number(k.kernelTimeMs) / steps;
    e.n += 1 / steps;
    byKernel.set(k.name, e);
  }
  const rows = [...byKernel.entries()].sort((a, b) => b[1].ms - a[1].ms);
  const total = rows.reduce((s, [, e]) => s + e.ms, 0);
  log(`profile: ${wall.toFixed(1)} ms/step wall (profiled), ${total.toFixed(1)} ms/step in kernels`);
  for (const [name, e] of rows.slice(0, 15)) {
    log(
      `  ${name.padEnd(36)} ${e.ms.toFixed(1).padStart(7)} ms  ${((100 * e.ms) / total).toFixed(1).padStart(5)}%  x${e.n.toFixed(0)}`,
    );
  }
  xb.dispose();
  yb.dispose();
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const threads = args.find((a) => a.startsWith('--threads='))?.split('=')[1];
  console.log(await initPlainBackend(threads === undefined ? undefined : Number(threads)));
  await runPlainRecipe({
    epochs: Number(args.find((a) => /^\d+$/.test(a)) ?? 1),
    transfer: args.includes('--transfer'),
    profile: args.includes('--profile'),
    tfjsAdadelta: args.includes('--tfjs-adadelta'),
    adadelta: args.includes('--keras-adadelta') ? ADADELTA.keras : ADADELTA.torch,
  });
}

// Run as a script, not when bench/recipe.ts imports it.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
  // The threaded build's pthread workers would keep the process alive.
  process.exit(0);
}
