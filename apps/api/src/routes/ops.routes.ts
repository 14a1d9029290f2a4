import { Router, type RequestHandler } from 'express';
import { jobNames, type RedisKeys } from '@mlq/contract';
import { isReady, RETRY_AFTER_S, scanKeys, type Queues, type RedisClient } from '@mlq/queues';

/** Live workers: each refreshes its heartbeat key (`keys.worker(id)`, with a TTL) every few seconds. */
async function liveWorkers(redis: RedisClient, keys: RedisKeys): Promise<unknown[]> {
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

export function opsRouter(redis: RedisClient, queues: Queues, keys: RedisKeys): Router {
  const r = Router();
  r.get('/v1/workers', async (_req, res) => {
    res.json({ workers: await liveWorkers(redis, keys) });
  });
  r.get('/metrics', async (_req, res) => {
    const lines = ['# HELP mlq_jobs Jobs per queue and state.', '# TYPE mlq_jobs gauge'];
    for (const name of jobNames) {
      const counts = await queues[name].getJobCounts('waiting', 'active', 'completed', 'failed', 'delayed');
      for (const [state, n] of Object.entries(counts))
        lines.push(`mlq_jobs{queue="${name}",state="${state}"} ${n}`);
    }
    const workers = await liveWorkers(redis, keys);
    lines.push(
      '# HELP mlq_workers Live worker processes.',
      '# TYPE mlq_workers gauge',
      `mlq_workers ${workers.length}`,
    );
    res.type('text/plain; version=0.0.4').send(`${lines.join('\n')}\n`);
  });
  return r;
}
