/**
 * Operations (routes/ops.routes.ts, metrics.ts, app.ts), the browser sign-in (auth/session.ts) and
 * the root's redirect to the console (routes/console.routes.ts).
 * The pages themselves (`/ui`, `/docs`, Bull Board at `/admin/queues`) are not API operations.
 */
import { z } from 'zod';
import { healthSchema, readinessSchema, workerInfoSchema, workerListSchema } from '@mlq/contract';
import { json, type ApiDoc } from './builder.ts';

const html = (description: string) => ({
  description,
  content: { 'text/html': { schema: { type: 'string' as const } } },
});
const redirect = (description: string) => ({
  description,
  headers: { Location: { description: 'where to go', schema: { type: 'string' as const } } },
});
const next = z
  .string()
  .optional()
  .meta({ description: 'a path of this server to go to once signed in (default `/ui/`)' });

export function registerOps(doc: ApiDoc): void {
  doc.named('WorkerInfo', workerInfoSchema);

  doc.route({
    method: 'get',
    path: '/healthz',
    tag: 'operations',
    summary: 'Liveness (no auth)',
    ok: { 200: { description: 'the process answers', ...json(healthSchema) } },
    mayBeUnavailable: false,
  });
  doc.route({
    method: 'get',
    path: '/readyz',
    tag: 'operations',
    summary: 'Readiness: Redis answers a PING within 0.8 s',
    ok: {
      200: { description: 'ready', ...json(readinessSchema) },
      503: {
        description: 'not ready, and why (answered within a second), with `Retry-After`',
        headers: {
          'Retry-After': { description: 'seconds to wait before retrying', schema: { type: 'integer' } },
        },
        ...json(readinessSchema),
      },
    },
  });
  doc.route({
    method: 'get',
    path: '/metrics',
    tag: 'operations',
    summary: "The API's Prometheus metrics",
    ok: {
      200: {
        description: 'Prometheus text format 0.0.4',
        content: { 'text/plain': { schema: { type: 'string' } } },
      },
    },
  });
  doc.route({
    method: 'get',
    path: '/v1/workers',
    tag: 'operations',
    summary: 'Live workers: host, pid, queues, backend, current jobs',
    ok: { 200: { description: 'the workers', ...json(workerListSchema) } },
  });
  doc.route({
    method: 'get',
    path: '/openapi.json',
    tag: 'operations',
    summary: 'This document (no auth)',
    ok: {
      200: { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } },
    },
    mayBeUnavailable: false,
  });
  doc.route({
    method: 'get',
    path: '/',
    operationId: 'getRoot',
    tag: 'browser',
    summary: 'A browser (`Accept: text/html`) is sent to the console at `/ui/`',
    description:
      'Only a page load (`text/html` in `Accept`) is redirected, with or without auth (the console asks for sign-in). Any other client gets the 404 of a path with no route (a 401 first with auth on and no key).',
    ok: { 302: redirect('to `/ui/`') },
    errors: {
      401: { meaning: 'not a page load, auth on (API_KEYS), and no key', code: 'unauthorized' },
      404: { meaning: 'not a page load: `no route GET /`', code: 'not_found' },
    },
    mayBeUnavailable: false,
    public: true,
  });
  doc.route({
    method: 'get',
    path: '/login',
    tag: 'browser',
    summary: 'Browser sign-in: a form that takes an API key',
    query: z.object({ next }),
    ok: {
      200: html('the form'),
      303: redirect('already signed in, or auth is off: to `next`'),
    },
    mayBeUnavailable: false,
    public: true,
  });
  doc.route({
    method: 'post',
    path: '/login',
    tag: 'browser',
    summary: 'Sign in: sets the session cookie (HttpOnly, SameSite=Strict, signed, expiring)',
    body: {
      required: true,
      content: {
        'application/x-www-form-urlencoded': {
          schema: z.object({ key: z.string().meta({ description: 'an API_KEYS key' }), next }),
        },
      },
    },
    ok: {
      303: redirect('signed in: to `next`'),
      401: html('the key is not accepted: the form again, saying so'),
      403: html('sent from another site: the form again, saying so'),
    },
    mayBeUnavailable: false,
    public: true,
  });
  doc.route({
    method: 'post',
    path: '/logout',
    tag: 'browser',
    summary: 'Sign out: clears the session cookie',
    ok: {
      303: redirect('to `/login`'),
      403: { description: 'sent from another site' },
    },
    mayBeUnavailable: false,
    public: true,
  });
}
