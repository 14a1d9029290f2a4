/**
 * The HTTP API: express 5 (async handlers' errors reach the error handler), bearer-key auth on every
 * route but /healthz, Bull Board at /admin/queues, one error shape for everything.
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import express, { type Express, type RequestHandler } from 'express';
import { jobNames, type JobName, type RedisKeys } from '@mlq/contract';
import type { RedisTarget } from '@mlq/contract/env';
import { ModelRegistry } from '@mlq/core/registry';
import type { ArtifactStore } from '@mlq/core/storage';
import {
  closeWithin,
  connect,
  createQueueEvents,
  isConnectionError,
  isReady,
  reportErrors,
  type QueueEvents,
  type Queues,
  type RedisClient,
} from '@mlq/queues';
import type { ApiEnv } from './env.ts';
import { errorHandler, sendError } from './errors.ts';
import { JobsService } from './jobs.service.ts';
import { jobsRouter } from './routes/jobs.routes.ts';
import { modelsRouter } from './routes/models.routes.ts';
import { openApiDocument } from './openapi.ts';
import { opsRouter, readyz } from './routes/ops.routes.ts';
import { redisGate } from './redis-gate.middleware.ts';
import { PredictService } from './serving/predict.service.ts';
import { predictRouter } from './serving/predict.routes.ts';

export interface AppDeps {
  env: ApiEnv;
  /** The install's Redis keys (QUEUE_PREFIX; hash-tagged on a cluster). */
  keys: RedisKeys;
  /** Fail-fast connection for request paths (packages/queues/src/connection.ts). */
  redis: RedisClient;
  redisTarget: RedisTarget;
  queues: Queues;
  store: ArtifactStore;
}

export interface App {
  app: Express;
  jobs: JobsService;
  registry: ModelRegistry;
  serving: PredictService;
  close(): Promise<void>;
}

function auth(keys: readonly string[]): RequestHandler {
  return (req, res, next) => {
    if (keys.length === 0) return next();
    const m = /^Bearer (.+)$/.exec(req.get('authorization') ?? '');
    if (m && keys.includes(m[1]!)) return next();
    res.set('WWW-Authenticate', 'Bearer');
    sendError(res, 401, 'unauthorized', 'a valid "Authorization: Bearer <key>" header is required');
  };
}

/**
 * A fixed-window rate limit per API key (or client address when auth is off). It fails open while
 * Redis is away, so predict on loaded models keeps answering (the other routes answer 503 then).
 */
function rateLimit(redis: RedisClient, keys: RedisKeys, perMinute: number): RequestHandler {
  return async (req, res, next) => {
    if (perMinute === 0) return next();
    const who = req.get('authorization') ?? req.ip ?? 'anon';
    const key = `${keys.rateLimit}:${Math.floor(Date.now() / 60_000)}:${who}`;
    let n: number;
    try {
      n = await redis.incr(key);
      if (n === 1) await redis.expire(key, 61);
    } catch (e) {
      if (isConnectionError(e)) return next();
      throw e;
    }
    if (n > perMinute) {
      res.set('Retry-After', String(60 - (Math.floor(Date.now() / 1000) % 60)));
      return sendError(res, 429, 'rate_limited', `more than ${perMinute} requests in a minute`);
    }
    next();
  };
}

export function createApp(deps: AppDeps): App {
  const { env, keys, redis, queues, redisTarget } = deps;
  const registry = new ModelRegistry(redis, keys);
  const jobs = new JobsService(queues, redis, keys);
  // Queue events (for SSE, behind the Redis gate) open once Redis is first ready: BullMQ cannot close
  // them before that. Each gets its own blocking copy of this never-connected template connection.
  const events = {} as Record<JobName, QueueEvents>;
  const template = connect(redisTarget, { name: 'mlq-api-events', lazy: true });
  const openEvents = () => {
    for (const n of jobNames) {
      events[n] ??= createQueueEvents(n, template, keys, reportErrors(redisTarget));
      events[n].setMaxListeners(1000);
    }
  };
  if (isReady(redis)) openEvents();
  else redis.once('ready', openEvents);
  const serving = new PredictService(registry, redis, {
    threads: env.SERVING_THREADS,
    batching: env.SERVING_BATCHING === 'on',
    maxBatch: env.SERVING_MAX_BATCH,
    maxWaitMs: env.SERVING_MAX_WAIT_MS,
    maxInstances: env.SERVING_MAX_INSTANCES,
    cacheModels: env.SERVING_CACHE_MODELS,
    cacheBytes: env.SERVING_CACHE_MB * 2 ** 20,
    storeUri: deps.store.uri,
    dataRoots: env.DATA_ROOTS,
  });

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  const openapi = openApiDocument();
  app.get('/openapi.json', (_req, res) => void res.json(openapi));
  app.use(auth(env.API_KEYS));
  app.use(rateLimit(redis, keys, env.RATE_LIMIT_PER_MINUTE));

  // Before express.json: predict reads its own body (see serving/json-scan.ts). Before the Redis
  // gate: models already loaded keep answering while Redis is away.
  app.use(predictRouter(serving, env.BODY_LIMIT));
  app.get('/readyz', readyz(redis));
  app.use(redisGate(redis));

  const board = new ExpressAdapter();
  board.setBasePath('/admin/queues');
  createBullBoard({ queues: jobNames.map((n) => new BullMQAdapter(queues[n])), serverAdapter: board });
  app.use('/admin/queues', board.getRouter() as express.Router);

  app.use(express.json({ limit: env.BODY_LIMIT }));
  app.use(opsRouter(redis, queues, keys));
  app.use(jobsRouter({ jobs, registry, events, dataRoots: env.DATA_ROOTS }));
  app.use(modelsRouter(registry));
  app.use((req, res) => sendError(res, 404, 'not_found', `no route ${req.method} ${req.path}`));
  app.use(errorHandler);

  return {
    app,
    jobs,
    registry,
    serving,
    async close() {
      redis.off('ready', openEvents);
      await Promise.all([closeWithin(Object.values(events), 800), serving.close()]);
    },
  };
}
