/** The registry's register() on a real Redis: atomic, and at most one version per job. */
import { afterAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { RedisKeys, type NewVersion } from '@mlq/contract';
import { ModelRegistry } from '@mlq/core/registry';
import { closeClient, connect, scanKeys } from '@mlq/queues';

const target = { kind: 'single' as const, url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' };
const prefix = `test-registry-${randomUUID().slice(0, 8)}`;
const keys = new RedisKeys(prefix);
const redis = connect(target, { name: 'mlq-test-registry' });
const registry = new ModelRegistry(redis, keys);

const version = (jobId: string): NewVersion => ({
  name: 'm',
  uri: `file:///runs/${jobId}/model/model.json`,
  jobId,
  metrics: { loss: 0.123456789012345, acc: 1 },
  params: { units: [], note: 'ünïcode "quoted" \\ / ok', nested: { empty: {} } },
  inputShape: [28, 28, 1],
  numClasses: 10,
});

describe('ModelRegistry.register', () => {
  afterAll(async () => {
    const all = await scanKeys(redis, keys.all);
    if (all.length) await redis.del(...all);
    await closeClient(redis);
  });

  it('registers a job once, however often and however concurrently it asks', async () => {
    const heard: string[] = [];
    const sub = connect(target, { name: 'mlq-test-registry-sub' });
    sub.on('message', (_c: string, m: string) => heard.push(m));
    await sub.subscribe(registry.versionChannel);

    const first = await Promise.all(Array.from({ length: 8 }, () => registry.register(version('job-a'))));
    expect(new Set(first.map((v) => v.version))).toEqual(new Set([1]));
    const second = await registry.register(version('job-b'));
    const again = await registry.register({ ...version('job-a'), uri: 'file:///elsewhere' });
    expect(second.version).toBe(2);
    expect(again).toEqual(first[0]);
    expect((await registry.versions('m')).map((v) => [v.version, v.jobId])).toEqual([
      [1, 'job-a'],
      [2, 'job-b'],
    ]);
    // The record comes back exactly as written: numbers, empty arrays and objects, escapes.
    const { version: n, createdAt, labels, ...rest } = await registry.get('m', 1);
    expect(rest).toEqual(version('job-a'));
    expect([n, labels, Number.isNaN(Date.parse(createdAt))]).toEqual([1, [], false]);

    await new Promise((r) => setTimeout(r, 200));
    expect(heard.map((m) => JSON.parse(m) as unknown)).toEqual([
      { name: 'm', version: 1 },
      { name: 'm', version: 2 },
    ]);
    await closeClient(sub);
  });
});
