/**
 * The sandboxed processor: BullMQ forks this file in a child process (see main.ts), so a long
 * synchronous tfjs step never blocks the parent's lock renewal, and a crash takes down only the child.
 * The child keeps its tfjs backend, store and registry connection across the jobs it runs.
 */
import { hostname } from 'node:os';
import {
  CancelledError,
  initBackend,
  isJobName,
  isPermanentError,
  ModelRegistry,
  openArtifactStore,
  parsePayload,
  type JobContext,
} from '@mlq/core';
import { connect, UnrecoverableError, type Job } from '@mlq/queues';
import { loadWorkerEnv } from './env.ts';
import { processors } from './processors.ts';

const env = loadWorkerEnv();
const backend = initBackend(env.TFJS_BACKEND);
const store = openArtifactStore(env.ARTIFACT_STORE);
const registry = new ModelRegistry(connect(env.REDIS_URL, `mlq-sandbox-${hostname()}-${process.pid}`), env.QUEUE_PREFIX);

/** Errors that retrying cannot fix fail the job at once, with the message a person should read. */
function classify(e: unknown): Error {
  if (e instanceof CancelledError) return new UnrecoverableError(`cancelled: ${e.message}`);
  if (isPermanentError(e)) return new UnrecoverableError((e as Error).message);
  return e instanceof Error ? e : new Error(String(e));
}

export default async function processJob(job: Job, _token?: string, signal?: AbortSignal): Promise<unknown> {
  const name = job.name;
  if (!isJobName(name)) throw new UnrecoverableError(`unknown job type "${name}"`);
  const parsed = parsePayload(name, job.data);
  if (!parsed.ok) {
    const detail = parsed.issues.map((i) => `${i.field}: ${i.message}`).join('; ');
    throw new UnrecoverableError(`invalid ${name} payload: ${detail}`);
  }
  const ctx: JobContext = {
    jobId: job.id!,
    attempt: job.attemptsMade + 1,
    signal,
    progress: (p) => job.updateProgress(p as object),
    log: async (line) => void (await job.log(`${new Date().toISOString()} ${line}`)),
    store,
    registry,
    dataRoots: env.DATA_ROOTS,
    backend: await backend,
  };
  try {
    return await processors[name](parsed.value as never, ctx);
  } catch (e) {
    const err = classify(e);
    await ctx.log(`failed: ${err.message}`).catch(() => undefined);
    throw err;
  }
}
