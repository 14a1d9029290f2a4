/**
 * GET /openapi.json is valid OpenAPI 3.1 by Redocly's `recommended` rules, gives every operation an
 * operationId, documents exactly the routes express serves (no route missing, none invented), and
 * describes what the routes really send and take: real answers of a running API with a worker (jobs
 * of every quick type trained and run for real, the registry, predict, infer, datasets, errors) are
 * validated against the document's response schemas with Ajv, and the JSON requests the API accepted
 * against its request schemas, so the document cannot drift from the code.
 */
import { createConfig, lintFromString } from '@redocly/openapi-core';
import { Ajv2020 } from 'ajv/dist/2020.js';
import formats from 'ajv-formats';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobNames } from '@mlq/contract';
import { apiEnvSchema, startApi, type RunningApi } from '../src/index.ts';
import { closeClient, connect } from '@mlq/queues';
import {
  deletePrefix,
  startStack,
  uniquePrefix,
  waitForJob,
  REDIS_URL,
  type Stack,
} from '../../../test/support/stack.ts';

interface Layer {
  route?: { path: string | RegExp; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}
interface MediaType {
  schema?: unknown;
}
interface Response {
  $ref?: string;
  content?: Record<string, MediaType>;
}
type Operation = {
  operationId?: string;
  requestBody?: { content?: Record<string, MediaType> };
  responses?: Record<string, Response>;
  security?: unknown[];
};
type Document = {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: object; responses?: Record<string, Response> };
};

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

/**
 * Checks answers against the document: the status must be documented for the operation, and a JSON
 * body must match that response's schema (its $refs resolved in the document's components).
 */
class ResponseChecker {
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
  readonly seen = new Set<string>();
  readonly problems: string[] = [];

  private readonly doc: Document;
  constructor(doc: Document) {
    this.doc = doc;
    // ajv-formats is CommonJS: its plugin is the module's `default` export.
    formats.default(this.ajv);
    this.ajv.addFormat('binary', true);
    this.ajv.addSchema({ $id: 'openapi.json', components: doc.components });
  }

  check(method: string, docPath: string, status: number, contentType: string, body: unknown): void {
    const where = `${method.toUpperCase()} ${docPath} → ${status}`;
    const op = this.doc.paths[docPath]?.[method];
    if (!op) return void this.problems.push(`${where}: no such operation in the document`);
    const documented = op.responses?.[String(status)];
    if (!documented) return void this.problems.push(`${where}: status not documented`);
    // An answer many routes share is a $ref into components/responses.
    const shared = documented.$ref?.replace('#/components/responses/', '');
    const response = shared === undefined ? documented : this.doc.components.responses?.[shared];
    if (!response) return void this.problems.push(`${where}: ${documented.$ref} is not in the document`);
    this.seen.add(`${method} ${docPath} ${status}`);
    const type = contentType.split(';')[0]!.trim();
    const media = response.content?.[type];
    if (response.content && !media)
      return void this.problems.push(`${where}: Content-Type ${type} not documented`);
    if (type === 'application/json' && media?.schema) this.validate(where, media.schema, body);
  }

  /** A JSON request body the API accepted must be one the document's request schema accepts too. */
  checkRequest(method: string, docPath: string, body: unknown): void {
    const where = `${method.toUpperCase()} ${docPath} request`;
    const op = this.doc.paths[docPath]?.[method];
    const schema = op?.requestBody?.content?.['application/json']?.schema;
    if (!schema) return void this.problems.push(`${where}: no JSON request body documented`);
    this.validate(where, schema, body);
  }

  private validate(where: string, documented: unknown, body: unknown): void {
    // The document's schema, its local $refs pointed at the components added above.
    const schema = JSON.parse(
      JSON.stringify(documented).replaceAll('"#/components/', '"openapi.json#/components/'),
    ) as object;
    const validate = this.ajv.compile(schema);
    if (!validate(body))
      this.problems.push(
        `${where}: ${this.ajv.errorsText(validate.errors, { separator: '; ' })}\n  body: ${JSON.stringify(body).slice(0, 600)}`,
      );
  }
}

/** Calls the API and checks the answer against the document. */
function caller(base: () => string, checker: () => ResponseChecker) {
  return async <T = Record<string, unknown>>(
    method: string,
    docPath: string,
    path: string,
    init: { body?: unknown; raw?: string; type?: string; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; body: T; headers: Headers }> => {
    const headers: Record<string, string> = { ...init.headers };
    let body: string | undefined;
    if (init.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.body);
    } else if (init.raw !== undefined) {
      headers['content-type'] = init.type ?? 'application/octet-stream';
      body = init.raw;
    }
    const res = await fetch(`${base()}${path}`, { method: method.toUpperCase(), headers, body });
    const contentType = res.headers.get('content-type') ?? '';
    const text = await res.text();
    const parsed: unknown = /^application\/json\b/.test(contentType) && text ? JSON.parse(text) : text;
    checker().check(method, docPath, res.status, contentType, parsed);
    if (init.body !== undefined && res.ok) checker().checkRequest(method, docPath, init.body);
    return { status: res.status, body: parsed as T, headers: res.headers };
  };
}

describe('the OpenAPI document', () => {
  let api: RunningApi;
  let doc: Document;
  let checker: ResponseChecker;
  const call = caller(
    () => api.url,
    () => checker,
  );
  let dataDir = '';
  const prefix = uniquePrefix('openapi');
  beforeAll(async () => {
    // Its own store: the checkout's default one belongs to whichever install claimed it first.
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'mlq-openapi-'));
    api = await startApi(
      apiEnvSchema.parse({
        REDIS_URL,
        PORT: '0',
        HOST: '127.0.0.1',
        ARTIFACT_STORE: pathToFileURL(path.join(dataDir, 'artifacts')).href,
        DATA_ROOTS: dataDir,
        QUEUE_PREFIX: prefix,
        LOG_LEVEL: 'warn',
        API_KEYS: 'openapi-read-key-123:read',
      }),
    );
    doc = (await (await fetch(`${api.url}/openapi.json`)).json()) as Document;
    checker = new ResponseChecker(doc);
  });
  afterAll(async () => {
    await api?.stop();
    const redis = connect({ kind: 'single', url: REDIS_URL }, { name: 'mlq-test-openapi' });
    await deletePrefix(redis, prefix);
    await closeClient(redis);
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("is valid by Redocly's recommended rules, with no warnings but the ones named here", async () => {
    const config = await createConfig({ extends: ['recommended'] });
    const problems = await lintFromString({ source: JSON.stringify(doc), config });
    const show = (p: (typeof problems)[number]) =>
      `${p.ruleId}: ${p.message} at ${p.location[0]?.pointer ?? '?'}`;
    expect(problems.filter((p) => p.severity === 'error').map(show)).toEqual([]);
    // Warnings that say something true of these routes: no license is declared (the repository names
    // none); the probes, this document and the sign-in form answer no 4xx; sign-in and sign-out answer
    // a 303 redirect, not a 2xx, and GET / a browser's 302 to the console.
    const allowed = [
      /^info-license:/,
      /^operation-4xx-response: .* at #\/paths\/~1(healthz|openapi\.json|login|v2~1health~1(live|ready))\/get\//,
      /^operation-2xx-response: .* at #\/paths\/~1(login|logout)\/post\//,
      /^operation-2xx-response: .* at #\/paths\/~1\/get\//,
    ];
    const warnings = problems.map(show).filter((w) => !allowed.some((a) => a.test(w)));
    expect(warnings).toEqual([]);
  });

  it('gives every operation a unique operationId, documented responses and its security', () => {
    const ids: string[] = [];
    for (const [p, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        expect(op.operationId, `${method} ${p}`).toMatch(/^[a-zA-Z][\w]*$/);
        expect(Object.keys(op.responses ?? {}).length, `${method} ${p}`).toBeGreaterThan(0);
        expect(op.security, `${method} ${p}`).toBeDefined();
        ids.push(op.operationId!);
      }
    }
    expect(new Set(ids).size).toBe(ids.length);
    // The scope each operation names is the one auth/policy.ts enforces.
    expect(doc.paths['/v1/jobs/fine-tune']!.post!.security).toEqual([
      { bearer: ['submit'] },
      { session: ['submit'] },
    ]);
    expect(doc.paths['/v1/models/{name}/labels/{label}']!.put!.security).toContainEqual({
      bearer: ['admin'],
    });
    expect(doc.paths['/healthz']!.get!.security).toEqual([]);
  });

  it('documents every route express serves, and no other', () => {
    const routes = expressRoutes((api.app as unknown as { router: { stack: Layer[] } }).router.stack).filter(
      // Bull Board's UI, the console's static files and this reference are pages, not API operations.
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
    // One submit operation per job type of the contract, with its payload and job view.
    for (const name of jobNames) {
      const Name = name.replace(/(^|-)(\w)/g, (_m, _d, c: string) => c.toUpperCase());
      const submit = doc.paths[`/v1/jobs/${name}`]!.post!;
      expect(submit.requestBody!.content!['application/json']!.schema).toEqual({
        $ref: `#/components/schemas/${Name}Payload`,
      });
      expect(submit.responses!['202']!.content!['application/json']!.schema).toEqual({
        $ref: `#/components/schemas/${Name}Job`,
      });
    }
  });

  it('is checked strictly: a body, a status or a media type the document does not describe is reported', () => {
    const strict = new ResponseChecker(doc);
    const job = { id: 'j', type: 'fine-tune', state: 'finished', progress: 0, attempts: 0 };
    strict.check('get', '/v1/jobs/{id}', 200, 'application/json', job);
    strict.check('get', '/v1/models', 418, 'application/json', {});
    strict.check('get', '/v1/models', 200, 'text/html', '<p>');
    strict.check('get', '/v1/models', 401, 'application/json', { error: 'no key' });
    expect(strict.problems).toHaveLength(4);
    expect(strict.problems[0]).toMatch(/^GET \/v1\/jobs\/\{id\} → 200: /);
    expect(strict.problems[1]).toMatch(/status not documented/);
    expect(strict.problems[2]).toMatch(/Content-Type text\/html not documented/);
    expect(strict.problems[3]).toMatch(/^GET \/v1\/models → 401: /); // the shared answer, through its $ref
  });

  it("answers auth's 401 and 403 as documented", async () => {
    expect((await call('get', '/v1/jobs', '/v1/jobs')).status).toBe(401);
    const key = { authorization: 'Bearer openapi-read-key-123' };
    const forbidden = await call('post', '/v1/jobs/evaluate', '/v1/jobs/evaluate', {
      body: {},
      headers: key,
    });
    expect(forbidden.status).toBe(403);
    expect((await call('get', '/healthz', '/healthz')).status).toBe(200);
    expect((await call('get', '/v2/health/live', '/v2/health/live')).status).toBe(200);
    expect(checker.problems).toEqual([]);
  });
});

describe('real answers match the OpenAPI document', () => {
  let stack: Stack;
  let checker: ResponseChecker;
  const call = caller(
    () => stack.url,
    () => checker,
  );

  beforeAll(async () => {
    stack = await startStack('openapi-answers');
    checker = new ResponseChecker((await (await fetch(`${stack.url}/openapi.json`)).json()) as Document);
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('jobs, models, predict, infer, datasets, operations and errors', async () => {
    const digits = { format: 'mnist', digits: [0, 1], limit: 200 };
    const payload = { model: 'oa', architecture: 'mlp', dataset: digits, epochs: 1 };
    const key = { 'Idempotency-Key': 'openapi-1' };
    const submitted = await call<{ id: string }>('post', '/v1/jobs/fine-tune', '/v1/jobs/fine-tune', {
      body: payload,
      headers: key,
    });
    expect(submitted.status).toBe(202);
    const id = submitted.body.id;
    const again = await call('post', '/v1/jobs/fine-tune', '/v1/jobs/fine-tune', {
      body: payload,
      headers: key,
    });
    expect(again.status).toBe(200);
    const reused = await call('post', '/v1/jobs/fine-tune', '/v1/jobs/fine-tune', {
      body: { ...payload, epochs: 2 },
      headers: key,
    });
    expect(reused.status).toBe(422);
    // A second job waits behind the first (one at a time per queue), and is cancelled while it waits.
    const second = await call<{ id: string }>('post', '/v1/jobs/fine-tune', '/v1/jobs/fine-tune', {
      body: { ...payload, model: 'oa-2' },
    });
    expect([202, 409]).toContain(
      (await call('delete', '/v1/jobs/{id}', `/v1/jobs/${second.body.id}`)).status,
    );
    expect((await call('get', '/v1/jobs', '/v1/jobs?type=fine-tune&limit=5')).status).toBe(200);
    expect((await call('get', '/v1/jobs/{id}', `/v1/jobs/${id}`)).status).toBe(200);

    // Running jobs' views (with their progress) until the training ends.
    const done = await waitForJob(stack.url, id);
    expect(done.state).toBe('completed');
    expect((await call('get', '/v1/jobs/{id}', `/v1/jobs/${id}`)).status).toBe(200);
    for (const sub of ['logs', 'history', 'artifacts'])
      expect((await call('get', `/v1/jobs/{id}/${sub}`, `/v1/jobs/${id}/${sub}`)).status).toBe(200);
    const events = await call('get', '/v1/jobs/{id}/events', `/v1/jobs/${id}/events`);
    expect(events.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(events.body).toMatch(/^event: state\ndata: /);

    // The model it registered: the registry, TF Serving's routes and the Open Inference Protocol's.
    const v = await call<{ inputShape: number[] }>(
      'get',
      '/v1/models/{name}/versions/{version}',
      '/v1/models/oa/versions/1',
    );
    expect(v.status).toBe(200);
    const size = v.body.inputShape.reduce((a, b) => a * b, 1);
    const instance = Array.from({ length: size }, (_, i) => (i % 7) / 7);
    expect((await call('get', '/v1/models', '/v1/models')).status).toBe(200);
    expect((await call('get', '/v1/models/{name}', '/v1/models/oa')).status).toBe(200);
    expect(
      (await call('get', '/v1/models/{name}/versions/{version}/history', '/v1/models/oa/versions/1/history'))
        .status,
    ).toBe(200);
    const labelled = await call('put', '/v1/models/{name}/labels/{label}', '/v1/models/oa/labels/prod', {
      body: { version: 1 },
    });
    expect(labelled.status).toBe(200);
    expect((await call('get', '/v1/models/{name}/labels/{label}', '/v1/models/oa/labels/prod')).status).toBe(
      200,
    );
    expect((await call('get', '/v1/models/{name}/metadata', '/v1/models/oa/metadata')).status).toBe(200);
    const rows = await call('post', '/v1/models/{name}:predict', '/v1/models/oa:predict', {
      body: { instances: [instance, instance] },
    });
    expect(rows.status).toBe(200);
    const columns = await call(
      'post',
      '/v1/models/{name}/labels/{label}:predict',
      '/v1/models/oa/labels/prod:predict',
      {
        body: { inputs: [instance] },
      },
    );
    expect(columns.status).toBe(200);
    expect((await call('get', '/v2', '/v2')).status).toBe(200);
    expect((await call('get', '/v2/health/ready', '/v2/health/ready')).status).toBe(200);
    const meta = await call<{ inputs: { name: string }[] }>('get', '/v2/models/{name}', '/v2/models/oa');
    expect(meta.status).toBe(200);
    expect(
      (await call('get', '/v2/models/{name}/versions/{version}/ready', '/v2/models/oa/versions/1/ready'))
        .status,
    ).toBe(200);
    const input = { name: meta.body.inputs[0]!.name, shape: [1, ...v.body.inputShape], datatype: 'FP32' };
    const infer = await call('post', '/v2/models/{name}/infer', '/v2/models/oa/infer', {
      body: { id: 'r1', inputs: [{ ...input, data: instance }] },
    });
    expect(infer.status).toBe(200);
    const badInfer = await call('post', '/v2/models/{name}/infer', '/v2/models/oa/infer', {
      body: { inputs: [{ ...input, data: instance.slice(1) }] },
    });
    expect(badInfer.status).toBe(400);
    expect((await call('get', '/v2/models/{name}', '/v2/models/nothing')).status).toBe(404);

    // The other job types, on the model just trained: their results and artifacts.
    const evaluate = await call<{ id: string }>('post', '/v1/jobs/evaluate', '/v1/jobs/evaluate', {
      body: { model: 'oa@prod', dataset: { ...digits, split: 'test', limit: 20 } },
    });
    const batch = await call<{ id: string }>('post', '/v1/jobs/batch-predict', '/v1/jobs/batch-predict', {
      body: { model: 'oa', input: { ...digits, split: 'test', limit: 20 } },
    });
    for (const j of [evaluate, batch]) {
      expect(j.status).toBe(202);
      expect((await waitForJob(stack.url, j.body.id)).state).toBe('completed');
      expect((await call('get', '/v1/jobs/{id}', `/v1/jobs/${j.body.id}`)).status).toBe(200);
    }
    const outputs = await call<{ artifacts: { name: string }[] }>(
      'get',
      '/v1/jobs/{id}/artifacts',
      `/v1/jobs/${batch.body.id}/artifacts`,
    );
    const file = outputs.body.artifacts[0]!.name;
    const download = await call(
      'get',
      '/v1/jobs/{id}/artifacts/{name}',
      `/v1/jobs/${batch.body.id}/artifacts/${file}`,
    );
    expect(download.status).toBe(200);
    expect((await call('get', '/v1/jobs', '/v1/jobs?limit=50')).status).toBe(200);

    // Datasets: an upload, its listings, a refused media type, a delete.
    const csv = 'a,b,label\n1,2,x\n3,4,y\n';
    const up = await call('post', '/v1/datasets/{name}', '/v1/datasets/tiny', { raw: csv, type: 'text/csv' });
    expect(up.status).toBe(201);
    // JSONL without "y": a 201 with a warning, checked against the document like every answer.
    const bare = await call<{ warnings: string[] }>(
      'post',
      '/v1/datasets/{name}',
      '/v1/datasets/tiny-jsonl',
      { raw: '{"x":[1,2]}\n', type: 'application/x-ndjson' },
    );
    expect(bare.status).toBe(201);
    expect(bare.body.warnings).toEqual([
      'no "y" on the lines: training and evaluation need a label ("y": a class index or name) on every line; the first line\'s keys are x',
    ]);
    expect((await call('get', '/v1/datasets', '/v1/datasets')).status).toBe(200);
    expect((await call('get', '/v1/datasets/{name}', '/v1/datasets/tiny')).status).toBe(200);
    expect(
      (await call('get', '/v1/datasets/{name}/versions/{version}', '/v1/datasets/tiny/versions/1')).status,
    ).toBe(200);
    const unsupported = await call('post', '/v1/datasets/{name}', '/v1/datasets/tiny', {
      raw: csv,
      type: 'text/plain',
    });
    expect(unsupported.status).toBe(415);
    expect(
      (await call('delete', '/v1/datasets/{name}/versions/{version}', '/v1/datasets/tiny/versions/1')).status,
    ).toBe(204);

    // Operations.
    for (const p of ['/healthz', '/readyz', '/v1/workers', '/metrics', '/openapi.json'])
      expect((await call('get', p, p)).status).toBe(200);

    // Errors: 400 naming fields, 404, 409.
    const invalid = await call<{ error: { details: unknown[] } }>(
      'post',
      '/v1/jobs/fine-tune',
      '/v1/jobs/fine-tune',
      {
        body: { model: 'oa', dataset: { format: 'mnist', digits: [1] } },
      },
    );
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.details.length).toBeGreaterThan(0);
    expect((await call('get', '/v1/jobs', '/v1/jobs?limit=0')).status).toBe(400);
    expect((await call('get', '/v1/jobs/{id}', '/v1/jobs/no-such-job')).status).toBe(404);
    expect(
      (await call('get', '/v1/models/{name}/versions/{version}', '/v1/models/oa/versions/x')).status,
    ).toBe(400);
    expect(
      (
        await call('post', '/v1/models/{name}:predict', '/v1/models/nothing:predict', {
          body: { instances: [instance] },
        })
      ).status,
    ).toBe(404);
    expect((await call('delete', '/v1/jobs/{id}', `/v1/jobs/${id}`)).status).toBe(409);
    expect((await call('post', '/v1/jobs/{id}/retry', `/v1/jobs/${id}/retry`)).status).toBe(409);
    expect(
      (await call('delete', '/v1/models/{name}/labels/{label}', '/v1/models/oa/labels/prod')).status,
    ).toBe(204);

    expect(checker.problems).toEqual([]);
    // 48 operation-status pairs (47 when the second job was taken before the cancel reached it).
    expect(checker.seen.size).toBeGreaterThanOrEqual(47);
  }, 240_000);

  it('streams /v1/events as documented', async () => {
    const ac = new AbortController();
    const res = await fetch(`${stack.url}/v1/events?type=fine-tune`, { signal: ac.signal });
    checker.check('get', '/v1/events', res.status, res.headers.get('content-type') ?? '', undefined);
    ac.abort();
    expect(res.status).toBe(200);
    const bad = await call('get', '/v1/events', '/v1/events?type=nope');
    expect(bad.status).toBe(400);
    expect(checker.problems).toEqual([]);
  });
});
