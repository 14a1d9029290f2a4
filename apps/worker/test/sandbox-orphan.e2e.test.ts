/**
 * kill -9 of a worker (a real process, on the real Redis) takes its sandbox child down with it within
 * seconds, whatever the child is doing: starting a job, training it on helper threads, or idle
 * between jobs. The job itself is not lost: its lock expires and the next worker resumes it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allGone, childrenOf, killLeftovers, startTime } from '../../../test/support/processes.ts';
import { waitFor } from '../../../test/support/wait.ts';
import {
  http,
  startStack,
  waitForJob,
  type JobBody,
  type Stack,
  type WorkerProcess,
} from '../../../test/support/stack.ts';

/** An mlp on 8,000 digits, batch 16: a few seconds per epoch. */
const job = (model: string, epochs: number, limit?: number) => ({
  model,
  architecture: 'mlp',
  architectureOptions: { units: [256, 128] },
  dataset: { format: 'mnist', digits: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], ...(limit ? { limit } : {}) },
  epochs,
  batchSize: 16,
  optimizer: 'adam',
});

interface Progress {
  epoch?: number;
  batch?: number;
}

describe('a sandbox child whose worker is killed (kill -9)', () => {
  let stack: Stack;
  /** Every sandbox child seen, so that none outlives this file whatever happens. */
  const children: { pid: number; started: string | undefined }[] = [];
  beforeAll(async () => {
    stack = await startStack('sandbox-orphan', {
      workers: 0,
      workerEnv: {
        // Short locks, so that the next worker takes a killed worker's job over in seconds.
        WORKER_LOCK_DURATION_MS: '3000',
        WORKER_STALLED_INTERVAL_MS: '1000',
        WORKER_QUEUES: 'fine-tune',
        // Helper threads in the child (data-parallel training), started with the job.
        WORKER_TRAIN_THREADS: '2',
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    expect(killLeftovers(children)).toEqual([]);
  });

  /** The worker's sandbox children, once it has one. */
  async function sandboxOf(w: WorkerProcess) {
    const pids = await waitFor(
      'the sandbox child',
      async () => {
        const c = childrenOf(w.proc.pid!);
        return c.length > 0 ? c : undefined;
      },
      120_000,
      50,
    );
    const procs = pids.map((pid) => ({ pid, started: startTime(pid) }));
    children.push(...procs);
    return procs;
  }

  async function killAndCheck(w: WorkerProcess, procs: { pid: number; started: string | undefined }[]) {
    w.kill('SIGKILL');
    await w.exited;
    const t0 = Date.now();
    expect(await allGone(procs, 5000), `sandbox children ${procs.map((p) => p.pid).join(', ')}`).toBe(true);
    return Date.now() - t0;
  }

  const progressOf = async (id: string) =>
    (await http<JobBody>(`${stack.url}/v1/jobs/${id}`)).body.progress as Progress | null;

  it('is gone within 5 s when the worker dies as the job starts, mid-training, or between jobs', async () => {
    // As the job starts: the child loads, reads the data and boots its helper threads.
    const a = await stack.spawnWorker();
    const { body } = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', job('orphan', 3));
    const atStart = await killAndCheck(a, await sandboxOf(a));

    // Mid-training: the next worker resumes the job; it is killed once batches are reported.
    const b = await stack.spawnWorker();
    const inB = await sandboxOf(b);
    await waitFor(
      'training',
      async () => ((await progressOf(body.id))?.batch ? true : undefined),
      120_000,
      50,
    );
    const midTraining = await killAndCheck(b, inB);

    // Idle: a child that ran a job waits in its worker's pool for the next one.
    const c = await stack.spawnWorker();
    const short = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', job('short', 1, 200));
    const inC = await sandboxOf(c);
    // The first job (resumed by c) and the short one both complete: the killed runs cost nothing.
    expect((await waitForJob(stack.url, short.body.id, undefined, 240_000)).state).toBe('completed');
    expect((await waitForJob(stack.url, body.id, undefined, 240_000)).state).toBe('completed');
    const idle = await killAndCheck(c, inC);
    console.log(
      `sandbox child gone after its worker's kill -9: at job start ${atStart} ms, mid-training ${midTraining} ms, idle ${idle} ms`,
    );
  }, 480_000);
});
