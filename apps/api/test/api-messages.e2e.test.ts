/**
 * What the API says about bodies people send by mistake, through a real API over HTTP: JSON that is
 * not an object, numbers past a field's bound, a body over BODY_LIMIT, a URI with credentials; and
 * where a browser opening the server's root is sent.
 */
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '@mlq/contract';
import { redactUserinfo } from '@mlq/core/errors';
import { ModelRegistry } from '@mlq/core/registry';
import { http, startStack, type Stack } from '../../../test/support/stack.ts';

interface ApiErrorBody {
  error: { code: string; message: string; details?: { field: string; message: string }[] };
}

describe('messages of the API about mistaken bodies', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack('api-messages', { workers: 0, apiEnv: { BODY_LIMIT: '1kb' } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('valid JSON that is not an object is a 400 naming what was sent', async () => {
    const cases: [string, string][] = [
      ['null', 'null'],
      ['[]', 'an array'],
      ['"x"', 'a string'],
      ['3', 'a number'],
      ['true', 'a boolean'],
    ];
    for (const [body, what] of cases) {
      for (const path of ['/v1/jobs/fine-tune', '/v1/models/m/labels/prod']) {
        const method = path.startsWith('/v1/jobs') ? 'POST' : 'PUT';
        const r = await http<ApiErrorBody>(`${stack.url}${path}`, method, body);
        expect(r.status, `${method} ${path} ${body}`).toBe(400);
        expect(r.body.error).toEqual({
          code: 'invalid_request',
          message: `the body must be a JSON object ({...}), not ${what}`,
          details: [{ field: '(body)', message: `expected a JSON object, got ${what}` }],
        });
      }
    }
    // Text that is not JSON is still invalid_json.
    const bad = await http<ApiErrorBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', '{"a":');
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_json');
  });

  it('refuses a label named "latest" (any case) with a 400 naming label: <name>@latest is the newest version', async () => {
    const registry = new ModelRegistry(stack.redis, new RedisKeys(stack.prefix));
    const version = (jobId: string) => ({
      name: 'points',
      uri: 'file:///nowhere/model.json',
      jobId,
      metrics: {},
      params: {},
      inputShape: [2],
      numClasses: 2,
    });
    await registry.register(version('job-1'));
    await registry.register(version('job-2'));
    for (const label of ['latest', 'LATEST', 'Latest']) {
      const r = await http<ApiErrorBody>(`${stack.url}/v1/models/points/labels/${label}`, 'PUT', {
        version: 1,
      });
      expect(r.status, label).toBe(400);
      expect(r.body.error.code).toBe('invalid_request');
      expect(r.body.error.message).toContain(`"${label}" is reserved`);
      expect(r.body.error.details).toEqual([
        { field: 'label', message: expect.stringMatching(/newest version/) },
      ]);
    }
    // A number reads as a version: refused by name too.
    const number = await http<ApiErrorBody>(`${stack.url}/v1/models/points/labels/3`, 'PUT', { version: 1 });
    expect(number.status).toBe(400);
    expect(number.body.error.details![0]!.field).toBe('label');
    expect(await registry.labels('points')).toEqual({});
    await expect(registry.setLabel('points', 'latest', 1)).rejects.toThrow(/reserved/);
    // So "@latest" is always the newest version.
    expect((await registry.resolve('points@latest')).version).toBe(2);
    const ok = await http(`${stack.url}/v1/models/points/labels/latest-good`, 'PUT', { version: 1 });
    expect(ok.status).toBe(200);
  });

  it('a JSON route given a body of another Content-Type (curl -d: a form) is a 400 naming the Content-Type', async () => {
    for (const [path, method] of [
      ['/v1/models/points/labels/staging', 'PUT'],
      ['/v1/jobs/fine-tune', 'POST'],
    ] as const) {
      for (const type of ['application/x-www-form-urlencoded', 'text/plain']) {
        const r = await http<ApiErrorBody>(`${stack.url}${path}`, method, '{"version":1}', {
          'content-type': type,
        });
        expect(r.status, `${method} ${path} ${type}`).toBe(400);
        expect(r.body.error).toEqual({
          code: 'invalid_request',
          message: `the body must be a JSON object sent with Content-Type: application/json; this request has Content-Type: ${type}`,
          details: [{ field: 'Content-Type', message: `expected application/json, got ${type}` }],
        });
      }
      const none = await fetch(`${stack.url}${path}`, { method });
      expect(none.status).toBe(400);
      expect(((await none.json()) as ApiErrorBody).error.message).toMatch(
        /this request has no Content-Type$/,
      );
    }
  });

  it('a body that is not what its Content-Encoding says is a 400 bad_encoding; an unknown encoding a 415', async () => {
    const send = (path: string, encoding: string, body: Buffer | string) =>
      fetch(`${stack.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': encoding },
        body: typeof body === 'string' ? body : new Uint8Array(body),
      });
    for (const path of ['/v1/jobs/fine-tune', '/v1/models/m:predict']) {
      for (const encoding of ['gzip', 'br', 'deflate']) {
        const r = await send(path, encoding, '{"model": "m"}');
        expect(r.status, `${path} ${encoding}`).toBe(400);
        const { error } = (await r.json()) as ApiErrorBody;
        expect(error.code).toBe('bad_encoding');
        expect(error.message).toMatch(
          new RegExp(`^the body is not valid ${encoding} \\(Content-Encoding: ${encoding}\\)`),
        );
        expect(error.details).toEqual([
          { field: 'Content-Encoding', message: `the body is not valid ${encoding}` },
        ]);
      }
      const compress = await send(path, 'compress', '{"model": "m"}');
      expect(compress.status).toBe(415);
      const { error } = (await compress.json()) as ApiErrorBody;
      expect(error.code).toBe('unsupported_encoding');
      expect(error.message).toMatch(
        /^Content-Encoding "compress" is not supported: .* one of gzip, deflate, br/,
      );
    }
    // Bodies that are what they say are read: the decoded body is JSON that is not an object.
    for (const [encoding, body] of [
      ['gzip', gzipSync('[]')],
      ['br', brotliCompressSync('[]')],
    ] as const) {
      const r = await send('/v1/jobs/fine-tune', encoding, body);
      expect(r.status, encoding).toBe(400);
      expect(((await r.json()) as ApiErrorBody).error.message).toBe(
        'the body must be a JSON object ({...}), not an array',
      );
    }
  });

  it('a number past a bound gives one detail per field: the bound the field has', async () => {
    const r = await http<ApiErrorBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', {
      model: 'm',
      architecture: 'mlp',
      dataset: { format: 'csv', uri: 'file:///nowhere.csv' },
      epochs: 1e308,
      batchSize: 1e308,
    });
    expect(r.status).toBe(400);
    const on = (field: string) => r.body.error.details!.filter((d) => d.field === field);
    expect(on('epochs')).toEqual([{ field: 'epochs', message: 'Too big: expected number to be <=1000' }]);
    expect(on('batchSize')).toHaveLength(1);
    expect(on('batchSize')[0]!.message).toMatch(/^Too big: expected number to be <=\d+$/);
    expect(on('batchSize')[0]!.message).not.toContain('9007199254740991');
  });

  it('a body over BODY_LIMIT is a 413 that says the limit and its setting', async () => {
    const big = JSON.stringify({ model: 'm', pad: 'x'.repeat(2000) });
    const message = 'the body is larger than the limit of 1024 bytes (BODY_LIMIT=1kb, 1mb = 1048576 bytes)';
    const job = await http<ApiErrorBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', big);
    expect(job.status).toBe(413);
    expect(job.body.error).toEqual({ code: 'payload_too_large', message });
    const predict = await http<ApiErrorBody>(`${stack.url}/v1/models/m:predict`, 'POST', big);
    expect(predict.status).toBe(413);
    expect(predict.body.error).toEqual({ code: 'payload_too_large', message });
    const infer = await http<{ error: string }>(`${stack.url}/v2/models/m/infer`, 'POST', big);
    expect(infer.status).toBe(413);
    expect(infer.body.error).toBe(message);
  });

  it('an error about a URI never repeats its credentials', async () => {
    const r = await http<ApiErrorBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', {
      model: 'm',
      architecture: 'mlp',
      dataset: { format: 'csv', uri: 'http://user:pass@127.0.0.1:6379/' },
      epochs: 1,
    });
    expect(r.status).toBe(400);
    const text = JSON.stringify(r.body);
    expect(text).not.toContain('user');
    expect(text).not.toContain('pass');
    expect(r.body.error.message).toContain('http://***@127.0.0.1:6379/');
    expect(r.body.error.details!.every((d) => !d.message.includes('pass'))).toBe(true);
    expect(redactUserinfo('a p@ss word: https://u:p@ss@h.example/x?y=a@b, and s3://k:s@bucket/k')).toBe(
      'a p@ss word: https://***@h.example/x?y=a@b, and s3://***@bucket/k',
    );
    // A dataset version's @ is not a password's.
    expect(redactUserinfo('dataset://rows@1 and DATASET://rows@2')).toBe(
      'dataset://rows@1 and DATASET://rows@2',
    );
  });

  it('GET / sends a browser to the console; other clients get what they got before', async () => {
    const page = await fetch(`${stack.url}/`, {
      headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' },
      redirect: 'manual',
    });
    expect(page.status).toBe(302);
    expect(page.headers.get('location')).toBe('/ui/');
    for (const accept of ['application/json', '*/*']) {
      const r = await fetch(`${stack.url}/`, { headers: { accept }, redirect: 'manual' });
      expect(r.status).toBe(404);
      expect(await r.json()).toEqual({ error: { code: 'not_found', message: 'no route GET /' } });
    }
  });
});
