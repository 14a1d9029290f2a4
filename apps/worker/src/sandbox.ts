/**
 * The sandboxed processor: BullMQ forks this file in a child process (see main.ts), so a long
 * synchronous tfjs step never blocks the parent's lock renewal, and a crash takes down only the child.
 * The child keeps its tfjs backend, store and registry connection across the jobs it runs.
 */
import { hostname } from 'node:os';
import path from 'node:path';
import { isJobName, joinIssues, parsePayload, type JobName } from '@mlq/contract';
import { redisTargetOf } from '@mlq/contract/env';
import { datasetLocator, DatasetRegistry } from '@mlq/core/datasets';
import {
  CancelledError,
  capMessage,
  isPermanentError,
  redactUserinfo,
  ReleasedError,
} from '@mlq/core/errors';
import { progressAfterTrial, resumeNote, type JobContext } from '@mlq/core/jobs';
import { ModelRegistry } from '@mlq/core/registry';
import { EgressPolicy, FetchCache, uriResolver } from '@mlq/core/remote';
import { openArtifactStore } from '@mlq/core/storage';
import { initBackend } from '@mlq/engine';
import {
  afterFailedResultSent,
  afterResultSent,
  announceRetirement,
  connect,
  createQueues,
  MAX_STALLED_COUNT,
  parentJob,
  redisKeysFor,
  reportErrors,
  setRedisLog,
  UnrecoverableError,
  WaitingChildrenError,
  WaitingError,
  type Job,
  type Queues,
} from '@mlq/queues';
import { jobMemoryMb, loadWorkerEnv, trainThreads } from './env.ts';
import { createSandboxLogger } from './logger.ts';
import { exitWhenOrphaned } from './orphan.ts';
import { processors } from './processors.ts';
import { takeHolder, takeoverLine } from './takeover.ts';

// First, before anything can keep this process alive without its worker (see orphan.ts).
exitWhenOrphaned();

const env = loadWorkerEnv();
/** The worker set LOG_FORMAT to what it resolved (sandboxEnv); each job gets a child of this. */
const rootLog = createSandboxLogger({ level: env.LOG_LEVEL, format: env.LOG_FORMAT }).child({
  workerId: env.WORKER_ID,
  pid: process.pid,
});
const backend = initBackend(env.TFJS_BACKEND);
const store = openArtifactStore(env.ARTIFACT_STORE);
// The worker that forked us reports Redis outages; here commands just wait for Redis to return.
setRedisLog(() => undefined);
const target = redisTargetOf(env);
const keys = redisKeysFor(env.QUEUE_PREFIX, target);
const redis = connect(target, { name: `mlq-sandbox-${hostname()}-${process.pid}` });
const registry = new ModelRegistry(redis, keys);
// s3:// and http(s):// URIs: fetched under the egress policy into this machine's bounded cache.
const policy = new EgressPolicy({
  allowHosts: env.FETCH_ALLOW_HOSTS,
  timeoutMs: env.FETCH_TIMEOUT_MS,
  maxBytes: Math.floor(env.FETCH_MAX_MB * 2 ** 20),
});
const fetchCache = new FetchCache({
  dir: path.join(env.WORKER_CACHE_DIR, 'fetch'),
  maxBytes: Math.floor(env.WORKER_CACHE_MB * 2 ** 20),
  policy,
  store,
  imageMaxPixels: env.IMAGE_MAX_PIXELS,
});
// dataset:// URIs: the registry says which bytes, the store has them, and the same bounded cache keeps
// a copy (or the extracted archive).
const datasets = datasetLocator({ registry: new DatasetRegistry(redis, keys), store, cache: fetchCache });
// Tell GET /v1/workers which backend this worker's jobs really run on.
if (env.WORKER_ID) {
  const workerId = env.WORKER_ID;
  void backend.then((b) => redis.hset(keys.workerBackends, workerId, b)).catch(() => undefined);
}

/** The queues through which a tune adds its trials and a trial reports to its tune; opened on first use. */
let flowQueues: Queues | undefined;
const queues = (): Queues => (flowQueues ??= createQueues(redis, keys, reportErrors(target)));

/** A tune's trials are its child jobs on the fine-tune queue. */
const trialsOf = (tuneId: string, token?: string) =>
  parentJob(queues(), redis, keys, { queue: 'tune', id: tuneId, token }, 'fine-tune');

/** A trial that ends updates its tune's progress: the tune itself sleeps until every trial has ended. */
async function reportToTune(job: Job, result: unknown): Promise<void> {
  const parent = job.parent;
  if (!parent?.id || parent.queueKey !== `${keys.root}:tune`) return;
  const tune = trialsOf(parent.id);
  const progress = progressAfterTrial(parent.id, await tune.data(), await tune.outcomes(), job.id!, result);
  if (progress) await tune.progress(progress);
}

/**
 * What a WebAssembly instance throws when a kernel ran past its heap or aborted (`memory access out
 * of bounds`, `Aborted(...)`, `unreachable`): its memory may be corrupt, and tfjs's wasm backend keeps
 * failing every later job in this process at once.
 */
function isWasmAbort(e: unknown): boolean {
  if (e instanceof WebAssembly.RuntimeError) return true;
  const m = e instanceof Error ? e.message : String(e);
  return /^(memory access out of bounds|unreachable( executed)?|Aborted\(.*)$/s.test(m);
}

/** Set once a wasm abort hit this process: it runs no further job (see retire). */
let aborted: string | undefined;

/** Set when this process retires after its current job because the job left it too large (see retireIfSwollen). */
let swollen: string | undefined;

/**
 * A job can leave this process holding far more memory than it started with: the wasm heap never
 * shrinks, and V8 gives freed pages back slowly. Past half the job memory budget, the next job's
 * memory check would count it and refuse even a tiny job ("… on top of the 8399 MB this process
 * holds"), so the process retires after reporting this job, as after a wasm abort, and the next job
 * starts in a fresh one (about a second to start: only after such jobs).
 */
function retireIfSwollen(log: { info(o: object, msg: string): void }): void {
  if (aborted !== undefined || swollen !== undefined) return;
  const rssMb = Math.round(process.memoryUsage.rss() / (1 << 20));
  const limitMb = Math.round(jobMemoryMb(env) / 2);
  if (rssMb <= limitMb) return;
  swollen = `it holds ${rssMb} MB after its last job, over half the job memory budget (${limitMb} MB)`;
  log.info(
    { rssMb, limitMb },
    `this sandbox holds ${rssMb} MB after the job, over half the job memory budget: it exits after reporting the job, and the next job starts in a fresh process`,
  );
  announceRetirement();
  afterResultSent(() => setImmediate(() => process.exit(0)));
}

/**
 * After a wasm abort this process must not run another job: it exits as soon as BullMQ has handed
 * the failed result to the worker, which then drops it from its pool and forks a fresh child for
 * the next job.
 */
function retire(reason: string): void {
  if (aborted !== undefined) return;
  aborted = reason;
  rootLog.error({ reason }, 'the tfjs wasm instance aborted: this sandbox exits after reporting the job');
  announceRetirement();
  afterFailedResultSent(() => setImmediate(() => process.exit(0)));
}

/**
 * Records this process's worker as the holder of `job` (takeover.ts); when the job stalled since the
 * last take (its worker stopped answering and its lock expired), says so in the job's log through
 * `say`, with where the job resumes, before anything else of this run.
 */
async function noteTake(job: Job, name: JobName, say: (line: string) => Promise<void>): Promise<void> {
  const me = {
    worker: env.WORKER_ID ?? `${hostname()}-${process.pid}`,
    stalls: job.stalledCounter ?? 0,
    lockMs: env.WORKER_LOCK_DURATION_MS,
  };
  const previous = await takeHolder(redis, keys, job.id!, me);
  if (me.stalls <= (previous?.stalls ?? 0)) return;
  const resume = await resumeNote(name, job.id!, store).catch(
    (e: Error) => `resumes from what its last run saved (${capMessage(redactUserinfo(e.message), 200)})`,
  );
  await say(takeoverLine(previous, me, me.stalls, MAX_STALLED_COUNT, resume));
}

/** The most of a failure's stack BullMQ stores (its message line and some 20 frames). */
const MAX_STACK = 6000;

/** A failure's message and stack as BullMQ stores them (failedReason, stacktrace): at most a few KB. */
function capped(e: Error): Error {
  const message = capMessage(e.message);
  if (message !== e.message) {
    const frames = (e.stack ?? '').split('\n').filter((l) => /^\s+at /.test(l));
    e.message = message;
    e.stack = [`${e.name}: ${message}`, ...frames.slice(0, 20)].join('\n');
  }
  if (e.stack && e.stack.length > MAX_STACK) e.stack = capMessage(e.stack, MAX_STACK);
  return e;
}

/** Errors that retrying cannot fix fail the job at once, with the message a person should read. */
function classify(e: unknown): Error {
  if (e instanceof CancelledError) return new UnrecoverableError(`cancelled: ${e.message}`);
  if (isPermanentError(e)) return new UnrecoverableError((e as Error).message);
  if (isWasmAbort(e)) {
    const what = capMessage(redactUserinfo(e instanceof Error ? e.message : String(e)), 200);
    retire(what);
    // This job is the one that broke the instance: it ran on a fresh one (a process that aborted
    // runs nothing more), so it would do the same again on any wasm worker.
    return new UnrecoverableError(
      `the tfjs wasm backend aborted while running this job (${what}): most likely the job needed more ` +
        `memory than the WebAssembly heap holds (at most 4 GiB for all of a process's tensors). Not retried: ` +
        `it would abort again. Use a smaller model (architectureOptions.units, alpha), a smaller batchSize, or a ` +
        `worker on the tensorflow backend. The sandbox process that ran it exits; the next job runs in a fresh one.`,
    );
  }
  // A transient error's message (a socket error naming the URL) is the job's reason too: no credentials.
  if (e instanceof Error) {
    e.message = redactUserinfo(e.message);
    return e;
  }
  return new Error(redactUserinfo(String(e)));
}

export default async function processJob(job: Job, token?: string, signal?: AbortSignal): Promise<unknown> {
  const name = job.name;
  // Every line about this job carries its id and attempt.
  const log = rootLog.child({ queue: name, jobId: job.id, attempt: job.attemptsMade + 1 });
  // A job given to this process after a wasm abort, before it could exit: back to the queue with its
  // attempts, for a fresh process (this one exits once the worker has the answer).
  if (aborted !== undefined || swollen !== undefined) {
    const why = aborted !== undefined ? `after a wasm abort (${aborted})` : `(${swollen})`;
    if (!token) throw new Error(`this sandbox process is exiting ${why}; retried elsewhere`);
    await job.moveToWait(token);
    throw new WaitingError();
  }
  if (!isJobName(name)) throw new UnrecoverableError(`unknown job type "${name}"`);
  const parsed = parsePayload(name, job.data);
  if (!parsed.ok) {
    throw new UnrecoverableError(`invalid ${name} payload: ${joinIssues(parsed.issues)}`);
  }
  if (await redis.exists(keys.cancelMark(job.id!))) {
    throw new UnrecoverableError('cancelled: cancelled by user');
  }
  // What this job fetches or copies stays in the cache (never evicted) until the job ends, whatever its outcome.
  const holder = `${process.pid}-${job.id!.replace(/[^\w.-]/g, '_')}`;
  const jobLog = async (text: string) => {
    const line = capMessage(text);
    log.info(line);
    await job.log(`${new Date().toISOString()} ${line}`).catch(() => undefined);
  };
  // A job taken over from a worker that stopped answering says so first.
  await noteTake(job, name, jobLog).catch((e: Error) =>
    log.warn({ err: e.message }, 'could not record this worker as the holder of the job'),
  );
  const ctx: JobContext = {
    jobId: job.id!,
    attempt: job.attemptsMade + 1,
    signal,
    // Both go to the worker over IPC, and it writes them to Redis (waiting while Redis is away): a
    // report that cannot be delivered must never end the training that made it. The job's own log
    // (GET /v1/jobs/{id}/logs) keeps its format; the process log gets the line too.
    progress: (p) => job.updateProgress(p as object).catch(() => undefined),
    log: jobLog,
    store,
    registry,
    dataRoots: env.DATA_ROOTS,
    locate: uriResolver({
      dataRoots: env.DATA_ROOTS,
      datasets: datasets({ holder, log: jobLog, signal }),
      fetch: { cache: fetchCache, holder, job: job.id!, log: jobLog, signal },
    }),
    backend: await backend,
    // Native backends use every core themselves; on wasm and cpu one thread uses one core.
    trainThreads: ['wasm', 'cpu'].includes(await backend) ? trainThreads(env) : 1,
    memoryBudgetMb: jobMemoryMb(env),
    imageMaxPixels: env.IMAGE_MAX_PIXELS,
    inputPipeline: env.WORKER_INPUT_PIPELINE,
  };
  const flow = name === 'tune' ? { children: trialsOf(job.id!, token) } : {};
  try {
    const result = await processors[name](parsed.value as never, { ...ctx, ...flow });
    await reportToTune(job, result)
      .catch((e: Error) => ctx.log(`could not report to the tune: ${e.message}`))
      .catch(() => undefined);
    return result;
  } catch (e) {
    // The tune parked itself until its trials end: not a failure.
    if (e instanceof WaitingChildrenError) throw e;
    if (e instanceof ReleasedError && token) {
      // Back to the wait list at once, keeping its attempts: another worker resumes from the checkpoint.
      await job.moveToWait(token);
      throw new WaitingError();
    }
    // The worker logs the failed attempt (it also sees crashes of this process).
    throw capped(classify(e));
  } finally {
    await fetchCache.release(holder).catch(() => undefined);
    retireIfSwollen(log);
  }
}
