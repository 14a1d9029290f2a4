/**
 * MobileNetV2 (Sandler et al. 2018) in tfjs layers: inverted residual blocks with linear bottlenecks,
 * width multiplier `alpha`, any square input size. The feature extractor ends in global average pooling.
 */
import * as tf from '@tensorflow/tfjs';
import { InputError } from '../util/errors.ts';
import type { ArchitectureOptions, Features } from './features.ts';

function makeDivisible(v: number, divisor = 8): number {
  const n = Math.max(divisor, Math.floor((v + divisor / 2) / divisor) * divisor);
  return n < 0.9 * v ? n + divisor : n;
}

type T = tf.SymbolicTensor;

function convBn(x: T, filters: number, kernel: number, stride: number, name: string, relu = true): T {
  let y = tf.layers
    .conv2d({
      filters,
      kernelSize: kernel,
      strides: stride,
      padding: 'same',
      useBias: false,
      name: `${name}_conv`,
    })
    .apply(x) as T;
  y = tf.layers.batchNormalization({ momentum: 0.999, epsilon: 1e-3, name: `${name}_bn` }).apply(y) as T;
  return relu ? (tf.layers.reLU({ maxValue: 6, name: `${name}_relu` }).apply(y) as T) : y;
}

function invertedResidual(
  x: T,
  inC: number,
  outC: number,
  stride: number,
  expansion: number,
  name: string,
): T {
  let y = x;
  if (expansion !== 1) y = convBn(y, inC * expansion, 1, 1, `${name}_expand`);
  y = tf.layers
    .depthwiseConv2d({ kernelSize: 3, strides: stride, padding: 'same', useBias: false, name: `${name}_dw` })
    .apply(y) as T;
  y = tf.layers.batchNormalization({ momentum: 0.999, epsilon: 1e-3, name: `${name}_dw_bn` }).apply(y) as T;
  y = tf.layers.reLU({ maxValue: 6, name: `${name}_dw_relu` }).apply(y) as T;
  y = convBn(y, outC, 1, 1, `${name}_project`, false);
  return stride === 1 && inC === outC ? (tf.layers.add({ name: `${name}_add` }).apply([x, y]) as T) : y;
}

/** [expansion t, channels c, repeats n, first stride s], as in the paper's Table 2. */
const BLOCKS: [number, number, number, number][] = [
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
];

export function buildMobileNetV2Features(inputShape: number[], opts: ArchitectureOptions): Features {
  const alpha = opts.alpha ?? 1;
  if (inputShape.length !== 3) {
    throw new InputError(
      `architecture "mobilenet-v2" needs image input [h, w, c]; got [${inputShape.join(', ')}]`,
    );
  }
  const input = tf.input({ shape: inputShape, name: 'image' });
  let c = makeDivisible(32 * alpha);
  let x = convBn(input, c, 3, 2, 'stem');
  let block = 0;
  for (const [t, ch, n, s] of BLOCKS) {
    const out = makeDivisible(ch * alpha);
    for (let i = 0; i < n; i++) {
      x = invertedResidual(x, c, out, i === 0 ? s : 1, t, `block${block++}`);
      c = out;
    }
  }
  x = convBn(x, alpha > 1 ? makeDivisible(1280 * alpha) : 1280, 1, 1, 'top');
  x = tf.layers.globalAveragePooling2d({ name: 'features' }).apply(x) as T;
  return {
    model: tf.model({ inputs: input, outputs: x, name: `mobilenet_v2_${alpha}` }),
    defaultHead: { units: [], dropout: 0.2 },
  };
}
