/**
 * The API's start may find Redis ready before the app exists (it waits for QUEUE_GLOBAL_CONCURRENCY to
 * be written): job event streams must work then too, and the limit must be in Redis once start returns.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Queue } from '@mlq/queues';
import { http, startStack, type JobBody, type Stack } from '../../../test/support/stack.ts';

describe('an API that starts with Redis already ready', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack('start-order', {
      workers: 0,
      apiEnv: { QUEUE_GLOBAL_CONCURRENCY: 'fine-tune=2' },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('has written the global concurrency and streams job events', async () => {
    const queue = new Queue('fine-tune', { connection: stack.redis, prefix: stack.prefix });
    expect(await queue.getGlobalConcurrency()).toBe(2);
    await queue.close();
    const { body } = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', {
      model: 'm',
      architecture: 'mlp',
      dataset: { format: 'mnist', digits: [0, 1], limit: 50 },
      epochs: 1,
    });
    const ctl = new AbortController();
    const res = await fetch(`${stack.url}/v1/jobs/${body.id}/events`, { signal: ctl.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toMatch(/^event: state\ndata: \{"id":"/);
    ctl.abort();
  });
});
