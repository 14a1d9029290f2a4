/** The worker's configuration: parsed once from the environment; start-up fails listing every problem. */
import { readFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { jobNames, type JobName } from '@mlq/contract';
import { commaList, parseEnvOrExit, repoRoot, sharedEnvShape, tfjsBackends } from '@mlq/contract/env';
import type { BackendPreference } from '@mlq/engine';

// The contract's backend names are the engine's preferences (a compile error if they drift apart).
const _backendNames: readonly BackendPreference[] = tfjsBackends;

export const workerEnvSchema = z.object({
  ...sharedEnvShape,
  /**
   * This machine's cache of fetched data (`fetch/`): datasets uploaded through the API (keyed by
   * content hash), and files of `s3://` and `http(s)://` URIs (keyed by URI and ETag).
   */
  WORKER_CACHE_DIR: z
    .string()
    .default(path.join(repoRoot, '.data/cache'))
    .transform((p) => path.resolve(p)),
  /**
   * Size bound of `WORKER_CACHE_DIR/fetch/`, uploads and fetched files together, in MiB: past it the
   * least recently used entries that no running job holds are removed. Archives count with their
   * extracted files.
   */
  WORKER_CACHE_MB: z.coerce.number().positive().default(10_240),
  WORKER_QUEUES: z
    .string()
    .default(jobNames.join(','))
    .transform(commaList)
    .pipe(z.array(z.enum(jobNames as [JobName, ...JobName[]])).min(1, 'name at least one queue')),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(1),
  /**
   * Threads one training job may use on a CPU backend (wasm, cpu): each batch is split between them
   * (data-parallel), and the job keeps that only if it measures faster. `auto`: the cores divided by
   * WORKER_CONCURRENCY, at most 4. Native backends (tfjs-node) use every core on their own.
   */
  WORKER_TRAIN_THREADS: z.union([z.literal('auto'), z.coerce.number().int().min(1).max(64)]).default('auto'),
  /**
   * Memory this worker's jobs may use, in MB, shared equally among WORKER_CONCURRENCY jobs: bounds a
   * training job's input buffers, and a job whose model alone cannot fit fails at once. Default: the
   * cgroup's memory limit when one is set, else the machine's memory.
   */
  WORKER_MEMORY_MB: z.coerce.number().int().min(64).optional(),
  /**
   * `in-memory`: the fine-tune input path from before streaming (every row in one array), kept only
   * as the baseline bench/stream.ts measures the streaming path against.
   */
  WORKER_INPUT_PIPELINE: z.enum(['stream', 'in-memory']).default('stream'),
  WORKER_NAME: z.string().optional(),
  /** Set by the worker for its sandbox children. */
  WORKER_ID: z.string().optional(),
  /**
   * Lock settings. Jobs run in child processes, so the parent's event loop renews locks on time even
   * during a long synchronous tfjs step; the lock can therefore be short, and a killed worker's job
   * is taken over within about lockDuration + stalledInterval (45 s by default).
   */
  WORKER_LOCK_DURATION_MS: z.coerce.number().int().min(1000).default(30_000),
  WORKER_STALLED_INTERVAL_MS: z.coerce.number().int().min(500).default(15_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** `auto`: pino-pretty lines when stdout is a terminal, JSON lines otherwise. */
  LOG_FORMAT: z.enum(['auto', 'json', 'pretty']).default('auto'),
  /**
   * Port of the worker's Prometheus endpoint (`GET /metrics`); unset: none. `0` picks a free port
   * (logged). Each worker process on a host needs its own port.
   */
  WORKER_METRICS_PORT: z.preprocess(
    (v) => (v === '' ? undefined : v),
    z.coerce.number().int().min(0).max(65535).optional(),
  ),
  WORKER_METRICS_HOST: z.string().default('0.0.0.0'),
  /** How long SIGTERM waits for running jobs to checkpoint and hand themselves back. */
  WORKER_SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(1000).default(25_000),
});

export type WorkerEnv = z.infer<typeof workerEnvSchema>;

/** WORKER_TRAIN_THREADS resolved: `auto` shares the cores between the jobs this worker may run at once. */
export function trainThreads(env: Pick<WorkerEnv, 'WORKER_TRAIN_THREADS' | 'WORKER_CONCURRENCY'>): number {
  if (env.WORKER_TRAIN_THREADS !== 'auto') return env.WORKER_TRAIN_THREADS;
  return Math.max(1, Math.min(4, Math.floor(availableParallelism() / env.WORKER_CONCURRENCY)));
}

/**
 * This process's cgroup memory limit in bytes (cgroup v2 `memory.max`, else v1
 * `memory.limit_in_bytes`), or undefined when none is set.
 */
export function cgroupMemoryLimit(): number | undefined {
  for (const file of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8').trim();
    } catch {
      continue;
    }
    const bytes = Number(text);
    // "max" (v2) or a number near 2^63 (v1) mean no limit.
    return Number.isFinite(bytes) && bytes < 2 ** 60 ? bytes : undefined;
  }
  return undefined;
}

/** The memory one job may use, in MB: WORKER_MEMORY_MB, else the cgroup limit, else all memory, over the concurrency. */
export function jobMemoryMb(env: Pick<WorkerEnv, 'WORKER_MEMORY_MB' | 'WORKER_CONCURRENCY'>): number {
  const total = env.WORKER_MEMORY_MB ?? Math.floor((cgroupMemoryLimit() ?? totalmem()) / (1 << 20));
  return Math.floor(total / env.WORKER_CONCURRENCY);
}

/** Parses the environment; on error prints every problem and exits. */
export function loadWorkerEnv(env: NodeJS.ProcessEnv = process.env): WorkerEnv {
  return parseEnvOrExit('worker', workerEnvSchema, env);
}

/**
 * The environment of this worker's sandbox children: ours, plus the worker's id and the log format
 * this process resolved (a child's stdout is a pipe, so it cannot tell a terminal by itself).
 */
export function sandboxEnv(workerId: string, logFormat: 'json' | 'pretty'): NodeJS.ProcessEnv {
  return { ...process.env, WORKER_ID: workerId, LOG_FORMAT: logFormat };
}
