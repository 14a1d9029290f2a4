import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { http, startStack, waitForJob, type JobBody, type Stack } from '../../../test/support/stack.ts';

/**
 * A registry `base` is pinned at submit: a run that starts (or resumes, or is retried) after a newer
 * version was registered still trains on, and records as lineage, the version that was latest then.
 */
describe('registry base pinned at submit', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack('pin-base');
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('trains on the version that was latest at submit, not one registered before the job ran', async () => {
    const tiny = {
      architecture: 'mlp',
      architectureOptions: { units: [8] },
      dataset: { format: 'mnist', digits: [0, 1], limit: 100 },
      epochs: 1,
      batchSize: 32,
    };
    const first = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', { model: 'bb', ...tiny });
    expect(first.status).toBe(202);
    const b1 = await waitForJob(stack.url, first.body.id);
    expect(b1.state, JSON.stringify(b1)).toBe('completed');

    // No worker now: the job waits while bb@2 is registered.
    const w = stack.workers.pop()!;
    w.kill('SIGTERM');
    await w.exited;
    const job = await http<JobBody & { params: { base?: string } }>(
      `${stack.url}/v1/jobs/fine-tune`,
      'POST',
      {
        model: 'on-bb',
        base: 'bb',
        dataset: { format: 'mnist', digits: [2, 3], limit: 100 },
        head: { units: [8] },
        epochs: 1,
        batchSize: 32,
      },
    );
    expect(job.status).toBe(202);
    const v1 = await stack.api.registry.get('bb', 1);
    const { version: _v, createdAt: _c, ...same } = v1;
    expect((await stack.api.registry.register({ ...same, jobId: 'another-job' })).version).toBe(2);

    await stack.spawnWorker();
    const done = await waitForJob(stack.url, job.body.id);
    expect(done.state, JSON.stringify(done)).toBe('completed');
    const versions = await http<{ versions: { version: number; base?: unknown }[] }>(
      `${stack.url}/v1/models/on-bb`,
    );
    expect(versions.body.versions[0]).toMatchObject({ version: 1, base: { name: 'bb', version: 1 } });
    expect(job.body.params.base).toBe('bb@1');
    // What was asked stays visible: the job's log says what submit pinned.
    const logs = await http<{ logs: string[] }>(`${stack.url}/v1/jobs/${job.body.id}/logs`);
    expect(logs.body.logs.some((l) => l.endsWith('base bb → bb@1 (pinned at submit)'))).toBe(true);
  });
});
