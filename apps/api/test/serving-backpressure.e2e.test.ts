/**
 * Back-pressure over HTTP: with one predict thread and a queue of at most 4 requests per model, a
 * burst of concurrent predicts and infers overfills the queue; the surplus is answered 503 with
 * Retry-After (in each protocol's error shape) at once, and the rest are answered correctly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAll, mnistSource } from '@mlq/core/data';
import type { RejectedEvent } from '../src/serving/serving-events.ts';
import { http, startStack, waitForJob, type JobBody, type Stack } from '../../../test/support/stack.ts';

describe('a full batch queue answers 503 with Retry-After', () => {
  let stack: Stack;
  let batch: number[][]; // 8 flat digits

  beforeAll(async () => {
    stack = await startStack('serving-backpressure', {
      apiEnv: { SERVING_THREADS: '1', SERVING_QUEUE_MAX_REQUESTS: '4', SERVING_MAX_BATCH: '8' },
    });
    const job = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', {
      model: 'cnn',
      architecture: 'mnist-cnn',
      dataset: { format: 'mnist', digits: [0, 1], limit: 100 },
      epochs: 1,
    });
    const test = await loadAll(mnistSource({ format: 'mnist', digits: [0, 1], split: 'test', limit: 8 }));
    batch = Array.from({ length: 8 }, (_, i) => Array.from(test.x.subarray(i * 784, (i + 1) * 784)));
    expect((await waitForJob(stack.url, job.body.id)).state).toBe('completed');
  }, 180_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('refuses the surplus of a burst at once and answers the rest', async () => {
    const rejected: RejectedEvent[] = [];
    stack.api.serving.events.on('rejected', (e) => rejected.push(e));
    const v1 = JSON.stringify({ instances: batch });
    const v2 = JSON.stringify({
      inputs: [{ name: 'image', shape: [8, 28, 28, 1], datatype: 'FP32', data: batch.flat() }],
    });
    // The model is not loaded yet: every request of the burst waits for the same load, then all
    // reach the queue together, far more than one thread and 4 queued requests hold.
    const burst = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const [path, body] = i % 2 ? ['/v2/models/cnn/infer', v2] : ['/v1/models/cnn:predict', v1];
        const res = await fetch(`${stack.url}${path}`, { method: 'POST', body });
        return {
          v2: i % 2 === 1,
          status: res.status,
          retryAfter: res.headers.get('retry-after'),
          body: await res.json(),
        };
      }),
    );
    const reference = (
      await http<{ predictions: number[][] }>(`${stack.url}/v1/models/cnn:predict`, 'POST', {
        instances: batch,
      })
    ).body.predictions.flat();
    const refused = burst.filter((r) => r.status === 503);
    const answered = burst.filter((r) => r.status === 200);
    expect(refused.length + answered.length, JSON.stringify(burst.map((r) => r.status))).toBe(40);
    expect(refused.length).toBeGreaterThan(0);
    expect(answered.length).toBeGreaterThanOrEqual(2); // at least what the thread and the queue held
    expect(rejected).toHaveLength(refused.length);
    for (const r of refused) {
      expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
      if (r.v2) expect(r.body.error).toMatch(/queue of cnn@1 is full/);
      else
        expect(r.body.error).toMatchObject({ code: 'queue_full', message: expect.stringMatching(/is full/) });
    }
    for (const r of answered) {
      const scores: number[] = r.v2 ? r.body.outputs[0].data : r.body.predictions.flat();
      scores.forEach((s, i) => expect(s).toBeCloseTo(reference[i]!, 5));
    }
    expect(stack.api.serving.batcher.queued('cnn@1')).toEqual({ rows: 0, requests: 0 });
  });
});
