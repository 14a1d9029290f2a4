/**
 * What the line-oriented readers (csv, jsonl) share: reading a file in blocks of whole lines, turning
 * label text into class indices, and the spill file.
 *
 * Both readers decode the text once, in the validating first pass of `info()`, and keep the decoded
 * rows in a spill file that `chunks()` then reads: parsing text twice would cost about as much as the
 * model's predictions over a large file, and holding the rows in memory is not an option.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat, unlink, type FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { resolveDataPath } from '../storage/data-uri.ts';
import { DataError } from '../util/errors.ts';
import { lineAt, type Chunk, type DatasetInfo } from './dataset.ts';
const BLOCK = 1 << 20;
const MAX_LINE = 64 << 20;

/**
 * The local path of a csv or jsonl dataset's `uri` (inside `dataRoots`, storage/data-uri.ts), refused
 * when it is a directory: `<shown> is a directory; a csv dataset is one file`, not the EISDIR that
 * reading it would give. `shown` is how messages name it (OpenDatasetOptions.shownAs; the path by default).
 */
export async function lineFile(
  uri: string,
  dataRoots: readonly string[],
  format: 'csv' | 'jsonl',
  shown?: string,
): Promise<string> {
  const local = await resolveDataPath(uri, dataRoots);
  const st = await stat(local).catch(() => undefined);
  if (st?.isDirectory())
    throw new DataError(`${shown ?? local} is a directory; a ${format} dataset is one file`);
  return local;
}

/** `buf[0 .. end)` holds whole lines (the last block of a file may end without a newline). */
export interface Block {
  buf: Buffer;
  end: number;
}

/**
 * Reads the file `local` in ~1 MiB blocks of whole lines, reusing one buffer: memory stays flat
 * whatever the file's size. A block is valid until the next one is requested. Errors name it `file`
 * (what the user gave, OpenDatasetOptions.shownAs; the path by default).
 */
export async function* readBlocks(local: string, file = local): AsyncGenerator<Block> {
  let fh;
  try {
    fh = await open(local, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DataError(
      code === 'ENOENT' ? `file not found: ${file}` : `cannot read ${file}: ${(e as Error).message}`,
    );
  }
  try {
    let buf = Buffer.allocUnsafe(BLOCK);
    let carry = 0;
    for (;;) {
      if (carry === buf.length) {
        if (buf.length >= MAX_LINE)
          throw new DataError(`${file}: a line is longer than ${MAX_LINE >> 20} MiB`);
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
      // A line ends at LF, CR (old Mac exports) or CRLF; a CRLF cut between two blocks is joined by LineCursor.
      const lastNl = Math.max(buf.lastIndexOf(10, filled - 1), buf.lastIndexOf(13, filled - 1));
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

/**
 * Walks the lines of one block without an async step per line (a million `await`s would cost more
 * than parsing the rows). `s .. e` is the current line without its line ending; `line` is 1-based.
 * LF, CRLF and a lone CR all end a line (a CRLF split across two blocks counts once), and a UTF-8
 * byte-order mark at the start of the file is skipped. Use one cursor for all blocks of a file.
 */
export class LineCursor {
  buf: Buffer = Buffer.alloc(0);
  s = 0;
  e = 0;
  line = 0;
  private p = 0;
  private end = 0;
  /** Next LF / CR at or after `p` (`end` when none): kept between lines so each byte is searched once. */
  private lf = -1;
  private cr = -1;
  /** The previous block ended in CR: an LF starting this block belongs to it. */
  private afterCr = false;

  reset(b: Block): void {
    this.buf = b.buf;
    this.p = 0;
    this.end = b.end;
    this.lf = -1;
    this.cr = -1;
    if (this.afterCr && b.end > 0 && b.buf[0] === 10) this.p = 1;
    this.afterCr = false;
    if (this.line === 0 && b.buf[0] === 0xef && b.buf[1] === 0xbb && b.buf[2] === 0xbf) this.p = 3;
  }

  /** Moves to the next line of the block; false when the block is done. */
  next(): boolean {
    const { buf, p, end } = this;
    if (p >= end) return false;
    if (this.lf < p) this.lf = findByte(buf, 10, p, end);
    if (this.cr < p) this.cr = findByte(buf, 13, p, end);
    const stop = Math.min(this.lf, this.cr);
    this.line++;
    this.s = p;
    this.e = stop;
    this.p = stop + (stop === this.cr && stop + 1 < end && buf[stop + 1] === 10 ? 2 : 1);
    this.afterCr = stop === this.cr && stop + 1 === end;
    return true;
  }
}

/** Index of `byte` in `buf[from .. end)`, or `end`. */
function findByte(buf: Buffer, byte: number, from: number, end: number): number {
  const i = buf.indexOf(byte, from);
  return i < 0 || i >= end ? end : i;
}

/** Distinct label values beyond which the column is surely not a class label; also the class index limit. */
export const MAX_CLASSES = 10_000;
/** A label that is a class index when every label of the dataset is one (LabelCoder). */
export const INT = /^\d+$/;

/**
 * Why integer label `label` (>= MAX_CLASSES) cannot be a class index: upload validation and the
 * readers say it alike, after the place (`line 3`, `data.csv:3`).
 */
export function tooLargeLabel(label: string): string {
  return `label ${label} is too large for a class index (0-${MAX_CLASSES - 1}): when every label is a non-negative integer, each is its class's index; name the classes instead (e.g. "c${label}") to use larger numbers`;
}

/**
 * Turns label text into class indices. With the model's class names (evaluate) a label is looked up
 * among them (or is an index below their count), so index i means what it meant in training. Without
 * them, labels that are all integers are indices, and otherwise the sorted distinct names are the classes.
 * The first pass gives each label a provisional id (order of first appearance); `finish` maps them.
 */
export class LabelCoder {
  private readonly given: Map<string, number> | undefined;
  private readonly seen = new Map<string, number>();

  private readonly classNames?: readonly string[];
  constructor(classNames?: readonly string[]) {
    this.classNames = classNames;
    this.given = classNames ? new Map(classNames.map((c, i) => [c, i])) : undefined;
  }

  /** Rows per provisional id. */
  private counts: number[] = [];
  /** Where the first integer label too large for a class index was (an error if all labels are integers). */
  private tooLarge: { label: string; at: string } | undefined;

  /** Records a label and returns its provisional id; errors name the place (`lineAt(file, line)`). */
  add(label: string, file: string, line: number): number {
    const id = this.seen.get(label);
    if (id !== undefined) {
      this.counts[id]!++;
      return id;
    }
    if (label === '') throw new DataError(`${lineAt(file, line)}: the label is empty`);
    if (this.given && !this.given.has(label) && !(INT.test(label) && Number(label) < this.given.size)) {
      const names = [...this.given.keys()];
      const shown = names.slice(0, 20).join(', ') + (names.length > 20 ? ', ...' : '');
      throw new DataError(
        `${lineAt(file, line)}: unknown label "${label}"; the model's classes are ${shown}`,
      );
    }
    if (this.seen.size >= MAX_CLASSES)
      throw new DataError(
        `${lineAt(file, line)}: more than ${MAX_CLASSES} distinct labels; is this the label column?`,
      );
    if (!this.tooLarge && INT.test(label) && Number(label) >= MAX_CLASSES)
      this.tooLarge = { label, at: lineAt(file, line) };
    this.seen.set(label, this.seen.size);
    this.counts.push(1);
    return this.seen.size - 1;
  }

  /**
   * Ends the first pass: the classes, `remap[provisional id]` = class index, and `classCounts[class
   * index]` = rows with that label (0 for an index no row uses).
   */
  finish(): LabelCoding {
    const labels = [...this.seen.keys()];
    const index = (f: (l: string) => number): LabelCoding => {
      const remap = Int32Array.from(labels, f);
      const classCounts = new Array<number>(numClasses).fill(0);
      remap.forEach((c, id) => (classCounts[c] = this.counts[id]!));
      return { numClasses, remap, classCounts, ...(classNames ? { classNames } : {}) };
    };
    let numClasses: number;
    let classNames: string[] | undefined;
    if (this.given) {
      [numClasses, classNames] = [this.given.size, [...this.classNames!]];
      return index((l) => this.given!.get(l) ?? Number(l));
    }
    if (labels.every((l) => INT.test(l))) {
      if (this.tooLarge) throw new DataError(`${this.tooLarge.at}: ${tooLargeLabel(this.tooLarge.label)}`);
      numClasses = labels.reduce((m, l) => Math.max(m, Number(l)), -1) + 1;
      return index(Number);
    }
    classNames = [...labels].sort();
    numClasses = classNames.length;
    const at = new Map(classNames.map((l, i) => [l, i]));
    return index((l) => at.get(l)!);
  }
}

/** The outcome of a first pass over the labels (see LabelCoder.finish). */
export interface LabelCoding {
  numClasses: number;
  classNames?: string[];
  remap: Int32Array;
  classCounts: number[];
}

/** Closes the spill files of sources that were dropped without reading their chunks. */
const unread = new FinalizationRegistry<FileHandle>((fh) => void fh.close().catch(() => undefined));

/**
 * Decoded rows on disk: fixed-size records of `width` float32 features, then (when labelled) an int32
 * provisional label id. The file is unlinked as soon as it is open, so its space comes back when the
 * handle closes, even if the process is killed.
 */
export class Spill {
  rows = 0;
  /** Set when a `chunks()` pass has begun: a later pass needs a fresh first pass. */
  taken = false;
  /** 4-byte words per record. */
  readonly words: number;

  private readonly fh: FileHandle;
  readonly width: number;
  readonly labelled: boolean;
  private constructor(fh: FileHandle, width: number, labelled: boolean) {
    this.fh = fh;
    this.width = width;
    this.labelled = labelled;
    this.words = width + (labelled ? 1 : 0);
  }

  static async create(width: number, labelled: boolean): Promise<Spill> {
    const file = path.join(os.tmpdir(), `mlq-rows-${randomUUID()}.bin`);
    const fh = await open(file, 'w+');
    await unlink(file);
    const spill = new Spill(fh, width, labelled);
    unread.register(spill, fh, spill);
    return spill;
  }

  /** Appends `rows` records from the start of `records`. */
  async append(records: ArrayBuffer, rows: number): Promise<void> {
    const bytes = rows * this.words * 4;
    await this.fh.write(new Uint8Array(records, 0, bytes), 0, bytes, this.rows * this.words * 4);
    this.rows += rows;
  }

  /** Reads records from row `start` as chunks, label ids mapped through `remap`. */
  async *chunks(start: number, chunkSize: number, remap: Int32Array): AsyncGenerator<Chunk> {
    const { words, width } = this;
    for (let s = start; s < this.rows; s += chunkSize) {
      const count = Math.min(chunkSize, this.rows - s);
      const data = new ArrayBuffer(count * words * 4);
      const { bytesRead } = await this.fh.read(new Uint8Array(data), 0, data.byteLength, s * words * 4);
      if (bytesRead !== data.byteLength)
        throw new Error(`spill file: read ${bytesRead} of ${data.byteLength} bytes`);
      if (!this.labelled) {
        yield { start: s, count, x: new Float32Array(data) };
        continue;
      }
      const f = new Float32Array(data);
      const ids = new Int32Array(data);
      const x = new Float32Array(count * width);
      const y = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        x.set(f.subarray(i * words, i * words + width), i * width);
        y[i] = remap[ids[i * words + width]!]!;
      }
      yield { start: s, count, x, y };
    }
  }

  async close(): Promise<void> {
    unread.unregister(this);
    await this.fh.close();
  }
}

/** What a first pass produces: the dataset's info, its decoded rows, and the label mapping. */
export interface Scan {
  info: DatasetInfo;
  spill: Spill;
  remap: Int32Array;
}

/**
 * The `chunks()` of a reader whose first pass is `scan`: the first pass's spill is read once; another
 * pass scans the file again, and fails if it has changed meanwhile.
 */
export function spilledChunks(scan: () => Promise<Scan>, first: () => Promise<Scan>) {
  return async function* chunks({
    chunkSize,
    start = 0,
  }: {
    chunkSize: number;
    start?: number;
  }): AsyncIterable<Chunk> {
    const before = await first();
    let s = before;
    if (s.spill.taken) {
      s = await scan();
      if (s.info.hash !== before.info.hash) {
        await s.spill.close();
        throw new DataError(
          `the data changed since it was first read (hash ${before.info.hash}, now ${s.info.hash})`,
        );
      }
    }
    s.spill.taken = true;
    try {
      yield* s.spill.chunks(start, chunkSize, s.remap);
    } finally {
      await s.spill.close();
    }
  };
}

/**
 * sha256 of `tag` and the file's raw bytes: a content hash that parses nothing, so a decoded-example
 * cache hit skips the reader's first pass (`DatasetSource.fingerprint`).
 */
export async function fileFingerprint(file: string, tag: string, shown = file): Promise<string> {
  const hash = createHash('sha256').update(`${tag}\n`);
  try {
    for await (const b of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(b as Buffer);
  } catch (e) {
    throw new DataError(`cannot read ${shown}: ${(e as Error).message}`);
  }
  return hash.digest('hex').slice(0, 16);
}

/** A larger buffer holding the first bytes of `buf` (block buffers grow to their biggest block). */
export function grow(buf: ArrayBuffer, atLeast: number): ArrayBuffer {
  const out = new ArrayBuffer(Math.max(atLeast, buf.byteLength * 2, 1 << 16));
  new Uint8Array(out).set(new Uint8Array(buf));
  return out;
}
