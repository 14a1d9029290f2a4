/**
 * One image file to model input: decode (PNG or JPEG), turn it upright (EXIF orientation), resize
 * (bilinear) to `[h, w]` with 1 or 3 channels, pixels scaled to 0..1. Training, evaluate and
 * batch-predict (the image-folder reader) all go through `imageToFeatures`, so an image means the
 * same to a model wherever it comes from.
 *
 * Decoders: pngjs and jpeg-js, both pure JavaScript. sharp is faster, but its prebuilt libvips
 * binaries are fetched per platform at install time, and installing this project must work where no
 * binary can be downloaded (the same reason tfjs-node is optional). Decoding is a small share of a
 * job's time next to the model, so the pure-JS decoders cost little. EXIF is read with exifr (the
 * most used EXIF reader for JavaScript; it finds the Orientation tag in JPEG APP1 and PNG eXIf alike).
 *
 * Neither decoder bounds what a header may claim, so each file's declared size is read first
 * (image-header.ts) and one over `maxPixels` (IMAGE_MAX_PIXELS) is refused before a byte is decoded.
 */
import exifr from 'exifr';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { DataError } from '../util/errors.ts';
import { imageSize, tooManyPixels, type ImageSize } from './image-header.ts';

/** An image decoded to 8-bit RGBA. */
export interface Rgba {
  width: number;
  height: number;
  data: Uint8Array;
}

/**
 * Checks an image file's declared size (PNG IHDR, JPEG SOF) against `maxPixels` without decoding it:
 * a DataError `image <file>: the PNG is 30000x30000 pixels (...), more than ... IMAGE_MAX_PIXELS
 * allows` above it. Returns the size, or undefined when the header cannot be read (the decoder then
 * says why the file is unreadable).
 */
export function checkImagePixels(buf: Uint8Array, file: string, maxPixels: number): ImageSize | undefined {
  const size = imageSize(buf);
  const why = size && tooManyPixels(size, maxPixels);
  if (why) throw new DataError(`image ${file}: ${why}`);
  return size;
}

/** True when a PNG's chunks run past the end of `buf` before its IEND chunk: the file was cut short. */
function pngTruncated(buf: Buffer): boolean {
  let at = 8;
  while (at + 8 <= buf.length) {
    const end = at + 12 + buf.readUInt32BE(at);
    if (end > buf.length) return true;
    if (buf.toString('latin1', at + 4, at + 8) === 'IEND') return false;
    at = end;
  }
  return true;
}

/**
 * Decodes a PNG or JPEG (told apart by their first bytes) of at most `maxPixels` pixels (width ×
 * height, read from the header before decoding). Throws a DataError naming `file`: over `maxPixels`
 * (see checkImagePixels), not a PNG or JPEG, truncated, or otherwise unreadable.
 */
export function decodeImage(buf: Buffer, file: string, maxPixels: number): Rgba {
  checkImagePixels(buf, file, maxPixels);
  const isPng = buf.length > 8 && buf.readUInt32BE(0) === 0x89504e47;
  const isJpeg = buf.length > 3 && buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff;
  try {
    if (isPng) {
      const png = PNG.sync.read(buf);
      return { width: png.width, height: png.height, data: png.data };
    }
    if (isJpeg) {
      // tolerantDecoding would turn a truncated file into a grey picture: fail instead. The header
      // was checked above; jpeg-js checks every frame it meets against the same limit, and its
      // memory bound is what a frame of maxPixels may need (4 components as 32-bit blocks, their
      // 8-bit lines, the RGBA output: 24 bytes a pixel).
      const img = jpeg.decode(buf, {
        useTArray: true,
        formatAsRGBA: true,
        tolerantDecoding: false,
        maxResolutionInMP: maxPixels / 1e6,
        maxMemoryUsageInMB: Math.max(1024, Math.ceil((maxPixels * 24) / 2 ** 20)),
      });
      return { width: img.width, height: img.height, data: img.data };
    }
  } catch (e) {
    const message = (e as Error).message;
    if (isPng && pngTruncated(buf))
      throw new DataError(`unreadable image ${file}: the PNG is truncated: it ends before its IEND chunk`);
    if (isJpeg && message.startsWith('maxResolutionInMP limit exceeded'))
      throw new DataError(
        `image ${file}: the JPEG has a frame of more than the ${maxPixels} pixels IMAGE_MAX_PIXELS allows`,
      );
    throw new DataError(`unreadable image ${file}: ${message}`);
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

/**
 * The EXIF Orientation of a PNG or JPEG (1-8; 1 when absent or unreadable: a broken EXIF block does
 * not make the pixels unusable, as viewers and PIL agree).
 */
export async function exifOrientation(buf: Buffer): Promise<number> {
  try {
    const o = await exifr.orientation(buf);
    return typeof o === 'number' && o >= 1 && o <= 8 ? o : 1;
  } catch {
    return 1;
  }
}

/**
 * The image as it is meant to be seen, for an EXIF Orientation `o` (TIFF 6.0 / EXIF 2.32 tag 274):
 * 2 mirrored, 3 turned 180°, 4 flipped, 5 transposed, 6 stored turned 90° counter-clockwise (shown
 * turned 90° clockwise), 7 transversed, 8 stored turned 90° clockwise. The same mapping as PIL's
 * `ImageOps.exif_transpose`. For 5-8 width and height swap.
 */
export function applyOrientation(img: Rgba, o: number): Rgba {
  const map = ORIENTATION[o];
  if (!map) return img;
  const { width: w, height: h, data } = img;
  const [W, H] = o >= 5 ? [h, w] : [w, h];
  // Shown pixel (x, y) comes from stored pixel (ax·x + bx·y + cx, ay·x + by·y + cy): an index linear in x, y.
  const [ax, bx, cx, ay, by, cy] = map(w, h);
  const dx = (ay * w + ax) * 4;
  const dy = (by * w + bx) * 4;
  const out = new Uint8Array(W * H * 4);
  let o4 = 0;
  for (let y = 0; y < H; y++) {
    let i = (cy * w + cx) * 4 + y * dy;
    for (let x = 0; x < W; x++, i += dx) {
      out[o4++] = data[i]!;
      out[o4++] = data[i + 1]!;
      out[o4++] = data[i + 2]!;
      out[o4++] = data[i + 3]!;
    }
  }
  return { width: W, height: H, data: out };
}

/** Per orientation 2-8: `[ax, bx, cx, ay, by, cy]` of the stored pixel each shown pixel comes from. */
type Affine = [number, number, number, number, number, number];
const ORIENTATION: Record<number, (w: number, h: number) => Affine> = {
  2: (w) => [-1, 0, w - 1, 0, 1, 0],
  3: (w, h) => [-1, 0, w - 1, 0, -1, h - 1],
  4: (_w, h) => [1, 0, 0, 0, -1, h - 1],
  5: () => [0, 1, 0, 1, 0, 0],
  6: (_w, h) => [0, 1, 0, -1, 0, h - 1],
  7: (w, h) => [0, -1, w - 1, -1, 0, h - 1],
  8: (w) => [0, -1, w - 1, 1, 0, 0],
};

/**
 * Decodes an image file's bytes (at most `maxPixels` pixels, see decodeImage) and turns it upright
 * (EXIF orientation); DataError naming `file` otherwise.
 */
export async function decodeUpright(buf: Buffer, file: string, maxPixels: number): Promise<Rgba> {
  const img = decodeImage(buf, file, maxPixels);
  return applyOrientation(img, await exifOrientation(buf));
}

/**
 * An image file's bytes as model input: decoded, upright, resized to `h × w × channels` floats in
 * 0..1 written at `out[at ..]`. Returns the upright image (its size and pixels go into dataset hashes).
 * A file of more than `maxPixels` pixels (width × height; IMAGE_MAX_PIXELS) is refused before it is
 * decoded; that and any unreadable file is a DataError naming `file`.
 */
export async function imageToFeatures(
  buf: Buffer,
  file: string,
  [h, w]: readonly [number, number],
  channels: 1 | 3,
  out: Float32Array,
  at: number,
  maxPixels: number,
): Promise<Rgba> {
  const img = await decodeUpright(buf, file, maxPixels);
  resizeInto(img, h, w, channels, out, at);
  return img;
}
