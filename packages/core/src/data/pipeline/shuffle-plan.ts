/**
 * The order in which an epoch visits the training rows, the way tf.data shuffles a sharded dataset
 * (`Dataset.list_files(shuffle=True)` then `.shuffle(buffer_size)`): the shards are visited in a random
 * order, their rows stream through a shuffle buffer, and each row given out is drawn uniformly from the
 * buffer, whose slot the next row of the stream then takes. With a buffer as large as the data this is
 * a uniform shuffle; with a smaller one, memory holds only the buffer, whatever the dataset's size.
 *
 * The order is computed on row indices alone (cheap: one Uint32Array per epoch), so a job resumed at
 * batch k of epoch e computes the same order and knows which rows its buffer held at that point.
 */
import { mulberry32, seededPermutation } from '@mlq/contract';

export interface ShufflePlan {
  /** Training rows: `0 .. rows - 1` of the dataset (the validation rows come after them). */
  rows: number;
  /** Rows per shard of the cached data: shard k holds rows `k * shardRows ..`. */
  shardRows: number;
  /** Rows the shuffle buffer holds (at most `rows`). */
  bufferRows: number;
  seed: number;
}

/** One 32-bit seed from several integers (a murmur3-style mix): different parts, unrelated streams. */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** The shards holding training rows, in the order epoch `epoch` visits them. */
export function shardOrder(plan: ShufflePlan, epoch: number): Uint32Array {
  const shards = Math.ceil(plan.rows / plan.shardRows);
  return seededPermutation(shards, mixSeed(plan.seed, epoch, 1));
}

/** Rows in the order they enter the shuffle buffer: shard by shard (in `shardOrder`), each in its order. */
export function epochStream(plan: ShufflePlan, epoch: number): Uint32Array {
  const out = new Uint32Array(plan.rows);
  let o = 0;
  for (const k of shardOrder(plan, epoch)) {
    const end = Math.min(plan.rows, (k + 1) * plan.shardRows);
    for (let r = k * plan.shardRows; r < end; r++) out[o++] = r;
  }
  return out;
}

/**
 * The rows in the order training sees them in epoch `epoch`. Before row `p` is given out the buffer
 * holds the first `min(rows, bufferRows + p)` rows of `epochStream` except those already given out:
 * a reader that admits one stream row per row given out always holds the row asked for next.
 */
export function epochOrder(plan: ShufflePlan, epoch: number): Uint32Array {
  const stream = epochStream(plan, epoch);
  const n = plan.rows;
  const rand = mulberry32(mixSeed(plan.seed, epoch, 2));
  const buffer = stream.slice(0, Math.min(n, Math.max(1, plan.bufferRows)));
  let size = buffer.length;
  let next = size;
  const out = new Uint32Array(n);
  for (let p = 0; p < n; p++) {
    const j = Math.floor(rand() * size);
    out[p] = buffer[j]!;
    if (next < n) buffer[j] = stream[next++]!;
    else buffer[j] = buffer[--size]!;
  }
  return out;
}
