/**
 * TensorFlow Serving's REST routes:
 *   - POST /v1/models/{name}[/versions/{v}|/labels/{label}]:predict. The `:predict` suffix sits right
 *     after a parameter, which express 5's path syntax (path-to-regexp v8) would read as another
 *     parameter, so the route is a regular expression and the suffix is matched there;
 *   - GET /v1/models/{name}[/versions/{v}|/labels/{label}]/metadata (the signature).
 * TF Serving's model status (`GET /v1/models/{name}[/versions/{v}|/labels/{label}]`) is added to the
 * registry's answers at those URLs (routes/models.routes.ts), so each URL serves both.
 */
import { Router, text, type Request, type Response } from 'express';
import { limitedBy } from '../json-body.ts';
import { badRequest } from '../errors.ts';
import type { ModelTarget } from './model-resolver.ts';
import type { PredictService } from './predict.service.ts';
import { signatureMetadata } from './tf-serving.ts';

/** Names and labels never contain "/" or ":" (see the catalog's modelNameSchema and label rules). */
export const PREDICT_PATH = /^\/v1\/models\/([^/:]+)(?:\/(versions|labels)\/([^/:]+))?:predict$/;

function segment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw badRequest(`"${s}" is not a valid URL path segment`);
  }
}

/** The model a predict path names; 400 for a version that is not a positive integer. */
export function parsePredictPath(m: RegExpExecArray): ModelTarget {
  const kind = m[2] as 'versions' | 'labels' | undefined;
  return modelTarget(segment(m[1]!), kind, m[3] === undefined ? undefined : segment(m[3]));
}

/** The model `{name}`, `{name}/versions/{tag}` or `{name}/labels/{tag}` names (decoded segments). */
export function modelTarget(name: string, kind?: 'versions' | 'labels', tag?: string): ModelTarget {
  if (kind === undefined || tag === undefined) return { name };
  if (kind === 'labels') return { name, label: tag };
  const version = Number(tag);
  if (!/^\d+$/.test(tag) || !Number.isSafeInteger(version) || version < 1) {
    throw badRequest(`version must be a positive integer, got "${tag}"`, [
      { field: 'version', message: 'not a positive integer' },
    ]);
  }
  return { name, version };
}

/**
 * A 200 with a JSON body, without express's res.json: no ETag (a SHA-1 of every answer, of no use
 * on a POST) and no second pass over the body to encode it.
 */
export function sendJson(res: Response, body: unknown): void {
  const text = JSON.stringify(body);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}

/** The three predict routes; answers carry X-Model-Name / X-Model-Version (what a label resolved to). */
export function predictRouter(service: PredictService, bodyLimit: string): Router {
  const r = Router();
  // The body as text, whatever its content type (as TF Serving): the service scans it itself.
  const readText = limitedBy(`BODY_LIMIT=${bodyLimit}`, text({ type: () => true, limit: bodyLimit }));
  r.post(PREDICT_PATH, readText, async (req, res) => {
    const target = parsePredictPath(PREDICT_PATH.exec(req.path)!);
    const { version, body } = await service.predict(
      target,
      typeof req.body === 'string' ? req.body : undefined,
    );
    res.set('X-Model-Name', version.name).set('X-Model-Version', String(version.version));
    sendJson(res, body);
  });
  const metadata = (kind?: 'versions' | 'labels') => async (req: Request, res: Response) => {
    const p = req.params as Record<string, string>;
    const version = await service.resolve(modelTarget(p.name!, kind, p.tag));
    res.json(signatureMetadata(version, await service.describe(version)));
  };
  r.get('/v1/models/:name/metadata', metadata());
  r.get('/v1/models/:name/versions/:tag/metadata', metadata('versions'));
  r.get('/v1/models/:name/labels/:tag/metadata', metadata('labels'));
  return r;
}
