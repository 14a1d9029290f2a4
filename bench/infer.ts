/**
 * Open Inference Protocol vs TF Serving REST latency on the same server, model and digits:
 *
 *   npx tsx bench/infer.ts [--requests=2000] [--rounds=3] [--clients=16] [--seconds=5]
 *
 * Starts a worker and one API as their own processes on a fresh Redis prefix, trains the mnist
 * transfer model (mnist-cnn base + dense head, see serving-support.ts), stops the worker, then in
 * rounds arranged so that whatever else runs on the machine weighs on every protocol alike:
 *   - 1 client per protocol sending 1-instance requests one after the other, the protocols taking
 *     turns request by request: p50 and p99;
 *   - `clients` concurrent clients for `seconds`, one protocol after the other, each round starting
 *     with the next: p50, p99 and requests/s (batching at work).
 * Bodies: `/v1/models/{m}:predict` with the instance nested [28][28][1] (what a TF Serving client
 * sends for an image model) and flat (784 numbers); `/v2/models/{m}/infer` with flat FP32 data, as the
 * protocol's own example. The load average is printed before and after: other processes share the cores.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { loadAll, mnistSource } from '@mlq/core/data';
import { deletePrefix, REDIS_URL, spawnWorkerProcess } from '../test/support/stack.ts';
import {
  median,
  pct,
  poster,
  startApiProcess,
  trainTransferModel,
  type ApiProcess,
} from './serving-support.ts';

const arg = (name: string, dflt: number) =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? dflt);
const REQUESTS = arg('requests', 2000);
const ROUNDS = arg('rounds', 3);
const CLIENTS = arg('clients', 16);
const SECONDS = arg('seconds', 5);

interface Protocol {
  name: string;
  path: string;
  bodies: string[];
}

/**
 * Latencies in ms of `n` sequential requests per protocol from one client each, interleaved request by
 * request (so that a change in the machine's load weighs on every protocol alike), after a warm-up.
 */
async function sequential(url: string, protocols: Protocol[], n: number): Promise<number[][]> {
  const posts = protocols.map((p) => poster(`${url}${p.path}`));
  for (let i = 0; i < 100; i++)
    for (const [k, p] of protocols.entries()) await posts[k]!(p.bodies[i % p.bodies.length]!);
  const ms = protocols.map(() => [] as number[]);
  for (let i = 0; i < n; i++) {
    for (const [k, p] of protocols.entries()) {
      const t = performance.now();
      await posts[k]!(p.bodies[i % p.bodies.length]!);
      ms[k]!.push(performance.now() - t);
    }
  }
  return ms;
}

/** Latencies in ms of every request `clients` concurrent clients complete in `seconds`. */
async function concurrent(url: string, bodies: string[], clients: number, seconds: number) {
  const run = async (ms: number) => {
    const until = performance.now() + ms;
    const lat: number[] = [];
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        const post = poster(url);
        for (let i = c; performance.now() < until; i++) {
          const t = performance.now();
          await post(bodies[i % bodies.length]!);
          lat.push(performance.now() - t);
        }
      }),
    );
    return lat;
  };
  await run(1000); // warm-up at full concurrency
  const t = performance.now();
  const lat = await run(seconds * 1000);
  return { lat, rps: lat.length / ((performance.now() - t) / 1000) };
}

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const f = (x: number) => x.toFixed(2);
const load = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

function bodies(x: Float32Array, n: number): Protocol[] {
  const digits = Array.from({ length: n }, (_, i) => Array.from(x.subarray(i * 784, (i + 1) * 784)));
  const nested = (px: number[]) =>
    Array.from({ length: 28 }, (_, r) => Array.from({ length: 28 }, (_, c) => [px[r * 28 + c]!]));
  const v2 = (px: number[]) => ({
    inputs: [{ name: 'image', shape: [1, 28, 28, 1], datatype: 'FP32', data: px }],
  });
  return [
    {
      name: 'v1 :predict, nested',
      path: '/v1/models/bench-transfer:predict',
      bodies: digits.map((d) => JSON.stringify({ instances: [nested(d)] })),
    },
    {
      name: 'v1 :predict, flat',
      path: '/v1/models/bench-transfer:predict',
      bodies: digits.map((d) => JSON.stringify({ instances: [d] })),
    },
    {
      name: 'v2 /infer, flat',
      path: '/v2/models/bench-transfer/infer',
      bodies: digits.map((d) => JSON.stringify(v2(d))),
    },
  ];
}

async function main(): Promise<void> {
  const prefix = `bench-infer-${randomUUID().slice(0, 8)}`;
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'mlq-bench-infer-'));
  const env = {
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    ARTIFACT_STORE: pathToFileURL(path.join(dataDir, 'artifacts')).href,
    DATA_ROOTS: dataDir,
    TFJS_BACKEND: 'wasm',
  };
  const redis = new Redis(REDIS_URL);
  let api: ApiProcess | undefined;
  try {
    console.log(`training the mnist transfer model (prefix ${prefix})...`);
    const worker = await spawnWorkerProcess(env);
    api = await startApiProcess(env);
    try {
      await trainTransferModel(api.url);
    } finally {
      worker.kill('SIGKILL'); // measure with the CPU to ourselves (as far as this machine allows)
      await worker.exited;
    }
    const test = await loadAll(
      mnistSource({ format: 'mnist', digits: [5, 6, 7, 8, 9], split: 'test', limit: 64 }),
    );
    const protocols = bodies(test.x, 64);
    const loadBefore = load();
    const seq = new Map<string, number[]>(protocols.map((p) => [p.name, []]));
    const conc = new Map<string, { lat: number[]; rps: number[] }>(
      protocols.map((p) => [p.name, { lat: [], rps: [] }]),
    );
    for (let r = 1; r <= ROUNDS; r++) {
      const line: string[] = [];
      const ms = await sequential(api.url, protocols, REQUESTS);
      // The concurrent runs take turns; each round starts with the next protocol.
      const order = protocols.map((_, k) => (k + r - 1) % protocols.length);
      for (const k of order) {
        const p = protocols[k]!;
        seq.get(p.name)!.push(...ms[k]!);
        const c = await concurrent(`${api.url}${p.path}`, p.bodies, CLIENTS, SECONDS);
        conc.get(p.name)!.lat.push(...c.lat);
        conc.get(p.name)!.rps.push(c.rps);
        const s = sorted(ms[k]!);
        line.push(`${p.name}: p50 ${f(pct(s, 50))} p99 ${f(pct(s, 99))} ms, ${c.rps.toFixed(0)} req/s`);
      }
      console.log(`round ${r}: ${line.join(' | ')}`);
    }
    console.log(
      `\nmnist transfer model (mnist-cnn base + dense128 head), ${os.availableParallelism()} cores, ${ROUNDS} rounds, pooled;` +
        ` load average before ${loadBefore}, after ${load()}`,
    );
    console.log(`1 client, 1 instance/request, ${REQUESTS} requests a round:`);
    const ref = sorted(seq.get(protocols[0]!.name)!);
    for (const p of protocols) {
      const s = sorted(seq.get(p.name)!);
      console.log(
        `  ${p.name.padEnd(22)} p50 ${f(pct(s, 50))} ms  p99 ${f(pct(s, 99))} ms` +
          `  (p50 ${f(pct(s, 50) / pct(ref, 50))}x, p99 ${f(pct(s, 99) / pct(ref, 99))}x the nested :predict)`,
      );
    }
    console.log(`${CLIENTS} concurrent clients, 1 instance/request, ${SECONDS} s a round:`);
    for (const p of protocols) {
      const c = conc.get(p.name)!;
      const s = sorted(c.lat);
      console.log(
        `  ${p.name.padEnd(22)} p50 ${f(pct(s, 50))} ms  p99 ${f(pct(s, 99))} ms  ${median(c.rps).toFixed(0)} req/s (median round)`,
      );
    }
  } finally {
    await api?.stop();
    await deletePrefix(redis, prefix);
    await redis.quit();
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
