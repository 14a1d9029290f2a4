/**
 * A worker process: one BullMQ Worker per queue it serves, each running jobs in sandboxed child
 * processes; a heartbeat record for GET /v1/workers; graceful close.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RedisKeys, type WorkerInfo } from '@mlq/contract';
import { SHUTDOWN_REASON } from '@mlq/core/errors';
import { connect, createWorker, type Worker } from '@mlq/queues';
import { sandboxEnv, type WorkerEnv } from './env.ts';
import { checkProcessors } from './processors.ts';

const sandboxFile = path.join(path.dirname(fileURLToPath(import.meta.url)), 'sandbox.ts');

export interface RunningWorker {
  id: string;
  workers: Worker[];
  /** Stops taking jobs, lets running jobs finish, then disconnects. */
  close(): Promise<void>;
  /**
   * Stops taking jobs; running jobs save a checkpoint and go back to the queue for another worker.
   * Resolves when they have (or after `timeoutMs`).
   */
  shutdown(timeoutMs?: number): Promise<void>;
}

const HEARTBEAT_MS = 5000;

export async function startWorker(
  env: WorkerEnv,
  log: (s: string) => void = console.log,
): Promise<RunningWorker> {
  checkProcessors();
  const id = env.WORKER_NAME ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const connection = connect(env.REDIS_URL, `mlq-worker-${id}`);
  const keys = new RedisKeys(env.QUEUE_PREFIX);
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
    const w = createWorker(q, sandboxFile, connection, {
      prefix: keys.root,
      concurrency: env.WORKER_CONCURRENCY,
      name: id,
      lockDuration: env.WORKER_LOCK_DURATION_MS,
      stalledInterval: env.WORKER_STALLED_INTERVAL_MS,
      // The sandbox child learns its worker's id, to report its tfjs backend.
      workerForkOptions: { env: sandboxEnv(id) },
    });
    w.on('active', (job) => {
      current.set(job.id!, q);
      log(`[${q}] job ${job.id} started (attempt ${job.attemptsMade + 1})`);
    });
    w.on('completed', (job) => {
      current.delete(job.id!);
      const r = job.returnvalue as { backend?: string } | null;
      if (r?.backend) info.backend = r.backend;
      log(`[${q}] job ${job.id} completed`);
    });
    w.on('failed', (job, err) => {
      if (job) current.delete(job.id!);
      log(`[${q}] job ${job?.id} failed: ${err.message}`);
    });
    w.on('error', (err) => log(`[${q}] worker error: ${err.message}`));
    return w;
  });
  // DELETE /v1/jobs/{id} is published to every worker; the one holding the job aborts it.
  const subscriber = connection.duplicate();
  await subscriber.subscribe(keys.cancelChannel);
  subscriber.on('message', (_channel: string, message: string) => {
    try {
      const { id: jobId, reason } = JSON.parse(message) as { id: string; reason?: string };
      for (const w of workers)
        if (w.cancelJob(jobId, reason ?? 'cancelled by user')) log(`job ${jobId}: cancel requested`);
    } catch {
      log(`ignored a malformed cancel message: ${message.slice(0, 200)}`);
    }
  });

  const key = keys.worker(id);
  const beat = async () => {
    info.currentJobs = [...current].map(([jid, queue]) => ({ id: jid, queue }));
    info.backend = (await connection.hget(keys.workerBackends, id)) ?? info.backend;
    await connection.set(key, JSON.stringify(info), 'PX', HEARTBEAT_MS * 3);
  };
  await beat();
  const timer = setInterval(() => void beat().catch(() => undefined), HEARTBEAT_MS);
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  log(
    `worker ${id} serving ${env.WORKER_QUEUES.join(', ')} (concurrency ${env.WORKER_CONCURRENCY}, backend ${env.TFJS_BACKEND})`,
  );
  const disconnect = async () => {
    clearInterval(timer);
    await connection.del(key).catch(() => undefined);
    await connection.hdel(keys.workerBackends, id).catch(() => undefined);
    await subscriber.quit().catch(() => undefined);
    await connection.quit().catch(() => undefined);
  };
  return {
    id,
    workers,
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      await disconnect();
    },
    async shutdown(timeoutMs = env.WORKER_SHUTDOWN_TIMEOUT_MS) {
      const closing = Promise.all(
        workers.map((w) => {
          const done = w.close();
          // After close() so no new job starts; the processors checkpoint and release on this reason.
          w.cancelAllJobs(SHUTDOWN_REASON);
          return done;
        }),
      );
      await Promise.race([closing, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
      await disconnect();
    },
  };
}
