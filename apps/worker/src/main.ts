/** `pnpm start:worker`: a worker process, configured by the environment (docs/api.md lists every variable). */
import { loadWorkerEnv } from './env.ts';
import { startWorker } from './worker.ts';

const env = loadWorkerEnv();
const worker = await startWorker(env);

let closing = false;
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    if (closing) return;
    closing = true;
    worker.logger.info(`${sig}: taking no new jobs; running jobs checkpoint and go back to the queue`);
    // Hard stop 5 s after the shutdown timeout whatever happens: a job still held then is taken
    // over when its lock expires.
    setTimeout(() => process.exit(1), env.WORKER_SHUTDOWN_TIMEOUT_MS + 5000).unref();
    void worker.shutdown().then(() => process.exit(0));
  });
}
