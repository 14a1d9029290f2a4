/**
 * Training and validation batches read from a shard set (see shard-set.ts) in the order of a
 * ShufflePlan (see shuffle-plan.ts). A set held in memory is read directly; otherwise rows stream
 * from the shards, in the epoch's shard order, through a buffer of `bufferRows` rows, one shard
 * prefetched ahead: memory holds the buffer and two shards, whatever the dataset's size.
 */
import type { Batch, BatchSource } from '../batches.ts';
import { epochOrder, epochStream, shardOrder, type ShufflePlan } from './shuffle-plan.ts';
import type { Shard, ShardSet } from './shard-set.ts';

/** Changes a training batch in place (augmentation); `positions[i]` is row i's place in the epoch. */
export type BatchTransform = (b: Batch, epoch: number, firstPosition: number) => void;

export interface StreamOptions {
  /** Keras' validation_split: the last `floor(rows * validationSplit)` rows, before shuffling. */
  validationSplit: number;
  seed: number;
  /** Rows of the shuffle buffer (at most the training rows are used). */
  bufferRows: number;
  /** Applied to training batches only. */
  transform?: BatchTransform | undefined;
}

/** Copies row `i` of `src` (uint8: b / 255) into `out` at `at`. */
function copyRow(
  src: Uint8Array | Float32Array,
  i: number,
  width: number,
  out: Float32Array,
  at: number,
): void {
  if (src instanceof Float32Array) {
    out.set(src.subarray(i * width, (i + 1) * width), at);
    return;
  }
  const o = i * width;
  for (let j = 0; j < width; j++) out[at + j] = src[o + j]! / 255;
}

/** Rows of the stream waiting in the shuffle buffer, admitted in stream order, taken in any order. */
class StreamBuffer {
  private readonly slots: Uint8Array | Float32Array;
  private readonly labels: Int32Array;
  /** Slot of each training row in the buffer, -1 when not there. */
  private readonly slotOf: Int32Array;
  private readonly free: number[] = [];
  private readonly shards: Uint32Array;
  private next = 0;
  private current: { k: number; shard: Shard } | undefined;
  private prefetch: { k: number; shard: Promise<Shard> } | undefined;
  /** Stream rows admitted so far. */
  admitted = 0;

  private readonly set: ShardSet;
  private readonly plan: ShufflePlan;
  private readonly stream: Uint32Array;
  constructor(set: ShardSet, plan: ShufflePlan, stream: Uint32Array, epoch: number, capacity: number) {
    this.set = set;
    this.plan = plan;
    this.stream = stream;
    const values = capacity * set.width;
    this.slots = set.manifest.dtype === 'uint8' ? new Uint8Array(values) : new Float32Array(values);
    this.labels = new Int32Array(capacity);
    this.slotOf = new Int32Array(plan.rows).fill(-1);
    for (let s = capacity - 1; s >= 0; s--) this.free.push(s);
    this.shards = shardOrder(plan, epoch);
  }

  private load(k: number): Promise<Shard> {
    const p = this.prefetch?.k === k ? this.prefetch.shard : this.set.shard(k);
    const at = this.shards.indexOf(k);
    const after = at >= 0 && at + 1 < this.shards.length ? this.shards[at + 1]! : undefined;
    this.prefetch = after === undefined ? undefined : { k: after, shard: this.set.shard(after) };
    // A prefetch nobody waits for must not become an unhandled rejection.
    this.prefetch?.shard.catch(() => undefined);
    return p;
  }

  /** Admits stream rows up to (not including) stream position `to`, skipping the rows marked in `skip`. */
  async admitTo(to: number, skip?: Uint8Array): Promise<void> {
    const { shardRows, rows } = this.plan;
    const width = this.set.width;
    while (this.admitted < to) {
      const first = this.stream[this.admitted]!;
      const k = Math.floor(first / shardRows);
      // The stream holds shard k's rows from `first` on, contiguously.
      const end = Math.min(to, this.admitted + Math.min(rows, (k + 1) * shardRows) - first);
      if (skip && this.stream.subarray(this.admitted, end).every((r) => skip[r] === 1)) {
        // Resuming: a shard whose rows in range were all given out already is not read.
        this.admitted = end;
        continue;
      }
      if (this.current?.k !== k) this.current = { k, shard: await this.load(k) };
      const { shard } = this.current;
      for (; this.admitted < end; this.admitted++) {
        const row = this.stream[this.admitted]!;
        if (skip?.[row]) continue;
        const slot = this.free.pop();
        if (slot === undefined) throw new Error('shuffle buffer overflow');
        const i = row - k * shardRows;
        this.slots.set(shard.x.subarray(i * width, (i + 1) * width), slot * width);
        this.labels[slot] = shard.y.length ? shard.y[i]! : -1;
        this.slotOf[row] = slot;
      }
    }
  }

  /** Takes `row` out of the buffer into `out` at `at`; returns its label. */
  take(row: number, out: Float32Array, at: number): number {
    const slot = this.slotOf[row]!;
    if (slot < 0) throw new Error(`row ${row} is not in the shuffle buffer`);
    copyRow(this.slots, slot, this.set.width, out, at);
    this.slotOf[row] = -1;
    this.free.push(slot);
    return this.labels[slot]!;
  }
}

/** Batches of a shard set: see the module comment. */
export class ShardBatches implements BatchSource {
  readonly shape: number[];
  readonly numClasses: number;
  readonly trainRows: number;
  readonly valRows: number;
  readonly plan: ShufflePlan;

  private readonly set: ShardSet;
  private readonly opts: StreamOptions;
  constructor(set: ShardSet, opts: StreamOptions) {
    this.set = set;
    this.opts = opts;
    const { info } = set;
    this.shape = info.featureShape;
    this.numClasses = info.numClasses;
    this.valRows = Math.floor(info.rows * opts.validationSplit);
    this.trainRows = info.rows - this.valRows;
    this.plan = {
      rows: this.trainRows,
      shardRows: set.manifest.shardRows,
      bufferRows: Math.max(1, Math.min(this.trainRows, opts.bufferRows)),
      seed: opts.seed,
    };
  }

  async *trainBatches(epoch: number, batchSize: number, fromBatch: number): AsyncIterable<Batch> {
    const n = this.trainRows;
    const width = this.set.width;
    const order = epochOrder(this.plan, epoch);
    const held = this.set.held();
    let buffer: StreamBuffer | undefined;
    const start = Math.min(n, fromBatch * batchSize);
    if (!held) {
      buffer = new StreamBuffer(
        this.set,
        this.plan,
        epochStream(this.plan, epoch),
        epoch,
        this.plan.bufferRows + batchSize,
      );
      if (start > 0) {
        // The buffer as it was when row `start` was next: its rows that were not given out yet.
        const given = new Uint8Array(n);
        for (let p = 0; p < start; p++) given[order[p]!] = 1;
        await buffer.admitTo(Math.min(n, this.plan.bufferRows + start), given);
      }
    }
    for (let p = start; p < n; p += batchSize) {
      const rows = Math.min(batchSize, n - p);
      const b: Batch = {
        rows,
        x: new Float32Array(rows * width),
        y: new Int32Array(rows),
        ids: order.slice(p, p + rows),
      };
      // Row p + i is in the buffer once stream row bufferRows + p + i has been admitted; the
      // capacity has room for a whole batch admitted ahead.
      await buffer?.admitTo(Math.min(n, this.plan.bufferRows + p + rows - 1));
      for (let i = 0; i < rows; i++) {
        const row = b.ids[i]!;
        if (buffer) {
          b.y[i] = buffer.take(row, b.x, i * width);
        } else {
          copyRow(held!.x, row, width, b.x, i * width);
          b.y[i] = held!.y.length ? held!.y[row]! : -1;
        }
      }
      this.opts.transform?.(b, epoch, p);
      yield b;
    }
  }

  async *validationBatches(batchSize: number): AsyncIterable<Batch> {
    const { shardRows } = this.set.manifest;
    const width = this.set.width;
    const end = this.trainRows + this.valRows;
    let current: { k: number; shard: Shard } | undefined;
    for (let s = this.trainRows; s < end; s += batchSize) {
      const rows = Math.min(batchSize, end - s);
      const b: Batch = {
        rows,
        x: new Float32Array(rows * width),
        y: new Int32Array(rows),
        ids: Uint32Array.from({ length: rows }, (_, i) => s + i),
      };
      for (let i = 0; i < rows; i++) {
        const k = Math.floor((s + i) / shardRows);
        if (current?.k !== k) current = { k, shard: await this.set.shard(k) };
        const r = s + i - k * shardRows;
        copyRow(current.shard.x, r, width, b.x, i * width);
        b.y[i] = current.shard.y.length ? current.shard.y[r]! : -1;
      }
      yield b;
    }
  }
}
