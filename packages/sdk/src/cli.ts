/**
 * The `mlq` command line (bin/mlq.js imports this file; Node runs it by stripping its types):
 * `node packages/sdk/src/cli.ts <command> ...`. See `mlq --help`.
 */
import { loadCliEnv } from './cli/env.ts';
import { main } from './cli/main.ts';
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

try {
  process.exitCode = await main(process.argv.slice(2), io, loadCliEnv());
} catch (e) {
  io.status('');
  console.error(e);
  process.exitCode = 70; // EX_SOFTWARE: a bug, not a failed job or an API error
}
