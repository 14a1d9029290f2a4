/**
 * A fine-tune too large for the wasm backend's heap fails at once, with one attempt and a message
 * naming the limit, and the worker runs the next job; one whose weights alone are too large is refused
 * before they are allocated, so its sandbox process (read from /proc) does not grow. A job that still aborts the wasm instance fails
 * with a reason a person can read and without retries, and its sandbox process exits once the worker
 * has the result: the next job runs in a fresh process. And a 30 MB value in a CSV makes a short error.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryOf } from '../../../test/support/processes.ts';
import {
  http,
  sandboxPidsOf,
  startStack,
  waitForJob,
  type JobBody,
  type Stack,
} from '../../../test/support/stack.ts';

const MB = 1 << 20;

const fault = pathToFileURL(path.join(import.meta.dirname, 'fixtures/wasm-fault.mjs')).href;

const small = (model: string) => ({
  model,
  architecture: 'mlp',
  architectureOptions: { units: [16] },
  dataset: { format: 'mnist', digits: [0, 1], limit: 200 },
  epochs: 1,
  batchSize: 32,
});

async function run(stack: Stack, payload: object, timeoutMs = 120_000): Promise<JobBody> {
  const { status, body } = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', payload);
  expect(status).toBe(202);
  return waitForJob(stack.url, body.id, ['completed', 'failed'], timeoutMs);
}

describe('wasm heap', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack('wasm-abort', {
      workerEnv: {
        WORKER_QUEUES: 'fine-tune',
        WORKER_CONCURRENCY: '1',
        TFJS_BACKEND: 'wasm',
        LOG_FORMAT: 'json',
        LOG_LEVEL: 'info',
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${fault}`.trim(),
      },
    });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('a model too large for the heap fails at once, once, naming the limit; the next job completes', async () => {
    // 20,000 features into layers of 1 and 8,192 units: few weights, but a batch of 8,192 takes
    // about 6 GB of activations, more than a 4 GiB WebAssembly heap.
    const cols = 20_000;
    const header = [...Array.from({ length: cols }, (_, i) => `f${i}`), 'label'].join(',');
    const row = (y: string) => `${'0,'.repeat(cols)}${y}`;
    await writeFile(path.join(stack.dataDir, 'wide.csv'), [header, row('a'), row('b'), ''].join('\n'));
    const t0 = Date.now();
    const big = await run(stack, {
      model: 'too-big',
      architecture: 'mlp',
      architectureOptions: { units: [1, 8192, 1, 8192, 1, 8192, 1, 8192] },
      dataset: { format: 'csv', uri: pathToFileURL(path.join(stack.dataDir, 'wide.csv')).href },
      epochs: 1,
      batchSize: 8192,
    });
    expect(big.state).toBe('failed');
    expect(big.attempts).toBe(1);
    expect(big.error).toMatch(
      /^the model does not fit in the wasm backend's memory: training needs about \d+ MB of its WebAssembly heap .*holds at most 4096 MB, of which training may plan on 3072 MB.*architectureOptions\.units.*batchSize/,
    );
    expect(Date.now() - t0).toBeLessThan(60_000);

    const next = await run(stack, small('after-big'));
    expect(next.state).toBe('completed');
    expect(next.attempts).toBe(1);
  }, 240_000);

  it('a model whose weights alone overflow the heap is refused before they exist: its process never grows', async () => {
    const warm = await run(stack, small('before-giant'));
    expect(warm.state).toBe('completed');
    const [pid] = sandboxPidsOf(stack, warm.id);
    expect(pid).toBeDefined();
    const before = memoryOf(pid!)!;
    // Eight dense layers of 8,192 units (the most the API takes) on MNIST's 784 pixels: 476 million
    // weights, 1.9 GB of float32 before a single gradient, and with Adam's two moments 7.6 GB.
    const t0 = Date.now();
    const giant = await run(stack, {
      model: 'giant',
      architecture: 'mlp',
      architectureOptions: { units: Array<number>(8).fill(8192) },
      dataset: { format: 'mnist', digits: [0, 1], limit: 200 },
      epochs: 1,
      batchSize: 32,
    });
    const seconds = (Date.now() - t0) / 1000;
    expect(giant.state).toBe('failed');
    expect(giant.attempts).toBe(1);
    expect(giant.error).toMatch(
      /^the model does not fit in the wasm backend's memory: training needs about \d+ MB of its WebAssembly heap .*gradients 1817 MB, optimizer state 3634 MB.*holds at most 4096 MB/,
    );
    // The same sandbox process ran it (children are reused), and its peak resident memory (VmHWM)
    // is what it was after the small job: the weights were never allocated.
    expect(sandboxPidsOf(stack, giant.id)).toEqual([pid]);
    const after = memoryOf(pid!)!;
    console.log(
      `giant mlp refused in ${seconds.toFixed(1)} s; sandbox ${pid}: VmRSS ${Math.round(before.rss / MB)} → ${Math.round(after.rss / MB)} MB, ` +
        `VmHWM ${Math.round(before.peak / MB)} → ${Math.round(after.peak / MB)} MB`,
    );
    expect(after.peak - before.peak).toBeLessThan(200 * MB);
    expect(after.rss - before.rss).toBeLessThan(200 * MB);

    const next = await run(stack, small('after-giant'));
    expect(next.state).toBe('completed');
    expect(sandboxPidsOf(stack, next.id)).toEqual([pid]);
  }, 240_000);

  it('a job that aborts the wasm instance fails once, with a readable reason; the next job runs in a fresh process', async () => {
    const before = await run(stack, small('before-fault'));
    expect(before.state).toBe('completed');
    const faulted = await run(stack, small('wasm-fault'));
    expect(faulted.state).toBe('failed');
    expect(faulted.attempts).toBe(1);
    expect(faulted.error).toMatch(
      /^the tfjs wasm backend aborted while running this job \(memory access out of bounds\): .*4 GiB.*Not retried.*fresh one\.$/,
    );
    const after = await run(stack, small('after-fault'));
    expect(after.state).toBe('completed');
    expect(after.attempts).toBe(1);

    const [faultPid] = sandboxPidsOf(stack, faulted.id);
    expect(faultPid).toBeDefined();
    // The job before ran in the same process as the faulted one (children are reused); the one after did not.
    expect(sandboxPidsOf(stack, before.id)).toEqual([faultPid]);
    expect(sandboxPidsOf(stack, after.id)).not.toContain(faultPid);
    expect(sandboxPidsOf(stack, after.id)).toHaveLength(1);
    expect(() => process.kill(faultPid!, 0)).toThrow();
  }, 300_000);

  it('a 30 MB value in a CSV fails the job with a short reason naming the line and column', async () => {
    const file = path.join(stack.dataDir, 'huge.csv');
    await writeFile(file, `x,label\n${'1'.repeat(30 * 2 ** 20)},a\n1,b\n`);
    const job = await run(stack, {
      model: 'huge-value',
      architecture: 'mlp',
      dataset: { format: 'csv', uri: pathToFileURL(file).href },
      epochs: 1,
    });
    expect(job.state).toBe('failed');
    expect(job.error).toBe(
      `${file}:2: column "x" is ${'1'.repeat(40)}…(${30 * 2 ** 20} characters), beyond the float32 range (±3.4e38)`,
    );
    const hash = await stack.redis.hgetall(`${stack.prefix}:fine-tune:${job.id}`);
    expect(hash.failedReason).toBe(job.error);
    expect(hash.stacktrace!.length).toBeLessThan(10_000);
    const { logs } = (await http<{ logs: string[] }>(`${stack.url}/v1/jobs/${job.id}/logs`)).body;
    expect(Math.max(...logs.map((l) => l.length))).toBeLessThan(3_000);
  }, 240_000);

  it('a transient error with a 3 MB message is stored cut to 2,000 characters, on every attempt', async () => {
    const job = await run(stack, small('huge-error'), 180_000);
    expect(job.state).toBe('failed');
    expect(job.attempts).toBe(3);
    expect(job.error).toMatch(/^socket closed: z{1985}…\(\d+ more characters\)$/);
    const hash = await stack.redis.hgetall(`${stack.prefix}:fine-tune:${job.id}`);
    expect(hash.failedReason!.length).toBeLessThan(2_100);
    const stacks = JSON.parse(hash.stacktrace!) as string[];
    expect(stacks).toHaveLength(3);
    for (const s of stacks) expect(s.length).toBeLessThan(6_100);
    const { logs } = (await http<{ logs: string[] }>(`${stack.url}/v1/jobs/${job.id}/logs`)).body;
    expect(Math.max(...logs.map((l) => l.length))).toBeLessThan(3_000);
  }, 240_000);
});
