/**
 * An image's declared size, read before decoding (image-header.ts), and the limit decodeImage puts on
 * it: real files from pngjs and jpeg-js, EXIF and other segments before a JPEG's frame, bytes fed in
 * any pieces, and complete, valid decompression bombs refused in milliseconds.
 */
import { describe, expect, it } from 'vitest';
import { checkImagePixels, decodeImage } from '../src/data/image-decode.ts';
import { ImageSizeReader, imageSize } from '../src/data/image-header.ts';
import { DataError } from '../src/util/errors.ts';
import { blackPng, drawQuadrants, greyJpeg, jpegOf, pngOf, withOrientation } from './images.ts';

/** The size `bytes` declare when fed `step` bytes at a time. */
function readInPieces(bytes: Buffer, step: number): ImageSizeReader {
  const r = new ImageSizeReader();
  for (let at = 0; at < bytes.length && !r.done; at += step) r.push(bytes.subarray(at, at + step));
  r.end();
  return r;
}

/** A JPEG segment of `n` bytes of body (COM or APPn), as phones put megabytes of XMP before the frame. */
function segment(marker: number, n: number): Buffer {
  const b = Buffer.alloc(4 + n, 0x41);
  b.writeUInt16BE(0xff00 | marker, 0);
  b.writeUInt16BE(n + 2, 2);
  return b;
}

const withSegments = (jpeg: Buffer, ...segments: Buffer[]) =>
  Buffer.concat([jpeg.subarray(0, 2), ...segments, jpeg.subarray(2)]);

/** How long `fn` takes, in ms. */
function timed(fn: () => void): number {
  const t = performance.now();
  fn();
  return performance.now() - t;
}

describe('image sizes from headers', () => {
  const picture = drawQuadrants(40, 24);

  it('reads a PNG and a JPEG as their encoders wrote them, whole or a byte at a time', () => {
    const png = pngOf(picture);
    const jpeg = withOrientation(jpegOf(picture), 6);
    expect(imageSize(png)).toEqual({ format: 'PNG', width: 40, height: 24 });
    expect(imageSize(jpeg)).toEqual({ format: 'JPEG', width: 40, height: 24 });
    for (const step of [1, 3, 7, 1000]) {
      expect(readInPieces(png, step).size).toEqual({ format: 'PNG', width: 40, height: 24 });
      expect(readInPieces(jpeg, step).size).toEqual({ format: 'JPEG', width: 40, height: 24 });
    }
  });

  it("walks megabytes of segments before a JPEG's frame, and fill bytes, whatever the pieces", () => {
    // 40 APP1 segments of 60 KB (XMP as some phones write it), a comment, fill bytes before DQT.
    const jpeg = withSegments(
      jpegOf(picture),
      ...Array.from({ length: 40 }, () => segment(0xe1, 60_000)),
      segment(0xfe, 10),
      Buffer.from([0xff, 0xff, 0xff]),
    );
    expect(jpeg.length).toBeGreaterThan(2_400_000);
    for (const step of [7, 4096, 65_536, jpeg.length]) {
      expect(readInPieces(jpeg, step).size, `step ${step}`).toEqual({
        format: 'JPEG',
        width: 40,
        height: 24,
      });
    }
  });

  it('says why a file has no size it can read', () => {
    const problem = (b: Buffer) => readInPieces(b, 5).problem;
    expect(problem(Buffer.from('a,b\n1,2\n'))).toBe('not a PNG or JPEG file');
    expect(problem(Buffer.alloc(0))).toBe('not a PNG or JPEG file');
    expect(problem(pngOf(picture).subarray(0, 20))).toBe(
      'the PNG is truncated: it ends before its IHDR chunk',
    );
    const jpeg = jpegOf(picture);
    expect(problem(jpeg.subarray(0, 30))).toBe(
      'the JPEG is truncated: it ends before its frame header (SOF)',
    );
    const noFrame = Buffer.concat([jpeg.subarray(0, 2), Buffer.from([0xff, 0xda, 0, 2, 0xff, 0xd9])]);
    expect(problem(noFrame)).toBe('the JPEG has no frame header (SOF) before its scan');
  });

  it('makes valid bombs: the decoders read small ones as the black or grey pictures they are', () => {
    const png = decodeImage(blackPng(300, 7), 'b.png', 1e6);
    expect([png.width, png.height]).toEqual([300, 7]);
    expect(png.data.every((v, i) => v === (i % 4 === 3 ? 255 : 0))).toBe(true);
    const jpeg = decodeImage(greyJpeg(300, 7), 'g.jpg', 1e6);
    expect([jpeg.width, jpeg.height]).toEqual([300, 7]);
    expect(jpeg.data.every((v, i) => v === (i % 4 === 3 ? 255 : 128))).toBe(true);
  });

  it('refuses an image over the limit before decoding it, naming it, its size and the limit', () => {
    const png = blackPng(30_000, 30_000); // 875 KB of deflate: 900 megapixels, 3.6 GB as RGBA
    expect(png.length).toBeLessThan(1 << 20);
    expect(imageSize(png)).toEqual({ format: 'PNG', width: 30_000, height: 30_000 });
    let error: unknown;
    const ms = timed(() => {
      try {
        decodeImage(png, 'bomb.png', 50_000_000);
      } catch (e) {
        error = e;
      }
    });
    expect(error).toBeInstanceOf(DataError);
    expect((error as Error).message).toBe(
      'image bomb.png: the PNG is 30000x30000 pixels (900.0 megapixels), more than the 50000000 ' +
        '(50.0 megapixels) IMAGE_MAX_PIXELS allows',
    );
    expect(ms).toBeLessThan(500);
    const jpeg = greyJpeg(9000, 9000); // 81 megapixels: within jpeg-js's own default of 100
    expect(() => decodeImage(jpeg, 'big.jpg', 50_000_000)).toThrow(
      'image big.jpg: the JPEG is 9000x9000 pixels (81.0 megapixels), more than the 50000000',
    );
  });

  it('takes an image of exactly the limit, and refuses one pixel more', () => {
    const png = pngOf(picture);
    expect(checkImagePixels(png, 'p.png', 40 * 24)).toEqual({ format: 'PNG', width: 40, height: 24 });
    expect(decodeImage(png, 'p.png', 40 * 24).width).toBe(40);
    expect(() => decodeImage(png, 'p.png', 40 * 24 - 1)).toThrow(/^image p\.png: the PNG is 40x24 pixels/);
  });

  it('refuses a second JPEG frame over the limit too (jpeg-js checks each frame it meets)', () => {
    const small = greyJpeg(16, 16);
    const sof = small.indexOf(Buffer.from([0xff, 0xc0]));
    const big = Buffer.from(small.subarray(sof, sof + 13));
    big.writeUInt16BE(20_000, 5);
    big.writeUInt16BE(20_000, 7);
    const twoFrames = Buffer.concat([small.subarray(0, sof + 13), big, small.subarray(sof + 13)]);
    expect(imageSize(twoFrames)).toEqual({ format: 'JPEG', width: 16, height: 16 });
    expect(() => decodeImage(twoFrames, 'two.jpg', 50_000_000)).toThrow(
      'image two.jpg: the JPEG has a frame of more than the 50000000 pixels IMAGE_MAX_PIXELS allows',
    );
  });

  it('says a truncated PNG is truncated, not what the PNG library says about its streams', () => {
    const png = pngOf(picture);
    for (const n of [40, png.length - 12, png.length - 1]) {
      expect(() => decodeImage(png.subarray(0, n), 'cut.png', 1e6), `${n} bytes`).toThrow(
        'unreadable image cut.png: the PNG is truncated: it ends before its IEND chunk',
      );
    }
  });
});
