import { Router } from 'express';
import type { Redis } from 'ioredis';
import type { Queues } from '@mlq/queues';

/** Live workers: each refreshes `<prefix>:workers:<id>` (with a TTL) every few seconds. */
export async function liveWorkers(redis: Redis, prefix: string): Promise<unknown[]> {
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

/** /readyz and /v1/workers; /metrics is metrics.ts's. */
export function opsRouter(redis: Redis, _queues: Queues, prefix: string): Router {
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
  return r;
}
