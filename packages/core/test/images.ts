/**
 * Test images: drawn RGBA pictures as PNG or JPEG (pngjs, jpeg-js), stored turned as a camera stores
 * them, an EXIF APP1 segment with an Orientation tag written into a JPEG by hand, and decompression
 * bombs: complete, valid PNG and JPEG files of any size, all black or grey, that take little space.
 */
import { constants, crc32, deflateRawSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';

export interface Image {
  width: number;
  height: number;
  data: Buffer;
}

/** Red, green / blue, white quadrants. */
export function drawQuadrants(width: number, height: number): Image {
  const data = Buffer.alloc(width * height * 4);
  const colours = [
    [255, 0, 0],
    [0, 255, 0],
    [0, 0, 255],
    [255, 255, 255],
  ];
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const q = (y < height / 2 ? 0 : 2) + (x < width / 2 ? 0 : 1);
      data.set([...colours[q]!, 255], (y * width + x) * 4);
    }
  return { width, height, data };
}

export const pngOf = (img: Image): Buffer => {
  const png = new PNG({ width: img.width, height: img.height });
  img.data.copy(png.data);
  return PNG.sync.write(png);
};

export const jpegOf = (img: Image, quality = 95): Buffer => Buffer.from(jpeg.encode(img, quality).data);

/**
 * How a camera stores the upright picture `u` when it writes Orientation `o` (EXIF 2.32, tag 274):
 * 2 mirrored, 3 turned 180°, 4 flipped upside down, 5 transposed, 6 turned 90° counter-clockwise, 7
 * transversed, 8 turned 90° clockwise. Written out per case, independently of the code under test.
 */
export function orientAs(u: Image, o: number): Image {
  const { width: w, height: h } = u;
  const swap = o >= 5;
  const [W, H] = swap ? [h, w] : [w, h];
  // Stored pixel (x, y) shows upright pixel at(x, y).
  const at: Record<number, (x: number, y: number) => [number, number]> = {
    1: (x, y) => [x, y],
    2: (x, y) => [w - 1 - x, y],
    3: (x, y) => [w - 1 - x, h - 1 - y],
    4: (x, y) => [x, h - 1 - y],
    5: (x, y) => [y, x],
    6: (x, y) => [w - 1 - y, x],
    7: (x, y) => [w - 1 - y, h - 1 - x],
    8: (x, y) => [y, h - 1 - x],
  };
  const data = Buffer.alloc(W * H * 4);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const [ux, uy] = at[o]!(x, y);
      u.data.copy(data, (y * W + x) * 4, (uy * w + ux) * 4, (uy * w + ux) * 4 + 4);
    }
  return { width: W, height: H, data };
}

/**
 * `jpegBytes` with an APP1 segment right after SOI holding "Exif\0\0" and a big-endian TIFF block
 * whose IFD0 has one entry: Orientation (tag 0x0112, SHORT, count 1) = `o`.
 */
export function withOrientation(jpegBytes: Buffer, o: number): Buffer {
  const tiff = Buffer.alloc(26);
  tiff.write('MM', 0, 'latin1');
  tiff.writeUInt16BE(42, 2);
  tiff.writeUInt32BE(8, 4); // IFD0 offset
  tiff.writeUInt16BE(1, 8); // one entry
  tiff.writeUInt16BE(0x0112, 10);
  tiff.writeUInt16BE(3, 12); // SHORT
  tiff.writeUInt32BE(1, 14);
  tiff.writeUInt16BE(o, 18); // the value, left-justified in its 4 bytes
  tiff.writeUInt32BE(0, 22); // no next IFD
  const payload = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
  const marker = Buffer.alloc(4);
  marker.writeUInt16BE(0xffe1, 0);
  marker.writeUInt16BE(payload.length + 2, 2);
  return Buffer.concat([jpegBytes.subarray(0, 2), marker, payload, jpegBytes.subarray(2)]);
}

/** A PNG chunk: length, type, data, CRC-32 of type and data. */
function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/**
 * Raw deflate of `n` zero bytes that ends byte-aligned and refers to nothing before it (a full
 * flush), not final: copies of it can follow one another in one stream.
 */
const zeroRun = (n: number) =>
  deflateRawSync(Buffer.alloc(n), { level: 9, finishFlush: constants.Z_FULL_FLUSH });

/**
 * A complete, valid 8-bit greyscale PNG of `width` × `height` black pixels: each row is filter type
 * 0 and `width` zero bytes, deflated ~1000:1 (30000x30000 is 875 KB). The zlib stream is copies of
 * one deflated run of rows, a final empty block and the Adler-32 of all those zeros, so making even a
 * 900-megapixel one takes milliseconds and no memory to speak of.
 */
export function blackPng(width: number, height: number): Buffer {
  const rowBytes = 1 + width;
  const rowsPerRun = Math.max(1, Math.floor(2 ** 22 / rowBytes));
  const full = zeroRun(rowsPerRun * rowBytes);
  const runs: Buffer[] = new Array<Buffer>(Math.floor(height / rowsPerRun)).fill(full);
  if (height % rowsPerRun) runs.push(zeroRun((height % rowsPerRun) * rowBytes));
  // Adler-32 of n zero bytes: a = 1, b = n (mod 65521).
  const adler = Buffer.alloc(4);
  adler.writeUInt32BE((((height * rowBytes) % 65521) * 65536 + 1) >>> 0, 0);
  const zlib = Buffer.concat([Buffer.from([0x78, 0xda]), ...runs, Buffer.from([0x03, 0x00]), adler]);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 0, 0, 0, 0], 8); // 8 bits, greyscale, deflate, adaptive filters, no interlace
  const idat: Buffer[] = [];
  for (let at = 0; at < zlib.length; at += 1 << 16)
    idat.push(pngChunk('IDAT', zlib.subarray(at, at + (1 << 16))));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    ...idat,
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A JPEG marker segment: 0xFF, `marker`, its length (2 + body) and body. */
function jpegSegment(marker: number, body: Buffer): Buffer {
  const head = Buffer.from([0xff, marker, 0, 0]);
  head.writeUInt16BE(body.length + 2, 2);
  return Buffer.concat([head, body]);
}

/**
 * A complete, valid baseline greyscale JPEG of `width` × `height` mid-grey (128) pixels in 2 bits per
 * 8x8 block: its Huffman tables have one 1-bit code each, DC difference 0 and AC end-of-block, so the
 * scan is all zero bits (9000x9000 is 316 KB).
 */
export function greyJpeg(width: number, height: number): Buffer {
  const dqt = Buffer.concat([Buffer.from([0]), Buffer.alloc(64, 1)]);
  const sof = Buffer.alloc(9);
  sof[0] = 8; // bits per sample
  sof.writeUInt16BE(height, 1);
  sof.writeUInt16BE(width, 3);
  sof.set([1, 1, 0x11, 0], 5); // one component: id 1, 1x1 sampling, quantization table 0
  const dht = (tableClass: number) => {
    const b = Buffer.alloc(18);
    b[0] = tableClass << 4; // table 0 of class 0 (DC) or 1 (AC)
    b[1] = 1; // one code of length 1; its symbol (b[17]) is 0: DC category 0, or AC end of block
    return b;
  };
  const sos = Buffer.from([1, 1, 0x00, 0, 63, 0]);
  const bits = Math.ceil(width / 8) * Math.ceil(height / 8) * 2;
  const scan = Buffer.alloc(Math.ceil(bits / 8));
  const spare = scan.length * 8 - bits;
  if (spare) scan[scan.length - 1] = (1 << spare) - 1; // padded with 1 bits
  return Buffer.concat([
    Buffer.from([0xff, 0xd8]),
    jpegSegment(0xdb, dqt),
    jpegSegment(0xc0, sof),
    jpegSegment(0xc4, dht(0)),
    jpegSegment(0xc4, dht(1)),
    jpegSegment(0xda, sos),
    scan,
    Buffer.from([0xff, 0xd9]),
  ]);
}
