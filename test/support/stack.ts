/**
 * Test harness: real Redis, the real API on an ephemeral port, real worker processes. Each test file
 * gets its own QUEUE_PREFIX and its own data directory, and removes both when done.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { RedisKeys } from '@mlq/contract';
import { redisTargetOf } from '@mlq/contract/env';
import { closeClient, connect, scanKeys, type RedisClient } from '@mlq/queues';
import { apiEnvSchema, startApi, type RunningApi } from '../../apps/api/src/index.ts';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface Stack {
  prefix: string;
  /** Root of this stack's data: `artifacts/` (the store) and anything tests write. */
  dataDir: string;
  storeUri: string;
  env: Record<string, string>;
  api: RunningApi;
  url: string;
  redis: RedisClient;
  workers: WorkerProcess[];
  spawnWorker(extraEnv?: Record<string, string>): Promise<WorkerProcess>;
  stop(): Promise<void>;
}

export interface WorkerProcess {
  proc: ChildProcess;
  output(): string;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

export function uniquePrefix(name: string): string {
  return `test-${name}-${randomUUID().slice(0, 8)}`;
}

/** Starts a worker as its own OS process (`node apps/worker/src/main.ts`, as the images run it). */
export async function spawnWorkerProcess(env: Record<string, string>): Promise<WorkerProcess> {
  const proc = spawn(process.execPath, [path.join(repoRoot, 'apps/worker/src/main.ts')], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) =>
    proc.on('exit', (code, sig) => resolve(code ?? sig ?? -1)),
  );
  const ready = new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`worker did not start in 60 s:\n${out}`)), 60_000);
    const check = () => {
      if (out.includes(' serving ')) {
        clearTimeout(t);
        resolve();
      }
    };
    proc.stdout!.on('data', check);
    void exited.then((c) => {
      clearTimeout(t);
      reject(new Error(`worker exited (${c}) before it was ready:\n${out}`));
    });
  });
  await ready;
  return { proc, output: () => out, exited, kill: (s = 'SIGTERM') => void proc.kill(s) };
}

/**
 * Deletes every key of a prefix (queues, registry, heartbeats), in either layout (`<prefix>:…`, or
 * `{<prefix>}:…` on a cluster, where SCAN visits every master).
 */
export async function deletePrefix(redis: RedisClient, prefix: string): Promise<void> {
  for (const hashTag of [false, true]) {
    const keys = await scanKeys(redis, new RedisKeys(prefix, { hashTag }).all);
    // A cluster's keys share the install's hash tag (one slot), so one DEL may take many.
    for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
  }
}

export interface StackOptions {
  workers?: number;
  workerEnv?: Record<string, string>;
  apiEnv?: Record<string, string>;
  /** Where Redis is, for the API, the workers and the test: `REDIS_URL` or `REDIS_CLUSTER_NODES`. */
  redisEnv?: Record<string, string>;
}

export async function startStack(name: string, opts: StackOptions = {}): Promise<Stack> {
  const prefix = uniquePrefix(name);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), `mlq-${name}-`));
  const storeUri = pathToFileURL(path.join(dataDir, 'artifacts')).href;
  const env: Record<string, string> = {
    ...(opts.redisEnv ?? { REDIS_URL }),
    QUEUE_PREFIX: prefix,
    ARTIFACT_STORE: storeUri,
    DATA_ROOTS: dataDir,
    TFJS_BACKEND: process.env.TFJS_BACKEND ?? 'auto',
  };
  // The API runs inside the test process: its request lines only when asked for (LOG_LEVEL=info).
  const apiEnv = apiEnvSchema.parse({
    ...env,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
    ...opts.apiEnv,
  });
  const api = await startApi(apiEnv);
  const redis = connect(redisTargetOf(apiEnv), { name: `mlq-test-${name}` });
  const workers: WorkerProcess[] = [];
  const stack: Stack = {
    prefix,
    dataDir,
    storeUri,
    env,
    api,
    url: api.url,
    redis,
    workers,
    async spawnWorker(extraEnv = {}) {
      const w = await spawnWorkerProcess({ ...env, ...opts.workerEnv, ...extraEnv });
      workers.push(w);
      return w;
    },
    async stop() {
      for (const w of workers) w.kill('SIGKILL');
      await Promise.all(workers.map((w) => w.exited));
      await api.stop();
      await deletePrefix(redis, prefix);
      await closeClient(redis);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  for (let i = 0; i < (opts.workers ?? 1); i++) await stack.spawnWorker();
  return stack;
}

/**
 * The sandbox pids that logged a line about job `id`, read from the first worker's JSON log
 * (LOG_FORMAT=json): which process ran a job, for tests of sandbox reuse and retirement.
 */
export function sandboxPidsOf(stack: Stack, id: string): number[] {
  const worker = stack.workers[0]!;
  const pids = new Set<number>();
  for (const line of worker.output().split('\n')) {
    if (!line.startsWith('{')) continue;
    const o = JSON.parse(line) as { jobId?: string; pid?: number };
    if (o.jobId === id && o.pid !== undefined && o.pid !== worker.proc.pid) pids.add(o.pid);
  }
  return [...pids];
}

/** JSON over HTTP against the stack. */
export async function http<T = unknown>(
  url: string,
  method = 'GET',
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: T }> {
  const res = await fetch(url, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON: keep the text */
  }
  return { status: res.status, body: parsed as T };
}

export interface JobBody {
  id: string;
  state: string;
  progress: unknown;
  result?: Record<string, unknown> & { model?: { name: string; version: number; uri: string } };
  error?: string;
  attempts: number;
}

/** Polls GET /v1/jobs/{id} until the job reaches one of `states`. */
export async function waitForJob(
  url: string,
  id: string,
  states = ['completed', 'failed', 'cancelled'],
  timeoutMs = 120_000,
): Promise<JobBody> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await http<JobBody>(`${url}/v1/jobs/${id}`);
    if (states.includes(body.state)) return body;
    if (Date.now() > until)
      throw new Error(`job ${id} still ${body.state} after ${timeoutMs} ms: ${JSON.stringify(body)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
