/**
 * FusedBatchNorm (inference) as one SIMD kernel, and BatchNormalization in training mode as two SIMD kernels on the wasm backend (kernels.c): the
 * forward pass (the batch's moments and the normalised output) and its gradient (dx, dgamma,
 * dbeta with the batch statistics depending on x). tfjs computes the moments with 6 kernels and
 * differentiates them and FusedBatchNorm with about 30 more (Multiply, Sum, Sub, RealDiv, Tile...),
 * most of a MobileNetV2 training step once its convolutions had our kernels.
 *
 * The result is tfjs-layers' (and Keras'): y = (x - mean) / sqrt(var + epsilon) * gamma + beta with
 * the batch's mean and biased variance, moving statistics updated as
 * moving -= (moving - batch) * (1 - momentum).
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import * as kernels from './mobilenet-simd.ts';
import { heap, hostOf, original } from './wasm-heap.ts';

type Info = tf.TensorInfo;

/** Inputs x, gamma, beta; attr epsilon; outputs y, mean, variance. */
export const BATCH_NORM_TRAIN_KERNEL = 'MlqBatchNormTrain';
/** Inputs x, dy, gamma, mean, variance; attr epsilon; outputs dx, dgamma, dbeta. */
export const BATCH_NORM_TRAIN_GRAD_KERNEL = 'MlqBatchNormTrainGrad';

const rowsOf = (x: Info): [number, number] => {
  const c = x.shape.at(-1)!;
  return [tf.util.sizeFromShape(x.shape) / c, c];
};

export const batchNormTrain: tf.KernelFunc = ({ inputs, backend, attrs = {} }) => {
  const { x, gamma, beta } = inputs as Record<'x' | 'gamma' | 'beta', Info>;
  const [n, c] = rowsOf(x);
  const be = backend as BackendWasm;
  const outs = [
    be.makeOutput(x.shape, 'float32'),
    be.makeOutput([c], 'float32'),
    be.makeOutput([c], 'float32'),
  ];
  const [xs, g, b, y, mean, variance] = heap(be, x, gamma, beta, ...outs);
  const eps = attrs['epsilon'] as number;
  kernels.batchNormTrain([xs!, g!, b!], [n, c, eps], [y!, mean!, variance!], hostOf(be));
  return outs;
};

export const batchNormTrainGrad: tf.KernelFunc = ({ inputs, backend, attrs = {} }) => {
  const { x, dy, gamma, mean, variance } = inputs as Record<'x' | 'dy' | 'gamma' | 'mean' | 'variance', Info>;
  const [n, c] = rowsOf(x);
  const be = backend as BackendWasm;
  const outs = [
    be.makeOutput(x.shape, 'float32'),
    be.makeOutput([c], 'float32'),
    be.makeOutput([c], 'float32'),
  ];
  const arrays = heap(be, x, dy, gamma, mean, variance, ...outs) as Float32Array[];
  const [xs, g, gm, m, v, dx, dgamma, dbeta] = arrays;
  const eps = attrs['epsilon'] as number;
  kernels.batchNormTrainGrad([xs!, g!, gm!, m!, v!], [n, c, eps], [dx!, dgamma!, dbeta!], hostOf(be));
  return outs;
};

/**
 * FusedBatchNorm (inference: given mean and variance) in one SIMD pass, where the backend's kernel
 * is scalar (half of a MobileNetV2 forward pass). Float32, every statistic of x's channel count
 * (channels last); anything else goes to the backend's kernel.
 */
export const fusedBatchNorm: tf.KernelFunc = (args) => {
  const { x, mean, variance, offset, scale } = args.inputs as Record<string, Info | undefined>;
  const c = x!.shape.at(-1) ?? 0;
  const fits = (t: Info | undefined) => !t || (t.dtype === 'float32' && tf.util.sizeFromShape(t.shape) === c);
  if (x!.dtype !== 'float32' || x!.shape.length < 2 || ![mean!, variance!, offset, scale].every(fits))
    return original('FusedBatchNorm')(args);
  const be = args.backend as BackendWasm;
  const out = be.makeOutput(x!.shape, 'float32');
  const [xs, m, v, y, o, s] = heap(
    be,
    x!,
    mean!,
    variance!,
    out,
    ...(offset ? [offset] : []),
    ...(scale ? [scale] : []),
  );
  const [off, sc] = offset && scale ? [o!, s!] : offset ? [o!, null] : scale ? [null, o!] : [null, null];
  const eps = (args.attrs ?? {})['varianceEpsilon'] as number;
  kernels.batchNormInfer([xs!, m!, v!, off, sc], [rowsOf(x!)[0], c, eps], y!, hostOf(be));
  return out;
};

/**
 * Normalises `x` (channels last) with its batch's statistics: y, and the batch's mean and biased
 * variance ([C]; the caller disposes them), differentiable in x, gamma and beta. Needs the wasm
 * backend with `registerWasmTrainingKernels` done (see `canTrainBatchNorm`).
 */
export function batchNormTraining(
  x: tf.Tensor,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  epsilon: number,
): { y: tf.Tensor; mean: tf.Tensor; variance: tf.Tensor } {
  let stats: tf.Tensor[] = [];
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xs, g, b, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const attrs = { epsilon };
    const [y, mean, variance] = tf
      .engine()
      .runKernel(BATCH_NORM_TRAIN_KERNEL, { x: xs, gamma: g, beta: b }, attrs) as tf.Tensor[];
    // customGrad's forward pass runs in a tidy: keep the statistics for the moving averages.
    stats = [tf.keep(mean!.clone()), tf.keep(variance!.clone())];
    save([xs, g, mean!, variance!]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sx, sg, sm, sv] = saved;
      const inputs = { x: sx!, dy, gamma: sg!, mean: sm!, variance: sv! };
      return tf.engine().runKernel(BATCH_NORM_TRAIN_GRAD_KERNEL, inputs, attrs) as tf.Tensor[];
    };
    return { value: y!, gradFunc };
  });
  const y = op(x, gamma, beta);
  return { y, mean: stats[0]!, variance: stats[1]! };
}

/** Whether `batchNormTraining` runs here: wasm backend, our kernels registered, float32. */
export function canTrainBatchNorm(x: tf.Tensor): boolean {
  return (
    tf.getBackend() === 'wasm' &&
    x.dtype === 'float32' &&
    x.rank >= 2 &&
    tf.getKernel(BATCH_NORM_TRAIN_KERNEL, 'wasm') !== undefined
  );
}
