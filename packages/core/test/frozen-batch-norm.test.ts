/**
 * Keras' rule for frozen BatchNormalization, on a real fine-tune of a MobileNetV2 base with its top
 * three weighted layers trainable: every frozen layer's weights, moving mean and variance included,
 * are identical before and after, while the trainable BatchNormalization layer at the top moves.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { fitModel } from '../src/ml/fit.ts';
import { replicaGradients } from '../../engine/src/parallel.ts';
import { buildTransferModel, compile, makeOptimizer, type TransferModel } from '../src/ml/transfer.ts';

const shape = [32, 32, 3];
const n = 8;

/** A fresh tiny MobileNetV2 (alpha 0.35) base + a transfer model over it with `trainableLayers: 3`. */
function transfer(): TransferModel {
  const base = buildTransferModel({
    architecture: 'mobilenet-v2',
    architectureOptions: { alpha: 0.35 },
    trainableLayers: 0,
    inputShape: shape,
    numClasses: 2,
  });
  return buildTransferModel({
    base: { ref: 'mobilenet', loaded: { model: base.model, meta: base.meta, bytes: 0 } },
    trainableLayers: 3,
    inputShape: shape,
    numClasses: 2,
  });
}

/** Every weight of every layer, by name, as plain arrays. */
function snapshot(layers: tf.layers.Layer[]): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const l of layers)
    for (const w of l.weights) out.set(w.originalName, w.read().dataSync().slice() as Float32Array);
  return out;
}

/** Random images whose class decides the brightness, so the loss has a gradient to follow. */
function data() {
  const x = new Float32Array(n * 32 * 32 * 3);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % 2;
    for (let j = 0; j < 32 * 32 * 3; j++) x[i * 3072 + j] = Math.random() * 0.5 + y[i]! * 0.5;
  }
  return { x, y, shape, numClasses: 2 };
}

describe('frozen BatchNormalization runs in inference mode (Keras)', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('a fine-tune leaves every frozen layer exactly as it was, moving statistics included', async () => {
    const tm = transfer();
    expect(tm.frozenBase).toBe(false);
    const frozen = tm.features.layers.filter((l) => !l.trainable && l.weights.length > 0);
    const frozenBn = frozen.filter((l) => l.getClassName() === 'BatchNormalization');
    expect(frozenBn.length).toBeGreaterThan(40);
    const topBn = tm.features.getLayer('top_bn');
    expect(topBn.trainable).toBe(true);
    const before = snapshot(frozen);
    const topBefore = snapshot([topBn]);

    compile(tm.model, makeOptimizer('adam', 0.01));
    const fit = await fitModel(tm.model, data(), { epochs: 2, batchSize: 4, validationSplit: 0, seed: 1 });
    expect(fit.history).toHaveLength(2);

    const after = snapshot(frozen);
    expect(after.size).toBe(before.size);
    for (const [name, v] of before) expect(after.get(name), name).toEqual(v);
    // The trainable top BatchNormalization layer trained normally: its moving mean moved.
    const mean = 'top_bn/moving_mean';
    expect(snapshot([topBn]).get(mean)).not.toEqual(topBefore.get(mean));
  });

  it('the gradient step of data-parallel training leaves them alone too', () => {
    const tm = transfer();
    const frozen = tm.features.layers.filter((l) => !l.trainable && l.weights.length > 0);
    const before = snapshot(frozen);
    const d = data();
    const vars = tm.model.trainableWeights.map((w) => w.read() as tf.Variable);
    const y = tf.oneHot(tf.tensor1d(d.y, 'int32'), 2);
    const out = replicaGradients(tm.model, vars, tf.tensor(d.x, [n, ...shape]), y);
    expect(Number.isFinite(out.loss)).toBe(true);
    for (const [name, v] of snapshot(frozen)) expect(v, name).toEqual(before.get(name));
    // Unfrozen again, the same layers train (and move their statistics) as usual.
    for (const l of frozen) l.trainable = true;
    replicaGradients(
      tm.model,
      tm.model.trainableWeights.map((w) => w.read() as tf.Variable),
      tf.tensor(d.x, [n, ...shape]),
      y,
    );
    const moved = [...snapshot(frozen)].filter(
      ([name, v]) => name.endsWith('moving_mean') && !tf.util.arraysEqual(v, before.get(name)!),
    );
    expect(moved.length).toBeGreaterThan(40);
  });
});
