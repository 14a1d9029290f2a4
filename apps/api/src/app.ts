/**
 * The HTTP API: express 5 (async handlers' errors reach the error handler). In order: security
 * headers (helmet), CORS (only with CORS_ORIGINS), request logs with a request id (pino-http),
 * request metrics, authentication and scopes (auth/), the rate limit (limits/), then the routes,
 * Bull Board at /admin/queues (read-only without the `admin` scope), one error shape for everything.
 */
import { randomBytes } from 'node:crypto';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import cors from 'cors';
import express, { type Express, type RequestHandler } from 'express';
import helmet from 'helmet';
import { jobNames, type JobName, type RedisKeys } from '@mlq/contract';
import type { RedisTarget } from '@mlq/contract/env';
import { DatasetRegistry } from '@mlq/core/datasets';
import { ModelRegistry } from '@mlq/core/registry';
import { EgressPolicy } from '@mlq/core/remote';
import type { ArtifactStore } from '@mlq/core/storage';
import {
  closeWithin,
  connect,
  createQueueEvents,
  isReady,
  reportErrors,
  type QueueEvents,
  type Queues,
  type RedisClient,
} from '@mlq/queues';
import { authenticate, hasScope, principalOf } from './auth/authenticate.ts';
import { requirementOf } from './auth/policy.ts';
import { createSession } from './auth/session.ts';
import type { ApiEnv } from './env.ts';
import { EventsHub } from './events-hub.ts';
import { consoleRouter, rootPage } from './routes/console.routes.ts';
import { eventsRouter } from './routes/events.routes.ts';
import { errorHandler, sendError } from './errors.ts';
import { jsonObjectBody } from './json-body.ts';
import { JobsService } from './jobs.service.ts';
import { rateLimit } from './limits/rate-limit.ts';
import { httpLogger, type Logger } from './logger.ts';
import { ApiMetrics } from './metrics.ts';
import { artifactsRouter } from './routes/artifacts.routes.ts';
import { datasetsRouter } from './routes/datasets.routes.ts';
import { jobsRouter } from './routes/jobs.routes.ts';
import { modelsRouter } from './routes/models.routes.ts';
import { openApiDocument } from './openapi/document.ts';
import { opsRouter, readyz } from './routes/ops.routes.ts';
import { redisGate, redisUnavailable } from './redis-gate.middleware.ts';
import { PredictService } from './serving/predict.service.ts';
import { PREDICT_PATH, predictRouter } from './serving/predict.routes.ts';
import {
  INFER_PATH,
  openInferenceHealthRouter,
  openInferenceRouter,
} from './serving/open-inference.routes.ts';

export interface AppDeps {
  env: ApiEnv;
  /** The install's Redis keys (QUEUE_PREFIX; hash-tagged on a cluster). */
  keys: RedisKeys;
  /** Fail-fast connection for request paths (packages/queues/src/connection.ts). */
  redis: RedisClient;
  redisTarget: RedisTarget;
  queues: Queues;
  store: ArtifactStore;
  logger: Logger;
  /**
   * False until the store is claimed for this install (server.ts): routes behind the Redis gate answer
   * 503 until then. Absent: claimed.
   */
  storeClaimed?: () => boolean;
}

export interface App {
  app: Express;
  jobs: JobsService;
  registry: ModelRegistry;
  serving: PredictService;
  metrics: ApiMetrics;
  hub: EventsHub;
  close(): Promise<void>;
}

/**
 * Bull Board's page (@bull-board/ui's index.ejs) links its typeface, IBM Plex, from Google Fonts: offline
 * the page waits on it, and online every visit is told to a third party. bull-board has no option to
 * drop it, so the rendered page loses that `<link>` (its stylesheets fall back to system fonts).
 */
const WEB_FONT_LINK = /<link\b[^>]*\bhref="https:\/\/fonts\.(?:googleapis|gstatic)\.com\/[^"]*"[^>]*>\s*/g;

function withoutWebFonts(html: string): string {
  return html.replace(WEB_FONT_LINK, '');
}

/** Makes a page bull-board renders (`res.render`) go through withoutWebFonts before it is sent. */
function renderWithoutWebFonts(res: express.Response, next: express.NextFunction): void {
  const render = res.render.bind(res);
  res.render = (view: string, options?: object) =>
    render(view, options ?? {}, (err, html) => (err ? next(err) : void res.send(withoutWebFonts(html))));
}

/** Bull Board twice over the same queues: full for `admin` keys, read-only (bull-board's readOnlyMode) for the rest. */
function bullBoard(queues: Queues): RequestHandler {
  const board = (readOnlyMode: boolean) => {
    const adapter = new ExpressAdapter();
    adapter.setBasePath('/admin/queues');
    createBullBoard({
      queues: jobNames.map((n) => new BullMQAdapter(queues[n], { readOnlyMode })),
      serverAdapter: adapter,
    });
    return adapter.getRouter() as express.Router;
  };
  const full = board(false);
  const readOnly = board(true);
  return (req, res, next) => {
    renderWithoutWebFonts(res, next);
    (hasScope(principalOf(res), 'admin') ? full : readOnly)(req, res, next);
  };
}

/** CORS only for the configured origins (`*`: any); otherwise no CORS headers at all. */
function corsFor(origins: string[]): RequestHandler {
  if (origins.length === 0) return (_req, _res, next) => next();
  return cors({
    origin: origins.includes('*') ? '*' : origins,
    exposedHeaders: [
      'Location',
      'Retry-After',
      'X-Request-Id',
      'X-Model-Name',
      'X-Model-Version',
      'RateLimit-Limit',
      'RateLimit-Remaining',
      'RateLimit-Reset',
      'RateLimit-Policy',
    ],
    maxAge: 600,
  });
}

export function createApp(deps: AppDeps): App {
  const { env, keys, redis, queues, redisTarget } = deps;
  const registry = new ModelRegistry(redis, keys);
  const datasets = new DatasetRegistry(redis, keys);
  const jobs = new JobsService(queues, redis, keys);
  const metrics = new ApiMetrics(queues, redis, keys);
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
    maxQueuedRows: env.SERVING_QUEUE_MAX_ROWS,
    maxQueuedRequests: env.SERVING_QUEUE_MAX_REQUESTS,
    cacheModels: env.SERVING_CACHE_MODELS,
    cacheBytes: env.SERVING_CACHE_MB * 2 ** 20,
    storeUri: deps.store.uri,
    dataRoots: env.DATA_ROOTS,
    backend: env.TFJS_BACKEND,
    imageMaxPixels: env.IMAGE_MAX_PIXELS,
    observer: {
      predicted: (model, seconds) => metrics.predictDuration.observe({ model }, seconds),
      batched: (rows) => metrics.predictBatchSize.observe(rows),
    },
  });

  const hub = new EventsHub(events, jobs);
  const session = createSession({
    keys: env.API_KEYS,
    secret: env.SESSION_SECRET,
    ttlHours: env.SESSION_TTL_HOURS,
    // Fail-fast like the Redis gate: while Redis is away a session cannot be checked (503).
    // The epoch is created with SET NX and read back, so API processes sharing this Redis agree on it.
    store: {
      async epoch() {
        if (!isReady(redis)) throw redisUnavailable();
        const replies = await redis
          .pipeline()
          .set(keys.sessionEpoch, randomBytes(8).toString('hex'), 'NX')
          .get(keys.sessionEpoch)
          .exec();
        const [err, epoch] = replies?.[1] ?? [new Error('no reply')];
        if (err || typeof epoch !== 'string') throw err ?? new Error('no session epoch in Redis');
        return epoch;
      },
      async revoke(sid, ttlMs) {
        if (!isReady(redis)) throw redisUnavailable();
        await redis.set(keys.sessionRevoked(sid), '1', 'PX', ttlMs);
      },
      async isRevoked(sid) {
        if (!isReady(redis)) throw redisUnavailable();
        return (await redis.exists(keys.sessionRevoked(sid))) === 1;
      },
    },
  });

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  // helmet's defaults, but no upgrade-insecure-requests: on a plain-http install (a LAN address) it
  // would send the browser to https:// for Bull Board's own scripts.
  // img-src blob: for the console's image playground (a preview of the picked file).
  // Fonts and stylesheets from this server only (helmet allows any https: host): no page makes the
  // browser ask another host for anything.
  app.use(
    helmet({
      contentSecurityPolicy: {
        directives: {
          upgradeInsecureRequests: null,
          imgSrc: ["'self'", 'data:', 'blob:'],
          fontSrc: ["'self'", 'data:'],
          styleSrc: ["'self'", "'unsafe-inline'"],
        },
      },
    }),
  );
  app.use(corsFor(env.CORS_ORIGINS));
  // Successful predictions are logged at debug (hundreds a second; counted in the metrics).
  const predictPost = (method: string, path: string) =>
    method === 'POST' && (PREDICT_PATH.test(path) || INFER_PATH.test(path));
  app.use(httpLogger(deps.logger, predictPost));
  app.use(metrics.httpMiddleware());
  // A browser opening the server's root goes to the console (which asks for sign-in if needed).
  app.get('/', rootPage);
  // Browser sign-in (/login, /logout) and the session cookie that authenticate() also accepts.
  app.use(session.router);
  app.use(authenticate(env.API_KEYS, session));
  app.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  app.use(openInferenceHealthRouter(redis));
  const openapi = openApiDocument();
  app.get('/openapi.json', (_req, res) => void res.json(openapi));
  app.use(
    rateLimit({
      redis,
      keyPrefix: keys.rateLimit,
      perMinute: env.RATE_LIMIT_PER_MINUTE,
      leased: (req) => predictPost(req.method, req.path),
      exempt: (req) => requirementOf(req.method, req.path) === 'public',
      onLimited: () => metrics.rateLimited.inc(),
    }),
  );
  app.get('/metrics', (req, res) => metrics.send(req, res));

  // Before express.json: predict and infer read their own bodies (see serving/json-scan.ts). Before
  // the Redis gate: models already loaded keep answering while Redis is away.
  app.use(openInferenceRouter(serving, registry, env.BODY_LIMIT));
  app.use(predictRouter(serving, env.BODY_LIMIT));
  app.get('/readyz', readyz(redis));
  app.use(redisGate(redis, deps.storeClaimed));
  app.use('/admin/queues', bullBoard(queues));
  // Also before express.json: an upload's body is the file, streamed to the store (DATASET_MAX_BYTES).
  app.use(
    datasetsRouter({
      datasets,
      store: deps.store,
      jobs,
      maxBytes: env.DATASET_MAX_BYTES,
      limits: { maxFiles: env.DATASET_MAX_FILES, maxExpandedBytes: env.DATASET_MAX_EXPANDED_BYTES },
      imageMaxPixels: env.IMAGE_MAX_PIXELS,
    }),
  );
  app.use(jsonObjectBody(env.BODY_LIMIT));
  app.use(opsRouter(redis, queues, keys));
  app.use(eventsRouter(hub));
  // Checked at submit (workers check again, with their own FETCH_* settings, before they fetch).
  const egress = new EgressPolicy({
    allowHosts: env.FETCH_ALLOW_HOSTS,
    timeoutMs: env.FETCH_TIMEOUT_MS,
    maxBytes: Math.floor(env.FETCH_MAX_MB * 2 ** 20),
  });
  app.use(
    jobsRouter({ jobs, registry, datasets, events, dataRoots: env.DATA_ROOTS, store: deps.store, egress }),
  );
  app.use(artifactsRouter(jobs, { store: deps.store, dataRoots: env.DATA_ROOTS }));
  app.use(modelsRouter(registry, deps.store, (v) => serving.state(v)));
  app.use(consoleRouter(env.CONSOLE_DIR, { auth: env.API_KEYS.enabled }));
  app.use((req, res) => sendError(res, 404, 'not_found', `no route ${req.method} ${req.path}`));
  app.use(errorHandler);

  return {
    app,
    jobs,
    registry,
    serving,
    metrics,
    hub,
    async close() {
      hub.close();
      redis.off('ready', openEvents);
      await Promise.all([closeWithin(Object.values(events), 800), serving.close()]);
    },
  };
}
