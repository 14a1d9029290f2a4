/**
 * MobileNets' kernels in kernels.c (depthwise convolutions with channel multiplier 1, clip
 * gradients, batch normalisation in training mode), on Float32Arrays: see simd-kernels.ts for where the data lives and how calls pass it.
 */
import type { backend_util } from '@tensorflow/tfjs';
import { call, convParams, type Host } from './simd-kernels.ts';

/** dW ([kH, kW, C, 1]) of a depthwise convolution with multiplier 1, from x and dy. Writes `out`. */
export function depthwiseBackpropFilter(
  x: Float32Array,
  dy: Float32Array,
  info: backend_util.Conv2DInfo,
  out: Float32Array,
  host?: Host,
): void {
  call(host, 'depthwise_backprop_filter', convParams(info), [x, dy], [out]);
}

/** dx (x's shape) of a depthwise convolution with multiplier 1, from dy and the filter. Writes `out`. */
export function depthwiseBackpropInput(
  dy: Float32Array,
  filter: Float32Array,
  info: backend_util.Conv2DInfo,
  out: Float32Array,
  host?: Host,
): void {
  call(host, 'depthwise_backprop_input', convParams(info), [dy, filter], [out]);
}

/**
 * The gradient of a clip to [lo, hi] (Relu6: lo 0, `loOpen`; ClipByValue: closed): out = dy where
 * x is inside (lo < x if `loOpen`, else lo <= x; x <= hi), else 0, as tfjs and TensorFlow route it.
 */
export function clipGrad(
  x: Float32Array,
  dy: Float32Array,
  [lo, hi, loOpen]: [number, number, boolean],
  out: Float32Array,
  host?: Host,
): void {
  call(host, 'clip_grad', [x.length, loOpen ? 1 : 0], [x, dy], [out], { floats: [lo, hi], zero: false });
}

/**
 * Batch normalisation in training mode over x viewed as [n, c] (channels last): `mean` and the
 * biased `variance` ([c]) of the batch, y = (x - mean) / sqrt(variance + eps) * gamma + beta.
 */
export function batchNormTrain(
  [x, gamma, beta]: [Float32Array, Float32Array, Float32Array],
  [n, c, eps]: [number, number, number],
  [y, mean, variance]: [Float32Array, Float32Array, Float32Array],
  host?: Host,
): void {
  call(host, 'batch_norm_train', [n, c], [x, gamma, beta], [y, mean, variance], {
    floats: [eps],
    scratch: 2 * c,
    zero: false,
  });
}

/**
 * The gradient of `batchNormTrain` (the batch's mean and variance depending on x): dx ([n, c]),
 * dgamma and dbeta ([c]) from x, dy, gamma and the forward pass's mean and variance.
 */
export function batchNormTrainGrad(
  [x, dy, gamma, mean, variance]: [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array],
  [n, c, eps]: [number, number, number],
  [dx, dgamma, dbeta]: [Float32Array, Float32Array, Float32Array],
  host?: Host,
): void {
  call(host, 'batch_norm_train_grad', [n, c], [x, dy, gamma, mean, variance], [dx, dgamma, dbeta], {
    floats: [eps],
    scratch: 3 * c,
    zero: false,
  });
}

/**
 * Batch normalisation with given statistics (inference): y = (x - mean) / sqrt(variance + eps) *
 * scale + offset over x viewed as [n, c], per channel ([c] each); offset and scale may be null.
 */
export function batchNormInfer(
  [x, mean, variance, offset, scale]: [
    Float32Array,
    Float32Array,
    Float32Array,
    Float32Array | null,
    Float32Array | null,
  ],
  [n, c, eps]: [number, number, number],
  y: Float32Array,
  host?: Host,
): void {
  call(host, 'batch_norm_infer', [n, c], [x, mean, variance, offset, scale], [y], {
    floats: [eps],
    scratch: 2 * c,
    zero: false,
  });
}

/**
 * dx (x's shape, NHWC) of a 2-D convolution with few input channels (filter [kH, kW, Ci, Co]),
 * any stride, dilation and padding, from dy and the filter. Writes `out`.
 */
export function conv2dBackpropInputThin(
  dy: Float32Array,
  filter: Float32Array,
  info: backend_util.Conv2DInfo,
  out: Float32Array,
  host?: Host,
): void {
  call(host, 'conv2d_backprop_input_thin', convParams(info), [dy, filter], [out]);
}
