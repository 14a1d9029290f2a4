import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { FileArtifactStore } from '../src/storage/file-store.ts';
import {
  loadRunHistory,
  PROGRESS_EVERY_BATCHES,
  PROGRESS_EVERY_MS,
  RunHistoryRecorder,
} from '../src/jobs/run-history.ts';
import { classificationMetrics, rocAuc, rocCurve } from '../src/ml/metrics.ts';

const batch = (epoch: number, b: number, batches = 100, seconds = b * 0.1) => ({
  epoch,
  batch: b,
  batches,
  loss: 1 / b,
  acc: b / batches,
  rows: b * 32,
  seconds,
});

describe('RunHistoryRecorder', () => {
  it('reports every N batches or every second, whichever is later', () => {
    expect([PROGRESS_EVERY_BATCHES, PROGRESS_EVERY_MS]).toEqual([5, 1000]);
    let now = 0;
    const r = new RunHistoryRecorder(3, () => now);
    // Fast batches (10 ms): the second decides.
    const fast: number[] = [];
    for (let b = 1; b < 300; b++) {
      now += 10;
      if (r.onBatch(batch(1, b, 300))) fast.push(b);
    }
    expect(fast).toEqual([100, 200]);
    // Slow batches (2 s): the batch count decides.
    r.onEpoch();
    const slow: number[] = [];
    for (let b = 1; b <= 20; b++) {
      now += 2000;
      if (r.onBatch(batch(2, b, 20))) slow.push(b);
    }
    expect(slow).toEqual([5, 10, 15]);
    expect(r.points.map((p) => `${p.epoch}:${p.batch}`)).toEqual(['1:100', '1:200', '2:5', '2:10', '2:15']);
  });

  it('never reports the last batch of an epoch, and estimates the time left', () => {
    let now = 0;
    const r = new RunHistoryRecorder(2, () => now);
    for (let b = 1; b < 10; b++) r.onBatch(batch(1, b, 10));
    now = 5000;
    expect(r.onBatch(batch(1, 10, 10))).toBeUndefined();
    const rep = r.onBatch(batch(2, 5, 10, 1))!;
    // 160 rows in 1 s; 160 rows left in epoch 2 and no epoch after it.
    expect(rep).toMatchObject({ epoch: 2, epochs: 2, batch: 5, batches: 10, samplesPerSec: 160 });
    expect(rep.etaSeconds).toBeCloseTo(1, 5);
  });

  it('saves history.json and keeps, on resume, only the points before the restart', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'mlq-history-'));
    afterAll(() => rm(dir, { recursive: true, force: true }));
    const store = new FileArtifactStore(pathToFileURL(dir).href);
    let now = 0;
    const r = new RunHistoryRecorder(3, () => now);
    for (const [e, b] of [
      [1, 5],
      [2, 5],
      [2, 10],
      [3, 5],
    ] as const) {
      now += 5000;
      for (let i = 0; i < PROGRESS_EVERY_BATCHES; i++)
        r.onBatch(batch(e, b - PROGRESS_EVERY_BATCHES + 1 + i, 20));
    }
    expect(r.points.map((p) => `${p.epoch}:${p.batch}`)).toEqual(['1:5', '2:5', '2:10', '3:5']);
    const epoch = { epoch: 1, epochs: 3, loss: 0.5, acc: 0.8, samplesPerSec: 100, etaSeconds: 2 };
    await r.save(store, 'job-1', [epoch]);
    const saved = await loadRunHistory(store, 'job-1');
    expect(saved?.epochs).toEqual([epoch]);
    expect(saved?.points).toHaveLength(4);

    const resumed = new RunHistoryRecorder(3);
    resumed.resume(saved, 1, { epoch: 2, batches: 6, lossSum: 0, accSum: 0, seconds: 1 });
    expect(resumed.points.map((p) => `${p.epoch}:${p.batch}`)).toEqual(['1:5', '2:5']);
    expect(await loadRunHistory(store, 'no-such-job')).toBeUndefined();
  });
});

describe('rocCurve', () => {
  it('runs from (0,0) to (1,1) and its area matches the rank AUC', () => {
    const scores = [0.9, 0.8, 0.7, 0.6, 0.55, 0.5, 0.4, 0.3, 0.2, 0.1];
    const pos = [1, 1, 0, 1, 1, 0, 0, 1, 0, 0].map(Boolean);
    const roc = rocCurve(scores, pos)!;
    expect([roc.fpr[0], roc.tpr[0]]).toEqual([0, 0]);
    expect([roc.fpr.at(-1), roc.tpr.at(-1)]).toEqual([1, 1]);
    let area = 0;
    for (let i = 1; i < roc.fpr.length; i++)
      area += ((roc.fpr[i]! - roc.fpr[i - 1]!) * (roc.tpr[i]! + roc.tpr[i - 1]!)) / 2;
    expect(area).toBeCloseTo(rocAuc(scores, pos), 10);
  });

  it('is thinned to the point limit and left out for one class', () => {
    const n = 5000;
    const scores = Array.from({ length: n }, (_, i) => i / n);
    const roc = rocCurve(
      scores,
      scores.map((_, i) => i % 3 === 0),
      200,
    )!;
    expect(roc.fpr).toHaveLength(200);
    expect(rocCurve([0.1, 0.2], [true, true])).toBeUndefined();
    const probs = new Float32Array([0.8, 0.2, 0.3, 0.7, 0.6, 0.4, 0.1, 0.9]);
    const m = classificationMetrics(probs, new Int32Array([0, 1, 0, 1]), 2, ['a', 'b']);
    expect(m.roc?.fpr.length).toBeGreaterThan(2);
    expect(m.rocAuc).toBe(1);
  });
});
