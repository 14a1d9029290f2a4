/**
 * Image folders as people have them: macOS and Windows leftovers, classes in sub-folders, files of a
 * type that is not read, and photos stored sideways with an EXIF Orientation. The images are drawn
 * here with pngjs / jpeg-js, and the EXIF block (APP1) is written into the JPEG by hand.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAll } from '../src/data/dataset.ts';
import { exifOrientation, imageToFeatures } from '../src/data/image-decode.ts';
import { openDataset } from '../src/data/open.ts';
import { datasetSchema } from '@mlq/contract';
import { DEFAULT_IMAGE_MAX_PIXELS } from '@mlq/contract/env';
import { DataError } from '../src/util/errors.ts';
import { drawQuadrants, jpegOf, orientAs, pngOf, withOrientation, type Image } from './images.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'mlq-image-entries-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function put(rel: string, data: Buffer | string): Promise<void> {
  await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
  await writeFile(path.join(dir, rel), data);
}

const open = (folder: string, imageSize: [number, number] = [8, 8]) =>
  openDataset(
    datasetSchema.parse({
      format: 'image-folder',
      uri: pathToFileURL(path.join(dir, folder)).href,
      imageSize,
    }),
    { dataRoots: [dir] },
  );

const grey = (v: number): Image => ({ width: 8, height: 8, data: Buffer.alloc(8 * 8 * 4, v) });

describe('image folder entries', () => {
  it('ignores hidden and system entries and takes class sub-folders at any depth, counting per class', async () => {
    for (let i = 0; i < 3; i++) {
      await put(`pets/cat/c${i}.png`, pngOf(grey(10)));
      await put(`pets/cat/session2/c${i}.png`, pngOf(grey(20)));
      await put(`pets/dog/d${i}.jpg`, jpegOf(grey(200)));
    }
    await put('pets/cat/session2/deeper/c9.jpeg', jpegOf(grey(30)));
    // What unzipping on a Mac, and browsing on Windows, leave behind.
    await put('pets/__MACOSX/cat/._c0.png', 'AppleDouble');
    await put('pets/.DS_Store', 'x');
    await put('pets/cat/._c1.png', 'AppleDouble');
    await put('pets/cat/Thumbs.db', 'x');
    await put('pets/dog/desktop.ini', '[.ShellClassInfo]');
    await put('pets/.git/objects/a.png', 'not data');
    const info = await open('pets').info();
    expect(info).toMatchObject({ classNames: ['cat', 'dog'], numClasses: 2, rows: 10, classCounts: [7, 3] });
    expect(info.notes).toBeUndefined();
  });

  it('refuses a class with no PNG or JPEG, naming it and what it holds; notes other files it skips', async () => {
    for (let i = 0; i < 6; i++) await put(`webp/dog/d${i}.webp`, 'RIFF....WEBP');
    for (let i = 0; i < 2; i++) await put(`webp/cat/c${i}.png`, pngOf(grey(1)));
    const e: unknown = await open('webp')
      .info()
      .catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DataError);
    expect((e as Error).message).toBe(
      `class dog has no PNG or JPEG images; found 6 .webp (${path.join(dir, 'webp', 'dog')})`,
    );
    await put('empty/cat/c.png', pngOf(grey(1)));
    await mkdir(path.join(dir, 'empty/dog/sub'), { recursive: true });
    await expect(open('empty').info()).rejects.toThrow(
      /^class dog has no PNG or JPEG images; the folder is empty/,
    );
    await put('mixed/cat/c.png', pngOf(grey(1)));
    await put('mixed/dog/d.jpg', jpegOf(grey(1)));
    await put('mixed/dog/d2.gif', 'GIF89a');
    await put('mixed/dog/more/d3.gif', 'GIF89a');
    await put('mixed/dog/README', 'about');
    const info = await open('mixed').info();
    expect(info.classCounts).toEqual([1, 1]);
    expect(info.notes).toEqual(['class dog: skipped 2 .gif, 1 (no extension) (only PNG and JPEG are read)']);
    await put('loose/a.png', pngOf(grey(1)));
    await expect(open('loose').info()).rejects.toThrow(/has no class folders .*it holds 1 images directly/);
  });
});

describe('EXIF orientation', () => {
  // 32 wide, 16 tall: red, green / blue, white quadrants of 16x8 (whole JPEG blocks, so colours stay clean).
  const upright = drawQuadrants(32, 16);
  const quadrants = (x: Float32Array, w: number, h: number) =>
    [
      [w / 4, h / 4],
      [(3 * w) / 4, h / 4],
      [w / 4, (3 * h) / 4],
      [(3 * w) / 4, (3 * h) / 4],
    ].map(([cx, cy]) => {
      const o = (cy! * w + cx!) * 3;
      return [x[o]!, x[o + 1]!, x[o + 2]!].map((v) => Math.round(v));
    });
  const want = [
    [1, 0, 0],
    [0, 1, 0],
    [0, 0, 1],
    [1, 1, 1],
  ];

  it('turns each of the 8 orientations upright, as viewers and PIL exif_transpose do', async () => {
    for (let o = 1; o <= 8; o++) {
      const buf = withOrientation(jpegOf(orientAs(upright, o)), o);
      expect(await exifOrientation(buf), `orientation ${o}`).toBe(o);
      const out = new Float32Array(16 * 32 * 3);
      const img = await imageToFeatures(buf, `o${o}.jpg`, [16, 32], 3, out, 0, DEFAULT_IMAGE_MAX_PIXELS);
      expect([img.width, img.height], `orientation ${o}`).toEqual([32, 16]);
      expect(quadrants(out, 32, 16), `orientation ${o}`).toEqual(want);
    }
  });

  it('the image-folder reader applies it: a sideways photo with Orientation 6 reads upright', async () => {
    await put('sideways/a/photo.jpg', withOrientation(jpegOf(orientAs(upright, 6)), 6));
    await put('sideways/b/plain.png', pngOf(upright));
    const d = await loadAll(open('sideways', [16, 32]));
    const size = 16 * 32 * 3;
    for (let r = 0; r < 2; r++)
      expect(quadrants(d.x.subarray(r * size, (r + 1) * size), 32, 16)).toEqual(want);
  });

  it('reads no orientation as 1, also from a broken EXIF block', async () => {
    expect(await exifOrientation(pngOf(upright))).toBe(1);
    const broken = withOrientation(jpegOf(upright), 6);
    broken.writeUInt32BE(0xfff0, broken.indexOf('MM') + 4); // IFD0 past the end of the block
    expect(await exifOrientation(broken)).toBe(1);
    const out = new Float32Array(16 * 32 * 3);
    await imageToFeatures(broken, 'broken.jpg', [16, 32], 3, out, 0, DEFAULT_IMAGE_MAX_PIXELS);
    expect(quadrants(out, 32, 16)).toEqual(want);
  });
});
