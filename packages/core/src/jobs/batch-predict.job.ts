/**
 * The batch-predict job: a model over every row of a dataset, streamed in chunks so memory stays flat,
 * one output line per input row in input order (`{"index", "prediction", "scores"}` as JSONL or CSV).
 *
 * Rows go to a part file that is moved to the output URI only when complete, so no reader ever sees
 * a half-written output. After each chunk the job records how many rows and bytes the part file holds
 * (`runs/<jobId>/batch-predict.json` in the artifact store); a run that finds that record (a retry,
 * or a job taken over after its worker died) cuts the part file back to the recorded size and
 * continues with the next row.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { openDataset } from '../data/open.ts';
import { checkFiniteScores } from '../ml/fit.ts';
import { acceptsShape, type ModelMeta } from '../ml/model-io.ts';
import type { ArtifactStore } from '../storage/artifact-store.ts';
import { defaultOutputKey, runPrefix } from '../storage/layout.ts';
import { resolveAndLoad } from '../ml/resolve.ts';
import { checkOutputUri } from '../storage/output-uri.ts';
import { DataError, InputError, throwIfAborted } from '../util/errors.ts';
import type { BatchPredictPayload, BatchPredictResult } from '@mlq/contract';
import { compileInference, disposeModels, predictRows } from '@mlq/engine';
import type { JobContext } from './context.ts';

/** What a run leaves for the next run of the same job. */
export interface BatchState {
  /** Hash of everything the output depends on: a record of other inputs is ignored. */
  fingerprint: string;
  /** Rows (from row 0) whose output lines are in the part file. */
  rows: number;
  /** Bytes of the part file that hold those lines (and the CSV header). */
  bytes: number;
  done?: boolean;
}

interface OutputTarget {
  /** Where lines are written until every row is done. */
  part: string;
  /** Moves the finished part file to the output URI. */
  commit(): Promise<void>;
}

/** Errno codes of a write that retrying will not fix (the path, its permissions, the disk). */
const WRITE_ERRNOS: Record<string, string> = {
  EISDIR: 'it is a directory',
  ENOTDIR: 'a part of its path is a file, not a directory',
  EEXIST: 'a part of its path exists and is not a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is exceeded',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many symbolic links',
  EXDEV: 'the part file and the output are on different file systems',
};

/**
 * Runs a file-system step of writing the output; a failure retrying cannot fix becomes a DataError
 * naming the user's URI (not the errno text of an internal path).
 */
async function writing<T>(uri: string, step: () => Promise<T>, file?: string): Promise<T> {
  try {
    return await step();
  } catch (e) {
    const why = WRITE_ERRNOS[(e as NodeJS.ErrnoException).code ?? ''];
    if (why) throw new DataError(`cannot write output.uri "${uri}": ${file ? `${file}: ` : ''}${why}`);
    throw e;
  }
}

/**
 * Where the part file lives: beside a file:// target (same directory, so the final rename is
 * atomic), in the run's area of a file store, or in a local temp file uploaded at the end. A
 * user-given URI is checked again here (see storage/output-uri.ts): the API may not see this machine.
 */
async function openTarget(uri: string, userGiven: boolean, ctx: JobContext): Promise<OutputTarget> {
  const store = ctx.store;
  const key = userGiven ? undefined : store.keyOf(uri);
  if (key !== undefined) {
    const localPart = store.localPath(`${runPrefix(ctx.jobId)}/batch-predict.part`);
    const dest = store.localPath(key);
    if (localPart !== undefined && dest !== undefined) {
      await mkdir(path.dirname(localPart), { recursive: true });
      return {
        part: localPart,
        commit: async () => (
          await mkdir(path.dirname(dest), { recursive: true }),
          await rename(localPart, dest)
        ),
      };
    }
    // Other stores cannot append: write locally, then upload (a resume needs the same machine).
    const tmp = path.join(os.tmpdir(), `mlq-${ctx.jobId}-batch-predict.part`);
    return { part: tmp, commit: async () => (await store.putFile(key, tmp), await rm(tmp, { force: true })) };
  }
  const check = () =>
    checkOutputUri(uri, { dataRoots: ctx.dataRoots, store }).catch((e: unknown) => {
      throw e instanceof InputError ? new InputError(`output.uri: ${e.message}`) : e;
    });
  let dest = await check();
  await writing(uri, () => mkdir(path.dirname(dest), { recursive: true }));
  // Check again now that the folders exist: symlinks among them could not be resolved before.
  dest = await check();
  const part = path.join(path.dirname(dest), `.${path.basename(dest)}.${ctx.jobId}.part`);
  return { part, commit: () => writing(uri, () => rename(part, dest)) };
}

const csvField = (s: string) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/**
 * Formats the output lines of one chunk. Scores keep 7 significant digits: float32 holds about that
 * many, and toPrecision is the cheapest exact-enough formatting (String() prints 17 digits).
 */
function formatRows(
  format: 'jsonl' | 'csv',
  start: number,
  scores: Float32Array,
  k: number,
  labels: string[],
): string {
  let out = '';
  const n = scores.length / k;
  for (let i = 0; i < n; i++) {
    const o = i * k;
    let best = 0;
    let row = '';
    for (let c = 0; c < k; c++) {
      const v = scores[o + c]!;
      if (v > scores[o + best]!) best = c;
      row += (c ? ',' : '') + v.toPrecision(7);
    }
    out +=
      format === 'jsonl'
        ? `{"index":${start + i},"prediction":${labels[best]},"scores":[${row}]}\n`
        : `${start + i},${labels[best]},${row}\n`;
  }
  return out;
}

/** The class count, the pre-formatted prediction of each class, and the CSV header. */
function outputLayout(model: tf.LayersModel, meta: ModelMeta, fmt: 'jsonl' | 'csv') {
  const shape = model.outputs[0]!.shape;
  const k = (shape[shape.length - 1] as number | null) ?? meta.numClasses;
  const names = meta.classNames?.length === k ? meta.classNames : undefined;
  const labels = Array.from({ length: k }, (_, c) =>
    names ? (fmt === 'jsonl' ? JSON.stringify(names[c]) : csvField(names[c]!)) : String(c),
  );
  const scoreColumns = Array.from({ length: k }, (_, c) => csvField(`score_${names?.[c] ?? c}`));
  return { k, labels, header: fmt === 'csv' ? `index,prediction,${scoreColumns.join(',')}\n` : '' };
}

/** Where a run of job `jobId` records its progress in the artifact store. */
const stateKeyOf = (jobId: string) => `${runPrefix(jobId)}/batch-predict.json`;

/** What the last run of job `jobId` recorded, if it recorded anything. */
export async function recordedBatchState(
  jobId: string,
  store: ArtifactStore,
): Promise<BatchState | undefined> {
  const key = stateKeyOf(jobId);
  if (!(await store.exists(key))) return undefined;
  return JSON.parse((await store.get(key)).toString('utf8')) as BatchState;
}

/** Where to continue: the recorded rows and bytes, when the part file still holds them all. */
async function resumePoint(
  state: BatchState | undefined,
  part: string,
): Promise<{ start: number; bytes: number }> {
  if (!state || state.rows === 0) return { start: 0, bytes: 0 };
  const size = await stat(part).then(
    (s) => s.size,
    () => -1,
  );
  // Bytes past the record are a chunk whose run died before recording it: they are cut off.
  return size >= state.bytes ? { start: state.rows, bytes: state.bytes } : { start: 0, bytes: 0 };
}

/** Runs a batch-predict job; see the module comment for how output and resume work. */
export async function runBatchPredict(p: BatchPredictPayload, ctx: JobContext): Promise<BatchPredictResult> {
  const m = await resolveAndLoad(p.model, ctx.registry, ctx.store, ctx.dataRoots, { locate: ctx.locate });
  const { meta, model } = m.loaded;
  // Compiled for inference once (batch norms folded, activations fused): the weights do not change.
  const plan = compileInference(model);
  try {
    // Labels of the input are not used: open it without the model's classes, so unknown ones are fine.
    const source = openDataset(p.input, {
      dataRoots: ctx.dataRoots,
      locate: ctx.locate,
      imageMaxPixels: ctx.imageMaxPixels,
    });
    const info = await source.info();
    const want = meta.inputShape;
    if (!acceptsShape(want, info.featureShape)) {
      throw new InputError(
        `model ${p.model} takes input [${want.join(', ')}] but the input has [${info.featureShape.join(', ')}]`,
      );
    }
    const fmt = p.output.format;
    const { k, labels, header } = outputLayout(model, meta, fmt);
    const outUri = p.output.uri ?? ctx.store.uriOf(defaultOutputKey(ctx.jobId, fmt));

    const stateKey = stateKeyOf(ctx.jobId);
    const fingerprint = createHash('sha256')
      .update(JSON.stringify([m.uri, p.input, p.output, p.chunkSize, info.hash]))
      .digest('hex')
      .slice(0, 16);
    const prior = await recordedBatchState(ctx.jobId, ctx.store);
    const same = prior?.fingerprint === fingerprint ? prior : undefined;
    if (same?.done) {
      await ctx.log(`already done: ${info.rows} rows at ${outUri}`);
      return { outputUri: outUri, rows: info.rows };
    }

    const target = await openTarget(outUri, p.output.uri !== undefined, ctx);
    const from = await resumePoint(same, target.part);
    const start = from.start;
    let bytes = from.bytes;
    if (same && same.rows > 0 && start === 0) {
      await ctx.log('the part file of the last run is missing or short: starting over');
    }
    const fh = await writing(
      outUri,
      () => open(target.part, start > 0 ? 'r+' : 'w'),
      `its part file ${target.part}`,
    );
    let closed = false;
    try {
      await fh.truncate(bytes);
      if (start === 0 && header) bytes += (await writing(outUri, () => fh.write(header, 0))).bytesWritten;
      await ctx.log(
        start > 0
          ? `resuming at row ${start} of ${info.rows} (attempt ${ctx.attempt})`
          : `predicting ${info.rows} rows with ${m.uri} (${ctx.backend}), chunks of ${p.chunkSize} → ${outUri}`,
      );
      const t0 = performance.now();
      let done = start;
      // Each chunk's write → progress → record chain runs while the next chunk is computed; the chains
      // run one at a time and in this order, so a record never names bytes that are not written yet.
      let pending: Promise<void> = Promise.resolve();
      try {
        for await (const c of source.chunks({ chunkSize: p.chunkSize, start })) {
          // A shutting-down worker hands the job back; the recorded progress lets the next owner continue.
          throwIfAborted(ctx.signal);
          const scores = predictRows(plan, c.x, [c.count, ...info.featureShape]);
          checkFiniteScores(scores, k, c.start);
          const buf = Buffer.from(formatRows(fmt, c.start, scores, k, labels));
          const rows = c.start + c.count;
          await pending;
          pending = (async () => {
            await writing(outUri, () => fh.write(buf, 0, buf.length, bytes));
            bytes += buf.length;
            done = rows;
            // Progress before the record: in a sandbox whose worker died this call fails, so an
            // orphaned process stops before it records rows that the job's new owner may be rewriting.
            await ctx.progress({ rows, total: info.rows });
            await ctx.store.put(stateKey, JSON.stringify({ fingerprint, rows, bytes } satisfies BatchState));
          })();
          // Handled now (awaiting it later still throws): a rejection seen unhandled would kill the process.
          pending.catch(() => undefined);
        }
      } finally {
        // On an error too: the last chain must end before the file is closed.
        await pending.catch(() => undefined);
      }
      await pending;
      if (done !== info.rows) throw new DataError(`the input gave ${done} rows, expected ${info.rows}`);
      await writing(outUri, () => fh.sync());
      await fh.close();
      closed = true;
      await target.commit();
      await ctx.store.put(
        stateKey,
        JSON.stringify({ fingerprint, rows: done, bytes, done: true } satisfies BatchState),
      );
      const secs = (performance.now() - t0) / 1000;
      await ctx.log(
        `wrote ${info.rows} rows to ${outUri} (${Math.round((info.rows - start) / Math.max(secs, 1e-3))} rows/s)`,
      );
      return { outputUri: outUri, rows: info.rows };
    } catch (e) {
      // Bad data or an unwritable output will not get better: drop the part file. Anything else
      // keeps it for the next run.
      if (e instanceof DataError || e instanceof InputError) {
        if (!closed) await fh.close().catch(() => undefined);
        closed = true;
        // Never masks the error being reported (e.g. a part path that is a directory).
        await rm(target.part, { force: true }).catch(() => undefined);
      }
      throw e;
    } finally {
      if (!closed) await fh.close().catch(() => undefined);
    }
  } finally {
    plan.dispose();
    disposeModels(model);
  }
}
