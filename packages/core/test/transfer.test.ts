import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { buildTransferModel, makeOptimizer } from '../src/ml/transfer.ts';
import type { LoadedModel } from '../src/ml/model-io.ts';

/** A trained-from-scratch mlp as a registry model would hold it: features + a 3-class head. */
function baseModel(): LoadedModel {
  const built = buildTransferModel({
    architecture: 'mlp',
    architectureOptions: { units: [8] },
    trainableLayers: 0,
    inputShape: [4],
    numClasses: 3,
  });
  return { model: built.model, meta: built.meta, bytes: 0 };
}

describe('buildTransferModel', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });
  const x = () =>
    tf.tensor2d([
      [0.1, 0.2, 0.3, 0.4],
      [1, -1, 0.5, 2],
    ]);

  it('reuseBaseHead keeps the base head: before training it predicts exactly as the base', () => {
    const loaded = baseModel();
    const tm = buildTransferModel({
      base: { ref: 'b', loaded },
      reuseBaseHead: true,
      trainableLayers: 0,
      inputShape: [4],
      numClasses: 3,
    });
    const a = (loaded.model.predict(x()) as tf.Tensor).arraySync();
    const b = (tm.model.predict(x()) as tf.Tensor).arraySync();
    expect(b).toEqual(a);
    expect(tm.frozenBase).toBe(true);
    // The head model over cached features gives the same answer as the composed model.
    const f = tm.features.predict(x()) as tf.Tensor;
    expect((tm.head.predict(f) as tf.Tensor).arraySync()).toEqual(b);
  });

  it('reuseBaseHead replaces only the last layer when the class count differs', () => {
    const loaded = baseModel();
    const tm = buildTransferModel({
      base: { ref: 'b', loaded },
      reuseBaseHead: true,
      trainableLayers: 0,
      inputShape: [4],
      numClasses: 5,
    });
    expect(tm.model.outputs[0]!.shape).toEqual([null, 5]);
    const baseHidden = loaded.model.layers.find((l) => l.name.endsWith('dense1'))!;
    expect(tm.model.layers).toContain(baseHidden);
  });

  it('without it, the head is new', () => {
    const loaded = baseModel();
    const tm = buildTransferModel({
      base: { ref: 'b', loaded },
      trainableLayers: 0,
      inputShape: [4],
      numClasses: 3,
      head: { units: [6], dropout: 0 },
    });
    const hidden = tm.model.layers.find((l) => /^head\d+_dense1$/.test(l.name))!;
    expect(loaded.model.layers).not.toContain(hidden);
    expect(hidden.outputShape).toEqual([null, 6]);
  });

  it("makeOptimizer: Keras constants by default, a reference's when given (PyTorch Adadelta)", () => {
    const keras = makeOptimizer('adadelta', 1.0);
    const torch = makeOptimizer('adadelta', 1.0, { rho: 0.9, epsilon: 1e-6 });
    expect(keras.getConfig()).toEqual({ learningRate: 1, rho: 0.95, epsilon: 1e-7 });
    expect(torch.getConfig()).toEqual({ learningRate: 1, rho: 0.9, epsilon: 1e-6 });
    expect(makeOptimizer('adam', 0.01, { beta1: 0.8 }).getConfig()).toMatchObject({
      beta1: 0.8,
      beta2: 0.999,
    });
    keras.dispose();
    torch.dispose();
  });

  it("trains the head of a frozen mnist-cnn base with the base's Dropout(0.25) in front", () => {
    const cnn = buildTransferModel({
      architecture: 'mnist-cnn',
      trainableLayers: 0,
      inputShape: [28, 28, 1],
      numClasses: 3,
    });
    const loaded: LoadedModel = { model: cnn.model, meta: cnn.meta, bytes: 0 };
    const tm = buildTransferModel({
      base: { ref: 'c', loaded },
      reuseBaseHead: true,
      trainableLayers: 0,
      inputShape: [28, 28, 1],
      numClasses: 3,
    });
    const first = tm.head.layers[1]!;
    expect(first.getClassName()).toBe('MlqFeatureDropout');
    expect(first.getConfig()['rate']).toBe(0.25);
    // Out of training it is the identity: head(features(x)) is the composed model's answer.
    const img = tf.randomUniform([2, 28, 28, 1], 0, 1, 'float32', 7);
    const whole = (tm.model.predict(img) as tf.Tensor).dataSync();
    const split = (tm.head.predict(tm.features.predict(img) as tf.Tensor) as tf.Tensor).dataSync();
    split.forEach((v, i) => expect(v).toBeCloseTo(whole[i]!, 6));
    // An mlp base ends in no dropout: nothing is added.
    const mlp = buildTransferModel({
      base: { ref: 'b', loaded: baseModel() },
      trainableLayers: 0,
      inputShape: [4],
      numClasses: 3,
    });
    expect(mlp.head.layers.some((l) => l.getClassName() === 'MlqFeatureDropout')).toBe(false);
  });
});
