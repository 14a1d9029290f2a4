/** The CLI's commands: each takes parsed arguments and prints through `Io`; errors go up to main. */
import { readFile } from 'node:fs/promises';
import { text as streamText } from 'node:stream/consumers';
import type { MlqClient } from '../client.ts';
import { JobFailedError } from '../errors.ts';
import { imageInstance } from '../refs.ts';
import {
  isFinalState,
  isJobType,
  jobTypes,
  type AnyJob,
  type JobName,
  type JobState,
  type PredictInstance,
} from '../types.ts';
import {
  formatFinalLine,
  formatLabels,
  formatProgressBar,
  formatProgressCell,
  formatTable,
  PlainProgressLines,
} from './format.ts';
import { readableFile } from './local-files.ts';

/** Where the CLI prints. `status` rewrites the current terminal line (TTY only). */
export interface Io {
  out(line: string): void;
  err(line: string): void;
  status(line: string): void;
  isTTY: boolean;
  columns: number;
}

/** A mistake in how the CLI was called: exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The options every command may receive (see main.ts for their definitions). */
export interface Values {
  file?: string | undefined;
  json?: string | undefined;
  wait?: boolean | undefined;
  type?: string | undefined;
  state?: string | undefined;
  limit?: string | undefined;
  offset?: string | undefined;
  delete?: boolean | undefined;
  'idempotency-key'?: string | undefined;
  image?: string[] | undefined;
  format?: string | undefined;
  label?: string | undefined;
  output?: string | undefined;
}

export interface Ctx {
  client: MlqClient;
  io: Io;
  values: Values;
  args: string[];
  /** The caller's working directory: relative `--file` paths start there. */
  cwd: string;
}

function arg(ctx: Ctx, i: number, name: string): string {
  const v = ctx.args[i];
  if (v === undefined || v === '') throw new UsageError(`missing <${name}>`);
  return v;
}

function noMoreArgs(ctx: Ctx, n: number): void {
  if (ctx.args.length > n) throw new UsageError(`unexpected argument "${ctx.args[n]}"`);
}

function intOption(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`${name} must be a whole number, not "${v}"`);
  return Number(v);
}

/** This process's standard input, whole, as UTF-8 (`--file -`). */
async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new UsageError('--file - reads standard input: pipe the JSON in');
  return streamText(process.stdin);
}

/** The JSON of `--file <path>` (relative to `cwd`; `-`: standard input) or `--json '<text>'`. */
async function readJsonInput(values: Values, cwd: string): Promise<unknown> {
  if (values.file !== undefined && values.json !== undefined)
    throw new UsageError('give --file or --json, not both');
  let text: string;
  let from: string;
  if (values.file === '-') {
    from = 'stdin';
    text = await readStdin();
  } else if (values.file !== undefined) {
    from = values.file;
    text = await readFile(await readableFile(cwd, values.file), 'utf8');
  } else if (values.json !== undefined) {
    from = '--json';
    text = values.json;
  } else {
    throw new UsageError('give the JSON with --file <path> or --json <text>');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new UsageError(`${from} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Follows a job to its end, drawing progress; returns the exit code (0 completed, 1 failed/cancelled). */
async function follow(ctx: Ctx, id: string): Promise<number> {
  const { io } = ctx;
  const onState = (s: JobState) => {
    if (isFinalState(s)) return; // the final line says it
    if (io.isTTY) io.status(`${s}…`);
    else io.out(`state ${s}`);
  };
  // A pipe gets one line per epoch, or per tenth of the rows or trials; the bar on a terminal moves
  // within epochs too.
  const plain = new PlainProgressLines();
  const onProgress = (p: unknown) => {
    if (io.isTTY) return io.status(formatProgressBar(p, io.columns));
    const line = plain.line(p);
    if (line !== undefined) io.out(line);
  };
  let job: AnyJob;
  try {
    job = await ctx.client.waitForJob(id, { onProgress, onState });
  } catch (e) {
    if (!(e instanceof JobFailedError)) throw e;
    job = e.job;
  }
  if (io.isTTY) io.status('');
  io.out(formatFinalLine(job));
  return job.state === 'completed' ? 0 : 1;
}

async function submit(ctx: Ctx): Promise<number> {
  const type = arg(ctx, 0, 'type');
  if (!isJobType(type))
    throw new UsageError(`unknown job type "${type}"; the types are ${jobTypes.join(', ')}`);
  noMoreArgs(ctx, 1);
  const payload = await readJsonInput(ctx.values, ctx.cwd);
  const job = await ctx.client.submitJob(type, payload as never, {
    idempotencyKey: ctx.values['idempotency-key'],
  });
  ctx.io.out(`submitted ${job.type} job ${job.id} (${job.state})`);
  return ctx.values.wait ? follow(ctx, job.id) : 0;
}

async function jobs(ctx: Ctx): Promise<number> {
  noMoreArgs(ctx, 0);
  const { type, state } = ctx.values;
  if (type !== undefined && !isJobType(type))
    throw new UsageError(`unknown --type "${type}"; the types are ${jobTypes.join(', ')}`);
  const page = await ctx.client.listJobs({
    ...(type !== undefined ? { type: type as JobName } : {}),
    ...(state !== undefined ? { state: state as JobState } : {}),
    ...(ctx.values.limit !== undefined ? { limit: intOption(ctx.values.limit, '--limit') } : {}),
    ...(ctx.values.offset !== undefined ? { offset: intOption(ctx.values.offset, '--offset') } : {}),
  });
  const rows = page.jobs.map((j) => [j.id, j.type, j.state, formatProgressCell(j.progress), j.createdAt]);
  ctx.io.out(rows.length ? formatTable(['ID', 'TYPE', 'STATE', 'PROGRESS', 'CREATED'], rows) : 'no jobs');
  return 0;
}

async function watch(ctx: Ctx): Promise<number> {
  const id = arg(ctx, 0, 'id');
  noMoreArgs(ctx, 1);
  return follow(ctx, id);
}

async function logs(ctx: Ctx): Promise<number> {
  const id = arg(ctx, 0, 'id');
  noMoreArgs(ctx, 1);
  for (const line of await ctx.client.jobLogs(id)) ctx.io.out(line);
  return 0;
}

async function cancel(ctx: Ctx): Promise<number> {
  const id = arg(ctx, 0, 'id');
  noMoreArgs(ctx, 1);
  const r = await ctx.client.cancelJob(id);
  ctx.io.out(`${r.id}: ${r.state}`);
  return 0;
}

async function retry(ctx: Ctx): Promise<number> {
  const id = arg(ctx, 0, 'id');
  noMoreArgs(ctx, 1);
  const job = await ctx.client.retryJob(id);
  ctx.io.out(`${job.id}: ${job.state}`);
  return ctx.values.wait ? follow(ctx, job.id) : 0;
}

async function models(ctx: Ctx): Promise<number> {
  noMoreArgs(ctx, 0);
  const list = await ctx.client.listModels();
  const rows = list.map((m) => [m.name, String(m.latestVersion), formatLabels(m.labels), m.updatedAt]);
  ctx.io.out(rows.length ? formatTable(['NAME', 'LATEST', 'LABELS', 'UPDATED'], rows) : 'no models');
  return 0;
}

async function model(ctx: Ctx): Promise<number> {
  const name = arg(ctx, 0, 'name');
  noMoreArgs(ctx, 1);
  const m = await ctx.client.getModel(name);
  const metric = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(4));
  const rows = m.versions.map((v) => [
    String(v.version),
    formatLabels(v.labels),
    metric(v.metrics.loss),
    metric(v.metrics.acc),
    metric(v.metrics.valAcc),
    v.base ? v.base.ref : '-',
    v.jobId,
    v.createdAt,
  ]);
  ctx.io.out(`${m.name}  labels: ${formatLabels(m.labels) || '-'}`);
  ctx.io.out(formatTable(['VERSION', 'LABELS', 'LOSS', 'ACC', 'VAL_ACC', 'BASE', 'JOB', 'CREATED'], rows));
  return 0;
}

async function label(ctx: Ctx): Promise<number> {
  const name = arg(ctx, 0, 'name');
  const lbl = arg(ctx, 1, 'label');
  if (ctx.values.delete) {
    noMoreArgs(ctx, 2);
    await ctx.client.deleteLabel(name, lbl);
    ctx.io.out(`${name}: label ${lbl} removed`);
    return 0;
  }
  const version = intOption(arg(ctx, 2, 'version'), '<version>') as number;
  noMoreArgs(ctx, 3);
  const r = await ctx.client.setLabel(name, lbl, version);
  ctx.io.out(`${r.name}@${r.label} → version ${r.version}`);
  return 0;
}

/** `--image a.png --image b.jpg`: the files as `{"b64"}` instances, for an image model. */
async function imageInstances(files: string[], cwd: string): Promise<PredictInstance[]> {
  return Promise.all(files.map(async (f) => imageInstance(await readFile(await readableFile(cwd, f)))));
}

async function predict(ctx: Ctx): Promise<number> {
  const ref = arg(ctx, 0, 'ref');
  noMoreArgs(ctx, 1);
  const images = ctx.values.image ?? [];
  if (images.length) {
    if (ctx.values.file !== undefined || ctx.values.json !== undefined)
      throw new UsageError('give --image, or --file / --json, not both');
    ctx.io.out(JSON.stringify(await ctx.client.predict(ref, await imageInstances(images, ctx.cwd))));
    return 0;
  }
  const input = await readJsonInput(ctx.values, ctx.cwd);
  const obj =
    typeof input === 'object' && input !== null && !Array.isArray(input)
      ? (input as Record<string, unknown>)
      : undefined;
  let out: unknown;
  if (Array.isArray(input)) out = await ctx.client.predict(ref, input as PredictInstance[]);
  else if (obj && Array.isArray(obj.instances))
    out = await ctx.client.predict(ref, obj.instances as PredictInstance[]);
  else if (obj && 'inputs' in obj) out = await ctx.client.predictColumnar(ref, obj.inputs as never);
  else
    throw new UsageError(
      'predict input must be a JSON array of instances, {"instances": [...]} or {"inputs": ...}',
    );
  ctx.io.out(JSON.stringify(out));
  return 0;
}

async function workers(ctx: Ctx): Promise<number> {
  noMoreArgs(ctx, 0);
  const list = await ctx.client.workers();
  const rows = list.map((w) => [
    w.host,
    String(w.pid),
    w.queues.join(','),
    w.backend,
    String(w.currentJobs?.length ?? 0),
  ]);
  ctx.io.out(
    rows.length ? formatTable(['HOST', 'PID', 'QUEUES', 'BACKEND', 'JOBS'], rows) : 'no live workers',
  );
  return 0;
}

/** Every command by name. */
export const commands: Record<string, (ctx: Ctx) => Promise<number>> = {
  submit,
  jobs,
  watch,
  logs,
  cancel,
  retry,
  models,
  model,
  label,
  predict,
  workers,
};
