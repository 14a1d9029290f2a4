/**
 * The Open Inference Protocol (KServe V2) over HTTP: health, server and model metadata, model
 * readiness and inference, under `/v2`. Errors are the protocol's `{"error": "<message>"}`, with the
 * status the rest of the API would give (400, 404, 413, 422, 501, 503 with Retry-After). A model's
 * version is a positive integer; `/v2/models/{name}` without one means the latest.
 */
import { Router, text, type ErrorRequestHandler, type Request, type Response } from 'express';
import { limitedBy } from '../json-body.ts';
import { isReady, RETRY_AFTER_S, type RedisClient } from '@mlq/queues';
import type { ModelRegistry } from '@mlq/core/registry';
import pkg from '../../package.json' with { type: 'json' };
import { toApiError } from '../errors.ts';
import { modelMetadata } from './open-inference.ts';
import type { PredictService } from './predict.service.ts';
import { modelTarget, sendJson } from './predict.routes.ts';

/** `POST /v2/models/{name}[/versions/{v}]/infer` (the rate limiter serves it from leased tokens, as :predict). */
export const INFER_PATH = /^\/v2\/models\/[^/]+(?:\/versions\/[^/]+)?\/infer$/;

/** The server's name in `GET /v2`. */
export const SERVER_NAME = 'mlq';

/** Answers within `ms` or rejects: a readiness probe must not hang on a Redis that does not answer. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** The model the path names: `/v2/models/{name}` is the latest version, `/versions/{v}` that one. */
const targetOf = (req: Request) => {
  const p = req.params as Record<string, string | undefined>;
  return modelTarget(p.name!, p.version === undefined ? undefined : 'versions', p.version);
};

/** `{"error": "<message>"}` with the status (and headers such as Retry-After) of the error. */
const v2Errors: ErrorRequestHandler = (err, req, res, next) => {
  // Errors of other routes pass through this router too: they keep the API's own shape.
  if (res.headersSent || !/^\/v2(\/|$)/.test(req.path)) return next(err);
  const e = toApiError(err);
  if (e) return void res.status(e.status).set(e.headers).json({ error: e.message });
  req.log.error({ err }, 'unhandled error');
  res.status(500).json({ error: 'internal error' });
};

/**
 * `GET /v2/health/live` and `/v2/health/ready`: probes, mounted before auth as `/healthz` is. Ready
 * when the registry (Redis) answers within 1 s: every registered model can then be loaded on demand.
 */
export function openInferenceHealthRouter(redis: RedisClient): Router {
  const r = Router();
  r.get('/v2/health/live', (_req, res) => void res.json({ live: true }));
  r.get('/v2/health/ready', async (_req, res) => {
    const notReady = (why: string) =>
      void res
        .status(503)
        .set('Retry-After', String(RETRY_AFTER_S))
        .json({ error: `not ready: ${why}` });
    // Not connected: say so, not what the Redis client says about its offline queue.
    if (!isReady(redis)) return notReady(`the registry (Redis) is not reachable (${redis.status})`);
    try {
      await within(redis.ping(), 1000, 'Redis');
      res.json({ ready: true });
    } catch (e) {
      notReady((e as Error).message);
    }
  });
  return r;
}

/** The other `/v2` routes (behind auth): server and model metadata, model readiness, inference. */
export function openInferenceRouter(
  service: PredictService,
  registry: ModelRegistry,
  bodyLimit: string,
): Router {
  const r = Router();
  r.get('/v2', (_req, res) => void res.json({ name: SERVER_NAME, version: pkg.version, extensions: [] }));

  const metadata = async (req: Request, res: Response) => {
    const target = targetOf(req);
    const version = await service.resolve(target);
    const info = await service.describe(version);
    const versions = (await registry.versions(target.name)).map((v) => v.version);
    res.json(modelMetadata(version.name, versions, info));
  };
  r.get('/v2/models/:name', metadata);
  r.get('/v2/models/:name/versions/:version', metadata);

  // Ready once loaded: the first call loads the model on a predict thread (a probe warms it up).
  const ready = async (req: Request, res: Response) => {
    const version = await service.resolve(targetOf(req));
    await service.describe(version);
    res.json({ name: version.name, ready: true });
  };
  r.get('/v2/models/:name/ready', ready);
  r.get('/v2/models/:name/versions/:version/ready', ready);

  // The body as text, whatever its content type: the service parses it and words every error.
  const readText = limitedBy(`BODY_LIMIT=${bodyLimit}`, text({ type: () => true, limit: bodyLimit }));
  const infer = async (req: Request, res: Response) => {
    const { version, body } = await service.infer(
      targetOf(req),
      typeof req.body === 'string' ? req.body : undefined,
    );
    res.set('X-Model-Name', version.name).set('X-Model-Version', String(version.version));
    sendJson(res, body);
  };
  r.post('/v2/models/:name/infer', readText, infer);
  r.post('/v2/models/:name/versions/:version/infer', readText, infer);

  // Any other /v2 path: the protocol's 404 (a middleware, not a route: it serves no operation).
  r.use((req, res, next) => {
    if (!/^\/v2(\/|$)/.test(req.path)) return next();
    res.status(404).json({ error: `no route ${req.method} ${req.path}` });
  });
  r.use(v2Errors);
  return r;
}
