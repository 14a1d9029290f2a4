/**
 * The API's logs: pino JSON lines on stdout (one object per line: `level`, `time`, `msg`, ...), or
 * pino-pretty's coloured lines when `LOG_FORMAT` says so (`auto`: when stdout is a terminal).
 * Request lines come from pino-http with a request id: an incoming `X-Request-Id` (1-200 letters,
 * digits, `_`, `.`, `:`, `-`) is kept, else a UUID is made; it is echoed in the response's
 * `X-Request-Id` and is on every line logged through `req.log`.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pino, type DestinationStream, type Logger } from 'pino';
import { pinoHttp } from 'pino-http';

export type { Logger } from 'pino';

export interface LoggerOptions {
  /** pino level: `fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`. */
  level: string;
  /** `json`, `pretty`, or `auto` (pretty when stdout is a TTY). */
  format: 'json' | 'pretty' | 'auto';
  /** Where lines go instead of stdout (tests); forces JSON. */
  destination?: DestinationStream;
}

/** Whether `format` means pretty lines for this process. */
export function prettyLogs(format: LoggerOptions['format']): boolean {
  return format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
}

/** The process's root logger; `name` is the `name` field of every line (`api`). */
export function createLogger(name: string, opts: LoggerOptions): Logger {
  const base = { name, level: opts.level };
  if (opts.destination) return pino(base, opts.destination);
  // The pino-pretty transport (a worker thread, loaded by name: knip.json knows) only when a person
  // reads the terminal.
  if (prettyLogs(opts.format))
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true } } });
  // Asynchronous writes: under load, lines written while one write is under way go out together in
  // the next, rather than one write(2) per request on the event loop. pino flushes what is left
  // synchronously when the process exits (lost only on SIGKILL or a crash of the runtime itself).
  return pino(base, pino.destination({ dest: 1, sync: false }));
}

const REQUEST_ID = /^[\w.:-]{1,200}$/;

/** Never-logged parts of a request: a presented key or session cookie. */
const redact = ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]'];

/** Paths scraped or probed every few seconds: logged only when they fail. */
const quietPaths = new Set(['/healthz', '/readyz', '/metrics']);

/** The level of a finished request's line (`err`: what pino-http passes for a failed response). */
function levelOf(req: IncomingMessage, res: ServerResponse, err: unknown, hot: HotRoute): string {
  // A 503 is a refusal the server chose (a full predict queue, Redis away, shutting down: with
  // Retry-After), not a fault of ours: a warning without the stack pino-http makes up for 5xx answers.
  if (res.statusCode === 503) return 'warn';
  if (err || res.statusCode >= 500) return 'error';
  const path = (req.url ?? '').split('?')[0]!;
  if (quietPaths.has(path)) return 'debug';
  return res.statusCode < 300 && hot(req.method ?? '', path) ? 'debug' : 'info';
}

const errorMessage = (res: ServerResponse) =>
  res.statusCode === 503 ? 'request answered 503 (unavailable)' : 'request errored';

/** The request id: an incoming valid `X-Request-Id`, else a UUID; echoed in the response. */
function requestId(req: IncomingMessage, res: ServerResponse): string {
  const given = req.headers['x-request-id'];
  const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
  res.setHeader('X-Request-Id', id);
  return id;
}

/** Which key made the request (a hash prefix, never the key): set by auth (auth/authenticate.ts). */
const keyIdOf = (res: ServerResponse) =>
  (res as ServerResponse & { locals?: { principal?: { keyId: string } } }).locals?.principal?.keyId;

/** Picks the routes called many times a second (online predict), from the method and the path. */
export type HotRoute = (method: string, path: string) => boolean;

type Middleware = (req: IncomingMessage, res: ServerResponse, next: () => void) => void;

/**
 * Request logs: a child logger with `reqId` on `req.log`, one line per finished request.
 * `hot(method, path)` picks routes called many times a second (online predict): their successful
 * (2xx) lines are logged at `debug`, as the probes' are; their failures at the usual levels.
 *
 * Every request goes through pino-http, except a hot route's while `debug` is off: pino-http would
 * build two child loggers for it (serializing the request) only to drop its line: 0.153 against
 * 0.135 ms of event-loop CPU per predict under `bench/predict.ts`'s load. Such a request gets the same
 * `X-Request-Id`, a `req.log` made when first used, and, when it fails, the line pino-http writes
 * (same level, message and fields: `reqId`, `req`, `res`, `responseTime`, `keyId`, `err`).
 */
export function httpLogger(logger: Logger, hot: HotRoute = () => false): Middleware {
  const full = pinoHttp({
    logger,
    redact,
    genReqId: requestId,
    // req.log carries only the request id; the request itself goes on the one completion line.
    quietReqLogger: true,
    customAttributeKeys: { reqId: 'reqId' },
    customLogLevel: (req, res, err) => levelOf(req, res, err, hot) as pino.LevelWithSilent,
    customErrorObject: (_req, res, _err, val: Record<string, unknown>) =>
      res.statusCode === 503 ? { ...val, err: undefined } : val,
    customErrorMessage: (_req, res) => errorMessage(res),
    serializers: {
      req: (req: { method: string; url: string; remoteAddress?: string }) => ({
        method: req.method,
        url: req.url,
        remoteAddress: req.remoteAddress,
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
    // Undefined rather than {} without a key: pino-http then makes no child logger for it.
    customProps: ((_req: IncomingMessage, res: ServerResponse) => {
      const keyId = keyIdOf(res);
      return keyId ? { keyId } : undefined;
    }) as (req: IncomingMessage, res: ServerResponse) => { keyId: string },
  });
  const quiet: Middleware = (req, res, next) => {
    const started = Date.now();
    const reqId = requestId(req, res);
    let log: Logger | undefined;
    const reqLog = () => (log ??= logger.child({ reqId }));
    Object.assign(req, { id: reqId });
    Object.defineProperty(req, 'log', { get: reqLog, configurable: true, enumerable: false });
    Object.defineProperty(res, 'log', { get: reqLog, configurable: true, enumerable: false });
    const done = (err?: unknown) => {
      res.off('finish', done).off('close', done).off('error', done);
      const level = levelOf(req, res, err, hot);
      if (!logger.isLevelEnabled(level)) return;
      const keyId = keyIdOf(res);
      const line: Record<string, unknown> = {
        req: {
          method: req.method,
          url: (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url,
          remoteAddress: req.socket?.remoteAddress,
        },
        ...(keyId ? { keyId } : {}),
        res: { statusCode: res.statusCode },
        responseTime: Date.now() - started,
      };
      const failed = err || res.statusCode >= 500;
      if (failed && res.statusCode !== 503)
        line.err = err ?? new Error(`failed with status code ${res.statusCode}`);
      const message = failed
        ? errorMessage(res)
        : !req.readableAborted && res.writableEnded
          ? 'request completed'
          : 'request aborted';
      reqLog()[level as pino.Level](line, message);
    };
    res.on('finish', done).on('close', done).on('error', done);
    next();
  };
  return (req, res, next) =>
    !logger.isLevelEnabled('debug') && hot(req.method ?? '', (req.url ?? '').split('?')[0]!)
      ? quiet(req, res, next)
      : full(req, res, next);
}
