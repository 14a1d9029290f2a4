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
}

let instance: Exports | undefined;

function kernels(): Exports {
  instance ??= new WebAssembly.Instance(
    new WebAssembly.Module(readFileSync(new URL('../../wasm/kernels.wasm', import.meta.url))),
    {},
  ).exports as unknown as Exports;
  return instance;
}

/**
 * Runs `fn(params, ...inputs, out)` on copies in the module's memory: `params` is an int32 struct,
 * the output starts zeroed, and is copied into `out`. The extra argument, if any, goes last.
 */
function call(
  fn: keyof Omit<Exports, 'memory' | '__heap_base'>,
  params: number[],
  inputs: Float32Array[],
  out: Float32Array,
  extra: number[] = [],
): void {
  const k = kernels();
  const align = (n: number) => Math.ceil(n / 16) * 16;
  let at = align(k.__heap_base.value as number);
  const offsets = [params.length * 4, ...inputs.map((a) => a.byteLength), out.byteLength].map((n) => {
    const o = at;
    at += align(n);
    return o;
  });
  const short = at - k.memory.buffer.byteLength;
  if (short > 0) k.memory.grow(Math.ceil(short / 65536));
  const { buffer } = k.memory;
  const [p, ...rest] = offsets as [number, ...number[]];
  new Int32Array(buffer, p, params.length).set(params);
  inputs.forEach((a, i) => new Float32Array(buffer, rest[i], a.length).set(a));
  const result = new Float32Array(buffer, rest[inputs.length], out.length);
  result.fill(0);
  (k[fn] as (...args: number[]) => void)(p, ...rest, ...extra);
  out.set(result);
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
  const { padInfo: pad } = info;
  const rowFloats = info.outWidth * info.outChannels + info.strideHeight * info.inWidth * info.inChannels;
  const rows = Math.max(1, Math.floor(CHUNK_FLOATS / rowFloats));
  // prettier-ignore
  const params = [
    info.batchSize, info.inHeight, info.inWidth, info.inChannels,
    info.outHeight, info.outWidth, info.outChannels, info.filterHeight, info.filterWidth,
    info.strideHeight, info.strideWidth, info.dilationHeight, info.dilationWidth, pad.top, pad.left,
  ];
  call('conv2d_backprop_filter', params, [x, dy], out, [rows]);
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
  call('max_pool_grad', params, [x, dy], out);
}
