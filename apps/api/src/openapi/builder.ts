/**
 * How the OpenAPI document is put together: each part (jobs.ts, models.ts, serving.ts, datasets.ts,
 * ops.ts) registers its routes through `ApiDoc.route`, with request and success schemas from zod
 * (packages/contract and the route files); this adds what every route shares, so no part repeats it:
 *   - an operationId derived from the method and path (`GET /v1/jobs/{id}/logs` → `getJobsByIdLogs`);
 *   - the security requirement and scope from auth/policy.ts, the table authenticate() enforces;
 *   - the answers that come from the middleware in front of the route (app.ts): 401 and 403 (auth),
 *     429 (rate limit), 503 (Redis away: redis-gate.middleware.ts), 304 (express's ETag on a GET);
 *   - error bodies: the API's `{"error": {"code", "message", "details"?}}`, or for the Open Inference
 *     Protocol's routes its `{"error": "<message>"}`.
 */
import {
  OpenAPIRegistry,
  OpenApiGeneratorV31,
  zodToOpenAPIRegistry,
  type ResponseConfig,
  type RouteConfig,
  type ZodRequestBody,
} from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { errorBodySchema, inferErrorSchema, type ErrorCode } from '@mlq/contract';
import { requirementOf } from '../auth/policy.ts';
import { SESSION_COOKIE } from '../auth/session.ts';

type Method = 'get' | 'post' | 'put' | 'delete';

/** What each error status means wherever it is answered; a route may say more. */
const ERROR_MEANING: Record<number, string> = {
  400: 'invalid request: `details` lists each bad field (`{"field", "message"}`)',
  401: 'no key, or an unknown one (`WWW-Authenticate: Bearer`); with auth off (no API_KEYS) never',
  403: 'the key lacks this route\'s scope (`WWW-Authenticate: Bearer error="insufficient_scope"`), or an unsafe request made with the session cookie came from another site',
  404: 'not found',
  409: 'conflict with the current state',
  413: 'the body is larger than the limit',
  415: 'unsupported Content-Type',
  422: 'understood, but cannot be done',
  429: 'more requests in a minute than RATE_LIMIT_PER_MINUTE allows; `Retry-After` says when to retry',
  500: 'the model failed while predicting (`predict_failed`)',
  501: 'the model has an input with a variable dimension (`not_implemented`)',
  503: 'Redis (jobs and model registry) is not reachable, or the server is shutting down; answered at once, with `Retry-After`',
};

/** The `code` an error of each status usually has (a route may name another): the examples' code. */
const USUAL_CODE: Record<number, ErrorCode> = {
  400: 'invalid_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  422: 'unservable_model',
  429: 'rate_limited',
  500: 'predict_failed',
  501: 'not_implemented',
  503: 'unavailable',
};

const retryAfter = {
  'Retry-After': { description: 'seconds to wait before retrying', schema: { type: 'integer' as const } },
};

/** A JSON body of this schema. */
export function json(schema: z.ZodType): { content: { 'application/json': { schema: z.ZodType } } } {
  return { content: { 'application/json': { schema } } };
}

/** `GET /v1/jobs/{id}/logs` → `getJobsByIdLogs`; `POST /v1/models/{name}:predict` → `postModelsByNamePredict`. */
export function operationIdOf(method: string, path: string): string {
  const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
  const words = (s: string) =>
    s
      .split(/[^a-zA-Z0-9]+/)
      .filter(Boolean)
      .map(cap)
      .join('');
  const parts = path
    .split('/')
    .filter((seg) => seg && !/^v\d+$/.test(seg))
    .map((seg) => seg.replace(/\{(\w+)\}/g, (_m, p: string) => `By${cap(p)}`))
    .map(words);
  return method + parts.join('');
}

/** A documented path with sample values in its parameters, as a client would call it (for the policy). */
export function concretePath(path: string): string {
  return path.replace(/\{version\}/g, '1').replace(/\{[^}]+\}/g, 'x');
}

export interface RouteDoc {
  method: Method;
  /** The OpenAPI path: `/v1/jobs/{id}`. */
  path: string;
  summary: string;
  description?: string;
  tag: string;
  /** Only where the derived one would not do (the Open Inference Protocol's names its operations). */
  operationId?: string;
  params?: z.ZodObject;
  query?: z.ZodObject;
  headers?: z.ZodObject;
  body?: ZodRequestBody;
  /** Success answers (and answers of the route's own shape, such as /readyz's 503). */
  ok: Record<number, ResponseConfig>;
  /**
   * The route's own error statuses, with what each means there (`''`: the usual meaning), and the
   * error code when it is not the status's usual one.
   */
  errors?: Record<number, string | { meaning: string; code: ErrorCode }>;
  /** The error body of the route's own errors: the API's, or the Open Inference Protocol's. */
  errorBody?: 'api' | 'v2';
  /** False for the routes answered before the Redis gate that never need Redis. */
  mayBeUnavailable?: boolean;
  /** For the routes served before authenticate() (the sign-in): no key needed whatever the policy says. */
  public?: boolean;
}

export class ApiDoc {
  private readonly registry = new OpenAPIRegistry();
  private readonly names = new Map<z.ZodType, string>();
  /** The error body, named `Error` in the document. */
  readonly error = this.named('Error', errorBodySchema);
  readonly inferError = this.named('InferError', inferErrorSchema);

  /** The answers many routes share, once in components/responses: the middleware's, by status. */
  private readonly shared: Record<number, { $ref: string }> = {};
  private readonly sharedV2: Record<number, { $ref: string }> = {};

  constructor() {
    // A raw response object (its schema a $ref, no zod): the library types components with
    // openapi3-ts's objects, which it does not export.
    const share = (name: string, response: ResponseConfig) => {
      this.registry.registerComponent('responses', name, response as never);
      return { $ref: `#/components/responses/${name}` };
    };
    const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
    const names: Record<number, string> = {
      401: 'Unauthorized',
      403: 'Forbidden',
      429: 'RateLimited',
      503: 'Unavailable',
    };
    for (const [status, name] of Object.entries(names))
      this.shared[Number(status)] = share(
        name,
        this.errorResponse(Number(status), '', false, undefined, ref('Error')),
      );
    this.sharedV2[503] = share(
      'InferUnavailable',
      this.errorResponse(503, '', true, undefined, ref('InferError')),
    );
    this.shared[304] = share('NotModified', {
      description: 'not modified: the `If-None-Match` ETag is still current',
    });
    this.registry.registerComponent('securitySchemes', 'bearer', {
      type: 'http',
      scheme: 'bearer',
      description:
        'An API_KEYS key: `Authorization: Bearer <key>` (the scheme name in any case). Each operation lists the scope it needs: `read` (GET routes, predict, infer), `submit` (+ submit, cancel and retry jobs, upload datasets) or `admin` (+ labels, deletes); scopes are levels, so `admin` keys have all three. Without the scope: 403. With API_KEYS empty, auth is off and every request is allowed.',
    });
    this.registry.registerComponent('securitySchemes', 'session', {
      type: 'apiKey',
      in: 'cookie',
      name: SESSION_COOKIE,
      description:
        "A browser's session from `POST /login` (HttpOnly, SameSite=Strict, signed, expiring), with its key's scopes; counted only without an Authorization header. An unsafe request made with it must come from this site (`Sec-Fetch-Site: same-origin` or a matching `Origin`), else 403.",
    });
  }

  /**
   * Names a schema in components/schemas: wherever this instance is used (inside other schemas too,
   * such as a job type's payload inside its job view) it is then a $ref. The name is kept beside the
   * instance in the library's own metadata registry, not on a copy, so the contract's schemas are
   * used as they are. An instance already named keeps its first name (two job types may share one
   * progress schema).
   */
  named<T extends z.ZodType>(name: string, schema: T): T {
    if (this.names.has(schema)) return schema;
    const current = zodToOpenAPIRegistry.get(schema);
    zodToOpenAPIRegistry.add(schema, { ...current, _internal: { ...current?._internal, refId: name } });
    this.names.set(schema, name);
    return schema;
  }

  /** The OpenAPI 3.1 document of every route and named schema. */
  generate(config: Parameters<OpenApiGeneratorV31['generateDocument']>[0]): object {
    return new OpenApiGeneratorV31([...this.registry.definitions, ...this.names.keys()]).generateDocument(
      config,
    );
  }

  private errorResponse(
    status: number,
    meaning: string,
    v2: boolean,
    code?: ErrorCode,
    schema: z.ZodType | { $ref: string } = v2 ? this.inferError : this.error,
  ): ResponseConfig {
    const description = meaning || ERROR_MEANING[status] || 'error';
    const message = description.replace(/`/g, '');
    return {
      description,
      ...(status === 503 || status === 429 ? { headers: retryAfter } : {}),
      content: {
        'application/json': {
          schema,
          example: v2
            ? { error: message }
            : { error: { code: code ?? USUAL_CODE[status] ?? 'internal', message } },
        },
      },
    };
  }

  route(doc: RouteDoc): void {
    const need = doc.public ? 'public' : requirementOf(doc.method, concretePath(doc.path));
    const v2 = doc.errorBody === 'v2';
    const responses: Record<number, ResponseConfig | { $ref: string }> = { ...doc.ok };
    // express answers a GET whose If-None-Match matches the body's ETag with 304.
    if (doc.method === 'get' && Object.values(doc.ok).some((r) => r.content?.['application/json']))
      responses[304] = this.shared[304]!;
    for (const [status, e] of Object.entries(doc.errors ?? {})) {
      const { meaning, code } = typeof e === 'string' ? { meaning: e, code: undefined } : e;
      responses[Number(status)] = this.errorResponse(Number(status), meaning, v2, code);
    }
    if (need !== 'public') {
      // Auth and the rate limit come before any route, so their errors have the API's shape.
      responses[401] = this.shared[401]!;
      responses[403] = this.shared[403]!;
      responses[429] = this.shared[429]!;
    }
    if (doc.mayBeUnavailable !== false && !responses[503])
      responses[503] = (v2 ? this.sharedV2 : this.shared)[503]!;
    const route: RouteConfig = {
      method: doc.method,
      path: doc.path,
      operationId: doc.operationId ?? operationIdOf(doc.method, doc.path),
      summary: doc.summary,
      ...(doc.description ? { description: doc.description } : {}),
      tags: [doc.tag],
      security: need === 'public' ? [] : [{ bearer: [need] }, { session: [need] }],
      request: {
        ...(doc.params ? { params: doc.params } : {}),
        ...(doc.query ? { query: doc.query } : {}),
        ...(doc.headers ? { headers: doc.headers } : {}),
        ...(doc.body ? { body: doc.body } : {}),
      },
      responses,
    };
    this.registry.registerPath(route);
  }
}
