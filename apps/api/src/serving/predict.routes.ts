/**
 * POST /v1/models/{name}[/versions/{v}|/labels/{label}]:predict. The `:predict` suffix sits right
 * after a parameter, which express 5's path syntax (path-to-regexp v8) would read as another
 * parameter, so the route is a regular expression and the suffix is matched there.
 */
import { Router, text } from 'express';
import { badRequest } from '../errors.ts';
import type { ModelTarget } from './model-resolver.ts';
import type { PredictService } from './predict.service.ts';

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
  const name = segment(m[1]!);
  if (m[2] === undefined) return { name };
  const tag = segment(m[3]!);
  if (m[2] === 'labels') return { name, label: tag };
  const version = Number(tag);
  if (!/^\d+$/.test(tag) || !Number.isSafeInteger(version) || version < 1) {
    throw badRequest(`version must be a positive integer, got "${tag}"`, [
      { field: 'version', message: 'not a positive integer' },
    ]);
  }
  return { name, version };
}

/** The three predict routes; answers carry X-Model-Name / X-Model-Version (what a label resolved to). */
export function predictRouter(service: PredictService, bodyLimit: string): Router {
  const r = Router();
  // The body as text, whatever its content type (as TF Serving): the service scans it itself.
  const readText = text({ type: () => true, limit: bodyLimit });
  r.post(PREDICT_PATH, readText, async (req, res) => {
    const target = parsePredictPath(PREDICT_PATH.exec(req.path)!);
    const { version, body } = await service.predict(
      target,
      typeof req.body === 'string' ? req.body : undefined,
    );
    res.set('X-Model-Name', version.name).set('X-Model-Version', String(version.version)).json(body);
  });
  return r;
}
