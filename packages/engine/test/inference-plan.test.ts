import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/backend.ts';
import { compileInference } from '../src/inference-plan.ts';

type T = tf.SymbolicTensor;

/** Random weights everywhere, BatchNormalization statistics included (fresh ones are 0 and 1). */
function randomize(model: tf.LayersModel, seed: number): void {
  model.setWeights(
    model.weights.map((w, i) =>
      /moving_variance|gamma/.test(w.name)
        ? tf.randomUniform(w.shape as number[], 0.5, 1.5, 'float32', seed + i)
        : tf.randomUniform(w.shape as number[], -0.5, 0.5, 'float32', seed + i),
    ),
  );
}

/** A small MobileNetV2-like graph: every fold case, and the cases that must not fold. */
function buildModel(): tf.LayersModel {
  const input = tf.input({ shape: [12, 12, 3] });
  // conv (no bias) → BN → ReLU6: folded, relu6 fused.
  let x = tf.layers
    .conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', useBias: false })
    .apply(input) as T;
  x = tf.layers.batchNormalization({ epsilon: 1e-3 }).apply(x) as T;
  x = tf.layers.reLU({ maxValue: 6 }).apply(x) as T;
  // depthwise (multiplier 2, valid padding) → BN (no scale, no center) → Activation relu: folded, fused.
  let y = tf.layers.depthwiseConv2d({ kernelSize: 3, depthMultiplier: 2, useBias: false }).apply(x) as T;
  y = tf.layers.batchNormalization({ scale: false, center: false }).apply(y) as T;
  y = tf.layers.activation({ activation: 'relu' }).apply(y) as T;
  // conv with a bias → BN, no activation after: folded, linear.
  let z = tf.layers.conv2d({ filters: 16, kernelSize: 1, useBias: true }).apply(y) as T;
  z = tf.layers.batchNormalization().apply(z) as T;
  // a conv whose output two layers read: never folded.
  const w = tf.layers.conv2d({ filters: 16, kernelSize: 1, padding: 'same' }).apply(z) as T;
  const wBn = tf.layers.batchNormalization().apply(w) as T;
  const sum = tf.layers.add().apply([w, wBn]) as T;
  // a residual add of a folded branch, then a ReLU with another maximum (not fusable).
  let r = tf.layers.conv2d({ filters: 16, kernelSize: 1, useBias: false }).apply(sum) as T;
  r = tf.layers.batchNormalization().apply(r) as T;
  r = tf.layers.add().apply([sum, r]) as T;
  r = tf.layers.reLU({ maxValue: 4 }).apply(r) as T;
  const pooled = tf.layers.globalAveragePooling2d({}).apply(r) as T;
  const base = tf.model({ inputs: input, outputs: pooled });
  // A transfer model: the base as a nested model, and a head.
  const outer = tf.input({ shape: [12, 12, 3] });
  const feats = base.apply(outer) as T;
  const out = tf.layers.dense({ units: 5 }).apply(feats) as T;
  return tf.model({ inputs: outer, outputs: out });
}

describe(compileInference.name, () => {
  beforeAll(async () => {
    await initBackend('wasm');
  });
  afterAll(() => tf.disposeVariables());

  it('folds BatchNormalization and fuses activations, and gives what model.apply gives', () => {
    const model = buildModel();
    randomize(model, 7);
    const plan = compileInference(model);
    // Folded: the stem, the depthwise, the biased 1×1 and the residual branch; not the shared conv.
    expect(plan.folded).toEqual({ batchNorms: 4, activations: 2 });
    const x = tf.randomUniform([6, 12, 12, 3], 0, 1, 'float32', 3);
    const want = model.apply(x, { training: false }) as tf.Tensor;
    const got = plan.predict(x);
    expect(got.shape).toEqual([6, 5]);
    const [a, b] = [want.dataSync(), got.dataSync()];
    let maxDiff = 0;
    let scale = 0;
    for (let i = 0; i < a.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
      scale = Math.max(scale, Math.abs(a[i]!));
    }
    expect(maxDiff / scale).toBeLessThan(1e-5);
    // Rows differ from each other: the comparison is not between two constant outputs.
    expect(Math.abs(a[0]! - a[5]!) / scale).toBeGreaterThan(1e-3);
    tf.dispose([x, want, got]);
    plan.dispose();
    model.dispose();
  });

  it('leaves no tensors behind after predict and dispose', () => {
    const model = buildModel();
    const before = tf.memory().numTensors;
    const plan = compileInference(model);
    const x = tf.ones([2, 12, 12, 3]);
    plan.predict(x).dispose();
    x.dispose();
    plan.dispose();
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});
