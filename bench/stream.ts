/**
 * The streaming input pipeline against the in-memory one it replaced, through the real platform: an
 * API in this process, each run on a fresh worker process (its own sandbox child), fine-tuning a
 * frozen `mobilenet-v2` base (alpha 0.35, 160 px; random weights: the pipeline is measured, not the
 * accuracy) on generated image folders.
 *
 *   npx tsx bench/stream.ts [--sizes=1000,10000] [--epochs=20] [--image=192] [--repeats=2] [--keep=/dir]
 *
 * Runs: on the smallest size, `repeats` pairs of the streamed path and the in-memory path
 * (WORKER_INPUT_PIPELINE=in-memory), the first pair with cold caches; the streamed path on the
 * largest size; the streamed path on the smallest size with another base (the decoded-example cache
 * hits, the embeddings are computed again). Prints the sandbox child's peak RSS
 * (VmHWM) per run and the ratios the issue sets bars for: peak RSS of the largest size over the
 * smallest (<= 1.3), and the streamed path's training samples/s over the in-memory path's (>= 0.9).
 * `--keep=/dir` keeps the generated folders there and reuses them on the next run.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { buildTransferModel, saveModel } from '@mlq/core/ml';
import { FileArtifactStore } from '@mlq/core/storage';
import { writeImageFolder } from '../packages/core/test/fixtures/image-folder.ts';
import { http, startStack, waitForJob, type Stack, type WorkerProcess } from '../test/support/stack.ts';

const arg = (name: string, dflt: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt;
const SIZES = arg('sizes', '1000,10000').split(',').map(Number);
const EPOCHS = Number(arg('epochs', '20'));
const IMAGE = Number(arg('image', '192'));
const KEEP = arg('keep', '');
const REPEATS = Number(arg('repeats', '2'));
const INPUT = 160;
const CLASSES = 4;
const load = () => os.loadavg()[0]!.toFixed(2);

/** Peak and current RSS of a process, from /proc (MB). */
async function memoryOf(pid: number): Promise<{ peak: number; now: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { peak: kb('VmHWM') / 1024, now: kb('VmRSS') / 1024 };
}

/** The worker's sandbox children (BullMQ forks one when the first job comes). */
async function childrenOf(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.trim().split(/\s+/).filter(Boolean).map(Number);
}

interface Run {
  label: string;
  seconds: number;
  samplesPerSec: number;
  trainSeconds: number;
  peakMb: number;
  logs: string[];
}

async function runJob(
  stack: Stack,
  label: string,
  env: Record<string, string>,
  payload: object,
): Promise<Run> {
  const worker: WorkerProcess = await stack.spawnWorker(env);
  try {
    const t0 = performance.now();
    const { body } = await http<{ id: string }>(`${stack.url}/v1/jobs/fine-tune`, 'POST', payload);
    let peakMb = 0;
    // Sample too, in case the child is gone before the end is seen.
    const sampler = setInterval(() => {
      void childrenOf(worker.proc.pid!).then(async (kids) => {
        for (const k of kids) peakMb = Math.max(peakMb, (await memoryOf(k).catch(() => ({ peak: 0 }))).peak);
      });
    }, 500);
    const job = await waitForJob(stack.url, body.id, undefined, 3 * 60 * 60_000).finally(() =>
      clearInterval(sampler),
    );
    const seconds = (performance.now() - t0) / 1000;
    for (const k of await childrenOf(worker.proc.pid!)) peakMb = Math.max(peakMb, (await memoryOf(k)).peak);
    const logs = (await http<{ logs: string[] }>(`${stack.url}/v1/jobs/${body.id}/logs`)).body.logs;
    if (job.state !== 'completed')
      throw new Error(`${label}: ${job.state}: ${job.error}\n${logs.join('\n')}`);
    const r = job.result as { samplesPerSec: number; trainSeconds: number };
    console.log(
      `${label}: ${seconds.toFixed(1)} s, peak RSS ${peakMb.toFixed(0)} MB, fit ${r.samplesPerSec.toFixed(0)} samples/s (load ${load()})`,
    );
    for (const l of logs.filter((x) => /decoded|embedd|input:|memory:|parallel/.test(x)))
      console.log(`    ${l.slice(25)}`);
    return { label, seconds, samplesPerSec: r.samplesPerSec, trainSeconds: r.trainSeconds, peakMb, logs };
  } finally {
    worker.kill('SIGTERM');
    await worker.exited;
  }
}

/** A randomly initialised mobilenet-v2 (alpha 0.35) + head saved as a model.json base; its URI. */
async function saveBase(dataDir: string, name: string): Promise<string> {
  const tm = buildTransferModel({
    architecture: 'mobilenet-v2',
    architectureOptions: { alpha: 0.35 },
    trainableLayers: 0,
    inputShape: [INPUT, INPUT, 3],
    numClasses: CLASSES,
  });
  const uri = await saveModel(tm.model, new FileArtifactStore(dataDir), `bases/${name}`, tm.meta);
  tm.model.dispose();
  return uri;
}

/** The seconds a job log line says something took: `... in 12.3 s ...`. */
function secondsIn(logs: string[], start: RegExp): number {
  const line = logs.find((l) => start.test(l.slice(25)));
  return Number(/ in ([\d.]+) s/.exec(line ?? '')?.[1] ?? NaN);
}

async function main(): Promise<void> {
  await tf.setBackend('cpu');
  console.log(
    `${os.availableParallelism()} cores, ${os.cpus()[0]?.model ?? '?'}, node ${process.version}, load ${load()}`,
  );
  // With --keep the folders (and the bases) live there, and it is the only data root.
  const roots: Record<string, string> = KEEP ? { DATA_ROOTS: path.resolve(KEEP) } : {};
  const stack = await startStack('bench-stream', { workers: 0, apiEnv: roots });
  const folders = KEEP ? path.resolve(KEEP) : stack.dataDir;
  try {
    const dataset = async (n: number) => {
      const root = path.join(folders, `images-${n}-${IMAGE}`);
      if (!existsSync(path.join(root, 'done'))) {
        const t0 = performance.now();
        await rm(root, { recursive: true, force: true });
        await writeImageFolder(root, { count: n, classes: CLASSES, size: IMAGE, seed: n });
        await mkdir(path.join(root, 'done'));
        console.log(
          `generated ${n} PNGs of ${IMAGE} px in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
        );
      }
      return { format: 'image-folder', uri: pathToFileURL(root).href, imageSize: [INPUT, INPUT] };
    };
    const baseA = await saveBase(folders, 'a');
    const baseB = await saveBase(folders, 'b');
    const job = (base: string, n: number) => async () => ({
      model: `bench-${n}`,
      base,
      trainableLayers: 0,
      dataset: await dataset(n),
      epochs: EPOCHS,
      batchSize: 32,
      validationSplit: 0.1,
    });
    const small = Math.min(...SIZES);
    const large = Math.max(...SIZES);
    const memoryEnv = { ...roots, WORKER_INPUT_PIPELINE: 'in-memory' };
    // The fit speed of the two paths, in alternating pairs (the first pair computes the embeddings,
    // later ones read their caches): a machine whose load drifts hits both alike.
    const pairs: { streamed: Run; memory: Run }[] = [];
    for (let i = 0; i < REPEATS; i++) {
      const streamed = await runJob(
        stack,
        `streamed, ${small} images (${i + 1})`,
        roots,
        await job(baseA, small)(),
      );
      const memory = await runJob(
        stack,
        `in-memory, ${small} images (${i + 1})`,
        memoryEnv,
        await job(baseA, small)(),
      );
      pairs.push({ streamed, memory });
    }
    const big = await runJob(stack, `streamed, ${large} images`, roots, await job(baseA, large)());
    const hit = await runJob(
      stack,
      `streamed, ${small} images, decode cache warm`,
      roots,
      await job(baseB, small)(),
    );

    const first = pairs[0]!.streamed;
    const cold = secondsIn(first.logs, /^decoded \d+ rows into/);
    const warmRead = Number(/([\d.]+) s of it reading decoded rows/.exec(hit.logs.join('\n'))?.[1] ?? NaN);
    const all = [...pairs.flatMap((p) => [p.streamed, p.memory]), big, hit];
    console.log('\n| run | job s | peak RSS MB | fit samples/s |\n|---|---|---|---|');
    for (const r of all)
      console.log(
        `| ${r.label} | ${r.seconds.toFixed(1)} | ${r.peakMb.toFixed(0)} | ${r.samplesPerSec.toFixed(0)} |`,
      );
    console.log(
      `\npeak RSS ${big.label} / ${first.label}: ${(big.peakMb / first.peakMb).toFixed(2)} (bar <= 1.3)`,
    );
    const ratios = pairs.map((p) => p.streamed.samplesPerSec / p.memory.samplesPerSec);
    const total = (k: 'streamed' | 'memory') => pairs.reduce((a, p) => a + p[k].samplesPerSec, 0);
    console.log(
      `fit samples/s streamed / in-memory, ${small} images: ${(total('streamed') / total('memory')).toFixed(2)} over ${REPEATS} pairs ` +
        `(each: ${ratios.map((r) => r.toFixed(2)).join(', ')}) (bar >= 0.9)`,
    );
    console.log(
      `decode-cache hit: decoding ${small} images took ${cold.toFixed(1)} s cold, reading them from the cache ${warmRead.toFixed(1)} s: ${(cold / warmRead).toFixed(1)}x; ` +
        `job ${first.seconds.toFixed(1)} s cold, ${hit.seconds.toFixed(1)} s with the decode cache warm (the base's forward pass dominates both)`,
    );
    console.log(`load average at the end ${load()}`);
  } finally {
    await stack.stop();
  }
}

await main();
// The API runs in this process (startStack) and leaves handles behind after it stops: end here.
process.exit(0);
