/**
 * Request lines (src/logger.ts): a hot route (online predict) skips pino-http while `debug` is off,
 * and must still log its failures exactly as pino-http logs any other route's, keep `X-Request-Id`,
 * and give handlers a `req.log` that carries the request id. Real express app, real HTTP.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Writable } from 'node:stream';
import express from 'express';
import { pino, type Logger } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { httpLogger } from '../src/logger.ts';

type Line = Record<string, unknown> & { req?: { url?: string }; msg?: string; level?: number };

let server: Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

/** An app whose `/hot/*` routes are hot; every route answers the status in its last segment. */
async function start(level: string): Promise<{ url: string; lines: Line[] }> {
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Line);
      cb();
    },
  });
  const logger: Logger = pino({ name: 'api', level }, sink);
  const app = express();
  app.use(httpLogger(logger, (method, path) => method === 'POST' && path.startsWith('/hot/')));
  app.use((req, res, next) => {
    res.locals.principal = { keyId: 'k-1234' };
    next();
  });
  app.post(/^\/(hot|cold)\/(\d+)$/, (req, res) => {
    req.log.info({ step: 'handler' }, 'handling');
    res.status(Number(req.params[1])).json({ ok: true });
  });
  server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server!.once('listening', r));
  return { url: `http://127.0.0.1:${(server!.address() as AddressInfo).port}`, lines };
}

/** A line without what differs between two requests (time, id, duration, path). */
const shape = (l: Line) => {
  const { time: _t, reqId: _r, responseTime: _d, req, err, ...rest } = l;
  const { url: _u, ...reqRest } = req ?? {};
  const { stack: _s, ...errRest } = (err ?? {}) as Record<string, unknown>;
  return { ...rest, req: reqRest, ...(err ? { err: errRest } : {}) };
};

describe('request lines', () => {
  it('logs a hot route failure as pino-http logs any route, and no line for its success at info', async () => {
    const { url, lines } = await start('info');
    for (const status of [200, 404, 500, 503]) {
      for (const kind of ['hot', 'cold']) {
        const r = await fetch(`${url}/${kind}/${status}`, {
          method: 'POST',
          headers: { 'x-request-id': `${kind}-${status}` },
        });
        expect(r.status).toBe(status);
        expect(r.headers.get('x-request-id')).toBe(`${kind}-${status}`);
      }
    }
    await new Promise((r) => setTimeout(r, 50));
    const finished = (kind: string, status: number) =>
      lines.filter((l) => l.req?.url === `/${kind}/${status}` && l.msg !== 'handling');
    // Success: the cold route's line at info; the hot route's at debug, so not written.
    expect(finished('cold', 200)).toHaveLength(1);
    expect(finished('hot', 200)).toHaveLength(0);
    for (const status of [404, 500, 503]) {
      const [hot] = finished('hot', status);
      const [cold] = finished('cold', status);
      expect(hot, `hot ${status}`).toBeDefined();
      expect(shape(hot!)).toEqual(shape(cold!));
      expect(hot!.reqId).toBe(`hot-${status}`);
      expect(typeof hot!.responseTime).toBe('number');
    }
    expect(finished('hot', 404)[0]).toMatchObject({ level: 30, msg: 'request completed', keyId: 'k-1234' });
    expect(finished('hot', 500)[0]).toMatchObject({ level: 50, msg: 'request errored' });
    expect(finished('hot', 503)[0]).toMatchObject({ level: 40, msg: 'request answered 503 (unavailable)' });
    // The handler's own line carries the request id on the hot route too.
    const handling = lines.filter((l) => l.msg === 'handling').map((l) => l.reqId);
    expect(handling).toContain('hot-200');
    expect(handling).toContain('cold-200');
  });

  it('logs hot successes at debug through pino-http when debug is on', async () => {
    const { url, lines } = await start('debug');
    const r = await fetch(`${url}/hot/200`, { method: 'POST' });
    expect(r.status).toBe(200);
    const id = r.headers.get('x-request-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    await new Promise((r) => setTimeout(r, 50));
    const line = lines.find((l) => l.req?.url === '/hot/200' && l.msg === 'request completed');
    expect(line).toMatchObject({ level: 20, reqId: id, res: { statusCode: 200 } });
  });
});
