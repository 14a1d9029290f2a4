/**
 * A job that completes after a failed attempt shows no error; the failure stays in its log. The
 * failure here is the one people see after an out-of-memory kill: the job's sandbox process dies of
 * SIGKILL while the worker lives on.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { http, startStack, waitForJob, type JobBody, type Stack } from '../../../test/support/stack.ts';

/** The sandbox processes a worker runs its jobs in: its child processes that run node (not esbuild). */
function sandboxPids(workerPid: number): number[] {
  const out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(workerPid)], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim().match(/^(\d+)\s+(.*)$/))
    .filter((m): m is RegExpMatchArray => m !== null && !/esbuild/.test(m[2]!))
    .map((m) => Number(m[1]));
}

describe('attempts', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack('attempts', { workerEnv: { WORKER_QUEUES: 'fine-tune' } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('a job that completes after its sandbox was killed has no error; the failed attempt is in its log', async () => {
    const { body } = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', {
      model: 'survivor',
      architecture: 'mlp',
      architectureOptions: { units: [128] },
      dataset: { format: 'mnist', digits: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], limit: 4000 },
      epochs: 2,
      batchSize: 16,
    });
    const until = Date.now() + 120_000;
    // An epoch has ended (and saved its checkpoint) once a report without `batch` came, or one within epoch 2+.
    const epochsDone = (p: { epoch?: number; batch?: number }) =>
      (p.epoch ?? 0) - (p.batch === undefined ? 0 : 1);
    while (
      epochsDone((await waitForJob(stack.url, body.id, ['active'])).progress as { epoch?: number }) < 1
    ) {
      if (Date.now() > until) throw new Error('no epoch finished in 120 s');
      await new Promise((r) => setTimeout(r, 100));
    }
    const pids = sandboxPids(stack.workers[0]!.proc.pid!);
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) process.kill(pid, 'SIGKILL');

    const done = await waitForJob(stack.url, body.id, ['completed', 'failed'], 180_000);
    expect(done.state).toBe('completed');
    expect(done.attempts).toBe(2);
    expect(done).not.toHaveProperty('error');
    const { logs } = (await http<{ logs: string[] }>(`${stack.url}/v1/jobs/${body.id}/logs`)).body;
    const failed = logs.filter((l) => / attempt \d of 3 failed: /.test(l));
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatch(/ attempt 1 of 3 failed: .*SIGKILL.*; it will be retried$/);
    expect(logs.some((l) => l.includes('resuming from the checkpoint'))).toBe(true);
  });
});
