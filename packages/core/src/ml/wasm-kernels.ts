/**
 * Training kernels for the tfjs wasm backend.
 *
 * `@tensorflow/tfjs-backend-wasm@4.22` ships no `Conv2DBackpropFilter`,
 * `DepthwiseConv2dNativeBackpropFilter` or `DepthwiseConv2dNativeBackpropInput`, so `fit()` of any
 * conv net fails on it, and its `Conv2DBackpropInput` is a scalar C++ loop. Every kernel here is a
 * composition of the backend's own kernels (XNNPACK convolutions, transposes, pads, slices), called
 * directly through `kernelFunc` so that nothing is read back into JS and no engine bookkeeping is
 * paid for the intermediates; each intermediate is released with `backend.disposeData`.
 *
 * The identities used (NHWC, stride s, dilation d, kernel k, pads from `computeConv2DInfo`):
 * - filter gradient = a convolution whose input is x with the channels as batch and the batch as
 *   channels, and whose filter is dy; the roles of stride and dilation swap.
 * - input gradient = a stride-1 convolution of dy (zeros inserted between rows/cols when s > 1)
 *   with the spatially flipped filter, channels in/out swapped.
 * - depthwise filter gradient = the same filter-gradient identity per channel; the batch is
 *   folded into the image height (images stacked vertically) so that a single depthwise
 *   convolution sums over batch and space at once.
 */
import * as tf from '@tensorflow/tfjs';
// For its side effect too: the backend and its kernels must be registered before ours, which
// wrap some of them.
import '@tensorflow/tfjs-backend-wasm';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

type Info = tf.TensorInfo;
type Shape4 = [number, number, number, number];
type ConvInfo = ReturnType<typeof tf.backend_util.computeConv2DInfo>;
/** NHWC explicit padding: [[0, 0], [top, bottom], [left, right], [0, 0]]. */
type Explicit = [[number, number], [number, number], [number, number], [number, number]];

function shape4(t: Info | number[]): Shape4 {
  const s = Array.isArray(t) ? t : t.shape;
  if (s.length !== 4) throw new Error(`wasm training kernels expect rank-4 tensors, got shape [${s.join(',')}]`);
  return [s[0] ?? 0, s[1] ?? 0, s[2] ?? 0, s[3] ?? 0];
}

function explicitPad(top: number, bottom: number, left: number, right: number): Explicit {
  return [
    [0, 0],
    [top, bottom],
    [left, right],
    [0, 0],
  ];
}

function assertNhwc(dataFormat: unknown, kernel: string): void {
  if (dataFormat === 'NCHW' || dataFormat === 'channelsFirst') {
    throw new Error(`${kernel} on the wasm backend supports only NHWC (channelsLast) data; got NCHW.`);
  }
}

/**
 * Runs wasm kernels and remembers every output, so that a composite kernel can release all of its
 * intermediates (also when one of the steps throws) and hand back only its result.
 */
class Scope {
  private readonly temps: Info[] = [];
  constructor(private readonly backend: BackendWasm) {}

  run(kernelName: string, inputs: tf.NamedTensorInfoMap, attrs: object = {}): Info {
    const config = tf.getKernel(kernelName, 'wasm');
    if (config === undefined) throw new Error(`wasm kernel ${kernelName} is not registered`);
    const out = config.kernelFunc({ inputs, backend: this.backend, attrs: attrs as tf.NamedAttrMap });
    if (Array.isArray(out)) throw new Error(`wasm kernel ${kernelName} returned several outputs`);
    this.temps.push(out);
    return out;
  }

  reshape(x: Info, shape: number[]): Info {
    // The wasm Reshape shares the buffer and bumps its refCount, so disposing the view is safe.
    return sameShape(x.shape, shape) ? x : this.run('Reshape', { x }, { shape });
  }

  /** Slice `size` at `begin`, or pass `x` through untouched when that is all of it. */
  crop(x: Info, begin: number[], size: number[]): Info {
    const whole = begin.every((b) => b === 0) && sameShape(x.shape, size);
    return whole ? x : this.run('Slice', { x }, { begin, size });
  }

  pad(x: Info, paddings: [number, number][]): Info {
    return paddings.every(([a, b]) => a === 0 && b === 0) ? x : this.run('PadV2', { x }, { paddings, constantValue: 0 });
  }

  /** Dispose every intermediate except `result`, which is returned to the engine. */
  finish(result: Info): Info {
    const i = this.temps.indexOf(result);
    if (i < 0) throw new Error('wasm training kernel: result was not produced by the kernel');
    this.temps.splice(i, 1);
    return result;
  }

  dispose(): void {
    for (const t of this.temps) this.backend.disposeData(t.dataId);
    this.temps.length = 0;
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** Run `body` with a fresh Scope; intermediates are always released. */
function scoped(backend: unknown, body: (s: Scope) => Info): Info {
  const s = new Scope(backend as BackendWasm);
  try {
    return s.finish(body(s));
  } finally {
    s.dispose();
  }
}

/** Insert s-1 zero rows/cols after every row/col of dy (a reshape + pad, no JS loop). */
function dilateByStride(s: Scope, dy: Info, sh: number, sw: number): Info {
  if (sh === 1 && sw === 1) return dy;
  const [b, h, w, c] = shape4(dy);
  const split = s.reshape(dy, [b, h, 1, w, 1, c]);
  const padded = s.pad(split, [
    [0, 0],
    [0, 0],
    [0, sh - 1],
    [0, 0],
    [0, sw - 1],
    [0, 0],
  ]);
  return s.reshape(padded, [b, h * sh, w * sw, c]);
}

/**
 * The input gradient as a stride-1 convolution of the zero-dilated dy with an already flipped
 * filter; `kernelName` is Conv2D (filter [kH,kW,outC,inC]) or DepthwiseConv2dNative.
 */
function transposedConv(s: Scope, dy: Info, filter: Info, info: ConvInfo, kernelName: string): Info {
  const dyd = dilateByStride(s, dy, info.strideHeight, info.strideWidth);
  const [, lh, lw] = shape4(dyd);
  const edge = (eff: number, before: number, len: number, out: number) => {
    // dx[j] reads dyd[j - (eff - 1 - before) + k * d]; a negative leading pad becomes a crop.
    const lead = eff - 1 - before;
    const padBefore = Math.max(0, lead);
    const cropBefore = Math.max(0, -lead);
    const padAfter = Math.max(0, cropBefore + out + eff - 1 - len - padBefore);
    return { padBefore, cropBefore, padAfter };
  };
  const v = edge(info.effectiveFilterHeight, info.padInfo.top, lh, info.inHeight);
  const h = edge(info.effectiveFilterWidth, info.padInfo.left, lw, info.inWidth);
  const out = s.run(
    kernelName,
    { x: dyd, filter },
    {
      strides: [1, 1],
      dilations: [info.dilationHeight, info.dilationWidth],
      pad: explicitPad(v.padBefore, v.padAfter, h.padBefore, h.padAfter),
      dataFormat: 'NHWC',
    },
  );
  const [, , , c] = shape4(out);
  return s.crop(out, [0, v.cropBefore, h.cropBefore, 0], [info.batchSize, info.inHeight, info.inWidth, c]);
}

function dilationsOf(attrs: tf.NamedAttrMap): number | [number, number] {
  // tfjs-core's Conv2D gradient refuses dilations > 1 and sends none, but the identity holds
  // for any dilation, so honour one if a caller passes it.
  const d = attrs['dilations'] as number | [number, number] | undefined;
  return d ?? 1;
}

const conv2DBackpropFilter: tf.KernelFunc = ({ inputs, backend, attrs = {} }) => {
  const { x, dy } = inputs as { x: Info; dy: Info };
  const a = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  assertNhwc(a.dataFormat, 'Conv2DBackpropFilter');
  const info = tf.backend_util.computeConv2DInfo(
    shape4(x),
    a.filterShape,
    a.strides,
    dilationsOf(attrs),
    a.pad,
    a.dimRoundingMode,
    false,
    'channelsLast',
  );
  return scoped(backend, (s) => {
    // [B,H,W,inC] -> [inC,H,W,B]: the conv's batch is inC, its channels the original batch.
    const xT = s.run('Transpose', { x }, { perm: [3, 1, 2, 0] });
    // [B,oH,oW,outC] -> [oH,oW,B,outC]: dy becomes a filter over (space, batch).
    const dyT = s.run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
    const { top, left } = info.padInfo;
    // Pad only as far as the last tap reads, so the conv output is (close to) kH x kW.
    const needH = (info.outHeight - 1) * info.strideHeight + (info.filterHeight - 1) * info.dilationHeight + 1;
    const needW = (info.outWidth - 1) * info.strideWidth + (info.filterWidth - 1) * info.dilationWidth + 1;
    const g = s.run(
      'Conv2D',
      { x: xT, filter: dyT },
      {
        strides: [info.dilationHeight, info.dilationWidth],
        dilations: [info.strideHeight, info.strideWidth],
        pad: explicitPad(top, Math.max(0, needH - info.inHeight - top), left, Math.max(0, needW - info.inWidth - left)),
        dataFormat: 'NHWC',
      },
    );
    const dw = s.crop(g, [0, 0, 0, 0], [info.inChannels, info.filterHeight, info.filterWidth, info.outChannels]);
    return s.run('Transpose', { x: dw }, { perm: [1, 2, 0, 3] });
  });
};

const conv2DBackpropInput: tf.KernelFunc = ({ inputs, backend, attrs = {} }) => {
  const { dy, filter } = inputs as { dy: Info; filter: Info };
  const a = attrs as unknown as tf.Conv2DBackpropInputAttrs;
  assertNhwc(a.dataFormat, 'Conv2DBackpropInput');
  const info = tf.backend_util.computeConv2DInfo(
    a.inputShape,
    shape4(filter),
    a.strides,
    dilationsOf(attrs),
    a.pad,
    a.dimRoundingMode,
    false,
    'channelsLast',
  );
  return scoped(backend, (s) => {
    const flipped = s.run('Reverse', { x: filter }, { dims: [0, 1] });
    const swapped = s.run('Transpose', { x: flipped }, { perm: [0, 1, 3, 2] });
    return transposedConv(s, dy, swapped, info, 'Conv2D');
  });
};

const depthwiseBackpropInput: tf.KernelFunc = ({ inputs, backend, attrs = {} }) => {
  const { dy, filter } = inputs as { dy: Info; filter: Info };
  const a = attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs;
  const [kh, kw, c, m] = shape4(filter);
  const info = tf.backend_util.computeConv2DInfo(a.inputShape, [kh, kw, c, m], a.strides, a.dilations ?? 1, a.pad, a.dimRoundingMode, true);
  return scoped(backend, (s) => {
    // Each of the c*m dy channels is convolved with its own flipped tap; the m products that
    // belong to one input channel are then summed.
    const flipped = s.reshape(s.run('Reverse', { x: filter }, { dims: [0, 1] }), [kh, kw, c * m, 1]);
    const dx = transposedConv(s, dy, flipped, info, 'DepthwiseConv2dNative');
    if (m === 1) return dx;
    const split = s.reshape(dx, [info.batchSize, info.inHeight, info.inWidth, c, m]);
    return s.run('Sum', { x: split }, { axis: [4], keepDims: false });
  });
};

const depthwiseBackpropFilter: tf.KernelFunc = ({ inputs, backend, attrs = {} }) => {
  const { x, dy } = inputs as { x: Info; dy: Info };
  const a = attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs;
  const [kh, kw, c, m] = a.filterShape;
  const info = tf.backend_util.computeConv2DInfo(shape4(x), a.filterShape, a.strides, a.dilations ?? 1, a.pad, a.dimRoundingMode, true);
  const { batchSize: b, inHeight, inWidth, outHeight: oh, outWidth: ow, strideHeight: sh, strideWidth: sw } = info;
  const { top, left } = info.padInfo;
  const needH = (oh - 1) * sh + (kh - 1) * info.dilationHeight + 1;
  const needW = (ow - 1) * sw + (kw - 1) * info.dilationWidth + 1;
  // Padded image height: every tap fits inside its own image and it is a multiple of the stride,
  // so dy rows of consecutive images sit exactly `hp / sh` dilated taps apart.
  const hp = Math.ceil(Math.max(needH, inHeight + top) / sh) * sh;
  const wp = Math.max(needW, inWidth + left);
  const rows = hp / sh;
  return scoped(backend, (s) => {
    const xp = s.pad(x, [
      [0, 0],
      [top, hp - inHeight - top],
      [left, wp - inWidth - left],
      [0, 0],
    ]);
    // Stack the images vertically: [1, B*hp, wp, C]. Free, since NHWC is contiguous per image.
    const stacked = s.reshape(xp, [1, b * hp, wp, c]);
    // The filter is dy with each image padded to `rows` rows, stacked the same way.
    const dyp = s.pad(dy, [
      [0, 0],
      [0, rows - oh],
      [0, 0],
      [0, 0],
    ]);
    const filter = s.reshape(dyp, [b * rows, ow, c, m]);
    // The stacked filter's trailing zero rows would need input past the last image; padding the
    // bottom by the same amount keeps the output at (at least) kH rows without slicing dy.
    const g = s.run(
      'DepthwiseConv2dNative',
      { x: stacked, filter },
      {
        strides: [info.dilationHeight, info.dilationWidth],
        dilations: [sh, sw],
        pad: explicitPad(0, (rows - oh) * sh, 0, 0),
      },
    );
    const dw = s.crop(g, [0, 0, 0, 0], [1, kh, kw, c * m]);
    return s.reshape(dw, [kh, kw, c, m]);
  });
};

/** The kernels replaced by this module, as they were before, for the cases they still serve. */
const originals = new Map<string, tf.KernelFunc>();

const batchMatMul: tf.KernelFunc = (args) => {
  const { a, b } = args.inputs as { a: Info; b: Info };
  const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
  const base = originals.get('BatchMatMul');
  if (base === undefined) throw new Error('wasm BatchMatMul: original kernel missing');
  // The backend uses XNNPACK only for float32 products with no transpose and batch 1; all others
  // run a scalar triple loop, and the backward pass of every Dense layer transposes an operand.
  // Transposing explicitly (a cheap copy) keeps those products on XNNPACK.
  const unbatched = (t: Info) => t.dtype === 'float32' && t.shape.slice(0, -2).every((d) => d === 1);
  if ((!transposeA && !transposeB) || !unbatched(a) || !unbatched(b)) return base(args);
  return scoped(args.backend, (s) => {
    const flip = (t: Info) => {
      const perm = t.shape.map((_, i) => i);
      perm.push(...perm.splice(-2).reverse());
      return s.run('Transpose', { x: t }, { perm });
    };
    const inputs = { a: transposeA ? flip(a) : a, b: transposeB ? flip(b) : b };
    return s.run('BatchMatMul', inputs, { transposeA: false, transposeB: false });
  });
};

/**
 * MaxPoolGrad as one pass over typed arrays. The backend's own kernel starts its running max at
 * FLT_MIN (the smallest positive float) instead of -inf, so windows whose maximum is <= 0 lose
 * their gradient, and ties go to the last element; tfjs-cpu and TF route to the first maximum.
 * No composition of wasm kernels expresses "first argmax" cheaply; this loop is ~10x faster than
 * the C++ kernel it replaces.
 */
const maxPoolGrad: tf.KernelFunc = ({ inputs, backend, attrs = {} }) => {
  const { dy, input } = inputs as { dy: Info; input: Info };
  const a = attrs as unknown as tf.MaxPoolGradAttrs;
  const info = tf.backend_util.computePool2DInfo(shape4(input), a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode);
  const { batchSize, inHeight: h, inWidth: w, inChannels: c, outHeight, outWidth, strideHeight, strideWidth } = info;
  const be = backend as BackendWasm;
  const out = be.makeOutput(input.shape, 'float32');
  // Views after makeOutput: an allocation can grow (and so detach) the wasm heap.
  const x = be.typedArrayFromHeap(input);
  const g = be.typedArrayFromHeap(dy);
  const dx = be.typedArrayFromHeap(out);
  dx.fill(0);
  const best = new Float32Array(c);
  const at = new Int32Array(c);
  let o = 0;
  for (let b = 0; b < batchSize; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      const y0 = oy * strideHeight - info.padInfo.top;
      const r0 = Math.max(0, y0);
      const r1 = Math.min(h, y0 + info.effectiveFilterHeight);
      for (let ox = 0; ox < outWidth; ox++, o += c) {
        const x0 = ox * strideWidth - info.padInfo.left;
        const c0 = Math.max(0, x0);
        const c1 = Math.min(w, x0 + info.effectiveFilterWidth);
        best.fill(-Infinity);
        at.fill(-1);
        for (let r = r0; r < r1; r++) {
          for (let col = c0; col < c1; col++) {
            const base = ((b * h + r) * w + col) * c;
            for (let ch = 0; ch < c; ch++) {
              const v = x[base + ch]!;
              if (v > best[ch]!) {
                best[ch] = v;
                at[ch] = base + ch;
              }
            }
          }
        }
        for (let ch = 0; ch < c; ch++) {
          const i = at[ch]!;
          if (i >= 0) dx[i] = dx[i]! + g[o + ch]!;
        }
      }
    }
  }
  return out;
};

const KERNELS: readonly tf.KernelConfig[] = [
  // Missing from the backend.
  { kernelName: 'Conv2DBackpropFilter', backendName: 'wasm', kernelFunc: conv2DBackpropFilter },
  { kernelName: 'DepthwiseConv2dNativeBackpropFilter', backendName: 'wasm', kernelFunc: depthwiseBackpropFilter },
  { kernelName: 'DepthwiseConv2dNativeBackpropInput', backendName: 'wasm', kernelFunc: depthwiseBackpropInput },
  // Present but slow (scalar loops) or wrong; replaced.
  { kernelName: 'Conv2DBackpropInput', backendName: 'wasm', kernelFunc: conv2DBackpropInput },
  { kernelName: 'BatchMatMul', backendName: 'wasm', kernelFunc: batchMatMul },
  { kernelName: 'MaxPoolGrad', backendName: 'wasm', kernelFunc: maxPoolGrad },
];

/**
 * Register the gradient kernels that the wasm backend lacks, and replace the ones that are too
 * slow or wrong for training, so that conv nets (plain, depthwise, pooled, dense heads) train on
 * it. Idempotent; call it after importing `@tensorflow/tfjs-backend-wasm`.
 *
 * @returns the names of the kernels registered by this call (empty when already done).
 */
export function registerWasmTrainingKernels(): string[] {
  const registered: string[] = [];
  for (const config of KERNELS) {
    const current = tf.getKernel(config.kernelName, config.backendName);
    if (current?.kernelFunc === config.kernelFunc) continue;
    if (current !== undefined) {
      originals.set(config.kernelName, current.kernelFunc);
      // registerKernel would warn about overriding an existing kernel; unregister first.
      tf.unregisterKernel(config.kernelName, config.backendName);
    }
    // Keep the replaced kernel's setup (its cwrap binding), which tf.setBackend runs: our
    // BatchMatMul still calls the original for un-transposed products.
    tf.registerKernel({ ...config, setupFunc: current?.setupFunc, disposeFunc: current?.disposeFunc });
    registered.push(config.kernelName);
  }
  return registered;
}
