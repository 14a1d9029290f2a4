/**
 * The `{"format": "jsonl"}` dataset (`{"x": [...], "y": label}` per line; `x` may be nested arrays,
 * `y` may be left out for prediction), and what the line-oriented readers share: reading a file in
 * blocks of whole lines, and turning label text into class indices.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { z } from 'zod';
import type { jsonlDatasetSchema } from '../jobs/catalog.ts';
import { resolveDataPath } from '../storage/data-uri.ts';
import { DataError } from '../util/errors.ts';
import type { Chunk, DatasetInfo, DatasetSource } from './dataset.ts';
import type { OpenDatasetOptions } from './open.ts';

export type JsonlSpec = z.infer<typeof jsonlDatasetSchema>;

const BLOCK = 1 << 20;
const MAX_LINE = 64 << 20;

/** `buf[0 .. end)` holds whole lines (the last block of a file may end without a newline). */
export interface Block {
  buf: Buffer;
  end: number;
}

/**
 * Reads a file in ~1 MiB blocks of whole lines, reusing one buffer: memory stays flat whatever the
 * file's size. A block is valid until the next one is requested.
 */
export async function* readBlocks(file: string): AsyncGenerator<Block> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DataError(code === 'ENOENT' ? `file not found: ${file}` : `cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    let buf = Buffer.allocUnsafe(BLOCK);
    let carry = 0;
    for (;;) {
      if (carry === buf.length) {
        if (buf.length >= MAX_LINE) throw new DataError(`${file}: a line is longer than ${MAX_LINE >> 20} MiB`);
        const grown = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(grown, 0, 0, carry);
        buf = grown;
      }
      let bytesRead: number;
      try {
        ({ bytesRead } = await fh.read(buf, carry, buf.length - carry, null));
      } catch (e) {
        throw new DataError(`cannot read ${file}: ${(e as Error).message}`);
      }
      if (bytesRead === 0) {
        if (carry > 0) yield { buf, end: carry };
        return;
      }
      const filled = carry + bytesRead;
      const lastNl = buf.lastIndexOf(10, filled - 1);
      if (lastNl < 0) {
        carry = filled;
        continue;
      }
      yield { buf, end: lastNl + 1 };
      carry = filled - lastNl - 1;
      buf.copyWithin(0, lastNl + 1, filled);
    }
  } finally {
    await fh.close();
  }
}

/** Distinct label values beyond which the column is surely not a class label. */
const MAX_CLASSES = 10_000;
const INT = /^\d+$/;

/**
 * Turns label text into class indices. With the model's class names (evaluate) a label is looked up
 * among them (or is an index below their count), so index i means what it meant in training. Without
 * them, labels that are all integers are indices, and otherwise the sorted distinct names are the classes.
 */
export class LabelCoder {
  private readonly given: Map<string, number> | undefined;
  private readonly seen = new Set<string>();
  private map: Map<string, number> | undefined;

  constructor(private readonly classNames?: readonly string[]) {
    this.given = classNames ? new Map(classNames.map((c, i) => [c, i])) : undefined;
  }

  /** Records a label in the first pass; `where` names the file and line (or image) for errors. */
  add(label: string, where: () => string): void {
    if (label === '') throw new DataError(`${where()}: the label is empty`);
    if (this.seen.has(label)) return;
    if (this.given && !this.given.has(label) && !(INT.test(label) && Number(label) < this.given.size)) {
      const names = [...this.given.keys()];
      const shown = names.slice(0, 20).join(', ') + (names.length > 20 ? ', ...' : '');
      throw new DataError(`${where()}: unknown label "${label}"; the model's classes are ${shown}`);
    }
    if (this.seen.size >= MAX_CLASSES) throw new DataError(`${where()}: more than ${MAX_CLASSES} distinct labels; is this the label column?`);
    this.seen.add(label);
  }

  /** Ends the first pass: the number of classes and their names (when labels are names). */
  finish(): { numClasses: number; classNames?: string[] } {
    const labels = [...this.seen];
    if (this.given) {
      this.map = new Map(labels.map((l) => [l, this.given!.get(l) ?? Number(l)]));
      return { numClasses: this.given.size, classNames: [...this.classNames!] };
    }
    if (labels.every((l) => INT.test(l))) {
      this.map = new Map(labels.map((l) => [l, Number(l)]));
      const max = labels.reduce((m, l) => Math.max(m, Number(l)), -1);
      if (max >= MAX_CLASSES) throw new DataError(`label ${max} is too large for a class index (the limit is ${MAX_CLASSES - 1})`);
      return { numClasses: max + 1 };
    }
    const names = labels.sort();
    this.map = new Map(names.map((l, i) => [l, i]));
    return { numClasses: names.length, classNames: names };
  }

  /** The class index of a label seen in the first pass. */
  index(label: string, where: () => string): number {
    const i = this.map?.get(label);
    if (i === undefined) throw new DataError(`${where()}: label "${label}" was not in the file when it was first read`);
    return i;
  }
}

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
      if (typeof n !== 'number' || !Number.isFinite(n)) return false;
      out[at.i++] = n;
    }
    return true;
  }
  return v.every((c) => flatten(c, shape, depth + 1, out, at));
}

interface Row {
  x: unknown;
  y?: unknown;
}

/** Opens a JSONL dataset; the file is read when `info()` or `chunks()` is first called. */
export function jsonlSource(spec: JsonlSpec, opts: OpenDatasetOptions): DatasetSource {
  let shape: number[] | undefined;
  let width = 0;
  let labelled: boolean | undefined;
  const coder = new LabelCoder(opts.classNames);

  /** Parses one line into `out` at `base`; returns its label text. */
  const parse = (text: string, out: Float32Array, base: number, where: () => string): string | undefined => {
    let row: Row;
    try {
      row = JSON.parse(text) as Row;
    } catch (e) {
      throw new DataError(`${where()}: not JSON: ${(e as Error).message}`);
    }
    if (typeof row !== 'object' || row === null || !('x' in row)) throw new DataError(`${where()}: expected an object {"x": [...], "y": label}`);
    if (!shape) {
      shape = shapeOf(row.x);
      width = shape.reduce((a, b) => a * b, 1);
      if (shape.length === 0 || width === 0) throw new DataError(`${where()}: "x" must be a non-empty array of numbers`);
      labelled = row.y !== undefined;
    }
    if (!flatten(row.x, shape, 0, out, { i: base })) {
      throw new DataError(`${where()}: "x" must be numbers of shape [${shape.join(', ')}] like the first row, got ${JSON.stringify(row.x).slice(0, 80)}`);
    }
    if ((row.y !== undefined) !== labelled) throw new DataError(`${where()}: "y" must be given on every line or on none`);
    if (row.y === undefined) return undefined;
    if (typeof row.y === 'string') return row.y;
    if (typeof row.y === 'number' && Number.isInteger(row.y) && row.y >= 0) return String(row.y);
    throw new DataError(`${where()}: "y" must be a class index (an integer >= 0) or a class name, got ${JSON.stringify(row.y)}`);
  };

  async function* lines(file: string) {
    let line = 0;
    for await (const b of readBlocks(file)) {
      let p = 0;
      while (p < b.end) {
        let nl = b.buf.indexOf(10, p);
        if (nl < 0 || nl >= b.end) nl = b.end;
        line++;
        const text = b.buf.toString('utf8', p, nl);
        p = nl + 1;
        if (text.trim()) yield { text, line };
      }
    }
  }

  let pending: Promise<{ info: DatasetInfo; file: string }> | undefined;
  const scan = async () => {
    const file = await resolveDataPath(spec.uri, opts.dataRoots);
    const hash = createHash('sha256').update('jsonl\n');
    let n = 0;
    let scratch = new Float32Array(0);
    for await (const { text, line } of lines(file)) {
      if (n >= (spec.limit ?? Infinity)) break;
      const where = () => `${file}:${line}`;
      // Values are only checked here; before the first row sets the width, writes past the end are dropped.
      if (scratch.length < width) scratch = new Float32Array(width);
      const label = parse(text, scratch, 0, where);
      if (label !== undefined) coder.add(label, where);
      hash.update(text).update('\n');
      n++;
    }
    if (!shape) throw new DataError(`${file}: the file has no rows`);
    const labels = coder.finish();
    const info: DatasetInfo = { featureShape: shape, numClasses: labels.numClasses, rows: n, hash: hash.digest('hex').slice(0, 16) };
    if (labels.classNames) info.classNames = labels.classNames;
    return { info, file };
  };
  const get = () => (pending ??= scan());
  return {
    info: async () => (await get()).info,
    async *chunks({ chunkSize, start = 0 }): AsyncIterable<Chunk> {
      const { info, file } = await get();
      let n = 0;
      let c = start;
      const alloc = () => Math.min(chunkSize, Math.max(0, info.rows - c));
      let x = new Float32Array(alloc() * width);
      let y = labelled ? new Int32Array(alloc()) : undefined;
      for await (const { text, line } of lines(file)) {
        if (n >= info.rows) break;
        if (n++ < start) continue;
        const where = () => `${file}:${line}`;
        const k = n - 1 - c;
        const label = parse(text, x, k * width, where);
        if (y) y[k] = coder.index(label!, where);
        if ((k + 1) * width === x.length) {
          yield { start: c, count: k + 1, x, ...(y ? { y } : {}) };
          c = n;
          x = new Float32Array(alloc() * width);
          y = labelled ? new Int32Array(alloc()) : undefined;
        }
      }
      if (n < info.rows) throw new DataError(`${file}: the file changed while it was read (${n} rows, expected ${info.rows})`);
    },
  };
}
