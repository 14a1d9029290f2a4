/**
 * The HTTP API: express 5 (async handlers' errors reach the error handler), bearer-key auth on every
 * route but /healthz, Bull Board at /admin/queues, one error shape for everything.
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import express, { type Express, type RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import { jobNames, type JobName, type RedisKeys } from '@mlq/contract';
import { ModelRegistry } from '@mlq/core/registry';
import type { ArtifactStore } from '@mlq/core/storage';
import { QueueEvents, type Queues } from '@mlq/queues';
import { createSession, type Session } from './auth/session.ts';
import type { ApiEnv } from './env.ts';
import { EventsHub } from './events-hub.ts';
import { consoleRouter } from './routes/console.routes.ts';
import { eventsRouter } from './routes/events.routes.ts';
import { errorHandler, sendError } from './errors.ts';
import { JobsService } from './jobs.service.ts';
import { jobsRouter } from './routes/jobs.routes.ts';
import { modelsRouter } from './routes/models.routes.ts';
import { openApiDocument } from './openapi.ts';
import { opsRouter } from './routes/ops.routes.ts';
import { PredictService } from './serving/predict.service.ts';
import { predictRouter } from './serving/predict.routes.ts';

export interface AppDeps {
  env: ApiEnv;
  /** The install's Redis keys (QUEUE_PREFIX). */
  keys: RedisKeys;
  redis: Redis;
  queues: Queues;
  store: ArtifactStore;
}

export interface App {
  app: Express;
  jobs: JobsService;
  registry: ModelRegistry;
  serving: PredictService;
  hub: EventsHub;
  close(): Promise<void>;
}

/**
 * A Bearer key (the scheme name in any case, RFC 9110 §11.1) or a browser session cookie (see
 * auth/session.ts; unsafe methods must then come from this site). Pages opened without either go to
 * the login page; API calls get 401.
 */
function auth(keys: readonly string[], session: Session): RequestHandler {
  return (req, res, next) => {
    if (keys.length === 0) return next();
    const m = /^bearer[ \t]+(\S+)[ \t]*$/i.exec(req.get('authorization') ?? '');
    if (m && keys.includes(m[1]!)) return next();
    if (session.keyOf(req) !== undefined) {
      const why = session.crossSite(req);
      if (!why) return next();
      return sendError(
        res,
        403,
        'forbidden',
        `refused a cross-site request made with a session cookie: ${why}`,
      );
    }
    if (session.redirectToLogin(req, res)) return;
    res.set('WWW-Authenticate', 'Bearer');
    sendError(
      res,
      401,
      'unauthorized',
      'a valid "Authorization: Bearer <key>" header (or, from a browser, a session from /login) is required',
    );
  };
}

/** A fixed-window rate limit per API key (or client address when auth is off). */
function rateLimit(redis: Redis, keys: RedisKeys, perMinute: number): RequestHandler {
  return async (req, res, next) => {
    if (perMinute === 0) return next();
    const who = req.get('authorization') ?? req.ip ?? 'anon';
    const key = `${keys.rateLimit}:${Math.floor(Date.now() / 60_000)}:${who}`;
    const n = await redis.incr(key);
    if (n === 1) await redis.expire(key, 61);
    if (n > perMinute) {
      res.set('Retry-After', String(60 - (Math.floor(Date.now() / 1000) % 60)));
      return sendError(res, 429, 'rate_limited', `more than ${perMinute} requests in a minute`);
    }
    next();
  };
}

export function createApp(deps: AppDeps): App {
  const { env, keys, redis, queues } = deps;
  const registry = new ModelRegistry(redis, keys);
  const jobs = new JobsService(queues, redis, keys);
  const events = Object.fromEntries(
    jobNames.map((n) => [n, new QueueEvents(n, { connection: redis.duplicate(), prefix: keys.root })]),
  ) as Record<JobName, QueueEvents>;
  for (const e of Object.values(events)) e.setMaxListeners(1000);
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

  const hub = new EventsHub(events, jobs);
  const session = createSession({
    keys: env.API_KEYS,
    secret: env.SESSION_SECRET,
    ttlHours: env.SESSION_TTL_HOURS,
  });

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  const openapi = openApiDocument();
  app.get('/openapi.json', (_req, res) => void res.json(openapi));
  app.use(session.router);
  app.use(auth(env.API_KEYS, session));
  app.use(rateLimit(redis, keys, env.RATE_LIMIT_PER_MINUTE));

  const board = new ExpressAdapter();
  board.setBasePath('/admin/queues');
  createBullBoard({ queues: jobNames.map((n) => new BullMQAdapter(queues[n])), serverAdapter: board });
  app.use('/admin/queues', board.getRouter() as express.Router);

  // Before express.json: predict reads its own body (see serving/json-scan.ts).
  app.use(predictRouter(serving, env.BODY_LIMIT));
  app.use(express.json({ limit: env.BODY_LIMIT }));
  app.use(opsRouter(redis, queues, keys));
  app.use(eventsRouter(hub));
  app.use(jobsRouter({ jobs, registry, events, dataRoots: env.DATA_ROOTS, store: deps.store }));
  app.use(modelsRouter(registry, deps.store));
  app.use(consoleRouter(env.CONSOLE_DIR));
  app.use((req, res) => sendError(res, 404, 'not_found', `no route ${req.method} ${req.path}`));
  app.use(errorHandler);

  return {
    app,
    jobs,
    registry,
    serving,
    hub,
    async close() {
      hub.close();
      await Promise.all([...Object.values(events).map((e) => e.close()), serving.close()]);
    },
  };
}
