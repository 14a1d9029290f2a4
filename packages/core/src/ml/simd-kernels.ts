/**
 * Our own WebAssembly SIMD kernels (`packages/core/wasm/kernels.c`, built by `wasm/build.sh`; the
 * .wasm is committed). They run where the tfjs wasm backend's XNNPACK operators fit badly: a
 * filter gradient is a product whose reduction (batch x space) is long and whose output is tiny,
 * which XNNPACK can only run as a convolution after two transposes, with a huge "filter" packed
 * on every call (120 ms a step on the MNIST CNN's second conv; this kernel takes 55 ms).
 *
 * The module has its own memory: operands are copied in above `__heap_base` and the result
 * copied out (about 2 ms for 20 MB), which keeps it independent of tfjs' heap layout.
 * One instance per thread, created on first use.
 */
import { readFileSync } from 'node:fs';
import type { backend_util } from '@tensorflow/tfjs';

interface Exports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  conv2d_backprop_filter: (conv: number, x: number, dy: number, dw: number, rows: number) => void;
  max_pool_grad: (pool: number, x: number, dy: number, dx: number) => void;
  conv2d: (conv: number, x: number, w: number, y: number) => void;
  matmul: (gemm: number, a: number, b: number, c: number, scratch: number) => void;
  adadelta: (
    p: number,
    w: number,
    g: number,
    ag: number,
    ad: number,
    w2: number,
    ag2: number,
    ad2: number,
  ) => void;
}

let instance: Exports | undefined;

function kernels(): Exports {
  instance ??= new WebAssembly.Instance(
    new WebAssembly.Module(readFileSync(new URL('../../wasm/kernels.wasm', import.meta.url))),
    {},
  ).exports as unknown as Exports;
  return instance;
}

interface CallOptions {
  /** Float32 fields of the params struct, after its int32 ones. */
  floats?: number[];
  /** Floats of uninitialised working space, passed after the outputs. */
  scratch?: number;
  /** Plain arguments, passed last. */
  extra?: number[];
  /** Zero the outputs first (kernels that accumulate into them). */
  zero?: boolean;
}

/**
 * Runs `fn(params, ...inputs, ...outs[, scratch], ...extra)` on copies in the module's memory:
 * `params` is a struct of int32 (then float32) fields; each output is copied into its `outs` array.
 */
function call(
  fn: keyof Omit<Exports, 'memory' | '__heap_base'>,
  params: number[],
  inputs: Float32Array[],
  outs: Float32Array[],
  { floats = [], scratch = 0, extra = [], zero = true }: CallOptions = {},
): void {
  const k = kernels();
  const align = (n: number) => Math.ceil(n / 16) * 16;
  let at = align(k.__heap_base.value as number);
  const arrays = [...inputs, ...outs];
  const sizes = [(params.length + floats.length) * 4, ...arrays.map((a) => a.byteLength)];
  if (scratch > 0) sizes.push(scratch * 4);
  const offsets = sizes.map((n) => {
    const o = at;
    at += align(n);
    return o;
  });
  const short = at - k.memory.buffer.byteLength;
  if (short > 0) k.memory.grow(Math.ceil(short / 65536));
  const { buffer } = k.memory;
  const [p, ...rest] = offsets as [number, ...number[]];
  new Int32Array(buffer, p, params.length).set(params);
  new Float32Array(buffer, p + params.length * 4, floats.length).set(floats);
  const views = arrays.map((a, i) => new Float32Array(buffer, rest[i], a.length));
  inputs.forEach((a, i) => views[i]!.set(a));
  if (zero) for (const v of views.slice(inputs.length)) v.fill(0);
  (k[fn] as (...args: number[]) => void)(p, ...rest, ...extra);
  outs.forEach((o, i) => o.set(views[inputs.length + i]!));
}

/** kernels.c's `Conv` struct. */
function convParams(info: backend_util.Conv2DInfo): number[] {
  // prettier-ignore
  return [
    info.batchSize, info.inHeight, info.inWidth, info.inChannels,
    info.outHeight, info.outWidth, info.outChannels, info.filterHeight, info.filterWidth,
    info.strideHeight, info.strideWidth, info.dilationHeight, info.dilationWidth,
    info.padInfo.top, info.padInfo.left,
  ];
}

/** Floats per L2-sized chunk of dy rows the kernel accumulates over before moving to the next tap. */
const CHUNK_FLOATS = 64 * 1024;

/**
 * dW = the filter gradient of a 2-D convolution (NHWC, filter [kH, kW, Ci, Co]) for any stride,
 * dilation and padding that `computeConv2DInfo` describes. Writes into `out`.
 */
export function conv2dBackpropFilter(
  x: Float32Array,
  dy: Float32Array,
  info: backend_util.Conv2DInfo,
  out: Float32Array,
): void {
  const rowFloats = info.outWidth * info.outChannels + info.strideHeight * info.inWidth * info.inChannels;
  const rows = Math.max(1, Math.floor(CHUNK_FLOATS / rowFloats));
  call('conv2d_backprop_filter', convParams(info), [x, dy], [out], { extra: [rows] });
}

/** A 2-D convolution (NHWC, filter [kH, kW, Ci, Co]), any stride, dilation and padding. Writes into `out`. */
export function conv2d(
  x: Float32Array,
  filter: Float32Array,
  info: backend_util.Conv2DInfo,
  out: Float32Array,
): void {
  call('conv2d', convParams(info), [x, filter], [out]);
}

/**
 * Max-pool gradient (NHWC, dilation 1): each dy element goes to the first maximum of its window,
 * as tfjs-cpu and TensorFlow route it. Writes into `out` (x's shape).
 */
export function maxPoolGrad(
  x: Float32Array,
  dy: Float32Array,
  info: backend_util.Conv2DInfo,
  out: Float32Array,
): void {
  // prettier-ignore
  const params = [
    info.batchSize, info.inHeight, info.inWidth, info.inChannels, info.outHeight, info.outWidth,
    info.effectiveFilterHeight, info.effectiveFilterWidth, info.strideHeight, info.strideWidth,
    info.padInfo.top, info.padInfo.left,
  ];
  call('max_pool_grad', params, [x, dy], [out]);
}

/**
 * out[M, N] = op(a) op(b), row-major, where op transposes a ([K, M]) / b ([N, K]) when asked.
 * Unlike the backend's XNNPACK path, it takes transposed operands without a copy through the
 * engine and packs nothing per call.
 */
export function matmul(
  a: Float32Array,
  b: Float32Array,
  [m, n, k]: [number, number, number],
  transA: boolean,
  transB: boolean,
  out: Float32Array,
): void {
  const params = [m, n, k, transA ? 1 : 0, transB ? 1 : 0];
  call('matmul', params, [a, b], [out], { scratch: transB ? k * n : 0 });
}

/** One Keras/PyTorch Adadelta step: [w, accGrad, accDelta] from their old values and g into `outs`. */
export function adadelta(
  [w, g, accGrad, accDelta]: [Float32Array, Float32Array, Float32Array, Float32Array],
  { lr, rho, eps }: { lr: number; rho: number; eps: number },
  outs: [Float32Array, Float32Array, Float32Array],
): void {
  call('adadelta', [w.length], [w, g, accGrad, accDelta], outs, { floats: [lr, rho, eps], zero: false });
}
