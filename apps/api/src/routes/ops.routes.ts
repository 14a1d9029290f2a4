import { Router, type RequestHandler } from 'express';
import type { RedisKeys } from '@mlq/contract';
import { isReady, RETRY_AFTER_S, scanKeys, type Queues, type RedisClient } from '@mlq/queues';

/** Live workers: each refreshes its heartbeat key (`keys.worker(id)`, with a TTL) every few seconds. */
export async function liveWorkers(redis: RedisClient, keys: RedisKeys): Promise<unknown[]> {
  // On a cluster SCAN must visit every master; the keys share one hash tag, so one MGET reads them.
  const found = await scanKeys(redis, keys.workersPattern);
  if (found.length === 0) return [];
  const values = await redis.mget(found);
  return values.filter((v): v is string => v !== null).map((v) => JSON.parse(v) as unknown);
}

/** How long /readyz waits for Redis's PONG before answering 503. */
const READY_TIMEOUT_MS = 800;

/** `GET /readyz`: 200 when Redis answers a PING, else 503 within a second (never a hang). */
export function readyz(redis: RedisClient): RequestHandler {
  return async (_req, res) => {
    const notReady = (why: string) =>
      void res
        .status(503)
        .set('Retry-After', String(RETRY_AFTER_S))
        .json({ status: 'not ready', redis: why });
    if (!isReady(redis)) return notReady(`not connected (${redis.status})`);
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        redis.ping(),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no PONG within ${READY_TIMEOUT_MS} ms`)),
            READY_TIMEOUT_MS,
          );
        }),
      ]);
      res.json({ status: 'ready', redis: 'ok' });
    } catch (e) {
      notReady((e as Error).message);
    } finally {
      clearTimeout(timer);
    }
  };
}

/** /v1/workers (/readyz is readyz() above, mounted before the Redis gate; /metrics is metrics.ts's). */
export function opsRouter(redis: RedisClient, _queues: Queues, keys: RedisKeys): Router {
  const r = Router();
  r.get('/v1/workers', async (_req, res) => {
    res.json({ workers: await liveWorkers(redis, keys) });
  });
  return r;
}
