/**
 * Built-in architectures for training from scratch. Each is split into a feature extractor (the part a
 * later transfer job reuses as its base) and a default head; `featuresLayer` names the extractor's
 * last layer and is saved in the model's metadata.
 */
import * as tf from '@tensorflow/tfjs';
import { InputError } from '../util/errors.ts';
import type { ArchitectureOptions, Features } from './features.ts';
import { buildMobileNetV2Features } from './mobilenet-v2.ts';

export type { ArchitectureOptions, Features } from './features.ts';

/**
 * The Keras mnist_transfer_cnn feature layers: conv32-conv32-maxpool-dropout(0.25)-flatten.
 * Its head is dense128-dropout(0.5)-dense(classes).
 */
function mnistCnn(inputShape: number[]): Features {
  if (inputShape.length !== 3) {
    throw new InputError(
      `architecture "mnist-cnn" needs image input [h, w, c]; this dataset has shape [${inputShape.join(', ')}]`,
    );
  }
  const input = tf.input({ shape: inputShape, name: 'image' });
  let x = tf.layers.conv2d({ filters: 32, kernelSize: 3, activation: 'relu', name: 'conv1' }).apply(input);
  x = tf.layers.conv2d({ filters: 32, kernelSize: 3, activation: 'relu', name: 'conv2' }).apply(x);
  x = tf.layers.maxPooling2d({ poolSize: 2, name: 'pool' }).apply(x);
  x = tf.layers.dropout({ rate: 0.25, name: 'dropout_features' }).apply(x);
  x = tf.layers.flatten({ name: 'features' }).apply(x) as tf.SymbolicTensor;
  return {
    model: tf.model({ inputs: input, outputs: x, name: 'mnist_cnn' }),
    defaultHead: { units: [128], dropout: 0.5 },
  };
}

/** Dense layers over the columns of a table (or a flattened image). */
function mlp(inputShape: number[], units: number[]): Features {
  const input = tf.input({ shape: inputShape, name: 'features_in' });
  let x: tf.SymbolicTensor = input;
  if (inputShape.length > 1) x = tf.layers.flatten({ name: 'flatten' }).apply(x) as tf.SymbolicTensor;
  units.forEach((u, i) => {
    x = tf.layers
      .dense({ units: u, activation: 'relu', name: `mlp_dense${i + 1}` })
      .apply(x) as tf.SymbolicTensor;
  });
  if (x === input)
    x = tf.layers.activation({ activation: 'linear', name: 'features' }).apply(x) as tf.SymbolicTensor;
  return {
    model: tf.model({ inputs: input, outputs: x, name: 'mlp' }),
    defaultHead: { units: [], dropout: 0 },
  };
}

export function buildFeatures(
  architecture: string,
  inputShape: number[],
  opts: ArchitectureOptions = {},
): Features {
  switch (architecture) {
    case 'mnist-cnn':
      return mnistCnn(inputShape);
    case 'mlp':
      return mlp(inputShape, opts.units ?? [64, 32]);
    case 'mobilenet-v2':
      return buildMobileNetV2Features(inputShape, opts);
    default:
      throw new InputError(`unknown architecture "${architecture}"`);
  }
}
