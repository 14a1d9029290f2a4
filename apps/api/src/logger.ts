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
import { pinoHttp, type HttpLogger } from 'pino-http';

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

/**
 * pino-http middleware: a child logger with `reqId` on `req.log`, one line per finished request.
 * `hot(method, path)` picks routes called many times a second (online predict): their successful
 * (2xx) lines are logged at `debug`, as the probes' are; their failures at the usual levels.
 */
export function httpLogger(
  logger: Logger,
  hot: (method: string, path: string) => boolean = () => false,
): HttpLogger {
  return pinoHttp({
    logger,
    redact,
    genReqId(req: IncomingMessage, res: ServerResponse) {
      const given = req.headers['x-request-id'];
      const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
      res.setHeader('X-Request-Id', id);
      return id;
    },
    // req.log carries only the request id; the request itself goes on the one completion line.
    quietReqLogger: true,
    customAttributeKeys: { reqId: 'reqId' },
    // A 503 is a refusal the server chose (a full predict queue, Redis away, shutting down: with
    // Retry-After), not a fault of ours: a warning without the stack pino-http makes up for 5xx answers.
    customLogLevel: (req, res, err) => {
      if (res.statusCode === 503) return 'warn';
      if (err || res.statusCode >= 500) return 'error';
      const path = (req.url ?? '').split('?')[0]!;
      if (quietPaths.has(path)) return 'debug';
      return res.statusCode < 300 && hot(req.method ?? '', path) ? 'debug' : 'info';
    },
    customErrorObject: (_req, res, _err, val: Record<string, unknown>) =>
      res.statusCode === 503 ? { ...val, err: undefined } : val,
    customErrorMessage: (_req, res) =>
      res.statusCode === 503 ? 'request answered 503 (unavailable)' : 'request errored',
    serializers: {
      req: (req: { method: string; url: string; remoteAddress?: string }) => ({
        method: req.method,
        url: req.url,
        remoteAddress: req.remoteAddress,
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
    // Which key made the request (a hash prefix, never the key): set by auth (auth/authenticate.ts).
    // Undefined rather than {} without a key: pino-http then makes no child logger for it.
    customProps: ((_req: IncomingMessage, res: ServerResponse) => {
      const keyId = (res as ServerResponse & { locals?: { principal?: { keyId: string } } }).locals?.principal
        ?.keyId;
      return keyId ? { keyId } : undefined;
    }) as (req: IncomingMessage, res: ServerResponse) => { keyId: string },
  });
}
