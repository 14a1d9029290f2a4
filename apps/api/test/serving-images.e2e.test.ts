/**
 * Image instances (`{"b64": ...}`) through online predict: the same PNG and JPEG files give the same
 * scores as batch-predict gives them, and the same as their pixels decoded here by the image-folder
 * dataset's own functions and sent as numbers.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_IMAGE_MAX_PIXELS } from '@mlq/contract/env';
import { imageToFeatures, loadAll, mnistSource } from '@mlq/core/data';
import { writeImageFolder } from '../../../test/support/images.ts';
import { http, startStack, waitForJob, type JobBody, type Stack } from '../../../test/support/stack.ts';

interface Predictions {
  predictions: number[][];
}
interface ApiErrorBody {
  error: { code: string; message: string; details?: { field: string; message: string }[] };
}

const b64 = (bytes: Buffer) => ({ b64: bytes.toString('base64') });

describe('image instances through predict', () => {
  let stack: Stack;
  let probes: { file: string; bytes: Buffer }[];
  let batchRows: { index: number; scores: number[] }[];
  const predict = <T = Predictions>(body: unknown) =>
    http<T>(`${stack.url}/v1/models/pics:predict`, 'POST', body);

  beforeAll(async () => {
    stack = await startStack('serving-images');
    const mnist = await loadAll(mnistSource({ format: 'mnist', digits: [0, 1], split: 'train', limit: 80 }));
    const digit = (i: number) => mnist.x.subarray(i * 784, (i + 1) * 784);
    const byClass = (label: number, from: number, n: number) =>
      Array.from(mnist.y)
        .map((y, i) => (y === label ? i : -1))
        .filter((i) => i >= 0)
        .slice(from, from + n)
        .map(digit);
    await writeImageFolder(path.join(stack.dataDir, 'digits'), {
      zero: byClass(0, 0, 30),
      one: byClass(1, 0, 30),
    });
    // Probes: digits the model has not seen, PNG and JPEG, in one class folder (labels are not used).
    probes = await writeImageFolder(path.join(stack.dataDir, 'probe'), {
      any: [...byClass(0, 30, 3), ...byClass(1, 30, 3)],
    });
    const uri = (p: string) => pathToFileURL(path.join(stack.dataDir, p)).href;
    const folder = (p: string) => ({ format: 'image-folder', uri: uri(p), imageSize: [28, 28], channels: 1 });
    const train = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', {
      model: 'pics',
      architecture: 'mnist-cnn',
      dataset: folder('digits'),
      epochs: 1,
      batchSize: 16,
    });
    expect(train.status, JSON.stringify(train.body)).toBe(202);
    expect((await waitForJob(stack.url, train.body.id)).state).toBe('completed');
    const batch = await http<JobBody>(`${stack.url}/v1/jobs/batch-predict`, 'POST', {
      model: 'pics',
      input: folder('probe'),
      output: { uri: uri('probe.jsonl') },
    });
    expect(batch.status, JSON.stringify(batch.body)).toBe(202);
    const done = await waitForJob(stack.url, batch.body.id);
    expect(done.state, JSON.stringify(done)).toBe('completed');
    const lines = (await readFile(path.join(stack.dataDir, 'probe.jsonl'), 'utf8')).trim().split('\n');
    batchRows = lines.map((l) => JSON.parse(l) as { index: number; scores: number[] });
  }, 240_000);
  afterAll(async () => {
    await stack?.stop();
  });

  it('gives a b64 PNG or JPEG the scores batch-predict gives the same file', async () => {
    expect(batchRows).toHaveLength(probes.length);
    const alone = await Promise.all(probes.map((p) => predict({ instances: [b64(p.bytes)] })));
    const together = await predict({ instances: probes.map((p) => b64(p.bytes)) });
    expect(together.status, JSON.stringify(together.body)).toBe(200);
    const matched = new Set<number>();
    alone.forEach((r, i) => {
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      const scores = r.body.predictions[0]!;
      // batch-predict prints 7 significant digits; its rows come in its own order.
      const row = batchRows.find((b) => b.scores.every((s, c) => Math.abs(s - scores[c]!) < 2e-6));
      expect(row, `${probes[i]!.file}: ${JSON.stringify(scores)}`).toBeDefined();
      matched.add(row!.index);
      together.body.predictions[i]!.forEach((s, c) => expect(s).toBeCloseTo(scores[c]!, 6));
    });
    expect(matched.size).toBe(probes.length); // one distinct batch-predict row per file
  });

  it('decodes exactly as the image-folder dataset: the same scores as the decoded pixels sent as numbers', async () => {
    const pixels = await Promise.all(
      probes.map(async (p) => {
        const out = new Float32Array(784);
        await imageToFeatures(p.bytes, p.file, [28, 28], 1, out, 0, DEFAULT_IMAGE_MAX_PIXELS);
        return Array.from(out);
      }),
    );
    const numbers = await predict({ instances: pixels });
    const images = await predict({ inputs: { image: probes.map((p) => b64(p.bytes)) } });
    const named = await predict({ instances: probes.map((p) => ({ image: b64(p.bytes) })) });
    expect([numbers.status, images.status, named.status]).toEqual([200, 200, 200]);
    const imageOutputs = (images.body as unknown as { outputs: number[][] }).outputs;
    numbers.body.predictions.forEach((row, i) =>
      row.forEach((s, c) => {
        expect(imageOutputs[i]![c]).toBeCloseTo(s, 6);
        expect(named.body.predictions[i]![c]).toBeCloseTo(s, 6);
      }),
    );
  });

  it('refuses what is not a base64 PNG or JPEG with 400 naming the instance', async () => {
    const notBase64 = await predict<ApiErrorBody>({
      instances: [b64(probes[0]!.bytes), { b64: 'not base64!' }],
    });
    expect(notBase64.status).toBe(400);
    expect(notBase64.body.error.details?.[0]?.field).toBe('instances[1].b64');
    const notImage = await predict<ApiErrorBody>({
      instances: [b64(probes[0]!.bytes), b64(Buffer.from('a,b\n1,2\n'))],
    });
    expect(notImage.status).toBe(400);
    expect(notImage.body.error.message).toMatch(/instances\[1\].*not a PNG or JPEG/);
    expect(notImage.body.error.details?.[0]?.field).toBe('instances[1].b64');
    const truncated = await predict<ApiErrorBody>({ instances: [b64(probes[0]!.bytes.subarray(0, 60))] });
    expect(truncated.status).toBe(400);
    // The PNG library's own words ("read requests waiting on finished stream") are no help to a person.
    expect(truncated.body.error.message).toBe(
      'unreadable image instances[0]: the PNG is truncated: it ends before its IEND chunk',
    );
    expect(truncated.body.error.details?.[0]?.field).toBe('instances[0].b64');
  });
});
