/**
 * An image's size as its header declares it, read before anything is decoded: a PNG of zeros that
 * claims 30000x30000 pixels is under 1 MB of deflate, yet decoding it takes 3.6 GB of RGBA and most of
 * a minute. Every image this platform decodes (predict's `{"b64": ...}`, an image-folder dataset read
 * by a worker, an uploaded or fetched archive of one) is measured here first and refused above
 * IMAGE_MAX_PIXELS (packages/contract/src/env.ts).
 *
 * - PNG: the IHDR chunk, which the format puts first (bytes 16-23: width, height). pngjs decodes only
 *   the default image, so an APNG's other frames cost nothing.
 * - JPEG: the first SOFn segment (any of the 13 frame types: same layout), reached by walking the
 *   marker segments before it (APPn, DQT, DHT, COM...) by their lengths; what is skipped is not kept,
 *   so megabytes of EXIF or XMP before the frame cost no memory. jpeg-js refuses a second frame.
 *
 * The reader takes the bytes in pieces as they arrive (an archive entry's stream) or all at once.
 */

/** What a PNG's IHDR or a JPEG's SOF says. */
export interface ImageSize {
  format: 'PNG' | 'JPEG';
  /** In pixels, as declared (a JPEG's height may be 0: defined later by a DNL marker). */
  width: number;
  height: number;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** True for a JPEG start of frame marker (SOF0-3, 5-7, 9-11, 13-15; 0xC4, 0xC8 and 0xCC are not frames). */
const isSof = (m: number) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;

/** JPEG markers that stand alone, without a length: TEM, RST0-7, SOI. */
const isStandalone = (m: number) => m === 0x01 || (m >= 0xd0 && m <= 0xd8);

/**
 * Reads an image's declared size from its first bytes, fed with `push` in any pieces. `done` turns
 * true once no more bytes are needed: `size` is then the size, or undefined with `problem` saying
 * why none can be read (not a PNG or JPEG, broken segments, the scan starts before any frame).
 * A file that ends before that leaves `done` false: see `end`.
 */
export class ImageSizeReader {
  size: ImageSize | undefined;
  problem: string | undefined;
  /** What the first bytes say the file is (the PNG signature, or JPEG's SOI and a marker). */
  format: ImageSize['format'] | undefined;
  /** Bytes received and not yet consumed (at most a segment header: skipped bodies are dropped). */
  private pending: Buffer = Buffer.alloc(0);
  /** Bytes of the current JPEG segment still to be dropped as they arrive. */
  private skip = 0;

  get done(): boolean {
    return this.size !== undefined || this.problem !== undefined;
  }

  /** Feeds the next bytes of the file; does nothing once `done`. */
  push(chunk: Uint8Array): void {
    if (this.done) return;
    let bytes = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.skip > 0) {
      const n = Math.min(this.skip, bytes.length);
      this.skip -= n;
      bytes = bytes.subarray(n);
    }
    this.pending = this.pending.length > 0 ? Buffer.concat([this.pending, bytes]) : bytes;
    this.read();
    // What is left is at most a few bytes of a segment header: copy it out of the caller's buffer.
    if (!this.done && this.pending.length > 0) this.pending = Buffer.from(this.pending);
  }

  /** The file has ended: its size, or why it has none (`problem` then says so too). */
  end(): ImageSize | undefined {
    if (!this.done) {
      this.problem = !this.format
        ? 'not a PNG or JPEG file'
        : this.format === 'PNG'
          ? 'the PNG is truncated: it ends before its IHDR chunk'
          : 'the JPEG is truncated: it ends before its frame header (SOF)';
    }
    return this.size;
  }

  private read(): void {
    const b = this.pending;
    if (!this.format) {
      if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) {
        this.format = 'JPEG';
        this.pending = b.subarray(2);
      } else if (b.length >= 8 && b.subarray(0, 8).equals(PNG_SIGNATURE)) {
        this.format = 'PNG';
      } else {
        const couldBe = (sig: Buffer) => b.length < sig.length && sig.subarray(0, b.length).equals(b);
        if (!couldBe(PNG_SIGNATURE) && !couldBe(Buffer.from([0xff, 0xd8, 0xff])))
          this.problem = 'not a PNG or JPEG file';
        return;
      }
    }
    if (this.format === 'PNG') this.readPng();
    else this.readJpeg();
  }

  private readPng(): void {
    const b = this.pending;
    if (b.length < 24) return;
    if (b.toString('latin1', 12, 16) !== 'IHDR') {
      this.problem = 'the PNG does not start with an IHDR chunk';
      return;
    }
    this.size = { format: 'PNG', width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
  }

  private readJpeg(): void {
    for (;;) {
      const b = this.pending;
      if (b.length < 2) return;
      if (b[0] !== 0xff) {
        this.problem = 'the JPEG is broken: no marker where a segment should start';
        return;
      }
      const m = b[1]!;
      // Fill bytes: any number of 0xFF may precede a marker.
      if (m === 0xff) {
        this.pending = b.subarray(1);
        continue;
      }
      // 0xFF00 is a stuffed byte of entropy-coded data, which jpeg-js steps over: so does this reader.
      if (isStandalone(m) || m === 0x00) {
        this.pending = b.subarray(2);
        continue;
      }
      if (m === 0xd9 || m === 0xda) {
        this.problem = `the JPEG has no frame header (SOF) before its ${m === 0xd9 ? 'end' : 'scan'}`;
        return;
      }
      if (b.length < 4) return;
      const length = b.readUInt16BE(2);
      if (length < 2) {
        this.problem = 'the JPEG is broken: a segment length below 2';
        return;
      }
      if (isSof(m)) {
        // Length (2), sample precision (1), lines (2), samples per line (2).
        if (b.length < 9) return;
        this.size = { format: 'JPEG', width: b.readUInt16BE(7), height: b.readUInt16BE(5) };
        return;
      }
      const body = 2 + length;
      if (b.length >= body) {
        this.pending = b.subarray(body);
        continue;
      }
      this.skip = body - b.length;
      this.pending = Buffer.alloc(0);
      return;
    }
  }
}

/**
 * The declared size of a whole PNG or JPEG file; undefined when none can be read (`problem` of the
 * reader, e.g. not a PNG or JPEG, truncated before the header), which the decoder then reports.
 */
export function imageSize(buf: Uint8Array): ImageSize | undefined {
  const r = new ImageSizeReader();
  r.push(buf);
  return r.end();
}

/** ` (900.0 megapixels)` for a count of 0.1 megapixels or more; nothing for fewer. */
const mp = (n: number) => (n >= 1e5 ? ` (${(n / 1e6).toFixed(1)} megapixels)` : '');

/**
 * Why `size` may not be decoded: `the PNG is 30000x30000 pixels (900.0 megapixels), more than the
 * 50000000 (50.0 megapixels) IMAGE_MAX_PIXELS allows`; undefined when width × height is within
 * `maxPixels`.
 */
export function tooManyPixels(size: ImageSize, maxPixels: number): string | undefined {
  const n = size.width * size.height;
  if (n <= maxPixels) return undefined;
  return (
    `the ${size.format} is ${size.width}x${size.height} pixels${mp(n)}, more than the ` +
    `${maxPixels}${mp(maxPixels)} IMAGE_MAX_PIXELS allows`
  );
}
