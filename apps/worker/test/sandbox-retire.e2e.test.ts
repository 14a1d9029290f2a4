/**
 * A sandbox child that a job left holding more than half the job memory budget retires after
 * reporting it (apps/worker/src/sandbox.ts, retireIfSwollen): the wasm heap never shrinks, and the next
 * job's memory check would otherwise count what the last one left and refuse every job after it. Here
 * a small WORKER_MEMORY_MB makes an ordinary child (a few hundred MB with tfjs loaded) count as swollen:
 * every job completes, once, and each runs in a process of its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  http,
  sandboxPidsOf,
  startStack,
  waitForJob,
  type JobBody,
  type Stack,
} from '../../../test/support/stack.ts';

describe('a swollen sandbox retires', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack('sandbox-retire', {
      workerEnv: {
        WORKER_QUEUES: 'fine-tune',
        WORKER_CONCURRENCY: '1',
        WORKER_MEMORY_MB: '500',
        TFJS_BACKEND: 'wasm',
        LOG_FORMAT: 'json',
        LOG_LEVEL: 'info',
      },
    });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('after a job that left it over half the budget: the next job completes, once, in a fresh process', async () => {
    const ids: string[] = [];
    for (const model of ['retire-1', 'retire-2', 'retire-3']) {
      const { status, body } = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', {
        model,
        architecture: 'mlp',
        architectureOptions: { units: [16] },
        dataset: { format: 'mnist', digits: [0, 1], limit: 200 },
        epochs: 1,
        batchSize: 32,
      });
      expect(status).toBe(202);
      const job = await waitForJob(stack.url, body.id, ['completed', 'failed'], 120_000);
      expect([job.state, job.attempts], job.error).toEqual(['completed', 1]);
      ids.push(job.id);
    }
    const pids = ids.map((id) => sandboxPidsOf(stack, id));
    for (const p of pids) expect(p).toHaveLength(1);
    expect(new Set(pids.flat()).size).toBe(3);
    expect(stack.workers[0]!.output()).toMatch(
      /this sandbox holds \d+ MB after the job, over half the job memory budget: it exits after reporting the job/,
    );
    // Each retired process is gone.
    for (const [pid] of pids.slice(0, 2)) expect(() => process.kill(pid!, 0)).toThrow();
  }, 300_000);
});
