/**
 * `mlq dataset upload|list|show|delete` and `mlq artifacts` / `mlq download`: files to and from the API.
 * Uploads stream the file from disk (`fs.openAsBlob`) with a progress bar on a terminal.
 */
import { openAsBlob } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { MlqApiError } from '../errors.ts';
import { formatFromName, type UploadFormat } from '../upload.ts';
import { UsageError, type Ctx } from './commands.ts';
import { errnoCode, fileProblem, LocalFileError, readableFile, writableFile } from './local-files.ts';
import { formatDuration, formatTable } from './format.ts';

const formats = ['csv', 'jsonl', 'zip', 'tar.gz'];

const mb = (n: number) => (n / 1e6).toFixed(1);

/** `data.csv [██████░░░░░░] 45%  90.1/200.0 MB  85.2 MB/s  ETA 0:01`, fitted to `columns`. */
export function formatUploadBar(
  label: string,
  sent: number,
  total: number | undefined,
  seconds: number,
  columns = 100,
): string {
  const rate = seconds > 0 ? sent / seconds : 0;
  if (!total) return `${label} ${mb(sent)} MB  ${mb(rate)} MB/s`.slice(0, columns - 1);
  const frac = Math.min(1, sent / total);
  const eta = rate > 0 ? (total - sent) / rate : Number.NaN;
  const tail = `${String(Math.round(frac * 100)).padStart(3)}%  ${mb(sent)}/${mb(total)} MB  ${mb(rate)} MB/s  ETA ${formatDuration(eta)}`;
  const width = Math.max(10, Math.min(30, columns - label.length - tail.length - 5));
  const full = Math.round(frac * width);
  const line = `${label} [${'█'.repeat(full)}${'░'.repeat(width - full)}] ${tail}`;
  return line.length < columns ? line : `${line.slice(0, Math.max(0, columns - 2))}…`;
}

function need(ctx: Ctx, i: number, name: string): string {
  const v = ctx.args[i];
  if (v === undefined || v === '') throw new UsageError(`missing <${name}>`);
  return v;
}

/** A directory cannot be uploaded as it is: say what to do with it instead. */
async function refuseDirectory(cwd: string, file: string): Promise<void> {
  const abs = path.resolve(cwd, file);
  if (!(await stat(abs).catch(() => undefined))?.isDirectory()) return;
  throw new LocalFileError(
    `cannot upload ${file}: it is a directory; upload an archive of it (one folder per class: ` +
      `zip -r ${path.basename(abs)}.zip ${file}, or tar czf ${path.basename(abs)}.tar.gz ${file}), or, where ` +
      `the API and workers can read it, name it in a job in place: {"format": "image-folder", "uri": "${pathToFileURL(abs).href}"}`,
  );
}

async function upload(ctx: Ctx): Promise<number> {
  const [name, file] = [need(ctx, 1, 'name'), need(ctx, 2, 'file')];
  const stdin = file === '-';
  if (!stdin) await refuseDirectory(ctx.cwd, file);
  const format = (ctx.values.format ?? (stdin ? undefined : formatFromName(file))) as
    UploadFormat | undefined;
  if (!format || !formats.includes(format))
    throw new UsageError(
      `cannot tell the format of ${stdin ? 'standard input' : file}: give --format ${formats.join('|')}`,
    );
  if (stdin && process.stdin.isTTY)
    throw new UsageError('- reads the file from standard input: pipe it in (mlq dataset upload x - < file)');
  // openAsBlob only stats the file (and throws at once, without an errno, when that fails); a
  // directory or an unreadable file would fail later, mid-request, looking like a network error.
  const data = stdin ? process.stdin : await openAsBlob(await readableFile(ctx.cwd, file));
  const { io } = ctx;
  const t0 = performance.now();
  let last = 0;
  const label = stdin ? 'stdin' : path.basename(file);
  const onProgress = (sent: number, total: number | undefined) => {
    const now = performance.now();
    // A terminal redraws at most 10 times a second; a pipe gets a line per 10%, the last one (100%)
    // once the API has taken the file: bytes sent are not an upload accepted (a 413 comes after them).
    if (io.isTTY && (now - last > 100 || sent === total)) {
      last = now;
      io.status(formatUploadBar(label, sent, total, (now - t0) / 1000, io.columns));
    } else if (
      !io.isTTY &&
      total &&
      sent < total &&
      Math.floor((sent / total) * 10) > Math.floor((last / total) * 10)
    ) {
      last = sent;
      io.out(`uploaded ${Math.round((sent / total) * 100)}% (${mb(sent)} MB)`);
    }
  };
  const v = await ctx.client.uploadDataset(name, data, { format, label: ctx.values.label, onProgress });
  if (io.isTTY) io.status('');
  else if (!stdin) io.out(`uploaded 100% (${mb(v.bytes)} MB)`);
  const secs = (performance.now() - t0) / 1000;
  io.out(
    `uploaded ${label} as ${v.uri} (${v.format}, ${v.rows} rows, ${mb(v.bytes)} MB in ${secs.toFixed(1)} s)`,
  );
  if (v.classes)
    io.out(
      `classes: ${Object.entries(v.classes)
        .map(([c, n]) => `${c}=${n}`)
        .join(' ')}`,
    );
  // Valid uploads the API thinks jobs may trip on (no label column, JSONL without "y"): stderr, still exit 0.
  for (const w of v.warnings ?? []) io.err(`warning: ${w}`);
  return 0;
}

async function list(ctx: Ctx): Promise<number> {
  const all = await ctx.client.listDatasets();
  const rows = all.map((d) => [d.name, String(d.latestVersion), d.versions.join(','), d.format, d.updatedAt]);
  ctx.io.out(
    rows.length ? formatTable(['NAME', 'LATEST', 'VERSIONS', 'FORMAT', 'UPDATED'], rows) : 'no datasets',
  );
  return 0;
}

async function show(ctx: Ctx): Promise<number> {
  const versions = await ctx.client.getDataset(need(ctx, 1, 'name'));
  const rows = versions.map((v) => [
    v.uri,
    v.format + (v.archive ? ` (${v.archive})` : ''),
    String(v.rows),
    v.classes ? String(Object.keys(v.classes).length) : '-',
    mb(v.bytes),
    v.sha256.slice(0, 12),
    v.createdAt,
  ]);
  ctx.io.out(formatTable(['URI', 'FORMAT', 'ROWS', 'CLASSES', 'MB', 'SHA256', 'CREATED'], rows));
  return 0;
}

async function remove(ctx: Ctx): Promise<number> {
  const [name, v] = [need(ctx, 1, 'name'), need(ctx, 2, 'version')];
  if (!/^\d+$/.test(v)) throw new UsageError(`<version> must be a whole number, not "${v}"`);
  await ctx.client.deleteDatasetVersion(name, Number(v));
  ctx.io.out(`deleted dataset://${name}@${v}`);
  return 0;
}

const sub: Record<string, (ctx: Ctx) => Promise<number>> = { upload, list, show, delete: remove };

/** `mlq dataset <upload|list|show|delete> ...`. */
export async function dataset(ctx: Ctx): Promise<number> {
  const name = need(ctx, 0, 'upload|list|show|delete');
  const run = sub[name];
  if (!run) throw new UsageError(`unknown dataset command "${name}"; use upload, list, show or delete`);
  return run(ctx);
}

/** `mlq artifacts <id>`: a job's outputs. */
export async function artifacts(ctx: Ctx): Promise<number> {
  const list = await ctx.client.listArtifacts(need(ctx, 0, 'id'));
  const rows = list.map((a) => [
    a.name,
    a.kind,
    a.bytes === undefined ? '-' : String(a.bytes),
    a.href ? 'yes' : 'no',
    a.uri,
  ]);
  ctx.io.out(rows.length ? formatTable(['NAME', 'KIND', 'BYTES', 'DOWNLOAD', 'URI'], rows) : 'no artifacts');
  return 0;
}

/** `mlq download <id> <name> [-o path]`: streams an artifact to a file (default: its name). */
export async function download(ctx: Ctx): Promise<number> {
  const [id, name] = [need(ctx, 0, 'id'), need(ctx, 1, 'name')];
  const out = ctx.values.output ?? name;
  // Checked before asking the API, so a mistyped -o costs no download and leaves no file behind.
  const outPath = await writableFile(ctx.cwd, out);
  const res = await ctx.client.downloadArtifact(id, name);
  if (!res.body) throw new UsageError(`the API sent no body for ${name}`);
  const fh = await open(outPath, 'w').catch((e: unknown) => {
    throw new LocalFileError(`cannot write ${out}: ${fileProblem(e)}`);
  });
  try {
    await pipeline(Readable.fromWeb(res.body as NodeReadableStream<Uint8Array>), fh.createWriteStream());
  } catch (e) {
    // An errno error is the file's (a full disk); anything else is the answer breaking off.
    if (errnoCode(e) && (e as { syscall?: unknown }).syscall !== undefined)
      throw new LocalFileError(`cannot write ${out}: ${fileProblem(e)}`);
    throw new MlqApiError(
      0,
      'network_error',
      `the download of ${name} broke off: ${fileProblem(e)}`,
      undefined,
      {
        cause: e,
      },
    );
  } finally {
    await fh.close().catch(() => undefined);
  }
  ctx.io.out(`saved ${name} of job ${id} to ${out}`);
  return 0;
}
