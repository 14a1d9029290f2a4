/**
 * The worker's logs: pino JSON lines on stdout, or pino-pretty's coloured lines when `LOG_FORMAT`
 * says so (`auto`: when stdout is a terminal). Lines about a job come from a child logger carrying
 * `queue`, `jobId` and `attempt`, in the worker and in the sandbox child that runs the job.
 *
 * A sandbox child's stdout is a pipe to the worker (BullMQ pipes it through), so the worker resolves
 * `auto` once and hands the children `json` or `pretty` (env.ts's sandboxEnv).
 */
import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

export type LogFormat = 'json' | 'pretty' | 'auto';

/** `json` or `pretty` for this process. */
export function resolveLogFormat(format: LogFormat): 'json' | 'pretty' {
  if (format !== 'auto') return format;
  return process.stdout.isTTY === true ? 'pretty' : 'json';
}

/**
 * The process's root logger; `name` is the `name` field of every line (`worker`, `sandbox`).
 *
 * `sync`: each line is written to stdout before the call returns, so that nothing waits to be flushed
 * when the process exits. For a sandbox child, whose stdout is a pipe to a worker that may be killed
 * at any time: pino's default stdout stream buffers and flushes at exit, and that flush (sonic-boom
 * 4) retries a write that fails with EPIPE every 100 ms, forever; the pino-pretty transport waits
 * 10 s for its thread. A child exiting because its worker is gone would hang there (see sandbox.ts).
 */
export function createLogger(
  name: string,
  opts: { level: string; format: LogFormat; destination?: DestinationStream; sync?: boolean },
): Logger {
  const base = { name, level: opts.level };
  if (opts.destination) return pino(base, opts.destination);
  if (opts.sync) {
    if (resolveLogFormat(opts.format) === 'json')
      return pino(base, pino.destination({ dest: 1, sync: true }));
    // In this thread (not a transport's), loaded only when a person reads the terminal.
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty');
    return pino(base, pretty({ colorize: true, sync: true }));
  }
  // The pino-pretty transport (a worker thread, loading the package by name) only when a person reads
  // the terminal.
  if (resolveLogFormat(opts.format) === 'pretty')
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true } } });
  return pino(base);
}

/**
 * A sandbox child's root logger: `sandbox` lines, written synchronously, since the child must be able
 * to exit at once when its worker is gone (orphan.ts).
 */
export function createSandboxLogger(opts: { level: string; format: LogFormat }): Logger {
  return createLogger('sandbox', { ...opts, sync: true });
}
