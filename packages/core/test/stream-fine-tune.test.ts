/**
 * The fine-tune job over the streaming input pipeline, end to end in this process: real PNG files,
 * a real file artifact store, the model registry on the real Redis, tfjs on the cpu backend.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { loadAll } from '../src/data/dataset.ts';
import { openDataset } from '../src/data/open.ts';
import { fineTunePayloadSchema, type FineTuneResult } from '@mlq/contract';
import type { JobContext } from '../src/jobs/context.ts';
import { runEvaluate } from '../src/jobs/evaluate.job.ts';
import { runFineTune } from '../src/jobs/fine-tune.job.ts';
import { loadModel } from '../src/ml/model-io.ts';
import { ModelRegistry } from '../src/registry/registry.ts';
import { FileArtifactStore } from '../src/storage/file-store.ts';
import { CancelledError, DataError, InputError, ReleasedError, SHUTDOWN_REASON } from '../src/util/errors.ts';
import { memoryOf } from '../../../test/support/processes.ts';
import { writeImageFolder } from './fixtures/image-folder.ts';

const prefix = `test-stream-${randomUUID().slice(0, 8)}`;
let dir: string;
let store: FileArtifactStore;
let redis: Redis;
let registry: ModelRegistry;
let images: { format: 'image-folder'; uri: string; imageSize: [number, number] };

function context(logs: string[], extra: Partial<JobContext> = {}): JobContext {
  return {
    jobId: randomUUID(),
    attempt: 1,
    progress: () => Promise.resolve(),
    log: (l) => (logs.push(l), Promise.resolve()),
    store,
    registry,
    dataRoots: [dir],
    backend: 'cpu',
    ...extra,
  };
}

async function fineTune(
  payload: object,
  logs: string[],
  extra?: Partial<JobContext>,
): Promise<FineTuneResult> {
  return runFineTune(
    fineTunePayloadSchema.parse({ dataset: images, epochs: 2, ...payload }),
    context(logs, extra),
  );
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  dir = await mkdtemp(path.join(os.tmpdir(), 'mlq-stream-job-'));
  store = new FileArtifactStore(path.join(dir, 'store'));
  redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
  registry = new ModelRegistry(redis, prefix);
  const root = await writeImageFolder(path.join(dir, 'images'), { count: 60, classes: 2, size: 14 });
  images = { format: 'image-folder', uri: pathToFileURL(root).href, imageSize: [12, 12] };
});
afterAll(async () => {
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
  await rm(dir, { recursive: true, force: true });
});

describe('fine-tune on the streaming pipeline', () => {
  it('decodes the images once: a second job reads the decoded-example cache', async () => {
    const first: string[] = [];
    const a = await fineTune({ model: 'pixels', architecture: 'mlp', validationSplit: 0.2 }, first);
    expect(first.some((l) => /^decoded 60 rows into 1 uint8 shards/.test(l))).toBe(true);
    expect(first.some((l) => l.startsWith('decoded-example cache hit'))).toBe(false);
    expect(a.history).toHaveLength(2);
    expect((await store.list('cache/decoded')).filter((k) => k.endsWith('manifest.json'))).toHaveLength(1);

    const second: string[] = [];
    await fineTune({ model: 'pixels', architecture: 'mlp', validationSplit: 0.2, seed: 7 }, second);
    expect(second.some((l) => /^decoded-example cache hit: 60 rows in 1 shards/.test(l))).toBe(true);
    expect(second.some((l) => l.startsWith('decoded 60 rows'))).toBe(false);
  });

  it("trains a frozen base's head on its embeddings, computed once and then read from the cache", async () => {
    const first: string[] = [];
    await fineTune({ model: 'head-a', base: 'pixels@1', trainableLayers: 0, validationSplit: 0.2 }, first);
    expect(first.some((l) => /^embedded 60 rows with the frozen base/.test(l))).toBe(true);
    const second: string[] = [];
    await fineTune({ model: 'head-b', base: 'pixels@1', trainableLayers: 0, seed: 3 }, second);
    expect(second.some((l) => /^embedding cache hit: 60 rows/.test(l))).toBe(true);
    // With the embeddings cached, the images are not even opened.
    expect(second.some((l) => l.includes('decoded'))).toBe(false);
  });

  it('with augmentation: no embedding cache (said in the log), validation and the saved model unaugmented', async () => {
    const logs: string[] = [];
    const r = await fineTune(
      {
        model: 'augmented',
        base: 'pixels@1',
        trainableLayers: 0,
        validationSplit: 0.25,
        augment: { flip: 'horizontal', rotate: 0.1, zoom: 0.1, translate: 0.1, contrast: 0.2 },
        head: { units: [8], dropout: 0 },
      },
      logs,
    );
    expect(logs).toContain(
      'augmentation is on: the embedding cache does not apply, the frozen base runs on every augmented batch',
    );
    expect(logs.some((l) => l.startsWith('embedded') || l.startsWith('embedding cache'))).toBe(false);
    expect(logs.some((l) => / augmented \(\{"flip":"horizontal"/.test(l))).toBe(true);

    // The validation loss the job reported is the saved model's loss on the raw last 15 rows.
    const { model } = await loadModel(r.model.uri, store);
    const d = await loadAll(
      openDataset(
        fineTunePayloadSchema.parse({ model: 'x', architecture: 'mlp', dataset: images, epochs: 1 }).dataset,
        { dataRoots: [dir] },
      ),
    );
    const x = tf.tensor(d.x.subarray(45 * 432), [15, 12, 12, 3]);
    const y = tf.oneHot(tf.tensor1d(Array.from(d.y.subarray(45)), 'int32'), 2);
    const predictions = model.predict(x) as tf.Tensor;
    const loss = tf.metrics.categoricalCrossentropy(y, predictions).mean().dataSync()[0]!;
    // (Within float32 rounding: the cache stores pixels as bytes, the reader here gives floats.)
    expect(loss).toBeCloseTo(r.history!.at(-1)!.valLoss!, 2);
    // Predict runs the model as saved: the same input, the same output, every time.
    expect(Array.from((model.predict(x) as tf.Tensor).dataSync())).toEqual(
      Array.from(predictions.dataSync()),
    );

    const evaluate = () =>
      runEvaluate(
        { model: 'augmented@1', dataset: fineTunePayloadSchema.shape.dataset.parse(images) },
        context([]),
      );
    expect((await evaluate()).metrics).toEqual((await evaluate()).metrics);
    tf.dispose([x, y, predictions]);
    model.dispose();
  });

  it('stops an evaluate whose signal aborted: cancelled with the reason, handed back on a shutdown', async () => {
    const stopped = (reason: string) => {
      const ac = new AbortController();
      ac.abort(reason);
      return runEvaluate(
        { model: 'augmented@1', dataset: fineTunePayloadSchema.shape.dataset.parse(images) },
        context([], { signal: ac.signal }),
      ).catch((e: unknown) => e);
    };
    const cancelled = await stopped('cancelled by user');
    expect(cancelled).toBeInstanceOf(CancelledError);
    expect((cancelled as Error).message).toBe('cancelled by user');
    // Not a CancelledError, which the worker would fail the job with as "cancelled: cancelled".
    expect(await stopped(SHUTDOWN_REASON)).toBeInstanceOf(ReleasedError);
  });

  it('fails at once, with the numbers, when the model cannot fit the memory budget', async () => {
    const fresh = await writeImageFolder(path.join(dir, 'fresh'), { count: 4, classes: 2, size: 8, seed: 9 });
    const spec = { format: 'image-folder', uri: pathToFileURL(fresh).href, imageSize: [64, 64] };
    const before = await store.list('cache/decoded');
    const e: unknown = await runFineTune(
      fineTunePayloadSchema.parse({
        model: 'big',
        architecture: 'mobilenet-v2',
        dataset: spec,
        epochs: 1,
        batchSize: 512,
      }),
      context([], { memoryBudgetMb: 256 }),
    ).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(InputError);
    expect((e as Error).message).toMatch(
      /^the model does not fit in the job's memory budget: training needs about \d+ MB \(activations of a batch of 512: \d+ MB, gradients \d+ MB, optimizer state \d+ MB\) on top of the \d+ MB this process holds with the model loaded, and the budget is 256 MB/,
    );
    // Nothing was decoded.
    expect(await store.list('cache/decoded')).toEqual(before);
  });

  it('refuses a model too large for the wasm heap or the budget before building it: its weights never exist', async () => {
    // Four dense layers of 8,192 units: 205 million weights (820 MB), 3.3 GB with Adam's state.
    const giant = {
      model: 'giant',
      architecture: 'mlp',
      architectureOptions: { units: [8192, 8192, 8192, 8192] },
    };
    const cases: [Partial<JobContext>, RegExp][] = [
      [
        { backend: 'wasm' },
        /^the model does not fit in the wasm backend's memory: training needs about 3\d{3} MB /,
      ],
      [
        { memoryBudgetMb: 1024 },
        /^the model does not fit in the job's memory budget: training needs about \d+ MB /,
      ],
    ];
    for (const [extra, message] of cases) {
      // This process's peak resident memory (VmHWM): building the weights would raise it by 820 MB.
      const before = memoryOf(process.pid)!;
      const e: unknown = await fineTune(giant, [], extra).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(InputError);
      expect((e as Error).message).toMatch(message);
      expect(memoryOf(process.pid)!.peak - before.peak).toBeLessThan(200 << 20);
    }
  });

  it('data without a label column fails at once, naming the columns and dataset.label', async () => {
    await writeFile(path.join(dir, 'nolabel.csv'), 'a,b,c,klass\n1,2,3,x\n4,5,6,y\n');
    const e: unknown = await runFineTune(
      fineTunePayloadSchema.parse({
        model: 'nolabel',
        architecture: 'mlp',
        dataset: {
          format: 'csv',
          uri: pathToFileURL(path.join(dir, 'nolabel.csv')).href,
          features: ['a', 'b', 'c'],
        },
        epochs: 1,
      }),
      context([]),
    ).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(DataError);
    expect((e as Error).message).toBe(
      'the dataset has no label column: no column is named "label" and dataset.label names none (the columns are a, b, c, klass); set dataset.label to the column that holds the classes',
    );
  });
});
