/**
 * Decoded rows as shards in the artifact store: `<prefix>/shard-<k>` files of `shardRows` rows each
 * and a `<prefix>/manifest.json` written last (a manifest that exists has all its shards). Images are
 * kept as uint8 (a stored byte b means b / 255), anything else as float32. A shard file is the rows'
 * int32 labels (`rows * 4` bytes, when labelled) followed by their features, row-major.
 *
 * Every consumer reads a set through `shard(k)`, from the store or, when the whole set was loaded
 * (`loadAll`, under a memory budget), from memory.
 */
import type { ArtifactStore } from '../../storage/artifact-store.ts';
import { DataError } from '../../util/errors.ts';
import type { DatasetInfo } from '../dataset.ts';

export type ElementType = 'uint8' | 'float32';

export interface ShardManifest {
  /** Layout version: a manifest of another version is not read. */
  version: 1;
  info: DatasetInfo;
  dtype: ElementType;
  shardRows: number;
  shards: number;
  labelled: boolean;
}

/** Rows of one shard (or of a whole set held in memory). */
export interface Shard {
  rows: number;
  /** `rows * width` values (uint8: b / 255). */
  x: Uint8Array | Float32Array;
  /** Labels; empty when the set has none. */
  y: Int32Array;
}

export const MANIFEST_VERSION = 1;
/** Target size of one shard: big enough for efficient reads, small enough to prefetch one ahead. */
const SHARD_BYTES = 8 << 20;

export const bytesPerValue = (t: ElementType): number => (t === 'uint8' ? 1 : 4);

/** Rows per shard for rows of `rowBytes` bytes. */
export function shardRowsFor(rowBytes: number): number {
  return Math.max(1, Math.min(65536, Math.floor(SHARD_BYTES / Math.max(1, rowBytes))));
}

const shardKey = (prefix: string, k: number) => `${prefix}/shard-${k}`;
const manifestKey = (prefix: string) => `${prefix}/manifest.json`;

/** A view of `buf` as a fresh, 4-byte-aligned ArrayBuffer when it is not aligned already. */
function aligned(buf: Buffer): { ab: ArrayBuffer; at: number } {
  if (buf.byteOffset % 4 === 0) return { ab: buf.buffer as ArrayBuffer, at: buf.byteOffset };
  const ab = new ArrayBuffer(buf.byteLength);
  new Uint8Array(ab).set(buf);
  return { ab, at: 0 };
}

export class ShardSet {
  private memory: Shard | undefined;

  readonly manifest: ShardManifest;
  private readonly store: ArtifactStore;
  readonly prefix: string;
  constructor(manifest: ShardManifest, store: ArtifactStore, prefix: string) {
    this.manifest = manifest;
    this.store = store;
    this.prefix = prefix;
  }

  get info(): DatasetInfo {
    return this.manifest.info;
  }
  /** Values per row. */
  get width(): number {
    return this.manifest.info.featureShape.reduce((a, b) => a * b, 1);
  }
  get rowBytes(): number {
    return this.width * bytesPerValue(this.manifest.dtype);
  }
  /** Bytes of the whole set's features and labels. */
  get bytes(): number {
    return this.manifest.info.rows * (this.rowBytes + (this.manifest.labelled ? 4 : 0));
  }
  get inMemory(): boolean {
    return this.memory !== undefined;
  }
  rowsOf(k: number): number {
    const { shardRows } = this.manifest;
    return Math.max(0, Math.min(shardRows, this.manifest.info.rows - k * shardRows));
  }

  /** Shard `k`: a view into memory when the set is loaded, else read from the store. */
  async shard(k: number): Promise<Shard> {
    const rows = this.rowsOf(k);
    const m = this.memory;
    if (m) {
      const from = k * this.manifest.shardRows;
      return {
        rows,
        x: m.x.subarray(from * this.width, (from + rows) * this.width),
        y: m.y.subarray(from, m.y.length ? from + rows : 0),
      };
    }
    const buf = await this.store.get(shardKey(this.prefix, k));
    const labelBytes = this.manifest.labelled ? rows * 4 : 0;
    if (buf.byteLength !== labelBytes + rows * this.rowBytes)
      throw new Error(
        `${shardKey(this.prefix, k)} has ${buf.byteLength} bytes, expected ${labelBytes + rows * this.rowBytes}`,
      );
    const { ab, at } = aligned(buf);
    const y = new Int32Array(ab, at, labelBytes / 4);
    const x =
      this.manifest.dtype === 'uint8'
        ? new Uint8Array(ab, at + labelBytes, rows * this.width)
        : new Float32Array(ab, at + labelBytes, rows * this.width);
    return { rows, x, y };
  }

  /** Reads every shard into memory; later `shard` calls are views of it. */
  async loadAll(): Promise<void> {
    if (this.memory) return;
    const { rows } = this.manifest.info;
    const x =
      this.manifest.dtype === 'uint8'
        ? new Uint8Array(rows * this.width)
        : new Float32Array(rows * this.width);
    const y = new Int32Array(this.manifest.labelled ? rows : 0);
    for (let k = 0; k < this.manifest.shards; k++) {
      const s = await this.shard(k);
      x.set(s.x, k * this.manifest.shardRows * this.width);
      y.set(s.y, k * this.manifest.shardRows);
    }
    this.memory = { rows, x, y };
  }

  /** Holds `all` (every row of the set) in memory: later `shard` calls are views of it. */
  adopt(all: Shard): void {
    this.memory = all;
  }

  /** The set held in memory, when it is. */
  held(): Shard | undefined {
    return this.memory;
  }

  /** Opens the set at `prefix`, or undefined when it has no (readable, current) manifest. */
  static async open(store: ArtifactStore, prefix: string): Promise<ShardSet | undefined> {
    if (!(await store.exists(manifestKey(prefix)))) return undefined;
    try {
      const m = JSON.parse((await store.get(manifestKey(prefix))).toString('utf8')) as ShardManifest;
      return m.version === MANIFEST_VERSION ? new ShardSet(m, store, prefix) : undefined;
    } catch {
      return undefined;
    }
  }
}

/** Rows to add to a set being written, as float32 (uint8 sets store `round(v * 255)`). */
export interface RowsIn {
  count: number;
  x: Float32Array;
  y?: Int32Array | undefined;
}

/**
 * Writes rows into shards at `prefix`, then the manifest. With `keep`, the rows also stay in memory
 * (the returned set is loaded) without reading them back. `shardRows` defaults to ~8 MB shards.
 */
export async function writeShardSet(
  store: ArtifactStore,
  prefix: string,
  info: DatasetInfo,
  dtype: ElementType,
  rows: AsyncIterable<RowsIn>,
  opts: { keep?: boolean; shardRows?: number } = {},
): Promise<ShardSet> {
  const width = info.featureShape.reduce((a, b) => a * b, 1);
  const shardRows = opts.shardRows ?? shardRowsFor(width * bytesPerValue(dtype));
  const newX = (n: number) => (dtype === 'uint8' ? new Uint8Array(n) : new Float32Array(n));
  const all = opts.keep ? { x: newX(info.rows * width), y: new Int32Array(info.rows) } : undefined;
  let labelled: boolean | undefined;
  const x = newX(shardRows * width);
  const y = new Int32Array(shardRows);
  let fill = 0;
  let done = 0;
  let k = 0;
  const flush = async () => {
    if (fill === 0) return;
    const labels = labelled ? new Uint8Array(y.buffer, 0, fill * 4) : new Uint8Array(0);
    const values = new Uint8Array(x.buffer, 0, fill * width * bytesPerValue(dtype));
    const out = new Uint8Array(labels.byteLength + values.byteLength);
    out.set(labels, 0);
    out.set(values, labels.byteLength);
    await store.put(shardKey(prefix, k++), out);
    fill = 0;
  };
  for await (const c of rows) {
    labelled ??= c.y !== undefined;
    for (let i = 0; i < c.count; i++) {
      if (done + i >= info.rows)
        throw new DataError(`the dataset gave more rows than the ${info.rows} it has`);
      const src = c.x.subarray(i * width, (i + 1) * width);
      if (dtype === 'uint8') {
        const o = fill * width;
        for (let j = 0; j < width; j++) x[o + j] = Math.min(255, Math.max(0, Math.round(src[j]! * 255)));
      } else x.set(src, fill * width);
      if (c.y) y[fill] = c.y[i]!;
      if (all) {
        all.x.set(x.subarray(fill * width, (fill + 1) * width), (done + i) * width);
        if (c.y) all.y[done + i] = c.y[i]!;
      }
      if (++fill === shardRows) await flush();
    }
    done += c.count;
  }
  await flush();
  if (done !== info.rows) throw new Error(`the dataset gave ${done} rows, expected ${info.rows}`);
  const manifest: ShardManifest = {
    version: MANIFEST_VERSION,
    info,
    dtype,
    shardRows,
    shards: k,
    labelled: labelled ?? false,
  };
  await store.put(manifestKey(prefix), JSON.stringify(manifest));
  const set = new ShardSet(manifest, store, prefix);
  if (all) set.adopt({ rows: info.rows, x: all.x, y: labelled ? all.y : new Int32Array(0) });
  return set;
}
