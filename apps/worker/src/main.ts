/** `pnpm start:worker`: a worker process, configured by the environment (see API.md). */
import { loadWorkerEnv } from './env.ts';
import { startWorker } from './worker.ts';

const env = loadWorkerEnv();
const worker = await startWorker(env);

let closing = false;
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    if (closing) return;
    closing = true;
    console.log(`${sig}: finishing the running jobs, taking no new ones`);
    // Give up after 30 s: the job's lock then expires and another worker continues from the checkpoint.
    const force = setTimeout(() => process.exit(1), 30_000);
    force.unref();
    void worker.close().then(() => process.exit(0));
  });
}
