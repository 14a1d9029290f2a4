import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { loadAll } from '../src/data/dataset.ts';
import { mnistSource } from '../src/data/mnist.ts';
import type { TrainData } from '@mlq/engine';
import { fitModel } from '../src/ml/fit.ts';
import { DataError } from '../src/util/errors.ts';

function mlp(width: number, classes: number): tf.LayersModel {
  const m = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [width], units: 32, activation: 'relu' }),
      tf.layers.dense({ units: classes, activation: 'softmax' }),
    ],
  });
  m.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  return m;
}

describe('fitModel', () => {
  let digits: TrainData;
  beforeAll(async () => {
    await tf.setBackend('cpu');
    const d = await loadAll(mnistSource({ format: 'mnist', digits: [0, 1], split: 'train', limit: 300 }));
    digits = { x: d.x, y: d.y, shape: [784], numClasses: 2 };
  });

  it('learns real digits and reports validation on the last rows, leaking no tensors', async () => {
    const model = mlp(784, 2);
    // Adam creates its moment tensors on the first step: count after one.
    const x0 = tf.zeros([1, 784]);
    const y0 = tf.tensor2d([[1, 0]]);
    await model.trainOnBatch(x0, y0);
    tf.dispose([x0, y0]);
    const before = tf.memory().numTensors;
    const epochs: number[] = [];
    const r = await fitModel(model, digits, {
      epochs: 3,
      batchSize: 32,
      validationSplit: 0.2,
      seed: 7,
      onEpoch: (p) => {
        epochs.push(p.epoch);
        return Promise.resolve();
      },
    });
    expect(epochs).toEqual([1, 2, 3]);
    const last = r.history[2]!;
    expect(last.valAcc).toBeGreaterThan(0.9);
    expect(last.loss).toBeLessThan(r.history[0]!.loss);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('fails with a DataError naming the row when a label is out of range', async () => {
    const model = mlp(784, 2);
    const y = Int32Array.from(digits.y);
    y[5] = 2;
    await expect(
      fitModel(model, { ...digits, y }, { epochs: 1, batchSize: 600, validationSplit: 0, seed: 1 }),
    ).rejects.toThrow(new DataError('row 5 has label 2; labels must be 0..1'));
    model.dispose();
  });
});
