/**
 * Image folders as people have them, through the real API and a real worker: photos stored sideways
 * with EXIF Orientation 6, classes in sub-folders, the leftovers of unzipping on a Mac, and a class of
 * WebP files. A model trained on the sideways photos must see them upright, as evaluate on upright
 * PNGs and batch-predict on the sideways photos show.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jpegOf, orientAs, pngOf, withOrientation, type Image } from '../../../packages/core/test/images.ts';
import { http, startStack, waitForJob, type JobBody, type Stack } from '../../../test/support/stack.ts';

/**
 * 16x16: the `bright` half (top or left) light, the other dark, with a little seeded noise. Turned 90°
 * counter-clockwise, as a sideways photo is stored, a "top" picture is a "left" one: read as stored,
 * sideways photos of one class look like the other.
 */
function half(bright: 'top' | 'left', seed: number): Image {
  const data = Buffer.alloc(16 * 16 * 4);
  let s = seed * 7919 + 1;
  for (let y = 0; y < 16; y++)
    for (let x = 0; x < 16; x++) {
      s = (s * 48271) % 2147483647;
      const on = y < 8 === (bright === 'top');
      const v = (on ? 220 : 30) + (s % 30) - 15;
      data.set([v, v, v, 255], (y * 16 + x) * 4);
    }
  return { width: 16, height: 16, data };
}

/** As a phone held sideways stores it: turned 90° counter-clockwise, with Orientation 6. */
const sideways = (img: Image) => withOrientation(jpegOf(orientAs(img, 6)), 6);

describe('image folders as people have them', () => {
  let stack: Stack;
  const dir = (name: string) => path.join(stack.dataDir, name);
  const uri = (name: string) => pathToFileURL(dir(name)).href;
  const put = async (rel: string, data: Buffer | string) => {
    await mkdir(path.dirname(dir(rel)), { recursive: true });
    await writeFile(dir(rel), data);
  };
  const submit = async (type: string, body: unknown) => {
    const r = await http<JobBody>(`${stack.url}/v1/jobs/${type}`, 'POST', body);
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    return waitForJob(stack.url, r.body.id);
  };
  const folder = (name: string) => ({
    format: 'image-folder',
    uri: uri(name),
    imageSize: [8, 8],
    channels: 1,
  });

  beforeAll(async () => {
    stack = await startStack('image-folders');
    for (const cls of ['top', 'left'] as const) {
      for (let i = 0; i < 4; i++) {
        await put(`photos/${cls}/p${i}.jpg`, sideways(half(cls, i)));
        await put(`photos/${cls}/session2/q${i}.jpg`, sideways(half(cls, 10 + i)));
        await put(`upright/${cls}/u${i}.png`, pngOf(half(cls, 20 + i)));
        await put(`new-${cls}/any/n${i}.jpg`, sideways(half(cls, 30 + i)));
      }
      await put(`photos/__MACOSX/${cls}/._p0.jpg`, 'AppleDouble');
    }
    await put('photos/.DS_Store', 'x');
    await put('photos/top/Thumbs.db', 'x');
    await put('photos/left/desktop.ini', '[.ShellClassInfo]');
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('trains on sideways photos upright, in sub-folders, without the Mac leftovers; evaluate and batch-predict agree', async () => {
    const ft = await submit('fine-tune', {
      model: 'halves',
      architecture: 'mlp',
      architectureOptions: { units: [16] },
      dataset: folder('photos'),
      epochs: 30,
      batchSize: 4,
      learningRate: 0.01,
    });
    expect(ft.state, ft.error).toBe('completed');
    expect(ft.result?.classCounts).toEqual({ left: 8, top: 8 });
    const logs = await http<{ logs: string[] }>(`${stack.url}/v1/jobs/${ft.id}/logs`);
    expect(logs.body.logs.some((l) => l.endsWith(' rows per class: left 8, top 8'))).toBe(true);

    // Had the photos been read as stored, the model would call an upright "left" picture "top".
    const ev = await submit('evaluate', { model: 'halves', dataset: folder('upright') });
    expect(ev.state, ev.error).toBe('completed');
    expect((ev.result as { metrics: { accuracy: number } }).metrics.accuracy).toBe(1);

    for (const cls of ['top', 'left']) {
      const out = dir(`out-${cls}.jsonl`);
      const bp = await submit('batch-predict', {
        model: 'halves',
        input: folder(`new-${cls}`),
        output: { uri: pathToFileURL(out).href },
      });
      expect(bp.state, bp.error).toBe('completed');
      const lines = (await readFile(out, 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { prediction: string });
      expect(lines.map((l) => l.prediction)).toEqual(new Array(4).fill(cls));
    }
  });

  it('a class of files that are not PNG or JPEG fails the job at once, naming it and what it holds', async () => {
    for (let i = 0; i < 6; i++) await put(`webp/dog/d${i}.webp`, 'RIFF\0\0\0\0WEBPVP8 ');
    for (let i = 0; i < 2; i++) await put(`webp/cat/c${i}.png`, pngOf(half('top', i)));
    const j = await submit('fine-tune', {
      model: 'webp',
      architecture: 'mlp',
      dataset: folder('webp'),
      epochs: 1,
    });
    expect(j.state).toBe('failed');
    expect(j.attempts).toBe(1);
    expect(j.error).toBe(`class dog has no PNG or JPEG images; found 6 .webp (${dir('webp/dog')})`);
  });
});
