/**
 * The egress policy at submit (SSRF): with no FETCH_ALLOW_HOSTS, a dataset or model URI that would make
 * a worker connect to the cloud metadata address, loopback (in any spelling), a private address, or over
 * plain http:// is refused with 400 naming the field, before any job exists. Nothing here connects
 * anywhere: literal addresses are judged as written, and `localhost` by what it resolves to.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { http, startStack, type JobBody, type Stack } from '../../../test/support/stack.ts';

interface ErrorBody {
  error: { code: string; message: string; details: { field: string; message: string }[] };
}

describe('submit refuses URIs a worker must not fetch', () => {
  let stack: Stack;
  beforeAll(async () => {
    // No worker: refused jobs never exist, and an accepted one only waits.
    stack = await startStack('egress', { workers: 0, apiEnv: { FETCH_ALLOW_HOSTS: '' } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const fineTune = (dataset: string, base?: string) =>
    http<ErrorBody & JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', {
      model: 'egress',
      ...(base ? { base } : { architecture: 'mlp' }),
      dataset: { format: 'csv', uri: dataset },
      epochs: 1,
    });

  it('refuses dataset URIs with 400 naming dataset.uri', async () => {
    const cases: [string, RegExp][] = [
      [
        'http://169.254.169.254/latest/meta-data/',
        /plain http:\/\/ is only allowed to hosts in FETCH_ALLOW_HOSTS/,
      ],
      ['https://169.254.169.254/latest/meta-data/', /169\.254\.169\.254 is a link-local address/],
      ['https://127.0.0.1:8443/train.csv', /127\.0\.0\.1 is a loopback address/],
      ['http://127.0.0.1:8080/train.csv', /plain http:\/\//],
      ['http://93.184.215.14/train.csv', /plain http:\/\/ is only allowed .*use https:\/\//],
      ['https://[::ffff:127.0.0.1]/train.csv', /is a loopback address/],
      ['http://2130706433/', /plain http:\/\//],
      ['https://2130706433/train.csv', /127\.0\.0\.1 is a loopback address/],
      ['https://10.0.0.7/train.csv', /is a private address/],
      ['https://localhost/train.csv', /localhost resolves to .* loopback/],
      ['s3://data/train.csv?endpoint=http://169.254.169.254', /plain http:\/\//],
    ];
    for (const [uri, why] of cases) {
      const r = await fineTune(uri);
      expect(r.status, `${uri}: ${JSON.stringify(r.body)}`).toBe(400);
      expect(r.body.error.details, uri).toEqual([
        { field: 'dataset.uri', message: expect.stringMatching(why) },
      ]);
    }
  });

  it('refuses model URIs with 400 naming base or model', async () => {
    const r = await fineTune(
      'https://93.184.215.14/train.csv',
      'http://169.254.169.254/latest/meta-data/model.json',
    );
    expect(r.status).toBe(400);
    expect(r.body.error.details).toEqual([{ field: 'base', message: expect.stringMatching(/plain http/) }]);
    const e = await http<ErrorBody>(`${stack.url}/v1/jobs/evaluate`, 'POST', {
      model: 'https://[::1]/model.json',
      dataset: { format: 'csv', uri: 'https://[fe80::1]/test.csv' },
    });
    expect(e.status).toBe(400);
    expect(e.body.error.details).toEqual([
      { field: 'model', message: expect.stringMatching(/::1 is a loopback address/) },
      { field: 'dataset.uri', message: expect.stringMatching(/fe80::1 is a link-local address/) },
    ]);
  });

  it('accepts an https:// URI of a public address (fetched later, by the worker)', async () => {
    const r = await fineTune('https://93.184.215.14/train.csv');
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    expect(r.body.state).toBe('waiting');
  });
});
