/**
 * Image files for tests: MNIST digits drawn at another size (so that decoding resizes them) and
 * written as PNG or JPEG with pngjs and jpeg-js, the same libraries the image-folder dataset reads with.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';

/** A 28×28 digit (values 0..1) drawn at `width` × `height` (nearest neighbour) as opaque grey RGBA. */
export function digitRgba(pixels: ArrayLike<number>, width: number, height: number): Uint8Array {
  const rgba = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = Math.round(255 * pixels[Math.floor((y * 28) / height) * 28 + Math.floor((x * 28) / width)]!);
      rgba.set([v, v, v, 255], (y * width + x) * 4);
    }
  }
  return rgba;
}

export function encodePng(rgba: Uint8Array, width: number, height: number): Buffer {
  const png = new PNG({ width, height });
  png.data = Buffer.from(rgba);
  return PNG.sync.write(png);
}

export function encodeJpeg(rgba: Uint8Array, width: number, height: number, quality = 90): Buffer {
  return jpeg.encode({ data: Buffer.from(rgba), width, height }, quality).data;
}

/** One image file of a digit: PNG for even `i`, JPEG for odd, at 36×32 pixels. */
export function digitFile(pixels: ArrayLike<number>, i: number): { name: string; bytes: Buffer } {
  const [w, h] = [36, 32];
  const rgba = digitRgba(pixels, w, h);
  return i % 2 === 0
    ? { name: `d${String(i).padStart(3, '0')}.png`, bytes: encodePng(rgba, w, h) }
    : { name: `d${String(i).padStart(3, '0')}.jpg`, bytes: encodeJpeg(rgba, w, h) };
}

/**
 * Writes an image-folder dataset: one sub-folder per class with the digits' files.
 * @returns every file written, with its class.
 */
export async function writeImageFolder(
  root: string,
  classes: Record<string, ArrayLike<number>[]>,
): Promise<{ file: string; label: string; bytes: Buffer }[]> {
  const out: { file: string; label: string; bytes: Buffer }[] = [];
  let i = 0;
  for (const [label, digits] of Object.entries(classes)) {
    await mkdir(path.join(root, label), { recursive: true });
    for (const d of digits) {
      const f = digitFile(d, i++);
      const file = path.join(root, label, f.name);
      await writeFile(file, f.bytes);
      out.push({ file, label, bytes: f.bytes });
    }
  }
  return out;
}
