import { Router } from 'express';
import type { Redis } from 'ioredis';
import { jobNames } from '@mlq/core';
import type { Queues } from '@mlq/queues';

/** Live workers: each refreshes `<prefix>:workers:<id>` (with a TTL) every few seconds. */
async function liveWorkers(redis: Redis, prefix: string): Promise<unknown[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:workers:*`, 'COUNT', 200);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  if (keys.length === 0) return [];
  const values = await redis.mget(keys);
  return values.filter((v): v is string => v !== null).map((v) => JSON.parse(v) as unknown);
}

export function opsRouter(redis: Redis, queues: Queues, prefix: string): Router {
  const r = Router();
  r.get('/readyz', async (_req, res) => {
    try {
      await redis.ping();
      res.json({ status: 'ready', redis: 'ok' });
    } catch (e) {
      res.status(503).json({ status: 'not ready', redis: (e as Error).message });
    }
  });
  r.get('/v1/workers', async (_req, res) => {
    res.json({ workers: await liveWorkers(redis, prefix) });
  });
  r.get('/metrics', async (_req, res) => {
    const lines = ['# HELP mlq_jobs Jobs per queue and state.', '# TYPE mlq_jobs gauge'];
    for (const name of jobNames) {
      const counts = await queues[name].getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed');
      for (const [state, n] of Object.entries(counts))
        lines.push(`mlq_jobs{queue="${name}",state="${state}"} ${n}`);
    }
    const workers = await liveWorkers(redis, prefix);
    lines.push(
      '# HELP mlq_workers Live worker processes.',
      '# TYPE mlq_workers gauge',
      `mlq_workers ${workers.length}`,
    );
    res.type('text/plain; version=0.0.4').send(`${lines.join('\n')}\n`);
  });
  return r;
}
