import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { loadAll } from '../src/data/dataset.ts';
import { mnistSource } from '../src/data/mnist.ts';
import {
  DataParallelTrainer,
  predictBatched,
  predictParallel,
  readyHelpers,
  stopHelpers,
  type TrainData,
} from '@mlq/engine';
import { fitModel } from '../src/ml/fit.ts';

/** A dropout-free net, so that a data-parallel step and a plain step compute the same thing. */
function net(): tf.LayersModel {
  const m = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [784], units: 16, activation: 'relu' }),
      tf.layers.dense({ units: 2, activation: 'softmax' }),
    ],
  });
  m.compile({ optimizer: tf.train.sgd(0.1), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  return m;
}

function batch(d: TrainData, rows: Uint32Array): [tf.Tensor, tf.Tensor] {
  const x = new Float32Array(rows.length * 784);
  rows.forEach((r, i) => x.set(d.x.subarray(r * 784, (r + 1) * 784), i * 784));
  const y = tf.oneHot(
    tf.tensor1d(
      Array.from(rows, (r) => d.y[r]!),
      'int32',
    ),
    2,
  );
  return [tf.tensor2d(x, [rows.length, 784]), y];
}

/** A fit's `log` that keeps its lines. */
const logInto = (lines: string[]) => (l: string) => {
  lines.push(l);
  return Promise.resolve();
};

describe('data-parallel training', () => {
  let digits: TrainData;
  beforeAll(async () => {
    await tf.setBackend('cpu');
    const d = await loadAll(mnistSource({ format: 'mnist', digits: [0, 1], split: 'train', limit: 256 }));
    digits = { x: d.x, y: d.y, shape: [784], numClasses: 2 };
  });
  afterAll(async () => {
    tf.disposeVariables();
    await stopHelpers();
  });

  it('a step split over 3 threads updates the weights as one plain step on the whole batch', async () => {
    const a = net();
    const b = net();
    b.setWeights(a.getWeights());
    const trainer = await DataParallelTrainer.start(a, digits, 3, 'cpu');
    try {
      for (let s = 0; s < 3; s++) {
        const rows = Uint32Array.from({ length: 50 }, (_, i) => (s * 50 + i * 7) % 256);
        const [loss] = await trainer.step(rows, (r) => batch(digits, r));
        const [x, y] = batch(digits, rows);
        const [plainLoss] = (await b.trainOnBatch(x, y)) as number[];
        tf.dispose([x, y]);
        expect(loss).toBeCloseTo(plainLoss!, 4);
      }
    } finally {
      await trainer.dispose();
    }
    const wa = a.getWeights().map((w) => Array.from(w.dataSync()));
    const wb = b.getWeights().map((w) => Array.from(w.dataSync()));
    wa.forEach((w, i) => w.forEach((v, j) => expect(v).toBeCloseTo(wb[i]![j]!, 4)));
    // The weights did move: the comparison above is not between two untouched models.
    const before = net();
    expect(a.getWeights()[0]!.sub(b.getWeights()[0]!).abs().max().dataSync()[0]).toBeLessThan(1e-4);
    expect(a.getWeights()[0]!.sub(before.getWeights()[0]!).abs().max().dataSync()[0]).toBeGreaterThan(0);
    tf.dispose([a, b, before].flatMap((m) => m.weights.map((w) => w.read())));
  });

  it('fitModel times both ways, says which it kept, learns, and leaves no tensors behind', async () => {
    const m = net();
    const x0 = tf.zeros([1, 784]);
    const y0 = tf.tensor2d([[1, 0]]);
    await m.trainOnBatch(x0, y0);
    tf.dispose([x0, y0]);
    const tensors = tf.memory().numTensors;
    const lines: string[] = [];
    const r = await fitModel(m, digits, {
      epochs: 4,
      batchSize: 16,
      validationSplit: 0.25,
      seed: 3,
      threads: 2,
      backend: 'cpu',
      // This net's steps are far shorter than the default floor for splitting; probe anyway.
      minSplitStepMs: 0,
      // A slow first epoch end (as a checkpoint to a remote store would be) lets the helper boot.
      onEpoch: (p) => new Promise((resolve) => setTimeout(resolve, p.epoch === 1 ? 4000 : 0)),
      log: logInto(lines),
    });
    expect(
      lines.some((l) =>
        /^data-parallel training on 2 threads: \d+ samples\/s against \d+ on one \(\d+\.\d\dx, (at least|under) the 1\.11x it takes\); (keeping it|back to one thread)$/.test(
          l,
        ),
      ),
    ).toBe(true);
    expect(lines).toHaveLength(1);
    expect(r.history[3]!.valAcc).toBeGreaterThan(0.9);
    expect(tf.memory().numTensors).toBe(tensors);
  });

  it('does not split steps shorter than the floor, and says so', async () => {
    const lines: string[] = [];
    await fitModel(net(), digits, {
      epochs: 3,
      batchSize: 16,
      seed: 3,
      threads: 2,
      backend: 'cpu',
      validationSplit: 0,
      // The helpers of the test above are up; a pause after epoch 1 lets the replica load.
      onEpoch: (p) => new Promise((resolve) => setTimeout(resolve, p.epoch === 1 ? 1500 : 0)),
      minSplitStepMs: 10_000,
      log: logInto(lines),
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^data-parallel training skipped: a step takes \d+ ms on one thread, too short to split$/,
    );
  });

  it('predicts in parallel exactly as on one thread, once a helper is up', async () => {
    const m = net();
    const one = predictBatched(m, digits.x, [784], 64);
    // The helpers of the tests above are up by now; a pool of 2 threads splits the rows in two.
    expect(readyHelpers('cpu')).toBeGreaterThanOrEqual(1);
    const { out: both, threads } = await predictParallel(m, digits.x, [784], 2, 'cpu', 64);
    expect(threads).toBe(2);
    expect(both.length).toBe(one.length);
    both.forEach((v, i) => expect(v).toBeCloseTo(one[i]!, 5));
    tf.dispose(m.weights.map((w) => w.read()));
  });

  it('lets a process that used helper threads exit by itself, with code 0', () => {
    const script = fileURLToPath(new URL('./fixtures/helper-exit.ts', import.meta.url));
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], {
      cwd: path.dirname(script),
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.stdout).toMatch(/^stepped, loss \d/m);
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
  });
});
