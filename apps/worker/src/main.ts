/** `pnpm start:worker`: a worker process, configured by the environment (docs/api.md lists every variable). */
import { StoreClaimError } from '@mlq/core/storage';
import { setRedisLog } from '@mlq/queues';
import { loadWorkerEnv } from './env.ts';
import { createLogger, resolveLogFormat } from './logger.ts';
import { startWorker, type RunningWorker } from './worker.ts';

const env = loadWorkerEnv();
const logger = createLogger('worker', { level: env.LOG_LEVEL, format: resolveLogFormat(env.LOG_FORMAT) });
// Redis outages: one line when it goes, one per 10 s while it stays away, one when it is back.
setRedisLog((line) => logger.warn(line));

// Installed before start, which waits for Redis: a worker that never reached Redis holds no job and
// exits at once. A second signal ends the process at once.
const running: { worker?: RunningWorker } = {};
let closing = false;
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    const worker = running.worker;
    if (closing || !worker) process.exit(closing ? 130 : 0);
    closing = true;
    worker.logger.info(`${sig}: taking no new jobs; running jobs checkpoint and go back to the queue`);
    // Hard stop 5 s after the shutdown timeout whatever happens: a job still held then is taken
    // over when its lock expires.
    setTimeout(() => process.exit(1), env.WORKER_SHUTDOWN_TIMEOUT_MS + 5000).unref();
    void worker.shutdown().then(() => process.exit(0));
  });
}

// An artifact store another install owns is a configuration error: said once, exit 78 as for the env.
running.worker = await startWorker(env, { logger }).catch((e: unknown) => {
  if (!(e instanceof StoreClaimError)) throw e;
  console.error(`worker: ${e.message}`);
  process.exit(78);
});
