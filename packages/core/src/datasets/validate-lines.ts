/**
 * Validation of CSV and JSONL uploads as their bytes stream by, with the readers' rules (data/csv.ts,
 * data/jsonl.ts): lines end at LF, CRLF or a lone CR; a CSV is a header and rows of as many fields,
 * split by the reader's own splitter (data/csv-fields.ts; quoted fields may not span lines); a JSONL
 * line is `{"x": <numbers>, "y"?: <label>}` with one shape of `x` and numbers that fit float32. Which
 * CSV columns are features is a job's choice, so their numbers are checked when a job reads them. The
 * bytes must be text: a NUL byte or bytes that are not UTF-8 are refused (naming the line, and what a
 * binary file looks like, e.g. a zip). Errors name the line.
 * Nothing is kept but counters and the label counts, so memory stays flat.
 */
import { isUtf8 } from 'node:buffer';
import { COMMA, QUOTE, splitFields } from '../data/csv-fields.ts';
import { labelText } from '../data/jsonl.ts';
import { INT, MAX_CLASSES, tooLargeLabel } from '../data/lines.ts';
import { clip, DataError } from '../util/errors.ts';
import type { ClassCounts, DatasetVersion } from '@mlq/contract';

const MAX_LINE = 64 << 20;

export type LinesSummary = Pick<
  DatasetVersion,
  'format' | 'rows' | 'columns' | 'label' | 'featureShape' | 'classes'
> & {
  /**
   * What may make jobs on a valid upload fail (the upload answer's `warnings`): labels that training
   * and evaluation need and the file does not have.
   */
  warnings: string[];
};

/** Splits a byte stream into lines (ended by LF, CRLF or a lone CR, as the readers do), numbering them from 1. */
export class LineSplitter {
  private carry: Buffer | undefined;
  private line = 0;
  /** The last chunk ended with CR: an LF at the start of the next one belongs to it. */
  private afterCr = false;
  private readonly onLine: (buf: Buffer, s: number, e: number, line: number) => void;
  constructor(onLine: (buf: Buffer, s: number, e: number, line: number) => void) {
    this.onLine = onLine;
  }

  push(chunk: Buffer): void {
    // Lines wholly inside a chunk that is all text need no check of their own (one native pass per
    // chunk, not a call per line); a chunk that fails (bad bytes, or a UTF-8 sequence cut at its end)
    // is checked line by line, which names the line.
    const clean = chunk.indexOf(0) < 0 && isUtf8(chunk);
    let p = 0;
    if (this.afterCr && chunk[0] === 10) p = 1;
    this.afterCr = false;
    for (;;) {
      const end = lineEnd(chunk, p);
      if (end < 0) break;
      if (this.carry) {
        const joined = Buffer.concat([this.carry, chunk.subarray(p, end)]);
        this.carry = undefined;
        this.emit(joined, 0, joined.length, false);
      } else {
        this.emit(chunk, p, end, clean);
      }
      p = end + 1;
      if (chunk[end] === 13) {
        if (end + 1 === chunk.length) this.afterCr = true;
        else if (chunk[end + 1] === 10) p++;
      }
    }
    if (p >= chunk.length) return;
    this.carry = this.carry ? Buffer.concat([this.carry, chunk.subarray(p)]) : chunk.subarray(p);
    if (this.carry.length > MAX_LINE)
      throw new DataError(`line ${this.line + 1} is longer than ${MAX_LINE >> 20} MiB`);
  }

  end(): void {
    if (this.carry) this.emit(this.carry, 0, this.carry.length, false);
    this.carry = undefined;
  }

  private emit(buf: Buffer, s: number, e: number, checked: boolean): void {
    this.line++;
    if (this.line === 1) this.kind = binaryKind(buf.subarray(s, Math.min(e, s + 8)));
    if (!checked) notText(buf, s, e, this.line, this.kind);
    this.onLine(buf, s, e, this.line);
  }

  /** What the first bytes say the file is when it is not text (a zip...), for the refusal. */
  private kind: string | undefined;
}

/** Well-known binary formats by their first bytes: what a person probably sent, and how to send it. */
const MAGIC: [number[], string][] = [
  [[0x50, 0x4b, 0x03, 0x04], 'a zip archive: send it as application/zip'],
  [[0x50, 0x4b, 0x05, 0x06], 'an (empty) zip archive: send it as application/zip'],
  [[0x1f, 0x8b], 'a gzip file (a .tar.gz?): send a .tar.gz as application/gzip'],
  [[0x89, 0x50, 0x4e, 0x47], 'a PNG image: send images in a .zip or .tar.gz, one folder per class'],
  [[0xff, 0xd8, 0xff], 'a JPEG image: send images in a .zip or .tar.gz, one folder per class'],
  [[0x25, 0x50, 0x44, 0x46], 'a PDF'],
];

function binaryKind(head: Buffer): string | undefined {
  return MAGIC.find(([m]) => m.every((b, i) => head[i] === b))?.[1];
}

/**
 * Refuses a line that is not text: a NUL byte or bytes that are not UTF-8 (a binary file sent as CSV or
 * JSONL). Lines end at LF or CR, which are never inside a UTF-8 sequence, so checking line by line is exact.
 */
function notText(buf: Buffer, s: number, e: number, line: number, kind: string | undefined): void {
  const nul = buf.indexOf(0, s);
  const problem =
    nul >= 0 && nul < e
      ? `a NUL byte (byte ${nul - s + 1} of the line)`
      : isUtf8(buf.subarray(s, e))
        ? undefined
        : 'bytes that are not UTF-8';
  if (!problem) return;
  const hint = kind
    ? `this looks like ${kind}`
    : 'CSV and JSONL uploads are UTF-8 text; save the file as UTF-8, or send an archive as application/zip or application/gzip';
  throw new DataError(`line ${line}: ${problem}: the body is not text; ${hint}`);
}

/** The index of the first LF or CR at or after `p`, or -1. */
function lineEnd(buf: Buffer, p: number): number {
  const lf = buf.indexOf(10, p);
  const cr = buf.indexOf(13, p);
  return lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr);
}

/**
 * Counts labels per class, giving up (no classes reported) past MAX_CLASSES distinct ones, and refuses
 * at `finish` what every job on the file would fail on, as the readers' LabelCoder (data/lines.ts) does:
 * labels that are all integers, one of them too large for a class index (naming its line).
 */
class ClassCounter {
  private counts: Map<string, number> | undefined = new Map();
  private allInts = true;
  private tooLarge: { label: string; line: number } | undefined;
  add(label: string, line: number): void {
    if (INT.test(label)) {
      if (!this.tooLarge && Number(label) >= MAX_CLASSES) this.tooLarge = { label, line };
    } else this.allInts = false;
    if (!this.counts) return;
    this.counts.set(label, (this.counts.get(label) ?? 0) + 1);
    if (this.counts.size > MAX_CLASSES) this.counts = undefined;
  }
  result(): ClassCounts | undefined {
    if (this.allInts && this.tooLarge)
      throw new DataError(`line ${this.tooLarge.line}: ${tooLargeLabel(this.tooLarge.label)}`);
    if (!this.counts || this.counts.size === 0) return undefined;
    return Object.fromEntries([...this.counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }
}

/**
 * The warning for labels of one class only (`only one class ("x", 3 rows): a classifier needs at least
 * two`), or none: training on such a file always fails (the API refuses a fine-tune or tune on it).
 */
export function oneClassWarning(classes: ClassCounts | undefined, unit = 'rows'): string[] {
  const names = Object.keys(classes ?? {});
  if (names.length !== 1) return [];
  const n = classes![names[0]!]!;
  return [
    `only one class (${JSON.stringify(names[0])}, ${n} ${n === 1 ? unit.replace(/s$/, '') : unit}): a classifier needs at least two`,
  ];
}

/** Validates a CSV upload; `label` names the column to count classes of (default: one named `label`). */
export function csvLineValidator(label?: string) {
  let columns: string[] | undefined;
  let labelAt = -1;
  let rows = 0;
  const classes = new ClassCounter();
  const splitter = new LineSplitter((buf, s, e, line) => {
    if (!columns) {
      if (buf[s] === 0xef && buf[s + 1] === 0xbb && buf[s + 2] === 0xbf) s += 3;
      columns = splitFields(buf, s, e, () => `line ${line}`);
      const seen = new Set<string>();
      for (const c of columns) {
        if (seen.has(c)) throw new DataError(`line 1: the header names column "${clip(c, 80)}" twice`);
        seen.add(c);
      }
      const want = label ?? (seen.has('label') ? 'label' : undefined);
      if (want !== undefined && !seen.has(want))
        throw new DataError(`label: no column "${want}" in the header (${columns.join(', ')})`);
      labelAt = want === undefined ? -1 : columns.indexOf(want);
      return;
    }
    if (e === s) return;
    // Fast path: no quotes, so fields are what the commas split.
    let n = 1;
    let fs = s;
    let ls = -1;
    let le = -1;
    let quoted = false;
    for (let i = s; i < e; i++) {
      const c = buf[i];
      if (c === COMMA) {
        if (n - 1 === labelAt) [ls, le] = [fs, i];
        n++;
        fs = i + 1;
      } else if (c === QUOTE) {
        quoted = true;
        break;
      }
    }
    let value: string | undefined;
    if (quoted) {
      const fields = splitFields(buf, s, e, () => `line ${line}`, columns);
      n = fields.length;
      value = labelAt >= 0 ? fields[labelAt] : undefined;
    } else if (labelAt >= 0) {
      if (n - 1 === labelAt) [ls, le] = [fs, e];
      value = ls >= 0 ? buf.toString('utf8', ls, le).trim() : undefined;
    }
    if (n !== columns.length)
      throw new DataError(`line ${line}: ragged row: ${n} columns, the header has ${columns.length}`);
    if (value !== undefined) {
      if (value === '')
        throw new DataError(`line ${line}: the label ("${clip(columns[labelAt]!, 80)}") is empty`);
      classes.add(value, line);
    }
    rows++;
  });
  return {
    write: (chunk: Buffer) => splitter.push(chunk),
    finish(): LinesSummary {
      splitter.end();
      if (!columns) throw new DataError('the file is empty (a CSV needs a header row)');
      if (rows === 0) throw new DataError('the file has a header but no rows');
      const counts = classes.result();
      return {
        format: 'csv',
        rows,
        columns,
        ...(labelAt >= 0 ? { label: columns[labelAt]! } : {}),
        ...(counts ? { classes: counts } : {}),
        warnings:
          labelAt >= 0
            ? oneClassWarning(counts)
            : [`no "label" column: jobs must name one with dataset.label; columns are ${columns.join(', ')}`],
      };
    },
  };
}

/** The largest float32 (features are read as float32: anything larger fails the job). */
const FLOAT32_MAX = 3.4028234663852886e38;

/** Shape of a rectangular nested array of float32-sized numbers, or undefined when it is not one. */
function shapeOfNumbers(v: unknown): number[] | undefined {
  if (!Array.isArray(v) || v.length === 0) return undefined;
  if (v.every((n) => typeof n === 'number' && Math.abs(n) <= FLOAT32_MAX)) return [v.length];
  const inner = shapeOfNumbers(v[0]);
  if (!inner) return undefined;
  for (let i = 1; i < v.length; i++) {
    const s = shapeOfNumbers(v[i]);
    if (!s || s.length !== inner.length || s.some((d, k) => d !== inner[k])) return undefined;
  }
  return [v.length, ...inner];
}

/** Validates a JSONL upload (`{"x": [...], "y": label}` per line, `y` on every line or none). */
export function jsonlLineValidator() {
  let shape: number[] | undefined;
  let labelled = false;
  /** The first line's keys, which the warning about missing labels shows (a "label" key is not read). */
  let keys: string[] = [];
  let rows = 0;
  const classes = new ClassCounter();
  const splitter = new LineSplitter((buf, s, e, line) => {
    if (line === 1 && buf[s] === 0xef && buf[s + 1] === 0xbb && buf[s + 2] === 0xbf) s += 3;
    const text = buf.toString('utf8', s, e);
    if (!text.trim()) return;
    let row: { x?: unknown; y?: unknown };
    try {
      row = JSON.parse(text) as typeof row;
    } catch (err) {
      throw new DataError(`line ${line}: not JSON: ${(err as Error).message}`);
    }
    if (typeof row !== 'object' || row === null || Array.isArray(row) || !('x' in row))
      throw new DataError(`line ${line}: expected an object {"x": [...], "y": label}`);
    const sh = shapeOfNumbers(row.x);
    if (!sh)
      throw new DataError(
        `line ${line}: "x" must be a non-empty, rectangular array of numbers that fit float32`,
      );
    if (!shape) [shape, labelled, keys] = [sh, row.y !== undefined, Object.keys(row)];
    else if (sh.length !== shape.length || sh.some((d, k) => d !== shape![k]))
      throw new DataError(
        `line ${line}: "x" has shape [${sh.join(', ')}], the first row [${shape.join(', ')}]`,
      );
    if ((row.y !== undefined) !== labelled)
      throw new DataError(`line ${line}: "y" must be given on every line or on none`);
    if (labelled) {
      // As the reader takes it (data/jsonl.ts' labelText): -1 and 0.5 are class names, as in a CSV.
      const y = labelText(row.y, `line ${line}`);
      if (y === '') throw new DataError(`line ${line}: "y" is empty`);
      classes.add(y, line);
    }
    rows++;
  });
  return {
    write: (chunk: Buffer) => splitter.push(chunk),
    finish(): LinesSummary {
      splitter.end();
      if (!shape) throw new DataError('the file has no rows');
      const counts = classes.result();
      return {
        format: 'jsonl',
        rows,
        featureShape: shape,
        ...(counts ? { classes: counts } : {}),
        warnings: labelled
          ? oneClassWarning(counts)
          : [
              `no "y" on the lines: training and evaluation need a label ("y": a class index or name) on every line; the first line's keys are ${keys.join(', ')}`,
            ],
      };
    },
  };
}
