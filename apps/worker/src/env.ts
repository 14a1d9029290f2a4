/** The worker's configuration: parsed once from the environment; start-up fails listing every problem. */
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import { jobNames, type JobName } from '@mlq/core';
import { parseClusterNodes } from '@mlq/queues';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

const list = (s: string) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

export const workerEnvSchema = z.object({
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).default('redis://127.0.0.1:6379'),
  /**
   * Redis Cluster seed nodes, `host:port,host:port,...` (or `redis[s]://[user:pass@]host:port` entries):
   * set, it selects cluster mode and REDIS_URL is ignored.
   */
  REDIS_CLUSTER_NODES: z
    .string()
    .optional()
    .transform((s, ctx) => {
      if (!s?.trim()) return undefined;
      try {
        return parseClusterNodes(s);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
        return z.NEVER;
      }
    }),
  QUEUE_PREFIX: z
    .string()
    .regex(/^[\w.-]+$/)
    .default('mlq'),
  ARTIFACT_STORE: z
    .string()
    .regex(/^(file|s3):\/\//, 'must be file:///abs/dir or s3://bucket/prefix')
    .default(pathToFileURL(path.join(repoRoot, '.data/artifacts')).href),
  DATA_ROOTS: z
    .string()
    .default(path.join(repoRoot, '.data'))
    .transform((s) => list(s).map((p) => path.resolve(p))),
  WORKER_QUEUES: z
    .string()
    .default(jobNames.join(','))
    .transform(list)
    .pipe(z.array(z.enum(jobNames as [JobName, ...JobName[]])).min(1, 'name at least one queue')),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(1),
  TFJS_BACKEND: z.enum(['auto', 'tensorflow', 'wasm', 'cpu']).default('auto'),
  /**
   * Threads one training job may use on a CPU backend (wasm, cpu): each batch is split between them
   * (data-parallel), and the job keeps that only if it measures faster. `auto`: the cores divided by
   * WORKER_CONCURRENCY, at most 4. Native backends (tfjs-node) use every core on their own.
   */
  WORKER_TRAIN_THREADS: z.union([z.literal('auto'), z.coerce.number().int().min(1).max(64)]).default('auto'),
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
  /** How long SIGTERM waits for running jobs to checkpoint and hand themselves back. */
  WORKER_SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(1000).default(25_000),
});

export type WorkerEnv = z.infer<typeof workerEnvSchema>;

/** WORKER_TRAIN_THREADS resolved: `auto` shares the cores between the jobs this worker may run at once. */
export function trainThreads(env: Pick<WorkerEnv, 'WORKER_TRAIN_THREADS' | 'WORKER_CONCURRENCY'>): number {
  if (env.WORKER_TRAIN_THREADS !== 'auto') return env.WORKER_TRAIN_THREADS;
  return Math.max(1, Math.min(4, Math.floor(availableParallelism() / env.WORKER_CONCURRENCY)));
}

/** Parses the environment; on error prints every problem and exits. */
export function loadWorkerEnv(env: NodeJS.ProcessEnv = process.env): WorkerEnv {
  const r = workerEnvSchema.safeParse(env);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
  console.error(`worker: invalid environment:\n${lines.join('\n')}`);
  process.exit(78);
}

/** The environment of this worker's sandbox children: ours, plus the worker's id. */
export function sandboxEnv(workerId: string): NodeJS.ProcessEnv {
  return { ...process.env, WORKER_ID: workerId };
}
