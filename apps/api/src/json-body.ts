/**
 * The request body parsers of the JSON routes and their two errors a person meets: a body that is
 * JSON but not an object (`null`, `[]`, `"x"`, `3`: a 400 naming what was sent), and a body over
 * `BODY_LIMIT` (a 413 saying the limit and the setting, see `toApiError` in errors.ts).
 */
import express, { type Request, type RequestHandler } from 'express';
import { ApiError } from './errors.ts';

/** What a parsed JSON value is, in words: `null`, `an array`, `a string`, `a number`, `a boolean`. */
export function describeJsonValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v}`;
}

/**
 * Tags a body parser's "too large" error with the setting that sets its limit (`BODY_LIMIT=20mb`),
 * so that the 413 can name it (`toApiError` reads `setting`).
 */
export function limitedBy(setting: string, parser: RequestHandler): RequestHandler {
  return (req, res, next) =>
    parser(req, res, (err?: unknown) => {
      const e = err as { type?: string; setting?: string } | undefined;
      if (e?.type === 'entity.too.large') e.setting = setting;
      next(err);
    });
}

/**
 * `express.json` for the JSON routes, up to `limit` (`BODY_LIMIT`): any JSON is parsed (body-parser's
 * strict mode would call `null` "not valid JSON"), then a body that is not an object is refused with
 * a 400 `invalid_request` that says what it is.
 */
export function jsonObjectBody(limit: string): RequestHandler[] {
  return [
    limitedBy(`BODY_LIMIT=${limit}`, express.json({ limit, strict: false })),
    (req, _res, next) => {
      const b: unknown = req.body;
      if (b === undefined || (typeof b === 'object' && b !== null && !Array.isArray(b))) return next();
      const what = describeJsonValue(b);
      next(
        new ApiError(400, 'invalid_request', `the body must be a JSON object ({...}), not ${what}`, [
          { field: '(body)', message: `expected a JSON object, got ${what}` },
        ]),
      );
    },
  ];
}

/**
 * The body of a JSON route (POST /v1/jobs/{type}, PUT …/labels/{label}) as an object. jsonObjectBody
 * parses only `application/json` bodies: any other (a form, text, none) leaves no body, and is a 400
 * `invalid_request` that names the Content-Type received, with a detail on field `Content-Type`.
 */
export function jsonObjectOf(req: Request): Record<string, unknown> {
  const b: unknown = req.body;
  if (typeof b === 'object' && b !== null && !Array.isArray(b)) return b as Record<string, unknown>;
  const type = req.get('content-type');
  const got = type ? `Content-Type: ${type}` : 'no Content-Type';
  throw new ApiError(
    400,
    'invalid_request',
    `the body must be a JSON object sent with Content-Type: application/json; this request has ${got}`,
    [{ field: 'Content-Type', message: `expected application/json, got ${type ?? 'none'}` }],
  );
}
