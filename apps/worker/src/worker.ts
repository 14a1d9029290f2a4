/**
 * A worker process: one BullMQ Worker per queue it serves, each running jobs in sandboxed child
 * processes; a heartbeat record for GET /v1/workers; metrics on WORKER_METRICS_PORT; graceful close.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WorkerInfo } from '@mlq/contract';
import { redisTargetOf } from '@mlq/contract/env';
import { SHUTDOWN_REASON } from '@mlq/core/errors';
import { claimArtifactStore, openArtifactStore } from '@mlq/core/storage';
import {
  closeClient,
  connect,
  createWorker,
  describeTarget,
  installIdRecord,
  isConnectionError,
  isReady,
  Job,
  MAX_STALLED_COUNT,
  recordFirstStart,
  redisKeysFor,
  reportErrors,
  type RedisClient,
  type Worker,
} from '@mlq/queues';
import type { Server } from 'node:http';
import { sandboxEnv, type WorkerEnv } from './env.ts';
import { watchLockLoss } from './lock-loss.ts';
import { createLogger, resolveLogFormat, type Logger } from './logger.ts';
import { WorkerMetrics } from './metrics.ts';
import { checkProcessors } from './processors.ts';
import { forgetHolder, readHolder, stalledLine } from './takeover.ts';

const sandboxFile = path.join(path.dirname(fileURLToPath(import.meta.url)), 'sandbox.ts');

export interface RunningWorker {
  id: string;
  workers: Worker[];
  logger: Logger;
  metrics: WorkerMetrics;
  /** Port of `GET /metrics`, when WORKER_METRICS_PORT is set. */
  metricsPort?: number;
  /** Stops taking jobs, lets running jobs finish, then disconnects. */
  close(): Promise<void>;
  /**
   * Stops taking jobs; running jobs save a checkpoint and go back to the queue for another worker.
   * Resolves when they have, or after `timeoutMs`, or 1 s after Redis is seen away (a job cannot
   * be handed back then: its lock expires and another worker resumes it from that checkpoint), or
   * after 1 s when no job runs.
   */
  shutdown(timeoutMs?: number): Promise<void>;
}

const HEARTBEAT_MS = 5000;
/** How long a shutdown waits for checkpoints once Redis is away. */
const SHUTDOWN_WITHOUT_REDIS_MS = 1000;

/** Resolves `ms` after the connection is (or goes) away. */
function awayFor(connection: RedisClient, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const arm = () => setTimeout(resolve, ms).unref();
    if (!isReady(connection)) arm();
    else connection.once('close', arm);
  });
}

/** "<ISO time> attempt 1 of 3 failed: <reason>; it will be retried", for the job's log. */
function attemptFailedLine(job: Job, err: Error): string {
  const allowed = job.opts.attempts ?? 1;
  const again = err.name !== 'UnrecoverableError' && job.attemptsMade < allowed;
  return `${new Date().toISOString()} attempt ${job.attemptsMade} of ${allowed} failed: ${err.message}${again ? '; it will be retried' : ''}`;
}

/** Starts a worker; rejects with StoreClaimError when ARTIFACT_STORE belongs to another install. */
export async function startWorker(env: WorkerEnv, opts: { logger?: Logger } = {}): Promise<RunningWorker> {
  checkProcessors();
  const id = env.WORKER_NAME ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const logFormat = resolveLogFormat(env.LOG_FORMAT);
  const log = (opts.logger ?? createLogger('worker', { level: env.LOG_LEVEL, format: logFormat })).child({
    workerId: id,
  });
  const metrics = new WorkerMetrics();
  metrics.setBackend(env.TFJS_BACKEND);
  let metricsServer: Server | undefined;
  let metricsPort: number | undefined;
  if (env.WORKER_METRICS_PORT !== undefined) {
    ({ server: metricsServer, port: metricsPort } = await metrics.listen(
      env.WORKER_METRICS_PORT,
      env.WORKER_METRICS_HOST,
    ));
    log.info({ port: metricsPort }, `metrics on http://${env.WORKER_METRICS_HOST}:${metricsPort}/metrics`);
  }
  const target = redisTargetOf(env);
  const keys = redisKeysFor(env.QUEUE_PREFIX, target);
  const redisDown = reportErrors(target);
  // Commands wait for Redis while it is away (BullMQ's workers need that); one line per outage.
  const connection = connect(target, { name: `mlq-worker-${id}` });
  // Before taking any job: the store must be this install's (waits for Redis; StoreClaimError if not).
  const claim = await claimArtifactStore(
    openArtifactStore(env.ARTIFACT_STORE),
    { queuePrefix: env.QUEUE_PREFIX, redis: describeTarget(target) },
    installIdRecord(connection, keys),
  ).catch(async (e: unknown) => {
    metricsServer?.close();
    await closeClient(connection, 100);
    throw e;
  });
  if (claim.how !== 'own')
    log.info({ store: env.ARTIFACT_STORE, install: claim.id }, `artifact store claimed (${claim.how})`);
  const current = new Map<string, string>();
  const info: WorkerInfo = {
    id,
    host: hostname(),
    pid: process.pid,
    queues: env.WORKER_QUEUES,
    concurrency: env.WORKER_CONCURRENCY,
    backend: env.TFJS_BACKEND,
    startedAt: new Date().toISOString(),
    currentJobs: [],
  };
  const workers = env.WORKER_QUEUES.map((q) => {
    const w = createWorker(q, sandboxFile, connection, keys, {
      concurrency: env.WORKER_CONCURRENCY,
      name: id,
      lockDuration: env.WORKER_LOCK_DURATION_MS,
      stalledInterval: env.WORKER_STALLED_INTERVAL_MS,
      // The sandbox child learns its worker's id, to report its tfjs backend.
      workerForkOptions: { env: sandboxEnv(id, logFormat) },
    });
    const jobLog = (job: { id?: string | undefined; attemptsMade: number }) =>
      log.child({ queue: q, jobId: job.id, attempt: job.attemptsMade + 1 });
    w.on('active', (job) => {
      current.set(job.id!, q);
      jobLog(job).info('job started');
      // The job view's startedAt: BullMQ's processedOn moves on at every later activation.
      void recordFirstStart(connection, job).catch(() => undefined);
    });
    w.on('progress', (job, progress) => metrics.progress(q, job.id!, progress));
    w.on('completed', (job) => {
      current.delete(job.id!);
      const r = job.returnvalue as { backend?: string } | null;
      if (r?.backend) metrics.setBackend((info.backend = r.backend));
      metrics.finished(q, job.id!, 'completed');
      // attemptsMade already counts this attempt once it has ended.
      log.child({ queue: q, jobId: job.id, attempt: job.attemptsMade }).info('job completed');
      void forgetHolder(connection, keys, job.id!).catch(() => undefined);
    });
    w.on('failed', (job, err) => {
      if (!job) return log.error({ queue: q, err: err.message }, 'a job failed before it was read');
      current.delete(job.id!);
      metrics.finished(q, job.id!, 'failed');
      log
        .child({ queue: q, jobId: job.id, attempt: job.attemptsMade })
        .warn({ reason: err.message }, 'job failed');
      // Every failed attempt goes into the job's log, crashes of its sandbox included: a job that
      // completes on a later attempt shows no error, and this is where the earlier ones stay visible.
      void job.log(attemptFailedLine(job, err)).catch(() => undefined);
    });
    // This worker's stalled-job check found a job whose lock expired and put it back in the wait
    // list (BullMQ tells exactly one worker): its log says so now, not only once a worker takes it.
    w.on('stalled', (jobId) => {
      void (async () => {
        const job = await Job.fromId(w, jobId);
        if (!job) return;
        const previous = await readHolder(connection, keys, jobId);
        // Taken over already, and said so by the worker that took it.
        if (previous && previous.stalls >= job.stalledCounter) return;
        const line = stalledLine(
          previous,
          id,
          job.stalledCounter,
          MAX_STALLED_COUNT,
          env.WORKER_LOCK_DURATION_MS,
        );
        log.warn({ queue: q, jobId }, line);
        await job.log(`${new Date().toISOString()} ${line}`);
      })().catch((e: Error) => log.warn({ queue: q, jobId, err: e.message }, 'could not log a stalled job'));
    });
    const lockLost = watchLockLoss(
      w,
      q,
      (line) => log.warn({ queue: q }, line),
      (jobId) => current.delete(jobId),
    );
    // Connection errors come once per retry and per connection: the outage log reports them once.
    w.on('error', (err) => {
      if (isConnectionError(err)) redisDown(err);
      else if (!lockLost(err)) log.error({ queue: q, err: err.message }, 'worker error');
    });
    return w;
  });
  // DELETE /v1/jobs/{id} is published to every worker; the one holding the job aborts it.
  const subscriber = connect(target, { name: `mlq-worker-${id}-cancel` });
  await subscriber.subscribe(keys.cancelChannel);
  subscriber.on('message', (_channel: string, message: string) => {
    try {
      const { id: jobId, reason } = JSON.parse(message) as { id: string; reason?: string };
      for (const w of workers)
        if (w.cancelJob(jobId, reason ?? 'cancelled by user')) log.info({ jobId }, 'cancel requested');
    } catch {
      log.warn({ message: message.slice(0, 200) }, 'ignored a malformed cancel message');
    }
  });

  const key = keys.worker(id);
  const beat = async () => {
    info.currentJobs = [...current].map(([jid, queue]) => ({ id: jid, queue }));
    info.heartbeatAt = new Date().toISOString();
    info.backend = (await connection.hget(keys.workerBackends, id)) ?? info.backend;
    metrics.setBackend(info.backend);
    await connection.set(key, JSON.stringify(info), 'PX', HEARTBEAT_MS * 3);
  };
  await beat();
  // While Redis is away beats are skipped, not queued up behind the reconnect.
  const timer = setInterval(
    () => void (isReady(connection) ? beat().catch(() => undefined) : 0),
    HEARTBEAT_MS,
  );
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  log.info(
    { queues: env.WORKER_QUEUES, concurrency: env.WORKER_CONCURRENCY, backend: env.TFJS_BACKEND },
    `worker ${id} serving ${env.WORKER_QUEUES.join(', ')} (concurrency ${env.WORKER_CONCURRENCY}, backend ${env.TFJS_BACKEND})`,
  );
  const disconnect = async () => {
    clearInterval(timer);
    metricsServer?.closeAllConnections();
    metricsServer?.close();
    if (isReady(connection)) {
      const bye = Promise.all([connection.del(key), connection.hdel(keys.workerBackends, id)]).catch(() => 0);
      await Promise.race([bye, new Promise((r) => setTimeout(r, 100).unref())]);
    }
    await Promise.all([closeClient(subscriber, 100), closeClient(connection, 100)]);
  };
  return {
    id,
    workers,
    logger: log,
    metrics,
    ...(metricsPort !== undefined ? { metricsPort } : {}),
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      await disconnect();
    },
    async shutdown(timeoutMs = env.WORKER_SHUTDOWN_TIMEOUT_MS) {
      const closing = Promise.all(
        workers.map((w) => {
          const done = w.close().catch(() => undefined);
          // After close() so no new job starts; the processors checkpoint and release on this reason.
          w.cancelAllJobs(SHUTDOWN_REASON);
          return done;
        }),
      );
      // Only running jobs are worth waiting for; without any, a slow or frozen Redis gets 1 s.
      const limit = current.size > 0 ? timeoutMs : Math.min(timeoutMs, SHUTDOWN_WITHOUT_REDIS_MS);
      await Promise.race([
        closing,
        new Promise((r) => setTimeout(r, limit).unref()),
        awayFor(connection, SHUTDOWN_WITHOUT_REDIS_MS),
      ]);
      await disconnect();
    },
  };
}
