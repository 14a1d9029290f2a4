/**
 * Training kernels for the tfjs wasm backend.
 *
 * `@tensorflow/tfjs-backend-wasm@4.22` has no `Conv2DBackpropFilter`,
 * `DepthwiseConv2dNativeBackpropFilter` or `DepthwiseConv2dNativeBackpropInput`, so no conv net
 * trains on it; and several kernels that training leans on are scalar C++ loops or wrong. Most
 * kernels here compose the backend's own kernels (XNNPACK convolutions and pooling, transposes,
 * pads, slices), called directly through `kernelFunc` so that nothing is read back into JS and no
 * engine bookkeeping is paid; every intermediate is released with `backend.disposeData`.
 *
 * The filter gradient is our own SIMD kernel (simd-kernels.ts). Identities used by the others
 * (NHWC; stride s, dilation d; pads from `computeConv2DInfo`):
 * - input gradient: a stride-1 convolution of dy, zero rows/cols inserted when s > 1, with the
 *   spatially flipped filter (in/out channels swapped).
 * - depthwise filter gradient: per channel, a convolution whose input is x and whose filter is
 *   dy (stride and dilation swap roles), with the batch folded
 *   into the image height (images stacked vertically), so one depthwise convolution sums over
 *   batch and space at once.
 */
import * as tf from '@tensorflow/tfjs';
// Also for its side effect: the backend's kernels must be registered before we wrap some of them.
import '@tensorflow/tfjs-backend-wasm';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { ADADELTA_KERNEL } from './adadelta.ts';
import { DROPOUT_KERNEL } from './dropout.ts';
import * as bn from './batch-norm-train.ts';
import * as mobile from './mobilenet-kernels.ts';
import * as simd from './simd-kernels.ts';
import { geometry, heap, hostOf, original, originals, shape4, type ConvInfo } from './wasm-heap.ts';

type Info = tf.TensorInfo;
type Pairs = [number, number][];

/** NHWC paddings, as PadV2 and an explicit conv `pad` both take them. */
const nhwc = (top: number, bottom: number, left: number, right: number): Pairs => [
  [0, 0],
  [top, bottom],
  [left, right],
  [0, 0],
];

const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * Runs wasm kernels and remembers every output, so that a composite kernel releases all of its
 * intermediates (also when a step throws) and hands back only its result.
 */
class Scope {
  private readonly temps: Info[] = [];
  readonly backend: BackendWasm;
  constructor(backend: BackendWasm) {
    this.backend = backend;
  }

  run(kernelName: string, inputs: tf.NamedTensorInfoMap, attrs: object = {}): Info {
    const config = tf.getKernel(kernelName, 'wasm');
    if (config === undefined) throw new Error(`wasm kernel ${kernelName} is not registered`);
    const out = config.kernelFunc({ inputs, backend: this.backend, attrs: attrs as tf.NamedAttrMap });
    if (Array.isArray(out)) throw new Error(`wasm kernel ${kernelName} returned several outputs`);
    this.temps.push(out);
    return out;
  }

  /** Takes `x` (made outside `run`, e.g. by an original kernel) into the scope's care. */
  adopt(x: Info): Info {
    this.temps.push(x);
    return x;
  }

  /** The wasm Reshape shares the buffer and bumps its refCount, so views dispose safely. */
  reshape = (x: Info, shape: number[]) =>
    sameShape(x.shape, shape) ? x : this.run('Reshape', { x }, { shape });

  crop = (x: Info, begin: number[], size: number[]) =>
    begin.every((b) => b === 0) && sameShape(x.shape, size) ? x : this.run('Slice', { x }, { begin, size });

  pad = (x: Info, paddings: Pairs) =>
    paddings.every(([a, b]) => a === 0 && b === 0)
      ? x
      : this.run('PadV2', { x }, { paddings, constantValue: 0 });

  transpose = (x: Info, perm: number[]) => this.run('Transpose', { x }, { perm });

  /** Release everything but `result`. */
  finish(result: Info): Info {
    const i = this.temps.indexOf(result);
    if (i < 0) throw new Error('wasm training kernel: result was not produced by the kernel');
    this.temps.splice(i, 1);
    return result;
  }

  dispose(): void {
    for (const t of this.temps.splice(0)) this.backend.disposeData(t.dataId);
  }
}

function scoped(backend: unknown, body: (s: Scope) => Info): Info {
  const s = new Scope(backend as BackendWasm);
  try {
    return s.finish(body(s));
  } finally {
    s.dispose();
  }
}

/**
 * dx as a stride-1 convolution of dy, with s-1 zero rows/cols inserted after each of its
 * rows/cols (reshape + pad), and an already flipped filter. A negative lead pad becomes a crop.
 */
function transposedConv(s: Scope, dy: Info, filter: Info, info: ConvInfo, kernelName: string): Info {
  const [b, h, w, c] = shape4(dy.shape);
  const { strideHeight: sh, strideWidth: sw } = info;
  const split = s.reshape(dy, [b, h, 1, w, 1, c]);
  const spread = s.pad(
    split,
    [0, 0, sh - 1, 0, sw - 1, 0].map((p): [number, number] => [0, p]),
  );
  const dyd = s.reshape(spread, [b, h * sh, w * sw, c]);
  const edge = (eff: number, before: number, len: number, out: number) => {
    // dx[j] reads dyd[j - (eff - 1 - before) + k * d].
    const lead = eff - 1 - before;
    const [pad, crop] = [Math.max(0, lead), Math.max(0, -lead)];
    return { pad, crop, after: Math.max(0, crop + out + eff - 1 - len - pad) };
  };
  const v = edge(info.effectiveFilterHeight, info.padInfo.top, h * sh, info.inHeight);
  const u = edge(info.effectiveFilterWidth, info.padInfo.left, w * sw, info.inWidth);
  const dilations = [info.dilationHeight, info.dilationWidth];
  const pad = nhwc(v.pad, v.after, u.pad, u.after);
  const out = s.run(kernelName, { x: dyd, filter }, { strides: 1, dilations, pad, dataFormat: 'NHWC' });
  const size = [info.batchSize, info.inHeight, info.inWidth, shape4(out.shape)[3]];
  return s.crop(out, [0, v.crop, u.crop, 0], size);
}

/** Rows/cols of the padded input that the last filter tap reads up to. */
function reach(info: ConvInfo): [number, number] {
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  return [
    (info.outHeight - 1) * sh + (info.filterHeight - 1) * dh + 1,
    (info.outWidth - 1) * sw + (info.filterWidth - 1) * dw + 1,
  ];
}

/** Our SIMD kernel (simd-kernels.ts): no XNNPACK operator fits a long reduction with a tiny output. */
const conv2DBackpropFilter: tf.KernelFunc = ({ inputs, backend, attrs = {} }) => {
  const { x, dy } = inputs as { x: Info; dy: Info };
  const { filterShape } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const info = geometry(x.shape, filterShape, attrs, false, 'Conv2DBackpropFilter');
  const be = backend as BackendWasm;
  const out = be.makeOutput(filterShape, 'float32');
  const [xs, g, dw] = heap(be, x, dy, out);
  simd.conv2dBackpropFilter(xs!, g!, info, dw!, hostOf(be));
  return out;
};

/**
 * Conv2D on our SIMD kernel where it beats XNNPACK's (54 against 63 ms for the MNIST CNN's
 * second conv, which its input gradient also runs through, before that conv went to Winograd's
 * F(2x2, 3x3): see simd-kernels.ts `winogradApplies`): float32 NHWC with at least 4 input
 * channels; thinner inputs (an image's first conv) stay on XNNPACK.
 */
const conv2D: tf.KernelFunc = (args) => {
  const { x, filter } = args.inputs as { x: Info; filter: Info };
  if (!ownConv(args, x, filter)) return original('Conv2D')(args);
  return runConv(args.backend as BackendWasm, x, filter, args.attrs ?? {});
};

/** Whether our conv kernel takes this call: float32 NHWC with at least 4 input channels. */
function ownConv(args: Parameters<tf.KernelFunc>[0], x: Info, filter: Info): boolean {
  return args.attrs?.['dataFormat'] !== 'NCHW' && x.dtype === 'float32' && shape4(filter.shape)[2] >= 4;
}

function runConv(
  be: BackendWasm,
  x: Info,
  filter: Info,
  attrs: tf.NamedAttrMap,
  bias?: Info,
  relu = false,
): Info {
  const info = geometry(x.shape, filter.shape, attrs, false, 'Conv2D');
  const out = be.makeOutput(info.outShape, 'float32');
  const [xs, w, y, b] = heap(be, x, filter, out, ...(bias ? [bias] : []));
  simd.conv2d(xs!, w!, info, y!, hostOf(be), { bias: b ?? null, relu });
  return out;
}

/**
 * FusedConv2D (inference: a frozen base's embeddings, evaluate, serving) on the same kernel when
 * its epilogue is a per-channel bias and/or relu; other activations stay on XNNPACK.
 */
const fusedConv2D: tf.KernelFunc = (args) => {
  const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, Info | undefined>;
  const { activation } = (args.attrs ?? {}) as unknown as tf.FusedConv2DAttrs;
  const outC = shape4(filter!.shape)[3];
  const perChannel = !bias || (bias.dtype === 'float32' && tf.util.sizeFromShape(bias.shape) === outC);
  const simple = activation === 'linear' || activation === 'relu';
  if (!ownConv(args, x!, filter!) || !perChannel || !simple || preluActivationWeights)
    return original('FusedConv2D')(args);
  return runConv(args.backend as BackendWasm, x!, filter!, args.attrs ?? {}, bias, activation === 'relu');
};

const conv2DBackpropInput: tf.KernelFunc = (args) => {
  const own = mobile.pointwiseBackpropInput(args) ?? mobile.thinBackpropInput(args);
  if (own) return own;
  const { inputs, backend, attrs = {} } = args;
  const { dy, filter } = inputs as { dy: Info; filter: Info };
  const { inputShape } = attrs as unknown as tf.Conv2DBackpropInputAttrs;
  const info = geometry(inputShape, filter.shape, attrs, false, 'Conv2DBackpropInput');
  return scoped(backend, (s) => {
    const flipped = s.run('Reverse', { x: filter }, { dims: [0, 1] });
    return transposedConv(s, dy, s.transpose(flipped, [0, 1, 3, 2]), info, 'Conv2D');
  });
};

const depthwiseBackpropInput: tf.KernelFunc = (args) => {
  const { inputs, backend, attrs = {} } = args;
  const { dy, filter } = inputs as { dy: Info; filter: Info };
  if (mobile.ownDepthwise(filter.shape, attrs, dy.dtype)) return mobile.depthwiseBackpropInput(args);
  const { inputShape } = attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs;
  const info = geometry(inputShape, filter.shape, attrs, true, 'DepthwiseConv2dNativeBackpropInput');
  const [kh, kw, c, m] = shape4(filter.shape);
  return scoped(backend, (s) => {
    // Each of the c*m dy channels meets its own flipped tap; the m results of a channel then add.
    const flipped = s.reshape(s.run('Reverse', { x: filter }, { dims: [0, 1] }), [kh, kw, c * m, 1]);
    const dx = transposedConv(s, dy, flipped, info, 'DepthwiseConv2dNative');
    if (m === 1) return dx;
    const split = s.reshape(dx, [info.batchSize, info.inHeight, info.inWidth, c, m]);
    return s.run('Sum', { x: split }, { axis: [4], keepDims: false });
  });
};

const depthwiseBackpropFilter: tf.KernelFunc = (args) => {
  const { inputs, backend, attrs = {} } = args;
  const { x, dy } = inputs as { x: Info; dy: Info };
  const { filterShape } = attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs;
  if (mobile.ownDepthwise(filterShape, attrs, x.dtype)) return mobile.depthwiseBackpropFilter(args);
  const info = geometry(x.shape, filterShape, attrs, true, 'DepthwiseConv2dNativeBackpropFilter');
  const [kh, kw, c, m] = filterShape;
  const { batchSize: b, inHeight, inWidth, outHeight: oh, outWidth: ow } = info;
  const { strideHeight: sh, strideWidth: sw } = info;
  const { top, left } = info.padInfo;
  const [needH, needW] = reach(info);
  // Padded image height: holds every tap of its own image and is a multiple of the stride, so
  // consecutive images' dy rows sit exactly `rows` dilated taps apart.
  const hp = Math.ceil(Math.max(needH, inHeight + top) / sh) * sh;
  const wp = Math.max(needW, inWidth + left);
  const rows = hp / sh;
  return scoped(backend, (s) => {
    // Images stacked vertically, [1, B*hp, wp, C]: a free reshape, NHWC being contiguous.
    const xp = s.pad(x, nhwc(top, hp - inHeight - top, left, wp - inWidth - left));
    const stacked = s.reshape(xp, [1, b * hp, wp, c]);
    // The filter: dy stacked the same way, each image padded to `rows` rows.
    const filter = s.reshape(s.pad(dy, nhwc(0, rows - oh, 0, 0)), [b * rows, ow, c, m]);
    // The filter's trailing zero rows reach past the last image; padding the input's bottom as
    // much keeps the output at (at least) kH rows without slicing dy.
    const strides = [info.dilationHeight, info.dilationWidth];
    const pad = nhwc(0, (rows - oh) * sh, 0, 0);
    const g = s.run('DepthwiseConv2dNative', { x: stacked, filter }, { strides, dilations: [sh, sw], pad });
    return s.reshape(s.crop(g, [0, 0, 0, 0], [1, kh, kw, c * m]), [kh, kw, c, m]);
  });
};

/**
 * Un-batched float32 products (every Dense layer, forward and backward) on our SIMD kernel: the
 * backend uses XNNPACK only without transposes (packing the right operand on every call) and a
 * scalar triple loop otherwise, and a Dense layer's backward pass transposes an operand.
 */
const batchMatMul: tf.KernelFunc = (args) => {
  const { a, b } = args.inputs as { a: Info; b: Info };
  const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
  const unbatched = (t: Info) => t.dtype === 'float32' && t.shape.slice(0, -2).every((d) => d === 1);
  if (!unbatched(a) || !unbatched(b)) return original('BatchMatMul')(args);
  const [ar, ac] = a.shape.slice(-2) as [number, number];
  const [br, bc] = b.shape.slice(-2) as [number, number];
  const [m, k] = transposeA ? [ac, ar] : [ar, ac];
  const n = transposeB ? br : bc;
  const be = args.backend as BackendWasm;
  const out = be.makeOutput([...a.shape.slice(0, -2), m, n], 'float32');
  const [x, y, z] = heap(be, a, b, out);
  simd.matmul(x!, y!, [m, n, k], transposeA, transposeB, z!, hostOf(be));
  return out;
};

/**
 * _FusedMatMul (every Dense layer's forward pass) with a relu or relu6 activation: the product and
 * bias on the backend's kernel, then the activation as Maximum(x, 0) (and Minimum(·, 6) for relu6),
 * which keep NaN as TensorFlow's kernels do. The backend's fused activation, its Relu and its Relu6
 * turn the NaN an overflow makes (inf - inf: sign bit set) into 0, so a NaN inside a model (extreme
 * inputs, or weights gone NaN) came out as finite, wrong scores that the serving NaN guard could not
 * see, where the cpu backend reported NaN. Maximum(0, x), with the operands swapped, zeroes it too:
 * the order matters (wasm-kernels.test.ts pins it). One more pass over the layer's outputs, small
 * next to its weights. Other activations as they were.
 */
const fusedMatMul: tf.KernelFunc = (args) => {
  const attrs = (args.attrs ?? {}) as unknown as tf._FusedMatMulAttrs;
  const fused = original(tf._FusedMatMul);
  if (attrs.activation !== 'relu' && attrs.activation !== 'relu6') return fused(args);
  return scoped(args.backend, (s) => {
    const scalar = (value: number) => s.run('Fill', {}, { shape: [], value, dtype: 'float32' });
    const linear = s.adopt(fused({ ...args, attrs: { ...args.attrs, activation: 'linear' } }) as Info);
    const relu = s.run('Maximum', { a: linear, b: scalar(0) });
    return attrs.activation === 'relu' ? relu : s.run('Minimum', { a: relu, b: scalar(6) });
  });
};

/**
 * MaxPoolGrad as our SIMD kernel (simd-kernels.ts). The backend's kernel starts its running max
 * at FLT_MIN (the smallest positive float), not -inf, so windows whose maximum is <= 0 lose their
 * gradient, and it gives ties to the last element; tfjs-cpu and TF use the first maximum.
 */
const maxPoolGrad: tf.KernelFunc = ({ inputs, backend, attrs = {} }) => {
  const { dy, input } = inputs as { dy: Info; input: Info };
  const { filterSize: size, strides, pad, dimRoundingMode: round } = attrs as unknown as tf.MaxPoolGradAttrs;
  const info = tf.backend_util.computePool2DInfo(shape4(input.shape), size, strides, 1, pad, round);
  const be = backend as BackendWasm;
  const out = be.makeOutput(input.shape, 'float32');
  const [x, g, dx] = heap(be, input, dy, out);
  simd.maxPoolGrad(x!, g!, info, dx!, hostOf(be));
  return out;
};

/**
 * Sum/Mean over leading axes (bias gradients, batch-norm moments) as one XNNPACK average pool of
 * the tensor viewed as a [1, n, 1, c] image. The backend's reductions first move the reduced
 * axes innermost with a scalar transpose, 10-20x slower for these shapes.
 */
function leadingReduction(kernelName: 'Sum' | 'Mean'): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: Info };
    const { axis, keepDims } = args.attrs as unknown as tf.SumAttrs;
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((p, q) => p - q);
    const k = axes.length;
    const [n, c] = [tf.util.sizeFromShape(x.shape.slice(0, k)), tf.util.sizeFromShape(x.shape.slice(k))];
    const leading = k > 0 && k < x.shape.length && axes.every((a, i) => a === i);
    if (!leading || x.dtype !== 'float32' || n < 64 || n * c < 1 << 16) return original(kernelName)(args);
    return scoped(args.backend, (s) => {
      const image = s.reshape(x, [1, n, 1, c]);
      let r = s.run('AvgPool', { x: image }, { filterSize: [n, 1], strides: 1, pad: 'valid' });
      if (kernelName === 'Sum')
        r = s.run('Multiply', { a: r, b: s.run('Fill', {}, { shape: [], value: n }) });
      return s.reshape(r, keepDims ? [...axes.map(() => 1), ...x.shape.slice(k)] : x.shape.slice(k));
    });
  };
}

/**
 * Tile by block copies (`set` + doubling `copyWithin`, i.e. memcpy) instead of the backend's
 * per-element index arithmetic (~30x slower); batch-norm gradients tile [1,1,1,C] to full size.
 */
const tile: tf.KernelFunc = (args) => {
  const { x } = args.inputs as { x: Info };
  const { reps } = args.attrs as unknown as tf.TileAttrs;
  if (x.dtype === 'string' || x.shape.length === 0) return original('Tile')(args);
  const be = args.backend as BackendWasm;
  const shape = x.shape;
  const outShape = shape.map((d, i) => d * (reps[i] ?? 1));
  const out = be.makeOutput(outShape, x.dtype);
  if (tf.util.sizeFromShape(outShape) === 0) return out;
  const [src, dst] = [be.typedArrayFromHeap(x), be.typedArrayFromHeap(out)];
  const [srcStrides, dstStrides] = [tf.util.computeStrides(shape), tf.util.computeStrides(outShape)];
  const last = shape.length - 1;
  // Write x's block at `dim` (tiled in all inner dims), then repeat it reps[dim] times.
  const fill = (dim: number, from: number, to: number) => {
    const n = shape[dim]!;
    const block = dim === last ? 1 : dstStrides[dim]!;
    if (dim === last) dst.set(src.subarray(from, from + n), to);
    else for (let i = 0; i < n; i++) fill(dim + 1, from + i * srcStrides[dim]!, to + i * block);
    const [len, total] = [n * block, n * block * (reps[dim] ?? 1)];
    for (let done = len; done < total; done += Math.min(done, total - done)) {
      dst.copyWithin(to + done, to, to + Math.min(done, total - done));
    }
  };
  fill(0, 0, 0);
  return out;
};

/**
 * One Adadelta step for one variable as one SIMD pass, where the op-by-op form runs 14 kernels
 * and allocates 12 temporaries per variable (7.5 ms a step for the MNIST CNN's 600k weights). The
 * outputs are new buffers, never the inputs: the backend caches XNNPACK operators (with packed
 * weights) by a filter's dataId, so a variable must not change in place.
 */
const adadelta: tf.KernelFunc = ({ inputs, backend, attrs = {} }) => {
  const { v, g, accGrad, accDelta } = inputs as Record<'v' | 'g' | 'accGrad' | 'accDelta', Info>;
  const be = backend as BackendWasm;
  const outs = [0, 1, 2].map(() => be.makeOutput(v.shape, 'float32'));
  const [w, grad, ag, ad, w2, ag2, ad2] = heap(be, v, g, accGrad, accDelta, ...outs);
  const hyper = attrs as unknown as { lr: number; rho: number; eps: number };
  simd.adadelta([w!, grad!, ag!, ad!], hyper, [w2!, ag2!, ad2!], hostOf(be));
  return outs;
};

/**
 * Identity, and Cast to the same dtype, share the input's buffer (a reference count, as tfjs-cpu
 * does) where the backend copies it: tfjs-core's relu gradient casts float32 to float32, and
 * clones happen per layer per step (12 ms a step of copies for the MNIST CNN). Safe because no
 * kernel writes into an input.
 */
const share: tf.KernelFunc = ({ inputs, backend }) => {
  const { x } = inputs as { x: Info };
  (backend as BackendWasm).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
};

const cast: tf.KernelFunc = (args) => {
  const { x } = args.inputs as { x: Info };
  return (args.attrs as unknown as tf.CastAttrs).dtype === x.dtype ? share(args) : original('Cast')(args);
};

/**
 * Inverted dropout with its mask, in one SIMD pass: tfjs' dropout draws its uniforms in a JS
 * loop (~10 ms for 128 x 4608 values) and then runs four kernels.
 */
const dropout: tf.KernelFunc = ({ inputs, backend, attrs = {} }) => {
  const { x } = inputs as { x: Info };
  const { rate, seed } = attrs as unknown as { rate: number; seed: number };
  const be = backend as BackendWasm;
  const outs = [be.makeOutput(x.shape, 'float32'), be.makeOutput(x.shape, 'float32')];
  const [xs, y, mask] = heap(be, x, ...outs);
  simd.dropout(xs!, 1 - rate, seed, [y!, mask!], hostOf(be));
  return outs;
};

const KERNELS: Record<string, tf.KernelFunc> = {
  // Missing from the backend.
  Conv2DBackpropFilter: conv2DBackpropFilter,
  DepthwiseConv2dNativeBackpropFilter: depthwiseBackpropFilter,
  DepthwiseConv2dNativeBackpropInput: depthwiseBackpropInput,
  // Present, but slower than ours here (scalar loops, per-call filter packing, copies) or wrong.
  Conv2DBackpropInput: conv2DBackpropInput,
  Conv2D: conv2D,
  FusedConv2D: fusedConv2D,
  BatchMatMul: batchMatMul,
  [tf._FusedMatMul]: fusedMatMul,
  FusedBatchNorm: bn.fusedBatchNorm,
  MaxPoolGrad: maxPoolGrad,
  Tile: tile,
  Sum: leadingReduction('Sum'),
  Mean: leadingReduction('Mean'),
  Identity: share,
  Cast: cast,
  // Ours.
  [ADADELTA_KERNEL]: adadelta,
  [DROPOUT_KERNEL]: dropout,
  [mobile.CLIP_GRAD_KERNEL]: mobile.clipGrad,
  [bn.BATCH_NORM_TRAIN_KERNEL]: bn.batchNormTrain,
  [bn.BATCH_NORM_TRAIN_GRAD_KERNEL]: bn.batchNormTrainGrad,
};

/**
 * Register the gradient kernels the wasm backend lacks, and replace those too slow or wrong for
 * training, so that conv nets (plain and depthwise convolutions, pooling, dense heads) train on
 * it; the gradients of Relu6 and ClipByValue run as one kernel on wasm. Idempotent.
 *
 * @returns the names of the kernels registered by this call (empty when already done).
 */
export function registerWasmTrainingKernels(): string[] {
  mobile.installClipGradients();
  const registered: string[] = [];
  for (const [kernelName, kernelFunc] of Object.entries(KERNELS)) {
    const current = tf.getKernel(kernelName, 'wasm');
    if (current?.kernelFunc === kernelFunc) continue;
    if (current !== undefined) {
      originals.set(kernelName, current.kernelFunc);
      // registerKernel would warn about the override; unregister first.
      tf.unregisterKernel(kernelName, 'wasm');
    }
    // Keep the replaced kernel's setup (its cwrap binding), which tf.setBackend runs: the
    // originals are still called for the cases left to them.
    const { setupFunc, disposeFunc } = current ?? {};
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc, setupFunc, disposeFunc });
    registered.push(kernelName);
  }
  return registered;
}
