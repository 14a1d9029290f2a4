/**
 * The `{"format": "image-folder"}` dataset: one sub-folder per class (the sorted folder names are the
 * class names), PNG and JPEG images in each, resized (bilinear) to `imageSize` with 1 or 3 channels and
 * pixels scaled to 0..1.
 *
 * Decoders: pngjs and jpeg-js, both pure JavaScript. sharp is faster, but its prebuilt libvips
 * binaries are fetched per platform at install time, and installing this project must work where no
 * binary can be downloaded (the same reason tfjs-node is optional). Decoding is a small
 * share of a job's time next to the model, so the pure-JS decoders cost little.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import type { z } from 'zod';
import { seededPermutation, type imageFolderDatasetSchema } from '@mlq/contract';
import { resolveDataPath } from '../storage/data-uri.ts';
import { DataError } from '../util/errors.ts';
import type { Chunk, DatasetInfo, DatasetSource, OpenDatasetOptions } from './dataset.ts';

export type ImageFolderSpec = z.infer<typeof imageFolderDatasetSchema>;

/** Files with other extensions (READMEs, Thumbs.db...) are not examples and are skipped. */
const IMAGE_EXT = /\.(png|jpe?g)$/i;

/** An image decoded to 8-bit RGBA. */
export interface Rgba {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Decodes a PNG or JPEG (told apart by their first bytes); a DataError names the file otherwise. */
export function decodeImage(buf: Buffer, file: string): Rgba {
  const isPng = buf.length > 8 && buf.readUInt32BE(0) === 0x89504e47;
  const isJpeg = buf.length > 3 && buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff;
  try {
    if (isPng) {
      const png = PNG.sync.read(buf);
      return { width: png.width, height: png.height, data: png.data };
    }
    if (isJpeg) {
      // tolerantDecoding would turn a truncated file into a grey picture: fail instead.
      const img = jpeg.decode(buf, {
        useTArray: true,
        formatAsRGBA: true,
        tolerantDecoding: false,
        maxMemoryUsageInMB: 1024,
      });
      return { width: img.width, height: img.height, data: img.data };
    }
  } catch (e) {
    throw new DataError(`unreadable image ${file}: ${(e as Error).message}`);
  }
  throw new DataError(`unreadable image ${file}: not a PNG or JPEG file`);
}

/**
 * Bilinear resize with half-pixel centres (as PIL and tf.image.resizeBilinear with halfPixelCenters),
 * writing `h * w * channels` floats in 0..1 at `out[at ..]`. One channel is the luminance (BT.601).
 */
export function resizeInto(
  img: Rgba,
  h: number,
  w: number,
  channels: 1 | 3,
  out: Float32Array,
  at: number,
): void {
  const { width: sw, height: sh, data } = img;
  const scaleY = sh / h;
  const scaleX = sw / w;
  let o = at;
  for (let y = 0; y < h; y++) {
    const fy = Math.min(Math.max((y + 0.5) * scaleY - 0.5, 0), sh - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, sh - 1);
    const dy = fy - y0;
    for (let x = 0; x < w; x++) {
      const fx = Math.min(Math.max((x + 0.5) * scaleX - 0.5, 0), sw - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, sw - 1);
      const dx = fx - x0;
      const a = (y0 * sw + x0) * 4;
      const b = (y0 * sw + x1) * 4;
      const c = (y1 * sw + x0) * 4;
      const d = (y1 * sw + x1) * 4;
      const wa = ((1 - dx) * (1 - dy)) / 255;
      const wb = (dx * (1 - dy)) / 255;
      const wc = ((1 - dx) * dy) / 255;
      const wd = (dx * dy) / 255;
      const r = data[a]! * wa + data[b]! * wb + data[c]! * wc + data[d]! * wd;
      const g = data[a + 1]! * wa + data[b + 1]! * wb + data[c + 1]! * wc + data[d + 1]! * wd;
      const bl = data[a + 2]! * wa + data[b + 2]! * wb + data[c + 2]! * wc + data[d + 2]! * wd;
      if (channels === 3) {
        out[o++] = r;
        out[o++] = g;
        out[o++] = bl;
      } else {
        out[o++] = 0.299 * r + 0.587 * g + 0.114 * bl;
      }
    }
  }
}

/** Reads and decodes one image; any failure is a DataError naming it. */
async function loadImage(file: string): Promise<Rgba> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (e) {
    throw new DataError(`unreadable image ${file}: ${(e as Error).message}`);
  }
  return decodeImage(buf, file);
}

interface Item {
  file: string;
  label: number;
}

/** The images of every class folder, class-major in sorted order, and the class names. */
async function listImages(
  root: string,
  classNames: readonly string[] | undefined,
): Promise<{ items: Item[]; names: string[] }> {
  let entries;
  try {
    if (!(await stat(root)).isDirectory())
      throw new DataError(`${root} is not a folder (an image-folder dataset is a folder of class folders)`);
    entries = await readdir(root, { withFileTypes: true });
  } catch (e) {
    if (e instanceof DataError) throw e;
    throw new DataError(`cannot read the folder ${root}: ${(e as Error).message}`);
  }
  const folders = entries
    .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
    .map((d) => d.name)
    .sort();
  if (folders.length === 0) throw new DataError(`${root} has no class folders (one sub-folder per class)`);
  // With the model's class names (evaluate), folder "cat" must mean the class the model calls "cat".
  const names = classNames ? [...classNames] : folders;
  const items: Item[] = [];
  for (const folder of folders) {
    const label = names.indexOf(folder);
    if (label < 0)
      throw new DataError(
        `${path.join(root, folder)}: unknown label "${folder}"; the model's classes are ${names.join(', ')}`,
      );
    const files = (await readdir(path.join(root, folder), { withFileTypes: true }))
      .filter((d) => d.isFile() && !d.name.startsWith('.') && IMAGE_EXT.test(d.name))
      .map((d) => d.name)
      .sort();
    for (const f of files) items.push({ file: path.join(root, folder, f), label });
  }
  return { items, names };
}

/**
 * Opens an image-folder dataset. Rows come in one fixed shuffled order (seed 0) of the sorted file
 * list, so classes are mixed: a validation split (the last rows) and `limit` see every class.
 */
export function imageFolderSource(spec: ImageFolderSpec, opts: OpenDatasetOptions): DatasetSource {
  const [h, w] = spec.imageSize;
  const channels = spec.channels;
  const width = h * w * channels;
  let pending: Promise<{ info: DatasetInfo; items: Item[] }> | undefined;
  const scan = async () => {
    const root = await resolveDataPath(spec.uri, opts.dataRoots);
    const { items: sorted, names } = await listImages(root, opts.classNames);
    const order = seededPermutation(sorted.length, 0);
    const rows = Math.min(sorted.length, spec.limit ?? Infinity);
    const items = Array.from({ length: rows }, (_, i) => sorted[order[i]!]!);
    const hash = createHash('sha256').update(
      JSON.stringify({ f: 'image-folder', size: spec.imageSize, c: channels }),
    );
    const scratch = new Float32Array(width);
    for (const it of items) {
      // Decode every image now, so that a broken one fails the job before any work is done.
      const img = await loadImage(it.file);
      resizeInto(img, h, w, channels, scratch, 0);
      hash
        .update(`${path.relative(root, it.file)}\n${it.label}\n${img.width}x${img.height}\n`)
        .update(img.data);
    }
    const info: DatasetInfo = {
      featureShape: [h, w, channels],
      numClasses: names.length,
      classNames: names,
      rows,
      hash: hash.digest('hex').slice(0, 16),
    };
    return { info, items };
  };
  const get = () => (pending ??= scan());
  return {
    info: async () => (await get()).info,
    async *chunks({ chunkSize, start = 0 }): AsyncIterable<Chunk> {
      const { items } = await get();
      for (let s = start; s < items.length; s += chunkSize) {
        const count = Math.min(chunkSize, items.length - s);
        const x = new Float32Array(count * width);
        const y = new Int32Array(count);
        for (let i = 0; i < count; i++) {
          const it = items[s + i]!;
          resizeInto(await loadImage(it.file), h, w, channels, x, i * width);
          y[i] = it.label;
        }
        yield { start: s, count, x, y };
      }
    },
  };
}
