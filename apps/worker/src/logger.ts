/**
 * The worker's logs: pino JSON lines on stdout, or pino-pretty's coloured lines when `LOG_FORMAT`
 * says so (`auto`: when stdout is a terminal). Lines about a job come from a child logger carrying
 * `queue`, `jobId` and `attempt`, in the worker and in the sandbox child that runs the job.
 *
 * A sandbox child's stdout is a pipe to the worker (BullMQ pipes it through), so the worker resolves
 * `auto` once and hands the children `json` or `pretty` (env.ts's sandboxEnv).
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

export type LogFormat = 'json' | 'pretty' | 'auto';

/** `json` or `pretty` for this process. */
export function resolveLogFormat(format: LogFormat): 'json' | 'pretty' {
  if (format !== 'auto') return format;
  return process.stdout.isTTY === true ? 'pretty' : 'json';
}

/** The process's root logger; `name` is the `name` field of every line (`worker`, `sandbox`). */
export function createLogger(
  name: string,
  opts: { level: string; format: LogFormat; destination?: DestinationStream },
): Logger {
  const base = { name, level: opts.level };
  if (opts.destination) return pino(base, opts.destination);
  // The pino-pretty transport (a worker thread, loaded by name: knip.json knows) only when a person
  // reads the terminal.
  if (resolveLogFormat(opts.format) === 'pretty')
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true } } });
  return pino(base);
}
