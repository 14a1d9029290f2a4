/**
 * The `{"format": "jsonl"}` dataset (`{"x": [...], "y": label}` per line; `x` may be nested arrays,
 * `y` may be left out for prediction). Shares block reading, labels and the spill file with csv
 * (lines.ts).
 */
import { createHash } from 'node:crypto';
import type { z } from 'zod';
import type { jsonlDatasetSchema } from '@mlq/contract';
import { DataError } from '../util/errors.ts';
import { lineAt, type DatasetInfo, type DatasetSource, type OpenDatasetOptions } from './dataset.ts';
import {
  fileFingerprint,
  grow,
  LabelCoder,
  LineCursor,
  lineFile,
  readBlocks,
  Spill,
  spilledChunks,
  type Scan,
} from './lines.ts';
import { float32Problem, isFloat32 } from './values.ts';

export type JsonlSpec = z.infer<typeof jsonlDatasetSchema>;

/** Shape of a (possibly nested) array of numbers, checking that it is rectangular. */
function shapeOf(v: unknown): number[] {
  const shape: number[] = [];
  while (Array.isArray(v)) {
    shape.push(v.length);
    v = v[0];
  }
  return shape;
}

/** Writes the numbers of `v` (of shape `shape`) into `out` from `at`; returns false on a bad value. */
function flatten(v: unknown, shape: number[], depth: number, out: Float32Array, at: { i: number }): boolean {
  if (!Array.isArray(v) || v.length !== shape[depth]) return false;
  if (depth === shape.length - 1) {
    for (const n of v) {
      if (typeof n !== 'number' || !isFloat32(n)) return false;
      out[at.i++] = n;
    }
    return true;
  }
  return v.every((c) => flatten(c, shape, depth + 1, out, at));
}

/** What is wrong with an `x` that `flatten` refused: the place of the first bad element, or its shape. */
function xProblem(v: unknown, shape: number[], place = '"x"'): string | undefined {
  const like = `shape [${shape.join(', ')}] like the first row`;
  if (!Array.isArray(v)) return `${place} is ${JSON.stringify(v)?.slice(0, 40)}, expected an array (${like})`;
  if (v.length !== shape[0]) return `${place} has ${v.length} elements, expected ${shape[0]} (${like})`;
  for (const [i, c] of v.entries()) {
    const at = `${place}[${i}]`;
    if (shape.length > 1) {
      const p = xProblem(c, shape.slice(1), at);
      if (p) return p;
    } else if (typeof c !== 'number') return `${at} is ${JSON.stringify(c)?.slice(0, 40)}, not a number`;
    else if (!isFloat32(c)) return `${at} ${float32Problem(String(c), c)}`;
  }
  return undefined;
}

interface Row {
  x: unknown;
  y?: unknown;
}

/** Opens a JSONL dataset; the file is read when `info()` or `chunks()` is first called. */
export function jsonlSource(spec: JsonlSpec, opts: OpenDatasetOptions): DatasetSource {
  /** The first pass: validates every line, decodes it into the spill, hashes, counts, finds classes. */
  const scan = async (): Promise<Scan> => {
    const local = await lineFile(spec.uri, opts.dataRoots, 'jsonl', opts.shownAs?.name);
    // Messages name what the user gave (a dataset:// or remote URI), not a cache path.
    const file = opts.shownAs?.name ?? local;
    const hash = createHash('sha256').update('jsonl\n');
    const coder = new LabelCoder(opts.classNames);
    const limit = spec.limit ?? Infinity;
    const cur = new LineCursor();
    let shape: number[] | undefined;
    let labelled = false;
    let spill: Spill | undefined;
    // One block's decoded records: features through `f32`, provisional label ids through `i32`.
    let records = new ArrayBuffer(0);
    let [f32, i32] = [new Float32Array(0), new Int32Array(0)];
    let n = 0;
    let full = false;
    for await (const b of readBlocks(local, file)) {
      cur.reset(b);
      let used = b.end;
      let k = 0;
      while (cur.next()) {
        const text = cur.buf.toString('utf8', cur.s, cur.e);
        if (!text.trim()) continue;
        if (n === limit) {
          [full, used] = [true, cur.s];
          break;
        }
        const where = lineAt(file, cur.line);
        let row: Row;
        try {
          row = JSON.parse(text) as Row;
        } catch (e) {
          throw new DataError(`${where}: not JSON: ${(e as Error).message}`);
        }
        if (typeof row !== 'object' || row === null || !('x' in row))
          throw new DataError(`${where}: expected an object {"x": [...], "y": label}`);
        if (!shape) {
          shape = shapeOf(row.x);
          if (shape.length === 0 || shape.includes(0))
            throw new DataError(`${where}: "x" must be a non-empty array of numbers`);
          labelled = row.y !== undefined;
          spill = await Spill.create(
            shape.reduce((a, c) => a * c, 1),
            labelled,
          );
        }
        const words = spill!.words;
        if ((k + 1) * words * 4 > records.byteLength) {
          records = grow(records, (k + 1) * words * 4);
          [f32, i32] = [new Float32Array(records), new Int32Array(records)];
        }
        if (!flatten(row.x, shape, 0, f32, { i: k * words })) {
          const problem = xProblem(row.x, shape) ?? `"x" must be numbers of shape [${shape.join(', ')}]`;
          throw new DataError(`${where}: ${problem}`);
        }
        if ((row.y !== undefined) !== labelled)
          throw new DataError(`${where}: "y" must be given on every line or on none`);
        if (labelled) i32[k * words + words - 1] = coder.add(labelText(row.y, where), file, cur.line);
        k++;
        n++;
      }
      if (k > 0) await spill!.append(records, k);
      hash.update(b.buf.subarray(0, used));
      if (full) break;
    }
    if (!shape || !spill) throw new DataError(`${file}: the file has no rows`);
    const labels = coder.finish();
    const info: DatasetInfo = {
      featureShape: shape,
      numClasses: labels.numClasses,
      rows: n,
      hash: hash.digest('hex').slice(0, 16),
    };
    if (labels.classNames) info.classNames = labels.classNames;
    if (spill.labelled) info.classCounts = labels.classCounts;
    return { info, spill, remap: labels.remap };
  };
  let first: Promise<Scan> | undefined;
  const get = () => (first ??= scan());
  return {
    info: async () => (await get()).info,
    chunks: spilledChunks(scan, get),
    fingerprint: async () =>
      fileFingerprint(
        await lineFile(spec.uri, opts.dataRoots, 'jsonl', opts.shownAs?.name),
        JSON.stringify({ f: 'jsonl', classNames: opts.classNames ?? null }),
        opts.shownAs?.name,
      ),
  };
}

/**
 * A label as text, as a CSV's label column would hold it: a string as it is, a number as JavaScript
 * writes it (`3`, `-1`, `0.5`). LabelCoder (lines.ts) then makes non-negative integers class indices
 * and anything else class names, the same for both formats. Other JSON values are refused.
 */
export function labelText(y: unknown, where: string): string {
  if (typeof y === 'string') return y;
  if (typeof y === 'number' && Number.isFinite(y)) return String(y);
  throw new DataError(
    `${where}: "y" must be a number or a class name (a string), got ${JSON.stringify(y)?.slice(0, 40)}`,
  );
}
