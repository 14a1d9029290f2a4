import { Router } from 'express';
import type { Redis } from 'ioredis';
import type { RedisKeys } from '@mlq/contract';
import type { Queues } from '@mlq/queues';

/** Live workers: each refreshes its heartbeat key (`keys.worker(id)`, with a TTL) every few seconds. */
export async function liveWorkers(redis: Redis, keys: RedisKeys): Promise<unknown[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', keys.workersPattern, 'COUNT', 200);
    cursor = next;
    found.push(...batch);
  } while (cursor !== '0');
  if (found.length === 0) return [];
  const values = await redis.mget(found);
  return values.filter((v): v is string => v !== null).map((v) => JSON.parse(v) as unknown);
}

/** /readyz and /v1/workers; /metrics is metrics.ts's. */
export function opsRouter(redis: Redis, _queues: Queues, keys: RedisKeys): Router {
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
    res.json({ workers: await liveWorkers(redis, keys) });
  });
  return r;
}
