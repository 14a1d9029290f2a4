/**
 * Argument parsing, dispatch and exit codes of the `mlq` command (`exitCodes`): 0 ok, 1 the job
 * failed or was cancelled, 2 usage or a local file that cannot be read or written, 3 the API refused
 * the request or could not be reached, 4 an unexpected error (a bug). Every error is printed as one
 * line (plus one per bad field), never as a stack trace.
 */
import { parseArgs } from 'node:util';
import { MlqClient } from '../client.ts';
import { MlqApiError, MlqError } from '../errors.ts';
import { commands as jobCommands, UsageError, type Ctx, type Io } from './commands.ts';
import { artifacts, dataset, download } from './dataset-commands.ts';
import type { CliEnv } from './env.ts';
import { errnoCode, fileProblem, LocalFileError } from './local-files.ts';

/** The text of `mlq --help`. */
export const usage = `usage: mlq <command> [options]

commands:
  submit <type> --file job.json [--wait]   queue a job (fine-tune, evaluate, batch-predict, tune);
                                           --json '<payload>' instead of --file (--file - reads
                                           standard input); --idempotency-key <k>
  jobs [--type <t>] [--state <s>]          list jobs, newest first (--limit, --offset)
  watch <id>                               follow a job with a progress bar until it ends
  logs <id>                                print a job's log lines
  cancel <id>                              cancel a waiting or running job
  retry <id> [--wait]                      retry a failed job
  models                                   list models with their latest version and labels
  model <name>                             list a model's versions
  label <name> <label> <version>           point a label at a version (--delete removes the label)
  predict <ref> --file instances.json      call a model online; <ref> is name, name@3 or name@label;
                                           --json '[...]' instead of --file; --image a.png (PNG or
                                           JPEG, repeatable) for an image model
  workers                                  list live workers
  dataset upload <name> <file>             upload a CSV, JSONL, .zip or .tar.gz as the next version of
                                           <name>, with a progress bar (--format csv|jsonl|zip|tar.gz
                                           if the extension does not say; --label <column> for CSV);
                                           <file> - reads standard input (give --format)
  dataset list | show <name>               list datasets / a dataset's versions
  dataset delete <name> <version>          delete a version (refused while a job uses it)
  artifacts <id>                           list a job's outputs
  download <id> <name> [-o <path>]         save a job's output (model.zip, predictions.jsonl...)

options:
  --url <url>   the API (default: $MLQ_URL or http://127.0.0.1:3000)
  --key <key>   an API key (default: $MLQ_API_KEY)

exit codes: 0 ok, 1 the job failed or was cancelled (submit --wait, watch, retry --wait),
  2 usage (bad arguments, invalid --file/--json) or a local file that cannot be read or written
  (missing, a directory, no permission, -o into a directory that does not exist), 3 the API refused
  the request (the error and each bad field are printed) or could not be reached, 4 an unexpected
  error in mlq itself (a bug: its one-line message is printed)`;

/** The CLI's exit codes (also in `usage` and the README). */
export const exitCodes = { ok: 0, jobFailed: 1, usage: 2, apiError: 3, internal: 4 } as const;

/**
 * Prints an error nothing else expected as one line (`mlq: unexpected error: TypeError: ...`) and
 * returns exit code 4; a Node file error that escaped the commands' checks is a local file problem
 * (exit 2). cli.ts calls this for anything thrown outside `main` too.
 */
export function reportUnexpected(io: Io, e: unknown, command?: string): number {
  const prefix = command ? `mlq ${command}` : 'mlq';
  const path = (e as { path?: unknown } | null)?.path;
  if (errnoCode(e) && (e as { syscall?: unknown }).syscall !== undefined && typeof path === 'string') {
    io.err(`${prefix}: ${path}: ${fileProblem(e)}`);
    return exitCodes.usage;
  }
  const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  io.err(`${prefix}: unexpected error: ${text.replace(/\s*\n\s*/g, ' ')}`);
  return exitCodes.internal;
}

const options = {
  url: { type: 'string' },
  key: { type: 'string' },
  file: { type: 'string', short: 'f' },
  json: { type: 'string' },
  wait: { type: 'boolean', short: 'w' },
  type: { type: 'string' },
  state: { type: 'string' },
  limit: { type: 'string' },
  offset: { type: 'string' },
  delete: { type: 'boolean' },
  'idempotency-key': { type: 'string' },
  image: { type: 'string', multiple: true },
  format: { type: 'string' },
  label: { type: 'string' },
  output: { type: 'string', short: 'o' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Every command by name. */
const commands: Record<string, (ctx: Ctx) => Promise<number>> = {
  ...jobCommands,
  dataset,
  artifacts,
  download,
};

/** Prints an SDK error: its message, then one line per bad field. */
function printError(io: Io, e: MlqError): void {
  const status = e instanceof MlqApiError && e.status > 0 ? ` (${e.status} ${e.code})` : '';
  io.err(`error${status}: ${e.message}`);
  // A lone field whose words end the message already (an upload's `body: line 3: …`) is not repeated.
  const [only, ...more] = e.fields;
  if (only && !more.length && (e.message === only.message || e.message.endsWith(`: ${only.message}`))) return;
  for (const f of e.fields) io.err(`  ${f.field}: ${f.message}`);
}

/** Runs the CLI on `argv` (without node and the script) and returns the exit code. */
export async function main(argv: string[], io: Io, env: CliEnv): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    io.err(`mlq: ${(e as Error).message}\n\n${usage}`);
    return exitCodes.usage;
  }
  const { values, positionals } = parsed;
  const [name, ...args] = positionals;
  if (values.help || name === 'help') {
    io.out(usage);
    return 0;
  }
  const command = name === undefined ? undefined : commands[name];
  if (!command) {
    io.err(`${name === undefined ? 'mlq: no command' : `mlq: unknown command "${name}"`}\n\n${usage}`);
    return exitCodes.usage;
  }
  const client = new MlqClient({ baseUrl: values.url ?? env.url, apiKey: values.key ?? env.apiKey });
  try {
    return await command({ client, io, values, args, cwd: env.cwd });
  } catch (e) {
    io.status('');
    if (e instanceof UsageError) {
      io.err(`mlq ${name}: ${e.message} (see mlq --help)`);
      return exitCodes.usage;
    }
    if (e instanceof LocalFileError) {
      io.err(`mlq ${name}: ${e.message}`);
      return exitCodes.usage;
    }
    if (e instanceof MlqError) {
      printError(io, e);
      return exitCodes.apiError;
    }
    return reportUnexpected(io, e, name);
  }
}
