/**
 * MobileNetV2 (Sandler et al. 2018) in tfjs layers: inverted residual blocks with linear bottlenecks,
 * width multiplier `alpha`, any square input size. The feature extractor ends in global average pooling.
 */
import * as tf from '@tensorflow/tfjs';
import { InputError } from '../util/errors.ts';
import type { ArchitectureOptions, FeatureGraph, Wiring } from './features.ts';

function makeDivisible(v: number, divisor = 8): number {
  const n = Math.max(divisor, Math.floor((v + divisor / 2) / divisor) * divisor);
  return n < 0.9 * v ? n + divisor : n;
}

function convBn<T>(
  w: Wiring<T>,
  x: T,
  filters: number,
  kernel: number,
  stride: number,
  name: string,
  relu = true,
): T {
  const conv = tf.layers.conv2d({
    filters,
    kernelSize: kernel,
    strides: stride,
    padding: 'same',
    useBias: false,
    name: `${name}_conv`,
  });
  let y = w.apply(conv, x);
  y = w.apply(tf.layers.batchNormalization({ momentum: 0.999, epsilon: 1e-3, name: `${name}_bn` }), y);
  return relu ? w.apply(tf.layers.reLU({ maxValue: 6, name: `${name}_relu` }), y) : y;
}

function invertedResidual<T>(
  w: Wiring<T>,
  x: T,
  inC: number,
  outC: number,
  stride: number,
  expansion: number,
  name: string,
): T {
  let y = x;
  if (expansion !== 1) y = convBn(w, y, inC * expansion, 1, 1, `${name}_expand`);
  const dw = tf.layers.depthwiseConv2d({
    kernelSize: 3,
    strides: stride,
    padding: 'same',
    useBias: false,
    name: `${name}_dw`,
  });
  y = w.apply(dw, y);
  y = w.apply(tf.layers.batchNormalization({ momentum: 0.999, epsilon: 1e-3, name: `${name}_dw_bn` }), y);
  y = w.apply(tf.layers.reLU({ maxValue: 6, name: `${name}_dw_relu` }), y);
  y = convBn(w, y, outC, 1, 1, `${name}_project`, false);
  return stride === 1 && inC === outC ? w.apply(tf.layers.add({ name: `${name}_add` }), [x, y]) : y;
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

/** MobileNetV2's feature extractor for `inputShape` ([h, w, c]), wired by `w` (see features.ts). */
export function wireMobileNetV2Features<T>(
  w: Wiring<T>,
  inputShape: number[],
  opts: ArchitectureOptions,
): FeatureGraph<T> {
  const alpha = opts.alpha ?? 1;
  if (inputShape.length !== 3) {
    throw new InputError(
      `architecture "mobilenet-v2" needs image input [h, w, c]; got [${inputShape.join(', ')}]`,
    );
  }
  const input = w.input(inputShape, 'image');
  let c = makeDivisible(32 * alpha);
  let x = convBn(w, input, c, 3, 2, 'stem');
  let block = 0;
  for (const [t, ch, n, s] of BLOCKS) {
    const out = makeDivisible(ch * alpha);
    for (let i = 0; i < n; i++) {
      x = invertedResidual(w, x, c, out, i === 0 ? s : 1, t, `block${block++}`);
      c = out;
    }
  }
  x = convBn(w, x, alpha > 1 ? makeDivisible(1280 * alpha) : 1280, 1, 1, 'top');
  x = w.apply(tf.layers.globalAveragePooling2d({ name: 'features' }), x);
  return { input, output: x, name: `mobilenet_v2_${alpha}`, defaultHead: { units: [], dropout: 0.2 } };
}
