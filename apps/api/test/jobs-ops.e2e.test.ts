/**
 * Operations fixes: `?state=cancelled` pages are full and `?state=failed` holds no cancelled job, QUEUE_GLOBAL_CONCURRENCY is the whole truth at
 * start, and `architectureOptions.inputSize` is refused by name.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '@mlq/contract';
import { closeQueues, createQueues, UnrecoverableError, Worker, type Queues } from '@mlq/queues';
import { apiEnvSchema, startApi } from '../src/index.ts';
import { http, REDIS_URL, startStack, type Stack } from '../../../test/support/stack.ts';
import { Redis } from 'ioredis';

interface Page {
  jobs: { id: string; state: string; error?: string }[];
}

describe('job listing and queue settings', () => {
  let stack: Stack;
  let queues: Queues;
  beforeAll(async () => {
    stack = await startStack('jobs-ops', { workers: 0 });
    queues = createQueues(stack.redis, stack.prefix);
  });
  afterAll(async () => {
    await closeQueues(queues);
    await stack?.stop();
  });

  it('pages over failed jobs until a ?state=cancelled page is full', async () => {
    // 3 cancelled evaluate jobs, then 250 other failures after them (newer): the newest failed page
    // holds no cancelled job at all.
    const add = async (i: number, reason: string) => {
      const id = `job-${String(i).padStart(3, '0')}`;
      await stack.redis.hset(new RedisKeys(stack.prefix).jobTypes, id, 'evaluate');
      await queues.evaluate.add('evaluate', { reason }, { jobId: id, attempts: 1, timestamp: 1_000_000 + i });
    };
    for (let i = 0; i < 3; i++) await add(i, 'cancelled: cancelled by user');
    for (let i = 3; i < 253; i++) await add(i, 'the data file is missing');
    // A real BullMQ worker fails them in order, with their reasons.
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const worker = new Worker(
      'evaluate',
      async (job) => {
        throw new UnrecoverableError((job.data as { reason: string }).reason);
      },
      { connection, prefix: stack.prefix, concurrency: 50 },
    );
    const until = Date.now() + 60_000;
    while ((await queues.evaluate.getFailedCount()) < 253 && Date.now() < until)
      await new Promise((r) => setTimeout(r, 100));
    await worker.close();
    await connection.quit();

    const page = await http<Page>(`${stack.url}/v1/jobs?state=cancelled&limit=2`);
    expect(page.status).toBe(200);
    expect(page.body.jobs.map((j) => j.id)).toEqual(['job-002', 'job-001']);
    expect(page.body.jobs.every((j) => j.state === 'cancelled')).toBe(true);
    const next = await http<Page>(`${stack.url}/v1/jobs?state=cancelled&limit=2&offset=2`);
    expect(next.body.jobs.map((j) => j.id)).toEqual(['job-000']);
    const failed = await http<Page>(`${stack.url}/v1/jobs?state=failed&limit=3&type=evaluate`);
    expect(failed.body.jobs).toHaveLength(3);
    // ?state=failed is the other side: no cancelled job, on any page (the last one holds 2 of 250).
    const last = await http<Page>(`${stack.url}/v1/jobs?state=failed&limit=5&offset=248`);
    expect(last.body.jobs.map((j) => [j.id, j.state])).toEqual([
      ['job-004', 'failed'],
      ['job-003', 'failed'],
    ]);
    const all = await http<Page>(`${stack.url}/v1/jobs?state=failed&limit=500`);
    expect(all.body.jobs).toHaveLength(250);
    expect(all.body.jobs.every((j) => j.state === 'failed')).toBe(true);
  });

  it('sets QUEUE_GLOBAL_CONCURRENCY at start and clears limits it no longer names', async () => {
    const start = (spec: string) =>
      startApi(
        apiEnvSchema.parse({
          ...stack.env,
          PORT: '0',
          HOST: '127.0.0.1',
          LOG_LEVEL: 'warn',
          QUEUE_GLOBAL_CONCURRENCY: spec,
        }),
      );
    let api = await start('fine-tune=2,tune=1');
    expect(await queues['fine-tune'].getGlobalConcurrency()).toBe(2);
    expect(await queues.tune.getGlobalConcurrency()).toBe(1);
    await api.stop();
    api = await start('tune=3');
    expect(await queues['fine-tune'].getGlobalConcurrency()).toBeNull();
    expect(await queues.tune.getGlobalConcurrency()).toBe(3);
    await api.stop();
    api = await start('');
    expect(await queues.tune.getGlobalConcurrency()).toBeNull();
    await api.stop();
  });

  it("refuses architectureOptions.inputSize by name: the input size is the dataset's", async () => {
    const r = await http<{ error: { details: { field: string; message: string }[] } }>(
      `${stack.url}/v1/jobs/fine-tune`,
      'POST',
      {
        model: 'm',
        architecture: 'mobilenet-v2',
        architectureOptions: { inputSize: 96 },
        dataset: { format: 'mnist' },
        epochs: 1,
      },
    );
    expect(r.status).toBe(400);
    expect(r.body.error.details.map((d) => d.field)).toContain('architectureOptions');
    expect(JSON.stringify(r.body.error.details)).toContain('inputSize');
  });
});
