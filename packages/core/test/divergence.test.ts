/**
 * A fit whose loss stops being a number ends there, and a model whose weights are not finite is never
 * saved: values that fit float32 can still overflow inside a model.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkFiniteScores, fitModel } from '../src/ml/fit.ts';
import { saveModel } from '../src/ml/model-io.ts';
import { buildTransferModel, compile, makeOptimizer } from '../src/ml/transfer.ts';
import { FileArtifactStore } from '../src/storage/file-store.ts';
import { DataError, isPermanentError, TrainingDivergedError } from '../src/util/errors.ts';

let dir: string;
beforeAll(async () => {
  await tf.setBackend('cpu');
  dir = await mkdtemp(path.join(os.tmpdir(), 'mlq-divergence-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const mlp = (features = 2) =>
  buildTransferModel({
    architecture: 'mlp',
    architectureOptions: { units: [8] },
    trainableLayers: 0,
    inputShape: [features],
    numClasses: 2,
  });

describe('divergence', () => {
  it('the fit stops at the first batch whose loss is not finite, as a permanent failure', async () => {
    const tm = mlp(16);
    // Every kernel 0.5: sixteen features of 3e38 (each fits float32) sum past its range, and the loss is NaN.
    tm.model.setWeights(tm.model.getWeights().map((w) => tf.fill(w.shape, w.shape.length > 1 ? 0.5 : 0)));
    compile(tm.model, makeOptimizer('sgd', 0.1));
    const x = new Float32Array(6 * 16).map((_, i) => (i >= 32 && i < 48 ? 3e38 : (i % 7) / 7));
    const y = Int32Array.from([0, 1, 0, 1, 0, 1]);
    const epochs: number[] = [];
    const e: unknown = await fitModel(
      tm.model,
      { x, y, shape: [16], numClasses: 2 },
      {
        epochs: 3,
        batchSize: 1,
        validationSplit: 0,
        seed: 3,
        onEpoch: async (p) => void epochs.push(p.epoch),
      },
    ).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(TrainingDivergedError);
    expect(isPermanentError(e)).toBe(true);
    // Batch k of the seeded order is the row of 3e38 (row 2): the fit stops right there.
    expect((e as Error).message).toMatch(
      /^training diverged at epoch 1, batch \d: the loss is NaN; nothing was saved\. Try a lower learningRate/,
    );
    expect(epochs).toEqual([]);
  });

  it('a model with a non-finite weight is never saved', async () => {
    const tm = mlp();
    const kernel = tm.model.getLayer('mlp_dense1').getWeights()[0]!;
    const values = kernel.dataSync().slice();
    values[3] = Number.NaN;
    tm.model
      .getLayer('mlp_dense1')
      .setWeights([tf.tensor(values, kernel.shape), tm.model.getLayer('mlp_dense1').getWeights()[1]!]);
    const store = new FileArtifactStore(dir);
    const e: unknown = await saveModel(tm.model, store, 'runs/x/model', tm.meta).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(TrainingDivergedError);
    expect((e as Error).message).toBe(
      'the model under runs/x/model cannot be saved: weight mlp_dense1/kernel has 1 NaN of 16 values',
    );
    expect(await store.exists('runs/x/model/model.json')).toBe(false);
  });

  it('scores that are not finite are refused, naming the row', () => {
    expect(() => checkFiniteScores(Float32Array.from([0.5, 0.5, 0.2, 0.8]), 2, 10)).not.toThrow();
    expect(() => checkFiniteScores(Float32Array.from([0.5, 0.5, Number.NaN, 0.8]), 2, 10)).toThrow(DataError);
    expect(() => checkFiniteScores(Float32Array.from([0.5, 0.5, 1, Infinity]), 2, 10)).toThrow(
      /^row 11: the model's output is Infinity/,
    );
  });
});
