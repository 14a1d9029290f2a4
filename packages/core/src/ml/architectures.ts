/**
 * Built-in architectures for training from scratch. Each is split into a feature extractor (the part a
 * later transfer job reuses as its base) and a default head; `featuresLayer` names the extractor's
 * last layer and is saved in the model's metadata.
 *
 * Each is written once against a Wiring: `symbolic` builds it as tfjs layers (which allocates their
 * weights), model-plan.ts's ShapePlan only follows the shapes and counts the weights, so a model too
 * large to train is refused before any of it exists.
 */
import * as tf from '@tensorflow/tfjs';
import { InputError } from '../util/errors.ts';
import type { ArchitectureOptions, FeatureGraph, Features, Wiring } from './features.ts';
import { wireMobileNetV2Features } from './mobilenet-v2.ts';

export type { ArchitectureOptions, FeatureGraph, Features, Wiring } from './features.ts';

/** Wiring into a tfjs graph: each layer is applied to symbolic tensors, and built (weights allocated). */
export const symbolic: Wiring<tf.SymbolicTensor> = {
  input: (shape, name) => tf.input({ shape, name }),
  apply: (layer, x) => layer.apply(x) as tf.SymbolicTensor,
};

/**
 * The Keras mnist_transfer_cnn feature layers: conv32-conv32-maxpool-dropout(0.25)-flatten.
 * Its head is dense128-dropout(0.5)-dense(classes).
 */
function mnistCnn<T>(w: Wiring<T>, inputShape: number[]): FeatureGraph<T> {
  if (inputShape.length !== 3) {
    throw new InputError(
      `architecture "mnist-cnn" needs image input [h, w, c]; this dataset has shape [${inputShape.join(', ')}]`,
    );
  }
  const input = w.input(inputShape, 'image');
  let x = w.apply(tf.layers.conv2d({ filters: 32, kernelSize: 3, activation: 'relu', name: 'conv1' }), input);
  x = w.apply(tf.layers.conv2d({ filters: 32, kernelSize: 3, activation: 'relu', name: 'conv2' }), x);
  x = w.apply(tf.layers.maxPooling2d({ poolSize: 2, name: 'pool' }), x);
  x = w.apply(tf.layers.dropout({ rate: 0.25, name: 'dropout_features' }), x);
  x = w.apply(tf.layers.flatten({ name: 'features' }), x);
  return { input, output: x, name: 'mnist_cnn', defaultHead: { units: [128], dropout: 0.5 } };
}

/** Dense layers over the columns of a table (or a flattened image). */
function mlp<T>(w: Wiring<T>, inputShape: number[], units: number[]): FeatureGraph<T> {
  const input = w.input(inputShape, 'features_in');
  let x = input;
  if (inputShape.length > 1) x = w.apply(tf.layers.flatten({ name: 'flatten' }), x);
  units.forEach((u, i) => {
    x = w.apply(tf.layers.dense({ units: u, activation: 'relu', name: `mlp_dense${i + 1}` }), x);
  });
  if (x === input) x = w.apply(tf.layers.activation({ activation: 'linear', name: 'features' }), x);
  return { input, output: x, name: 'mlp', defaultHead: { units: [], dropout: 0 } };
}

/**
 * Architecture `architecture`'s feature extractor for inputs of `inputShape` (without the batch
 * dimension), wired by `w`. InputError for an unknown architecture or an input it cannot take.
 */
export function wireFeatures<T>(
  w: Wiring<T>,
  architecture: string,
  inputShape: number[],
  opts: ArchitectureOptions = {},
): FeatureGraph<T> {
  switch (architecture) {
    case 'mnist-cnn':
      return mnistCnn(w, inputShape);
    case 'mlp':
      return mlp(w, inputShape, opts.units ?? [64, 32]);
    case 'mobilenet-v2':
      return wireMobileNetV2Features(w, inputShape, opts);
    default:
      throw new InputError(`unknown architecture "${architecture}"`);
  }
}

/** Builds architecture `architecture`'s feature extractor as a tfjs model (its weights allocated). */
export function buildFeatures(
  architecture: string,
  inputShape: number[],
  opts: ArchitectureOptions = {},
): Features {
  const g = wireFeatures(symbolic, architecture, inputShape, opts);
  return {
    model: tf.model({ inputs: g.input, outputs: g.output, name: g.name }),
    defaultHead: g.defaultHead,
  };
}
