/**
 * mlq on a Redis Cluster: a 3-master cluster made of local redis-servers (`redis-cli --cluster
 * create`), the API and a worker process pointed at it with REDIS_CLUSTER_NODES. Fine-tune → evaluate
 * → predict, a small tune (a BullMQ flow across two queues), cancel over pub/sub, idempotency keys,
 * worker heartbeats (SCAN on every master), and every key in the one slot of the install's hash tag.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from 'ioredis';
import { RedisKeys } from '@mlq/contract';
import { scanKeys } from '@mlq/queues';
import {
  redisServerMissing,
  startRedisCluster,
  type RedisCluster,
} from '../../../test/support/redis-server.ts';
import { http, startStack, waitForJob, type JobBody, type Stack } from '../../../test/support/stack.ts';

const missing = redisServerMissing();
if (missing && process.env.CI) throw new Error(`these tests need the local redis-server: ${missing}`);
if (missing) console.log(`skipping the Redis Cluster tests: ${missing}`);

const mnist01 = { format: 'mnist', digits: [0, 1], limit: 300 };

describe.skipIf(missing)('on a 3-master Redis Cluster', { timeout: 360_000 }, () => {
  let cluster: RedisCluster;
  let stack: Stack;
  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    stack = await startStack('cluster', {
      redisEnv: { REDIS_CLUSTER_NODES: cluster.nodes },
      workerEnv: { WORKER_QUEUES: 'fine-tune,evaluate,tune' },
      apiEnv: { SERVING_THREADS: '1' },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    await cluster?.remove();
  });

  it('runs fine-tune → evaluate → predict', async () => {
    expect(stack.redis).toBeInstanceOf(Cluster);
    expect((await http(`${stack.url}/readyz`)).status).toBe(200);
    const ft = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', {
      model: 'clustered',
      architecture: 'mlp',
      architectureOptions: { units: [16] },
      dataset: mnist01,
      epochs: 2,
    });
    expect(ft.status).toBe(202);
    const trained = await waitForJob(stack.url, ft.body.id);
    expect(trained.state, JSON.stringify(trained)).toBe('completed');
    expect(trained.result!.model).toMatchObject({ name: 'clustered', version: 1 });

    const ev = await http<JobBody>(`${stack.url}/v1/jobs/evaluate`, 'POST', {
      model: 'clustered@1',
      dataset: { ...mnist01, split: 'test', limit: 100 },
    });
    const evaluated = await waitForJob(stack.url, ev.body.id);
    expect(evaluated.state, JSON.stringify(evaluated)).toBe('completed');
    const accuracy = (evaluated.result as { metrics: { accuracy: number } }).metrics.accuracy;
    expect(accuracy).toBeGreaterThan(0.9); // 0 vs 1 after two epochs

    expect(
      (await http(`${stack.url}/v1/models/clustered/labels/production`, 'PUT', { version: 1 })).status,
    ).toBe(200);
    const pred = await http<{ predictions: number[][] }>(
      `${stack.url}/v1/models/clustered/labels/production:predict`,
      'POST',
      { instances: [Array.from({ length: 784 }, () => 0)] },
    );
    expect(pred.status, JSON.stringify(pred.body)).toBe(200);
    expect(pred.body.predictions[0]).toHaveLength(2);
    console.log(`cluster: fine-tune, evaluate (accuracy ${accuracy.toFixed(3)}) and predict done`);
  });

  it('runs a small tune: its trials are a flow across the tune and fine-tune queues', async () => {
    const r = await http<JobBody>(`${stack.url}/v1/jobs/tune`, 'POST', {
      model: 'clustered-tuned',
      architecture: 'mlp',
      architectureOptions: { units: [16] },
      dataset: mnist01,
      epochs: 1,
      search: { strategy: 'grid', space: { learningRate: [0.01, 0.001] } },
      objective: 'valAcc',
    });
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    const tune = await waitForJob(stack.url, r.body.id, undefined, 180_000);
    expect(tune.state, JSON.stringify(tune)).toBe('completed');
    const result = tune.result as {
      trials: { state: string; jobId: string }[];
      best: { model: { version: number } };
    };
    expect(result.trials.map((t) => t.state)).toEqual(['completed', 'completed']);
    expect(result.best.model.version).toBe(1);
    // The tune's first start, which the worker recorded in the job's hash there: before its trials.
    const started = Date.parse((tune as { startedAt?: string }).startedAt ?? 'missing');
    for (const t of result.trials) {
      const trial = (await http<{ createdAt: string }>(`${stack.url}/v1/jobs/${t.jobId}`)).body;
      expect(started).toBeLessThanOrEqual(Date.parse(trial.createdAt));
    }
  });

  it('cancels a running job over pub/sub and keeps idempotency keys and heartbeats', async () => {
    const body = {
      model: 'clustered-long',
      architecture: 'mlp',
      dataset: { format: 'mnist', digits: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], limit: 5000 },
      epochs: 20,
      batchSize: 16,
    };
    const a = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', body, {
      'Idempotency-Key': 'c-1',
    });
    const b = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', body, {
      'Idempotency-Key': 'c-1',
    });
    expect([a.status, b.status]).toEqual([202, 200]);
    expect(b.body.id).toBe(a.body.id);
    for (;;) {
      const j = (await http<JobBody>(`${stack.url}/v1/jobs/${a.body.id}`)).body;
      if (j.state === 'active') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await http(`${stack.url}/v1/jobs/${a.body.id}`, 'DELETE')).body).toMatchObject({
      state: 'cancelling',
    });
    const cancelled = await waitForJob(stack.url, a.body.id, ['cancelled', 'failed', 'completed'], 60_000);
    expect(cancelled.state).toBe('cancelled');

    const workers = (await http<{ workers: { id: string }[] }>(`${stack.url}/v1/workers`)).body.workers;
    expect(workers).toHaveLength(1);
    expect((await http(`${stack.url}/metrics`)).status).toBe(200);
  });

  it('keeps every key of the install in the one slot of its hash tag', async () => {
    const keys = new RedisKeys(stack.prefix, { hashTag: true });
    const all = await scanKeys(stack.redis, keys.all);
    expect(all.length).toBeGreaterThan(0);
    const kinds = new Set(all.map((k) => k.slice(keys.root.length + 1).split(':')[0]));
    for (const kind of [
      'fine-tune',
      'evaluate',
      'tune',
      'registry',
      'job-types',
      'idempotency',
      'workers',
      'ratelimit',
    ])
      expect(kinds, [...kinds].join(',')).toContain(kind);
    const slots = new Set(await Promise.all(all.map((k) => stack.redis.call('CLUSTER', 'KEYSLOT', k))));
    console.log(`cluster: ${all.length} keys of ${kinds.size} kinds, all in slot ${[...slots].join(',')}`);
    expect(slots.size).toBe(1);
    expect(stack.workers[0]!.output()).not.toMatch(/^\s+at .+:\d+:\d+\)?$|"stack":/m);
  });
});
