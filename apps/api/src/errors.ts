/** One error shape for every HTTP error: `{"error": {"code", "message", "details"?}}`. */
import type { ErrorRequestHandler, Response } from 'express';
import type { ErrorCode, FieldIssue } from '@mlq/contract';
import { forMessage, InputError, NotFoundError } from '@mlq/core/errors';
import { isConnectionError, RETRY_AFTER_S } from '@mlq/queues';

export class ApiError extends Error {
  override name = 'ApiError';
  /** Sent with the error, e.g. `Retry-After` on a 503. */
  headers: Record<string, string> = {};
  readonly status: number;
  readonly code: ErrorCode;
  readonly details?: FieldIssue[] | Record<string, unknown>;
  constructor(
    status: number,
    code: ErrorCode,
    message: string,
    details?: FieldIssue[] | Record<string, unknown>,
  ) {
    // A message quoting a body or file must show what a person cannot see (a BOM, a zero-width space),
    // and one quoting a URI must not repeat its credentials (`http://***@host/`): here and per field.
    super(forMessage(message));
    this.status = status;
    this.code = code;
    this.details = Array.isArray(details)
      ? details.map((d) => ({ ...d, message: forMessage(d.message) }))
      : details;
  }
}

export const badRequest = (message: string, details?: FieldIssue[]) =>
  new ApiError(400, 'invalid_request', message, details);
export const notFound = (message: string) => new ApiError(404, 'not_found', message);
export const conflict = (message: string) => new ApiError(409, 'conflict', message);

export function sendError(
  res: Response,
  status: number,
  code: ErrorCode,
  message: string,
  details?: unknown,
): void {
  res.status(status).json({ error: { code, message, ...(details !== undefined ? { details } : {}) } });
}

/**
 * What a thrown value means over HTTP: an ApiError as it is, our domain errors and body-parser errors
 * by kind; undefined for anything else (a bug of ours: a 500).
 */
export function toApiError(err: unknown): ApiError | undefined {
  const e = err as Error & { type?: string; status?: number };
  if (e instanceof ApiError) return e;
  // Redis went away during the request (the gate in redis-gate.middleware.ts stops the next ones).
  if (isConnectionError(e)) {
    const unavailable = new ApiError(
      503,
      'unavailable',
      'Redis (jobs and model registry) is not reachable; retry shortly',
    );
    unavailable.headers['Retry-After'] = String(RETRY_AFTER_S);
    return unavailable;
  }
  if (e instanceof NotFoundError) return new ApiError(404, 'not_found', e.message);
  if (e instanceof InputError) return new ApiError(400, 'invalid_request', e.message);
  if (e?.type === 'entity.parse.failed')
    return new ApiError(400, 'invalid_json', `the body is not valid JSON: ${e.message}`);
  if (e?.type === 'entity.too.large') {
    // body-parser's error carries the limit in bytes; json-body.ts's `limitedBy` adds the setting.
    const { limit, setting } = e as { limit?: unknown; setting?: unknown };
    const bytes = typeof limit === 'number' ? ` of ${limit} bytes` : '';
    const set = typeof setting === 'string' ? ` (${setting}, 1mb = 1048576 bytes)` : '';
    return new ApiError(413, 'payload_too_large', `the body is larger than the limit${bytes}${set}`);
  }
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500)
    return new ApiError(e.status, 'bad_request', e.message);
  return undefined;
}

/** Maps anything thrown by a route to the error shape; only a bug of ours is a 500. */
export const errorHandler: ErrorRequestHandler = (err, req, res, next) => {
  if (res.headersSent) return next(err);
  const e = toApiError(err);
  if (e?.status === 503 && !e.headers['Retry-After']) e.headers['Retry-After'] = String(RETRY_AFTER_S);
  if (e) return sendError(res.set(e.headers), e.status, e.code, e.message, e.details);
  req.log.error({ err }, 'unhandled error');
  return sendError(res, 500, 'internal', 'internal error');
};
