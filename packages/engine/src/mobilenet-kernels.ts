/**
 * MobileNets' kernels on the tfjs wasm backend, on our SIMD code (kernels.c): the gradients of
 * depthwise convolutions with channel multiplier 1 (filter and input; the forward pass stays on
 * XNNPACK, which was faster than our kernel in a microbench), the input gradient
 * of 1x1 convolutions as one product, and the gradients of Relu6 and
 * ClipByValue (tfjs-layers' ReLU with maxValue) in one pass. A MobileNetV2 training step
 * spent most of its time in these as tfjs composes them (XNNPACK convolutions after pads, reshapes
 * and transposes; GreaterEqual, LessEqual, LogicalAnd and Select for a clip).
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import * as dw from './mobilenet-simd.ts';
import * as simd from './simd-kernels.ts';
import { geometry, heap, hostOf, shape4 } from './wasm-heap.ts';

type Info = tf.TensorInfo;
type Args = Parameters<tf.KernelFunc>[0];

/** Whether our depthwise gradient kernels take a call: float32 NHWC, channel multiplier 1. */
export function ownDepthwise(filterShape: number[], attrs: tf.NamedAttrMap, dtype = 'float32'): boolean {
  return attrs['dataFormat'] !== 'NCHW' && dtype === 'float32' && shape4(filterShape)[3] === 1;
}

/** The depthwise filter gradient, multiplier 1 (the caller checks `ownDepthwise`). */
export const depthwiseBackpropFilter: tf.KernelFunc = ({ inputs, backend, attrs = {} }) => {
  const { x, dy } = inputs as { x: Info; dy: Info };
  const { filterShape } = attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs;
  const info = geometry(x.shape, filterShape, attrs, true, 'DepthwiseConv2dNativeBackpropFilter');
  const be = backend as BackendWasm;
  const out = be.makeOutput(filterShape, 'float32');
  const [xs, g, w] = heap(be, x, dy, out);
  dw.depthwiseBackpropFilter(xs!, g!, info, w!, hostOf(be));
  return out;
};

/** The depthwise input gradient, multiplier 1 (the caller checks `ownDepthwise`). */
export const depthwiseBackpropInput: tf.KernelFunc = ({ inputs, backend, attrs = {} }) => {
  const { dy, filter } = inputs as { dy: Info; filter: Info };
  const { inputShape } = attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs;
  const info = geometry(inputShape, filter.shape, attrs, true, 'DepthwiseConv2dNativeBackpropInput');
  const be = backend as BackendWasm;
  const out = be.makeOutput(inputShape, 'float32');
  const [g, w, dx] = heap(be, dy, filter, out);
  dw.depthwiseBackpropInput(g!, w!, info, dx!, hostOf(be));
  return out;
};

/**
 * Conv2DBackpropInput of a 1x1, stride-1, unpadded convolution (MobileNets' pointwise layers):
 * dx[B*H*W, Ci] = dy[B*H*W, Co] x filter[Ci, Co]^T, one product. Null for any other geometry.
 */
export function pointwiseBackpropInput({ inputs, backend, attrs = {} }: Args): Info | null {
  const { dy, filter } = inputs as { dy: Info; filter: Info };
  const { inputShape } = attrs as unknown as tf.Conv2DBackpropInputAttrs;
  const [kh, kw, ci, co] = shape4(filter.shape);
  if (kh !== 1 || kw !== 1 || dy.dtype !== 'float32') return null;
  const info = geometry(inputShape, filter.shape, attrs, false, 'Conv2DBackpropInput');
  const unpadded = info.padInfo.top === 0 && info.padInfo.left === 0;
  if (info.strideHeight !== 1 || info.strideWidth !== 1 || !unpadded) return null;
  const be = backend as BackendWasm;
  const out = be.makeOutput(inputShape, 'float32');
  const [g, w, dx] = heap(be, dy, filter, out);
  simd.matmul(g!, w!, [tf.util.sizeFromShape(inputShape) / ci, ci, co], false, true, dx!, hostOf(be));
  return out;
}

/**
 * Conv2DBackpropInput of a convolution with fewer than 8 input channels (an image's first conv,
 * whose input gradient tfjs computes although nothing uses it): Co-long dot products per tap, where
 * the transposed convolution's few output channels fall to scalar code. Null for other calls.
 */
export function thinBackpropInput({ inputs, backend, attrs = {} }: Args): Info | null {
  const { dy, filter } = inputs as { dy: Info; filter: Info };
  const { inputShape } = attrs as unknown as tf.Conv2DBackpropInputAttrs;
  if (shape4(filter.shape)[2] >= 8 || dy.dtype !== 'float32') return null;
  const info = geometry(inputShape, filter.shape, attrs, false, 'Conv2DBackpropInput');
  const be = backend as BackendWasm;
  const out = be.makeOutput(inputShape, 'float32');
  const [g, w, dx] = heap(be, dy, filter, out);
  dw.conv2dBackpropInputThin(g!, w!, info, dx!, hostOf(be));
  return out;
}

/** Our kernel for the gradient of a clip (Relu6, ClipByValue): inputs `x`, `dy`; attrs lo, hi, loOpen. */
export const CLIP_GRAD_KERNEL = 'MlqClipGrad';

export const clipGrad: tf.KernelFunc = ({ inputs, backend, attrs = {} }) => {
  const { x, dy } = inputs as { x: Info; dy: Info };
  const { lo, hi, loOpen } = attrs as unknown as { lo: number; hi: number; loOpen: boolean };
  const be = backend as BackendWasm;
  const out = be.makeOutput(x.shape, 'float32');
  const [xs, g, dx] = heap(be, x, dy, out);
  dw.clipGrad(xs!, g!, [lo, hi, loOpen], dx!, hostOf(be));
  return out;
};

const installed = new Set<string>();

/**
 * Routes the gradient of `kernelName` (Relu6 or ClipByValue) to our kernel on wasm for float32;
 * other backends and dtypes keep tfjs' gradient (gradients are registered per kernel for every
 * backend, so this wraps tfjs' config). Idempotent.
 */
function installClipGradient(kernelName: 'Relu6' | 'ClipByValue'): void {
  const tfjs = tf.getGradient(kernelName);
  if (installed.has(kernelName) || !tfjs) return;
  installed.add(kernelName);
  tf.registerGradient({
    ...tfjs,
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved as [tf.Tensor];
      const g = dy as tf.Tensor;
      if (tf.getBackend() !== 'wasm' || x.dtype !== 'float32' || g.dtype !== 'float32')
        return tfjs.gradFunc(dy, saved, attrs);
      const clip = attrs as unknown as tf.ClipByValueAttrs;
      const range =
        kernelName === 'Relu6'
          ? { lo: 0, hi: 6, loOpen: true }
          : { lo: clip.clipValueMin, hi: clip.clipValueMax, loOpen: false };
      return { x: () => tf.engine().runKernel(CLIP_GRAD_KERNEL, { x, dy: g }, range) as tf.Tensor };
    },
  });
}

/** Relu6's and ClipByValue's gradients on our kernel on wasm (see installClipGradient). Idempotent. */
export function installClipGradients(): void {
  installClipGradient('Relu6');
  installClipGradient('ClipByValue');
}
