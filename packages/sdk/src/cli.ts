/**
 * The `mlq` command line (bin/mlq.js imports this file; Node runs it by stripping its types):
 * `node packages/sdk/src/cli.ts <command> ...`. See `mlq --help`.
 */
import { loadCliEnv } from './cli/env.ts';
import { main, reportUnexpected } from './cli/main.ts';
import type { Io } from './cli/commands.ts';

const tty = process.stdout.isTTY === true;
let statusShown = false;

const io: Io = {
  out: (line) => void process.stdout.write(`${line}\n`),
  err: (line) => void process.stderr.write(`${line}\n`),
  status(line) {
    if (!tty || (!statusShown && line === '')) return;
    // Carriage return + "erase line": the next status or line replaces this one.
    process.stdout.write(`\r\x1b[2K${line}`);
    statusShown = line !== '';
  },
  isTTY: tty,
  get columns() {
    return process.stdout.columns || 100;
  },
};

process.once('SIGINT', () => {
  if (statusShown) process.stdout.write('\n');
  process.exit(130);
});

// main handles every error of a command; these catch the rest (an error thrown outside it, a stream
// error nobody listened to) so that nothing ends in a stack trace: one line and exit code 4.
const crash = (e: unknown) => {
  io.status('');
  process.exitCode = reportUnexpected(io, e);
  process.exit();
};
process.on('uncaughtException', crash);
process.on('unhandledRejection', crash);

try {
  process.exitCode = await main(process.argv.slice(2), io, loadCliEnv());
} catch (e) {
  crash(e);
}
