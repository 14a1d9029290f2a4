/**
 * The request body parsers of the JSON routes and the errors a person meets: a body that is JSON but
 * not an object (`null`, `[]`, `"x"`, `3`: a 400 naming what was sent), a body over `BODY_LIMIT` (a
 * 413 saying the limit and the setting, see `toApiError` in errors.ts), and a Content-Encoding that is
 * not supported or does not match the body (415 `unsupported_encoding`, 400 `bad_encoding`).
 */
import zlib from 'node:zlib';
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
 * The Content-Encodings a body may have: body-parser's decoders (`zstd` where this Node has it, as
 * Node 24 does), besides `identity`.
 */
export const bodyEncodings: readonly string[] = [
  'gzip',
  'deflate',
  'br',
  ...('createZstdDecompress' in zlib ? ['zstd'] : []),
];

/**
 * A body parser (`express.json`, `express.text`) whose errors a person can act on: a body over its
 * limit is tagged with the setting that sets it (`BODY_LIMIT=20mb`, which the 413 names, see
 * `toApiError` in errors.ts); a Content-Encoding it does not decode is a 415 `unsupported_encoding`
 * naming those it does (bodyEncodings); a body that is not what its Content-Encoding says (not gzip,
 * corrupt) is a 400 `bad_encoding`, instead of zlib's own words (`incorrect header check`).
 */
export function limitedBy(setting: string, parser: RequestHandler): RequestHandler {
  return (req, res, next) =>
    parser(req, res, (err?: unknown) => {
      const e = err as { type?: string; setting?: string; status?: number; message?: string } | undefined;
      const encoding = (req.get('content-encoding') ?? 'identity').trim().toLowerCase();
      if (e?.type === 'entity.too.large') e.setting = setting;
      else if (e?.type === 'encoding.unsupported') {
        return next(
          new ApiError(
            415,
            'unsupported_encoding',
            `Content-Encoding "${encoding}" is not supported: send the body as is, or encoded with one of ${bodyEncodings.join(', ')}`,
            [{ field: 'Content-Encoding', message: `expected one of ${bodyEncodings.join(', ')} or none` }],
          ),
        );
      } else if (e && e.type === undefined && e.status === 400 && encoding !== 'identity') {
        // body-parser gives the decoder's error as is (a 400 without a type): the body is not what
        // the header says.
        return next(
          new ApiError(
            400,
            'bad_encoding',
            `the body is not valid ${encoding} (Content-Encoding: ${encoding}): ${e.message ?? 'it cannot be decoded'}`,
            [{ field: 'Content-Encoding', message: `the body is not valid ${encoding}` }],
          ),
        );
      }
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
