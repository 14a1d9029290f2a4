/**
 * Test images: drawn RGBA pictures as PNG or JPEG (pngjs, jpeg-js), stored turned as a camera stores
 * them, and an EXIF APP1 segment with an Orientation tag written into a JPEG by hand.
 */
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
