/**
 * The `{"format": "csv"}` dataset: a header row, numeric feature columns and an optional label column.
 * Rows are parsed straight from the bytes of a file read in blocks: a 1,000,000-row file is never held
 * in memory, and no per-field strings are made for numbers (csv-parse + Number() is several times slower,
 * and parsing is most of a batch prediction's cost for a small model). Fields are split as upload
 * validation splits them (csv-fields.ts: quoted fields, spaces around them), so an upload that validates
 * reads the same way.
 */
import { createHash } from 'node:crypto';
import type { z } from 'zod';
import type { csvDatasetSchema } from '@mlq/contract';
import { clip, DataError } from '../util/errors.ts';
import { COMMA, QUOTE, readQuoted, skipBlanks, splitFields } from './csv-fields.ts';
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

export type CsvSpec = z.infer<typeof csvDatasetSchema>;

/** Exact powers of ten (a double holds 10^0..10^22 exactly), for the fast number path. */
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

/** Role of a column: a feature slot (>= 0), the label, or ignored. */
const LABEL = -2;
const SKIP = -1;

/** Where the number parsed by `parseNumber` ended. */
let numEnd = 0;

/**
 * Parses a decimal number (`-1.5`, `3`, `2e-3`) starting at `i`, stopping at the first byte that
 * cannot continue it. Returns NaN when no digits were found. Up to 15 significant digits and exponents
 * within ±22 are computed exactly from an integer mantissa; anything longer goes through Number().
 */
function parseNumber(buf: Uint8Array, i: number, e: number): number {
  const s = i;
  let c = buf[i];
  const neg = c === 45;
  if (neg || c === 43) c = buf[++i];
  let mant = 0;
  let digits = 0;
  let frac = 0;
  while (i < e && c! >= 48 && c! <= 57) {
    mant = mant * 10 + (c! - 48);
    digits++;
    c = buf[++i];
  }
  if (i < e && c === 46) {
    c = buf[++i];
    while (i < e && c! >= 48 && c! <= 57) {
      mant = mant * 10 + (c! - 48);
      digits++;
      frac++;
      c = buf[++i];
    }
  }
  if (digits === 0) {
    numEnd = i;
    return Number.NaN;
  }
  let exp = 0;
  if (i < e && (c === 101 || c === 69)) {
    let j = i + 1;
    const eneg = buf[j] === 45;
    if (eneg || buf[j] === 43) j++;
    const d0 = j;
    while (j < e && buf[j]! >= 48 && buf[j]! <= 57) exp = exp * 10 + (buf[j++]! - 48);
    if (j === d0) {
      numEnd = j;
      return Number.NaN;
    }
    if (eneg) exp = -exp;
    i = j;
  }
  numEnd = i;
  const p = exp - frac;
  if (digits > 15 || p > 22 || p < -22)
    return Number(Buffer.from(buf.buffer, buf.byteOffset + s, i - s).toString('latin1'));
  const v = p >= 0 ? mant * POW10[p]! : mant / POW10[-p]!;
  return neg ? -v : v;
}

/** The place an error names: `file:line`, or `<uri>, line <n>` (dataset.ts' lineAt). */
const at = lineAt;

/** Column layout resolved from the header and the spec. */
interface Layout {
  roles: Int32Array;
  names: string[];
  width: number;
  hasLabel: boolean;
}

/**
 * The roles of the header's columns. Linear in the columns: a header of 200,000 columns is read in
 * milliseconds (looking each feature up with `header.indexOf` took 51 s).
 */
function layoutOf(header: string[], spec: CsvSpec, where: string): Layout {
  /** Column name → its index in the header. */
  const seen = new Map<string, number>();
  header.forEach((h, i) => {
    if (seen.has(h)) throw new DataError(`${where}: the header names column "${clip(h, 80)}" twice`);
    seen.set(h, i);
  });
  const cols = header.join(', ');
  // Without an explicit label, a column named "label" is the label (not a feature), else none is.
  const label = spec.label ?? (seen.has('label') ? 'label' : undefined);
  if (label !== undefined && !seen.has(label))
    throw new DataError(`${where}: no label column "${label}" in the header (${cols})`);
  const features = spec.features ?? header.filter((h) => h !== label);
  for (const f of features)
    if (!seen.has(f)) throw new DataError(`${where}: no feature column "${f}" in the header (${cols})`);
  if (new Set(features).size !== features.length || (label !== undefined && features.includes(label))) {
    throw new DataError(`${where}: "features" must name distinct columns other than the label`);
  }
  if (features.length === 0) throw new DataError(`${where}: no feature columns`);
  const roles = new Int32Array(header.length).fill(SKIP);
  features.forEach((f, slot) => (roles[seen.get(f)!] = slot));
  if (label !== undefined) roles[seen.get(label)!] = LABEL;
  return { roles, names: header, width: features.length, hasLabel: label !== undefined };
}

/** Parses one data row (line `line` of `file`) into `x[base ..]` and returns its label text (or undefined). */
function parseRow(
  buf: Buffer,
  s: number,
  e: number,
  lay: Layout,
  x: Float32Array,
  base: number,
  file: string,
  line: number,
): string | undefined {
  // Messages name the place through at() when they are thrown: a closure or a string made per row
  // would cost more than parsing it (a quoted field, the rare path, makes its `where` closure).
  const { roles } = lay;
  const ncols = roles.length;
  let label: string | undefined;
  let col = 0;
  let i = s;
  for (;;) {
    if (col >= ncols)
      throw new DataError(`${at(file, line)}: ragged row: more than the header's ${ncols} columns`);
    const role = roles[col]!;
    i = skipBlanks(buf, i, e);
    if (i < e && buf[i] === QUOTE) {
      // Rare: a quoted field, read by the splitter upload validation uses (csv-fields.ts).
      const f = readQuoted(buf, i, e, () => at(file, line), col + 1, lay.names);
      if (role === LABEL) label = f.text;
      else if (role >= 0) x[base + role] = toNumber(f.text, lay.names[col]!, file, line);
      i = f.end;
    } else if (role >= 0) {
      const v = parseNumber(buf, i, e);
      const j = skipBlanks(buf, numEnd, e);
      if (Number.isNaN(v) || (j < e && buf[j] !== COMMA)) {
        let k = i;
        while (k < e && buf[k] !== COMMA) k++;
        const text = buf.toString('utf8', i, k);
        throw new DataError(
          `${at(file, line)}: column "${clip(lay.names[col]!, 80)}" is ${text.trim() ? `not a number: "${clip(text)}"` : 'empty'}`,
        );
      }
      if (!isFloat32(v)) outOfRange(buf.toString('utf8', i, numEnd), v, lay.names[col]!, file, line);
      x[base + role] = v;
      i = j;
    } else {
      let j = i;
      while (j < e && buf[j] !== COMMA) j++;
      if (role === LABEL) label = buf.toString('utf8', i, j).trim();
      i = j;
    }
    col++;
    if (i >= e) break;
    i++;
  }
  if (col !== ncols)
    throw new DataError(`${at(file, line)}: ragged row: ${col} columns, the header has ${ncols}`);
  return label;
}

function toNumber(v: string, column: string, file: string, line: number): number {
  const n = v.trim() === '' ? Number.NaN : Number(v);
  if (Number.isNaN(n))
    throw new DataError(`${at(file, line)}: column "${clip(column, 80)}" is not a number: "${clip(v)}"`);
  if (!isFloat32(n)) outOfRange(v.trim(), n, column, file, line);
  return n;
}

/** A number that float32 cannot hold (1e39, Infinity): the place and the value. */
function outOfRange(text: string, v: number, column: string, file: string, line: number): never {
  throw new DataError(`${at(file, line)}: column "${clip(column, 80)}" ${float32Problem(text, v)}`);
}

/** The header's layout, from the first line (LineCursor has skipped a UTF-8 byte-order mark). */
function readHeader(cur: LineCursor, spec: CsvSpec, file: string): Layout {
  return layoutOf(
    splitFields(cur.buf, cur.s, cur.e, () => at(file, 1)),
    spec,
    at(file, 1),
  );
}

/**
 * The header's column names of the CSV file `local` (its first line, split as rows are; a UTF-8
 * byte-order mark skipped), reading no further than that line: the API checks a `file://` spec's
 * `label` and `features` against them at submit. Errors (DataError) name the file as `shown`: an
 * empty file, a header that cannot be split, a directory.
 */
export async function csvColumns(local: string, shown = local): Promise<string[]> {
  const cur = new LineCursor();
  for await (const b of readBlocks(local, shown)) {
    cur.reset(b);
    if (cur.next()) return splitFields(cur.buf, cur.s, cur.e, () => at(shown, 1));
  }
  throw new DataError(`${shown}: the file is empty (a CSV needs a header row)`);
}

/** Opens a CSV dataset; the file is read when `info()` or `chunks()` is first called. */
export function csvSource(spec: CsvSpec, opts: OpenDatasetOptions): DatasetSource {
  /** The first pass: validates every row, decodes it into the spill, hashes, counts, finds classes. */
  const scan = async (): Promise<Scan> => {
    const local = await lineFile(spec.uri, opts.dataRoots, 'csv', opts.shownAs?.name);
    // Messages name what the user gave (a dataset:// or remote URI), not a cache path.
    const file = opts.shownAs?.name ?? local;
    const hash = createHash('sha256').update(
      JSON.stringify({ f: 'csv', l: spec.label ?? null, x: spec.features ?? null }),
    );
    const coder = new LabelCoder(opts.classNames);
    const limit = spec.limit ?? Infinity;
    const cur = new LineCursor();
    let lay: Layout | undefined;
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
        if (!lay) {
          lay = readHeader(cur, spec, file);
          spill = await Spill.create(lay.width, lay.hasLabel);
          continue;
        }
        if (cur.e === cur.s) continue;
        if (n === limit) {
          [full, used] = [true, cur.s];
          break;
        }
        const words = spill!.words;
        if ((k + 1) * words * 4 > records.byteLength) {
          records = grow(records, (k + 1) * words * 4);
          [f32, i32] = [new Float32Array(records), new Int32Array(records)];
        }
        const label = parseRow(cur.buf, cur.s, cur.e, lay, f32, k * words, file, cur.line);
        if (label !== undefined) i32[k * words + lay.width] = coder.add(label, file, cur.line);
        k++;
        n++;
      }
      if (k > 0) await spill!.append(records, k);
      hash.update(b.buf.subarray(0, used));
      if (full) break;
    }
    if (!lay || !spill) throw new DataError(`${file}: the file is empty (a CSV needs a header row)`);
    const labels = coder.finish();
    const info: DatasetInfo = {
      featureShape: [lay.width],
      numClasses: labels.numClasses,
      rows: n,
      columns: lay.names,
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
        await lineFile(spec.uri, opts.dataRoots, 'csv', opts.shownAs?.name),
        JSON.stringify({ f: 'csv', classNames: opts.classNames ?? null }),
        opts.shownAs?.name,
      ),
  };
}
