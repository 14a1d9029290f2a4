import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { augmenter } from '../src/data/pipeline/augment.ts';
import { ShardBatches, type StreamOptions } from '../src/data/pipeline/batch-stream.ts';
import { writeShardSet, type ShardSet } from '../src/data/pipeline/shard-set.ts';
import { epochOrder, epochStream, type ShufflePlan } from '../src/data/pipeline/shuffle-plan.ts';
import type { Batch, BatchSource } from '../src/data/batches.ts';
import { fitModel, type PartialEpoch } from '../src/ml/fit.ts';
import { FileArtifactStore } from '../src/storage/file-store.ts';
import { ReleasedError, SHUTDOWN_REASON } from '../src/util/errors.ts';

let dir: string;
let store: FileArtifactStore;
/** 90 images 6x5x3 of 3 classes, as uint8 shards of 8 rows (12 shards, the last one of 2 rows). */
let images: ShardSet;
const SHAPE = [6, 5, 3];
const ROWS = 90;

/** Row r's pixels: a ramp that differs by row, so any mix-up of rows or pixels shows. */
function pixels(r: number): Float32Array {
  return Float32Array.from({ length: 90 }, (_, j) => ((r * 7 + j * 3) % 256) / 255);
}

async function imageSet(prefix: string, keep: boolean): Promise<ShardSet> {
  async function* rows() {
    for (let s = 0; s < ROWS; s += 20) {
      const n = Math.min(20, ROWS - s);
      const x = new Float32Array(n * 90);
      for (let i = 0; i < n; i++) x.set(pixels(s + i), i * 90);
      yield { count: n, x, y: Int32Array.from({ length: n }, (_, i) => (s + i) % 3) };
    }
  }
  const info = { featureShape: SHAPE, numClasses: 3, rows: ROWS, hash: 'test' };
  return writeShardSet(store, prefix, info, 'uint8', rows(), { keep, shardRows: 8 });
}

/** Every training batch of an epoch from batch `from`, as plain arrays. */
async function collect(src: BatchSource, epoch: number, batchSize: number, from = 0): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of src.trainBatches(epoch, batchSize, from)) out.push(b);
  return out;
}

const plain = (bs: Batch[]) =>
  bs.map((b) => ({ ids: Array.from(b.ids), x: Array.from(b.x), y: Array.from(b.y) }));

beforeAll(async () => {
  await tf.setBackend('cpu');
  dir = await mkdtemp(path.join(os.tmpdir(), 'mlq-stream-'));
  store = new FileArtifactStore(path.join(dir, 'store'));
  images = await imageSet('sets/images', false);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the shuffle plan', () => {
  const plan: ShufflePlan = { rows: 100, shardRows: 7, bufferRows: 10, seed: 5 };

  it('visits every row once per epoch, reproducibly, in a different order each epoch', () => {
    const a = epochOrder(plan, 1);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(Array.from(epochOrder(plan, 1))).toEqual(Array.from(a));
    expect(Array.from(epochOrder(plan, 2))).not.toEqual(Array.from(a));
    expect(Array.from(epochOrder({ ...plan, seed: 6 }, 1))).not.toEqual(Array.from(a));
  });

  it('streams whole shards in a random order and gives out only rows the buffer holds', () => {
    const stream = epochStream(plan, 3);
    // Shards stay contiguous: each run of rows of one shard is a whole shard.
    const firsts = Array.from(stream).filter(
      (r, i) => i === 0 || Math.floor(stream[i - 1]! / 7) !== Math.floor(r / 7),
    );
    expect(firsts.every((r) => r % 7 === 0)).toBe(true);
    expect(firsts).not.toEqual([...firsts].sort((x, y) => x - y));
    const at = new Map(Array.from(stream, (r, i) => [r, i]));
    epochOrder(plan, 3).forEach((r, p) => expect(at.get(r)!).toBeLessThan(plan.bufferRows + p));
  });
});

describe('streamed batches', () => {
  const opts: StreamOptions = { validationSplit: 0.2, seed: 9, bufferRows: 16 };

  it('give the decoded rows (bytes / 255) with their labels, validation rows last and in order', async () => {
    const src = new ShardBatches(images, opts);
    expect([src.trainRows, src.valRows]).toEqual([72, 18]);
    const batches = await collect(src, 1, 10);
    expect(batches.map((b) => b.rows)).toEqual([10, 10, 10, 10, 10, 10, 10, 2]);
    const ids = batches.flatMap((b) => Array.from(b.ids));
    expect([...ids].sort((a, b) => a - b)).toEqual(Array.from({ length: 72 }, (_, i) => i));
    for (const b of batches)
      for (let i = 0; i < b.rows; i++) {
        const want = pixels(b.ids[i]!);
        b.x.subarray(i * 90, (i + 1) * 90).forEach((v, j) => expect(v).toBeCloseTo(want[j]!, 6));
        expect(b.y[i]).toBe(b.ids[i]! % 3);
      }
    const val: Batch[] = [];
    for await (const b of src.validationBatches(7)) val.push(b);
    expect(val.flatMap((b) => Array.from(b.ids))).toEqual(Array.from({ length: 18 }, (_, i) => 72 + i));
  });

  it('are the same whether the set is held in memory or streamed from its shards', async () => {
    const held = await imageSet('sets/held', true);
    expect(held.inMemory).toBe(true);
    expect(images.inMemory).toBe(false);
    const a = plain(await collect(new ShardBatches(held, opts), 2, 8));
    const b = plain(await collect(new ShardBatches(images, opts), 2, 8));
    expect(b).toEqual(a);
  });

  it('resume at batch k with the batches from k of the same epoch, also when augmented', async () => {
    const augmented = {
      ...opts,
      transform: augmenter({ flip: 'horizontal', rotate: 0.1, contrast: 0.3 }, SHAPE, 9),
    };
    for (const o of [opts, augmented]) {
      const all = plain(await collect(new ShardBatches(images, o), 4, 6));
      const tail = plain(await collect(new ShardBatches(images, o), 4, 6, 5));
      expect(tail).toEqual(all.slice(5));
    }
  });
});

describe('augmentation', () => {
  const opts: StreamOptions = { validationSplit: 0.2, seed: 9, bufferRows: 16 };
  const spec = {
    flip: 'horizontal_and_vertical',
    rotate: 0.2,
    zoom: 0.2,
    translate: 0.1,
    contrast: 0.5,
  } as const;

  it('changes training batches, never validation batches', async () => {
    const raw = new ShardBatches(images, opts);
    const aug = new ShardBatches(images, { ...opts, transform: augmenter(spec, SHAPE, 9) });
    const [r, a] = [await collect(raw, 1, 12), await collect(aug, 1, 12)];
    expect(a.map((b) => Array.from(b.ids))).toEqual(r.map((b) => Array.from(b.ids)));
    expect(a.map((b) => Array.from(b.y))).toEqual(r.map((b) => Array.from(b.y)));
    const changed = a.filter((b, i) => b.x.some((v, j) => Math.abs(v - r[i]!.x[j]!) > 1e-3)).length;
    expect(changed).toBe(a.length);
    a.forEach((b) => b.x.forEach((v) => expect(v >= 0 && v <= 1).toBe(true)));
    const valRaw: number[] = [];
    const valAug: number[] = [];
    for await (const b of raw.validationBatches(5)) valRaw.push(...b.x);
    for await (const b of aug.validationBatches(5)) valAug.push(...b.x);
    expect(valAug).toEqual(valRaw);
  });

  it('flips exactly (no resampling) and keeps a plain image plain under rotation, zoom and shift', () => {
    const img = pixels(3);
    const flipOnly = augmenter({ flip: 'horizontal' }, SHAPE, 1);
    let mirrored = 0;
    for (let p = 0; p < 16; p++) {
      const b: Batch = { rows: 1, x: Float32Array.from(img), y: new Int32Array(1), ids: new Uint32Array(1) };
      flipOnly(b, 1, p);
      const mirror = Float32Array.from(img, (_, k) => {
        const [y, x, c] = [Math.floor(k / 15), Math.floor(k / 3) % 5, k % 3];
        return img[(y * 5 + (4 - x)) * 3 + c]!;
      });
      const same = b.x.every((v, k) => v === img[k]);
      if (!same) {
        expect(Array.from(b.x)).toEqual(Array.from(mirror));
        mirrored++;
      }
    }
    // Probability 1/2 each: both outcomes among 16 draws.
    expect(mirrored).toBeGreaterThan(0);
    expect(mirrored).toBeLessThan(16);
    const flat = new Float32Array(90).fill(0.25);
    const b: Batch = { rows: 1, x: flat, y: new Int32Array(1), ids: new Uint32Array(1) };
    augmenter({ rotate: 0.5, zoom: 0.5, translate: 0.5 }, SHAPE, 2)(b, 1, 0);
    b.x.forEach((v) => expect(v).toBeCloseTo(0.25, 6));
  });

  it('contrast keeps each channel mean and scales the spread by one factor in [1 - f, 1 + f]', () => {
    const img = pixels(11).map((v) => 0.3 + 0.4 * v);
    const b: Batch = { rows: 1, x: Float32Array.from(img), y: new Int32Array(1), ids: new Uint32Array(1) };
    augmenter({ contrast: 0.5 }, SHAPE, 4)(b, 1, 0);
    const mean = (a: Float32Array, c: number) =>
      a.filter((_, k) => k % 3 === c).reduce((s, v) => s + v, 0) / 30;
    const factors = [0, 1, 2].map((c) => {
      expect(mean(b.x, c)).toBeCloseTo(mean(img, c), 5);
      return (b.x[c]! - mean(b.x, c)) / (img[c]! - mean(img, c));
    });
    expect(factors[1]).toBeCloseTo(factors[0]!, 4);
    expect(factors[0]).toBeGreaterThanOrEqual(0.5);
    expect(factors[0]).toBeLessThanOrEqual(1.5);
  });
});

/** A BatchSource that records every training batch it gives out. */
function recording(src: BatchSource, seen: Batch[]): BatchSource {
  return {
    ...src,
    trainBatches: async function* (epoch, batchSize, from) {
      for await (const b of src.trainBatches(epoch, batchSize, from)) {
        seen.push(b);
        yield b;
      }
    },
    validationBatches: (n) => src.validationBatches(n),
  };
}

function net(): tf.LayersModel {
  const m = tf.sequential({
    layers: [tf.layers.flatten({ inputShape: SHAPE }), tf.layers.dense({ units: 3, activation: 'softmax' })],
  });
  m.compile({ optimizer: tf.train.sgd(0.1), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  return m;
}

describe('a fit interrupted mid-epoch and resumed', () => {
  it('sees exactly the batches the uninterrupted fit saw, augmented the same', async () => {
    const opts: StreamOptions = {
      validationSplit: 0.2,
      seed: 3,
      bufferRows: 20,
      transform: augmenter({ flip: 'horizontal', zoom: 0.2, contrast: 0.2 }, SHAPE, 3),
    };
    const fit = { epochs: 3, batchSize: 8, validationSplit: 0, seed: 0 };
    const whole: Batch[] = [];
    await fitModel(net(), recording(new ShardBatches(images, opts), whole), fit);

    // A shutdown in epoch 2 after 4 of its 9 batches: the fit saves where it was and stops.
    const first: Batch[] = [];
    const ac = new AbortController();
    let saved: PartialEpoch | undefined;
    const src = recording(new ShardBatches(images, opts), first);
    const stopping: BatchSource = {
      ...src,
      trainBatches: async function* (epoch, batchSize, from) {
        for await (const b of src.trainBatches(epoch, batchSize, from)) {
          if (epoch === 2 && first.length === 9 + 5) ac.abort(SHUTDOWN_REASON);
          yield b;
        }
      },
    };
    const interrupted = fitModel(net(), stopping, {
      ...fit,
      signal: ac.signal,
      onInterrupt: (p) => ((saved = p), Promise.resolve()),
    });
    await expect(interrupted).rejects.toBeInstanceOf(ReleasedError);
    expect(saved).toMatchObject({ epoch: 2, batches: 4 });

    // Another process: a fresh pipeline over the same shards, resumed from the saved position.
    const rest: Batch[] = [];
    await fitModel(net(), recording(new ShardBatches(images, opts), rest), {
      ...fit,
      initialEpoch: 1,
      partial: saved,
    });
    // The batch the shutdown interrupted was read but not trained on: it comes again after the resume.
    const trained = [...first.slice(0, 9 + 4), ...rest];
    expect(plain(trained)).toEqual(plain(whole));
  });
});
