/**
 * Restart without loss: a redis-server of this test's own with AOF on (as docker-compose.yml runs it),
 * jobs waiting and one running, Redis restarted under them; every job must end completed exactly once,
 * and every model version registered once. Then the same with `appendfsync always` and a crash
 * (SIGKILL) instead of a clean restart.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  redisServerMissing,
  startRedisServer,
  type RedisServer,
} from '../../../test/support/redis-server.ts';
import { http, startStack, waitForJob, type JobBody, type Stack } from '../../../test/support/stack.ts';

const missing = redisServerMissing();
if (missing && process.env.CI) throw new Error(`these tests need the local redis-server: ${missing}`);
if (missing) console.log(`skipping the Redis restart tests: ${missing}`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Job 0 trains for several seconds (it is running at the restart); the others wait behind it. */
const payload = (i: number) => ({
  model: `restart-${i}`,
  architecture: 'mlp',
  architectureOptions: { units: i === 0 ? [256, 128] : [16] },
  dataset: { format: 'mnist', digits: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], limit: i === 0 ? 5000 : 300 },
  epochs: i === 0 ? 3 : 1,
  batchSize: 16,
});

describe.skipIf(missing)('Redis restarts under running and waiting jobs', { timeout: 360_000 }, () => {
  let redis: RedisServer | undefined;
  let stack: Stack | undefined;
  afterEach(async () => {
    await redis?.start().catch(() => undefined); // stack.stop() deletes its keys
    await stack?.stop();
    await redis?.remove();
  });

  async function run(name: string, redisArgs: string[], restart: (r: RedisServer) => Promise<void>) {
    redis = await startRedisServer(['--appendonly', 'yes', ...redisArgs]);
    stack = await startStack(name, {
      redisEnv: { REDIS_URL: redis.url },
      workerEnv: { WORKER_QUEUES: 'fine-tune', WORKER_CONCURRENCY: '1' },
    });
    const url = stack.url;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await http<JobBody>(`${url}/v1/jobs/fine-tune`, 'POST', payload(i), {
        'Idempotency-Key': `${name}-${i}`,
      });
      expect(r.status).toBe(202);
      ids.push(r.body.id);
    }
    // One running (past its first epoch), four waiting.
    const get = async (id: string) => (await http<JobBody>(`${url}/v1/jobs/${id}`)).body;
    for (;;) {
      const j = await get(ids[0]!);
      if (j.state === 'active' && ((j.progress as { epoch?: number } | null)?.epoch ?? 0) >= 1) break;
      await sleep(50);
    }
    const states = await Promise.all(ids.map(async (id) => (await get(id)).state));
    expect(states).toEqual(['active', 'waiting', 'waiting', 'waiting', 'waiting']);

    const t0 = performance.now();
    await restart(redis);
    const downMs = performance.now() - t0;

    const done = await Promise.all(ids.map((id) => waitForJob(url, id, undefined, 240_000)));
    const out = stack.workers[0]!.output();
    // pino lines: {…,"jobId":"<id>",…,"msg":"job completed"}
    const completions = ids.map(
      (id) =>
        out.split('\n').filter((l) => l.includes(`"jobId":"${id}"`) && l.includes('"msg":"job completed"'))
          .length,
    );
    const lost = done.filter((j) => j.state !== 'completed').length;
    console.log(
      `${name}: Redis down ${(downMs / 1000).toFixed(1)} s; ${ids.length} jobs (1 running, 4 waiting): ` +
        `${lost} lost, completions per job ${completions.join(',')}`,
    );
    expect(lost).toBe(0);
    expect(completions).toEqual([1, 1, 1, 1, 1]);
    for (let i = 0; i < ids.length; i++) {
      const m = await http<{ versions: { version: number; jobId: string }[] }>(
        `${url}/v1/models/restart-${i}`,
      );
      expect(m.body.versions.map((v) => [v.version, v.jobId])).toEqual([[1, ids[i]]]);
    }
    // The idempotency keys survived too: a repeat returns the same job.
    const again = await http<JobBody>(`${url}/v1/jobs/fine-tune`, 'POST', payload(1), {
      'Idempotency-Key': `${name}-1`,
    });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(ids[1]);
    expect(out).not.toMatch(/^\s+at .+:\d+:\d+\)?$|"stack":/m);
  }

  it('loses no job and completes each exactly once across a clean restart (SIGTERM, AOF everysec)', async () => {
    await run('restart', [], async (r) => {
      await r.stop('SIGTERM');
      await sleep(1000);
      await r.start();
    });
  });

  it('loses no job across a crash (SIGKILL) with appendfsync always', async () => {
    await run('crash', ['--appendfsync', 'always'], async (r) => {
      await r.stop('SIGKILL');
      await sleep(1000);
      await r.start();
    });
  });
});
