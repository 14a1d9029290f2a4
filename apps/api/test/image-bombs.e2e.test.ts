/**
 * Decompression bombs through the real API and a real worker: complete, valid PNG and JPEG files that
 * take a few hundred KB and claim hundreds of megapixels (packages/core/test/images.ts). Each way in
 * refuses them from their header, before anything is decoded: predict's `{"b64": ...}` (400 naming
 * the instance, at once, the API's memory flat, other requests not held up), a dataset upload (400
 * naming the archive entry), and a job reading an image folder from a URI (failed at once, naming the
 * file, not retried). The API runs in this process, so this process's peak RSS is the API's.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blackPng, drawQuadrants, greyJpeg, pngOf } from '../../../packages/core/test/images.ts';
import { makeTarGz, makeZip } from '../../../packages/core/test/fixtures/archives.ts';
import { http, startStack, waitForJob, type JobBody, type Stack } from '../../../test/support/stack.ts';

interface ApiErrorBody {
  error: { code: string; message: string; details?: { field: string; message: string }[] };
}

const b64 = (bytes: Buffer) => ({ b64: bytes.toString('base64') });

/** Within this, and with this little more memory, a bomb must be refused: decoding one takes far more. */
const FAST_MS = 5_000;
const FLAT_MB = 300;

/** `VmRSS` or `VmHWM` (the peak, kept by the kernel) of this process, in MB. */
function memoryMb(field: 'VmRSS' | 'VmHWM'): number {
  const status = readFileSync('/proc/self/status', 'utf8');
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)![1]) / 1024;
}

/** Runs `fn`; how long it took, and how far this process's peak RSS rose above its RSS before it. */
async function measured<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number; grewMb: number }> {
  // Writing 5 to clear_refs sets VmHWM back to the current RSS (Linux 4.0+): what follows is fn's peak.
  writeFileSync('/proc/self/clear_refs', '5');
  const before = memoryMb('VmRSS');
  const t = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t, grewMb: memoryMb('VmHWM') - before };
}

describe('image bombs', () => {
  let stack: Stack;
  const dir = (name: string) => path.join(stack.dataDir, name);
  const put = async (rel: string, data: Buffer) => {
    await mkdir(path.dirname(dir(rel)), { recursive: true });
    await writeFile(dir(rel), data);
  };
  const folder = (name: string) => ({
    format: 'image-folder',
    uri: pathToFileURL(dir(name)).href,
    imageSize: [8, 8],
    channels: 1,
  });
  const submit = async (type: string, body: unknown) => {
    const r = await http<JobBody>(`${stack.url}/v1/jobs/${type}`, 'POST', body);
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    return waitForJob(stack.url, r.body.id);
  };
  const predict = (body: unknown) => http<ApiErrorBody>(`${stack.url}/v1/models/tiles:predict`, 'POST', body);
  const upload = async (name: string, body: Buffer, type: string) => {
    const res = await fetch(`${stack.url}/v1/datasets/${name}`, {
      method: 'POST',
      headers: { 'content-type': type },
      body: new Uint8Array(body),
    });
    return { status: res.status, body: (await res.json()) as ApiErrorBody };
  };
  /** 20000x20000 black, 400 megapixels (1.6 GB as RGBA), in 389 KB. */
  const pngBomb = blackPng(20_000, 20_000);
  /** 9000x9000 grey, 81 megapixels: within jpeg-js's own default limit (100), over IMAGE_MAX_PIXELS's. */
  const jpegBomb = greyJpeg(9_000, 9_000);
  const tile = pngOf(drawQuadrants(8, 8));

  beforeAll(async () => {
    stack = await startStack('image-bombs');
    for (const [cls, w] of [
      ['wide', 16],
      ['tall', 4],
    ] as const)
      for (let i = 0; i < 3; i++) await put(`tiles/${cls}/${i}.png`, pngOf(drawQuadrants(w + i, 20 - w)));
    const ft = await submit('fine-tune', {
      model: 'tiles',
      architecture: 'mlp',
      architectureOptions: { units: [4] },
      dataset: folder('tiles'),
      epochs: 1,
    });
    expect(ft.state, ft.error).toBe('completed');
    // Loaded on a predict thread now, so that what is measured below is the refusal alone.
    const warm = await predict({ instances: [b64(tile)] });
    expect(warm.status, JSON.stringify(warm.body)).toBe(200);
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('predict refuses a PNG or JPEG bomb from its header: a 400 naming the instance, at once, memory flat', async () => {
    expect(pngBomb.length).toBeLessThan(400_000);
    const png = await measured(() => predict({ instances: [b64(tile), b64(pngBomb)] }));
    expect(png.value.status, JSON.stringify(png.value.body)).toBe(400);
    expect(png.value.body.error.message).toBe(
      'image instances[1]: the PNG is 20000x20000 pixels (400.0 megapixels), more than the 50000000 ' +
        '(50.0 megapixels) IMAGE_MAX_PIXELS allows',
    );
    expect(png.value.body.error.details?.[0]?.field).toBe('instances[1].b64');
    expect(png.ms).toBeLessThan(FAST_MS);
    expect(png.grewMb).toBeLessThan(FLAT_MB);

    const jpeg = await measured(() => predict({ instances: [b64(jpegBomb)] }));
    expect(jpeg.value.status, JSON.stringify(jpeg.value.body)).toBe(400);
    expect(jpeg.value.body.error.message).toMatch(
      /^image instances\[0\]: the JPEG is 9000x9000 pixels \(81\.0 megapixels\), more than the 50000000/,
    );
    expect(jpeg.ms).toBeLessThan(FAST_MS);
    expect(jpeg.grewMb).toBeLessThan(FLAT_MB);
  }, 120_000);

  it('a bomb does not hold up the predictions sent beside it', async () => {
    const both = await measured(() =>
      Promise.all([predict({ instances: [b64(pngBomb)] }), predict({ instances: [b64(tile), b64(tile)] })]),
    );
    const [bomb, fine] = both.value;
    expect(bomb.status).toBe(400);
    expect(fine.status, JSON.stringify(fine.body)).toBe(200);
    expect((fine.body as unknown as { predictions: number[][] }).predictions).toHaveLength(2);
    expect(both.ms).toBeLessThan(FAST_MS);
    expect(both.grewMb).toBeLessThan(FLAT_MB);
  }, 120_000);

  it('a dataset upload with a bomb in it is a 400 naming the entry, decoded by no one', async () => {
    const zip = makeZip([
      { name: 'pets/cat/1.png', data: tile, deflate: true },
      { name: 'pets/dog/bomb.png', data: pngBomb, deflate: true },
    ]);
    expect(zip.length).toBeLessThan(10_000);
    const z = await measured(() => upload('bombed', zip, 'application/zip'));
    expect(z.value.status, JSON.stringify(z.value.body)).toBe(400);
    expect(z.value.body.error).toMatchObject({
      code: 'invalid_dataset',
      message:
        'invalid zip dataset: archive entry "pets/dog/bomb.png": the PNG is 20000x20000 pixels ' +
        '(400.0 megapixels), more than the 50000000 (50.0 megapixels) IMAGE_MAX_PIXELS allows',
    });
    expect(z.ms).toBeLessThan(FAST_MS);
    expect(z.grewMb).toBeLessThan(FLAT_MB);

    const tgz = await makeTarGz([
      { name: 'cat/1.png', data: tile },
      { name: 'dog/big.jpg', data: jpegBomb },
    ]);
    const t = await upload('bombed', tgz, 'application/gzip');
    expect(t.status, JSON.stringify(t.body)).toBe(400);
    expect(t.body.error.message).toMatch(
      /^invalid tar\.gz dataset: archive entry "dog\/big\.jpg": the JPEG is 9000x9000 pixels/,
    );
    expect((await http(`${stack.url}/v1/datasets/bombed`)).status).toBe(404);
  }, 120_000);

  it('a job on an image folder with a bomb in it fails at once, naming the file, and is not retried', async () => {
    for (let i = 0; i < 3; i++) await put(`bombed/cat/${i}.png`, pngOf(drawQuadrants(8 + i, 8)));
    await put('bombed/dog/0.png', tile);
    await put('bombed/dog/bomb.png', pngBomb);
    const ft = await submit('fine-tune', {
      model: 'bombed',
      architecture: 'mlp',
      dataset: folder('bombed'),
      epochs: 1,
    });
    expect(ft.state).toBe('failed');
    expect(ft.attempts).toBe(1);
    expect(ft.error).toBe(
      `image ${dir('bombed/dog/bomb.png')}: the PNG is 20000x20000 pixels (400.0 megapixels), more than ` +
        'the 50000000 (50.0 megapixels) IMAGE_MAX_PIXELS allows',
    );
  }, 120_000);
});
