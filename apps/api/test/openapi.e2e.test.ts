/**
 * GET /openapi.json is valid OpenAPI 3.1 by Redocly's `recommended` rules, gives every operation an
 * operationId, and documents exactly the routes express serves (no route missing, none invented).
 */
import { createConfig, lintFromString } from '@redocly/openapi-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobNames } from '@mlq/contract';
import { apiEnvSchema, startApi, type RunningApi } from '../src/index.ts';
import { uniquePrefix, REDIS_URL } from '../../../test/support/stack.ts';

interface Layer {
  route?: { path: string | RegExp; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}
type Operation = { operationId?: string; responses?: Record<string, unknown> };
type Document = { paths: Record<string, Record<string, Operation>> };

/** Every `METHOD path` express routes, from the app's router stack (mounted routers included). */
function expressRoutes(stack: Layer[], out: { method: string; path: string | RegExp }[] = []) {
  for (const l of stack) {
    if (l.route) for (const m of Object.keys(l.route.methods)) out.push({ method: m, path: l.route.path });
    else if (l.handle?.stack) expressRoutes(l.handle.stack, out);
  }
  return out;
}

/** Does an express route (`/v1/jobs/:id`, or a RegExp) serve this documented path? */
function serves(route: string | RegExp, docPath: string): boolean {
  // A documented path with sample values in its parameters, as a client would call it.
  const concrete = docPath.replace(/\{version\}/g, '1').replace(/\{[^}]+\}/g, 'x');
  if (route instanceof RegExp) return route.test(concrete);
  const pattern = route
    .split('/')
    .map((seg) => (seg.startsWith(':') ? '[^/]+' : seg.replace(/[.*+?^$()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${pattern}$`).test(concrete);
}

describe('the OpenAPI document', () => {
  let api: RunningApi;
  let doc: Document;
  beforeAll(async () => {
    api = await startApi(
      apiEnvSchema.parse({ REDIS_URL, PORT: '0', QUEUE_PREFIX: uniquePrefix('openapi'), LOG_LEVEL: 'warn' }),
    );
    doc = (await (await fetch(`${api.url}/openapi.json`)).json()) as Document;
  });
  afterAll(async () => {
    await api?.stop();
  });

  it("is valid by Redocly's recommended rules", async () => {
    const config = await createConfig({ extends: ['recommended'] });
    const problems = await lintFromString({ source: JSON.stringify(doc), config });
    const errors = problems
      .filter((p) => p.severity === 'error')
      .map((p) => `${p.ruleId}: ${p.message} at ${p.location[0]?.pointer ?? '?'}`);
    expect(errors).toEqual([]);
  });

  it('gives every operation a unique operationId and documented responses', () => {
    const ids: string[] = [];
    for (const [p, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        expect(op.operationId, `${method} ${p}`).toMatch(/^[a-zA-Z][\w]*$/);
        expect(Object.keys(op.responses ?? {}).length, `${method} ${p}`).toBeGreaterThan(0);
        ids.push(op.operationId!);
      }
    }
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('documents every route express serves, and no other', () => {
    const routes = expressRoutes((api.app as unknown as { router: { stack: Layer[] } }).router.stack).filter(
      // Bull Board's UI and the console's static files are pages, not API operations.
      (r) => !(typeof r.path === 'string' && /^\/(admin|ui|docs)\b/.test(r.path)),
    );
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.keys(ops).map((method) => ({ method, path: p })),
    );
    const undocumented = routes
      .filter((r) => !documented.some((d) => d.method === r.method && serves(r.path, d.path)))
      .map((r) => `${r.method.toUpperCase()} ${String(r.path)}`);
    expect(undocumented).toEqual([]);
    const invented = documented
      .filter((d) => !routes.some((r) => r.method === d.method && serves(r.path, d.path)))
      .map((d) => `${d.method.toUpperCase()} ${d.path}`);
    expect(invented).toEqual([]);
    // One submit operation per job type of the contract.
    for (const name of jobNames) expect(doc.paths[`/v1/jobs/${name}`]?.post).toBeDefined();
  });
});
