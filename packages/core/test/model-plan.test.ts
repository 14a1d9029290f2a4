/**
 * planTransferModel sizes a model without building it: for each architecture, head and kind of base,
 * its counts equal those of the model buildTransferModel then really builds (weights, trainable
 * weights, layer outputs), its `newWeights` equal the bytes tfjs allocates for that build, and the
 * plan itself allocates no tensor.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { modelSize, PlanError, ShapePlan } from '../src/ml/model-plan.ts';
import {
  buildTransferModel,
  planTransferModel,
  type TransferModel,
  type TransferSpec,
} from '../src/ml/transfer.ts';
import { InputError } from '../src/util/errors.ts';

/** Plans `spec`, then builds it: checks the plan against the model and what building it allocated. */
function planThenBuild(spec: TransferSpec): TransferModel {
  const before = tf.memory();
  const plan = planTransferModel(spec);
  expect(tf.memory().numTensors).toBe(before.numTensors);
  expect(tf.memory().numBytes).toBe(before.numBytes);
  const tm = buildTransferModel(spec);
  expect(plan.model).toEqual(modelSize(tm.model));
  expect(plan.newWeights * 4).toBe(tf.memory().numBytes - before.numBytes);
  expect(plan.frozenBase).toBe(tm.frozenBase);
  if (spec.base) expect(plan.head).toEqual(modelSize(tm.head));
  else expect(plan.head).toBeUndefined();
  return tm;
}

const asBase = (tm: TransferModel, ref: string) => ({
  ref,
  loaded: { model: tm.model, meta: tm.meta, bytes: 0 },
});

describe('planTransferModel', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('sizes an mlp over a table and over an image, with its default head and without hidden layers', () => {
    const table = planThenBuild({
      architecture: 'mlp',
      architectureOptions: { units: [16, 8] },
      trainableLayers: 0,
      inputShape: [20],
      numClasses: 3,
    });
    // 20·16+16 + 16·8+8 + 8·3+3
    expect(modelSize(table.model).trainable).toBe(499);
    planThenBuild({
      architecture: 'mlp',
      architectureOptions: { units: [] },
      head: { units: [12], dropout: 0.5, activation: 'tanh' },
      trainableLayers: 0,
      inputShape: [8, 8, 1],
      numClasses: 2,
    });
  });

  it('sizes mnist-cnn, whose head grows with the image, and MobileNetV2 at two widths', () => {
    planThenBuild({ architecture: 'mnist-cnn', trainableLayers: 0, inputShape: [28, 28, 1], numClasses: 10 });
    planThenBuild({
      architecture: 'mnist-cnn',
      head: { units: [32, 16], dropout: 0.3 },
      trainableLayers: 0,
      inputShape: [33, 21, 3],
      numClasses: 4,
    });
    for (const alpha of [0.35, 1.3])
      planThenBuild({
        architecture: 'mobilenet-v2',
        architectureOptions: { alpha },
        trainableLayers: 0,
        inputShape: [32, 32, 3],
        numClasses: 5,
      });
  });

  it('sizes a transfer from a loaded base: frozen, partly trainable, and reusing its head', () => {
    const cnn = buildTransferModel({
      architecture: 'mnist-cnn',
      trainableLayers: 0,
      inputShape: [28, 28, 1],
      numClasses: 10,
    });
    // Frozen: only the head trains, on the base's outputs (after the base's trailing dropout).
    const frozen = planThenBuild({
      base: asBase(cnn, 'cnn'),
      trainableLayers: 0,
      inputShape: [28, 28, 1],
      numClasses: 3,
    });
    expect(frozen.frozenBase).toBe(true);
    planThenBuild({
      base: asBase(cnn, 'cnn'),
      trainableLayers: 1,
      head: { units: [], dropout: 0 },
      inputShape: [28, 28, 1],
      numClasses: 3,
    });
    // The base's own head, its last layer replaced for 3 classes (a new layer: new weights).
    planThenBuild({
      base: asBase(cnn, 'cnn'),
      trainableLayers: 2,
      reuseBaseHead: true,
      inputShape: [28, 28, 1],
      numClasses: 3,
    });
    // ... and kept as it is for 10.
    planThenBuild({
      base: asBase(cnn, 'cnn'),
      trainableLayers: 0,
      reuseBaseHead: true,
      inputShape: [28, 28, 1],
      numClasses: 10,
    });

    const mobilenet = buildTransferModel({
      architecture: 'mobilenet-v2',
      architectureOptions: { alpha: 0.35 },
      trainableLayers: 0,
      inputShape: [32, 32, 3],
      numClasses: 2,
    });
    planThenBuild({
      base: asBase(mobilenet, 'mobilenet'),
      trainableLayers: 3,
      inputShape: [32, 32, 3],
      numClasses: 2,
    });
  });

  it('sizes a model far too large to build, and refuses what buildTransferModel refuses', () => {
    const before = tf.memory().numBytes;
    const giant = planTransferModel({
      architecture: 'mlp',
      architectureOptions: { units: Array<number>(8).fill(8192) },
      trainableLayers: 0,
      inputShape: [784],
      numClasses: 2,
    });
    expect(giant.newWeights).toBe(784 * 8192 + 8192 + 7 * (8192 * 8192 + 8192) + 8192 * 2 + 2);
    expect(tf.memory().numBytes).toBe(before);

    const refusal = (spec: TransferSpec) => {
      try {
        buildTransferModel(spec);
      } catch (e) {
        return e as Error;
      }
      throw new Error('built');
    };
    for (const spec of [
      { architecture: 'resnet', trainableLayers: 0, inputShape: [4], numClasses: 2 },
      { architecture: 'mnist-cnn', trainableLayers: 0, inputShape: [784], numClasses: 2 },
    ]) {
      expect(() => planTransferModel(spec)).toThrow(InputError);
      expect(() => planTransferModel(spec)).toThrow(refusal(spec).message);
    }
    // An image too small for mnist-cnn's convolutions has no shape to plan: PlanError, not a guess.
    expect(() =>
      planTransferModel({
        architecture: 'mnist-cnn',
        trainableLayers: 0,
        inputShape: [3, 3, 1],
        numClasses: 2,
      }),
    ).toThrow(PlanError);
  });

  it('sizes a dense layer over the last axis, and refuses a layer class it does not know', () => {
    const plan = new ShapePlan();
    const x = plan.input([4, 6]);
    expect(plan.apply(tf.layers.dense({ units: 3 }), x).shape).toEqual([4, 3]);
    expect(plan.newWeights).toBe(6 * 3 + 3);
    expect(plan.size.activations).toBe(24 + 12);
    expect(() => plan.apply(tf.layers.simpleRNN({ units: 2 }), x)).toThrow(PlanError);
  });
});
