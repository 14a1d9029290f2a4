/**
 * Our own WebAssembly SIMD kernels (`packages/engine/wasm/kernels.c`, built by `wasm/build.sh`; the
 * .wasm is committed). They run where the tfjs wasm backend's XNNPACK operators fit badly: a
 * filter gradient is a product whose reduction (batch x space) is long and whose output is tiny,
 * which XNNPACK can only run as a convolution after two transposes, with a huge "filter" packed
 * on every call (120 ms a step on the MNIST CNN's second conv; this kernel takes 55 ms).
 *
 * The module imports its memory. Given tfjs' (a `Host`), it works on tensors where they lie, with
 * its stack and scratch space taken from tfjs' allocator: copying operands in and out cost ~15 ms
 * of a 250 ms training step. Without one (a threaded, shared-memory tfjs build, or plain arrays
 * in tests), it gets a memory of its own and arrays are copied in and out. Arrays that do not
 * live in the instance's memory are always copied, so every function takes any Float32Array.
 * One instance per memory, created on first use.
 */
import { readFileSync } from 'node:fs';
import type { backend_util } from '@tensorflow/tfjs';

type Kernel = (...args: number[]) => void;

interface Exports {
  __heap_base: WebAssembly.Global;
  __stack_pointer: WebAssembly.Global;
  conv2d_backprop_filter: Kernel;
  max_pool_grad: Kernel;
  conv2d: Kernel;
  conv2d_winograd: Kernel;
  conv2d_backprop_filter_winograd: Kernel;
  matmul: Kernel;
  adadelta: Kernel;
  dropout: Kernel;
  depthwise_backprop_filter: Kernel;
  depthwise_backprop_input: Kernel;
  clip_grad: Kernel;
  batch_norm_train: Kernel;
  batch_norm_train_grad: Kernel;
  batch_norm_infer: Kernel;
  conv2d_backprop_input_thin: Kernel;
}
/** A kernel exported by kernels.c. */
export type KernelName = Exclude<keyof Exports, `__${string}`>;

/** Where the kernels' data lives: a wasm memory and an allocator over it. */
export interface Host {
  memory: WebAssembly.Memory;
  malloc(bytes: number): number;
  free(ptr: number): void;
}

interface Instance {
  exports: Exports;
  host: Host;
  /** A block for each call's parameter struct. */
  params: number;
}

const STACK_BYTES = 64 * 1024;
const PARAM_BYTES = 256;

/**
 * The two builds of kernels.c: `relaxed-simd` (kernels-relaxed.wasm: every multiply-add of the
 * convolutions and products is one `f32x4.relaxed_madd`, a fused multiply-add on CPUs with FMA)
 * and `simd` (kernels.wasm: 128-bit SIMD only, for runtimes without relaxed SIMD, e.g. Node 20
 * without `--experimental-wasm-relaxed-simd`).
 */
export type KernelVariant = 'relaxed-simd' | 'simd';

const FILES: Record<KernelVariant, string> = { 'relaxed-simd': 'kernels-relaxed.wasm', simd: 'kernels.wasm' };

// (func (result v128) v128.const 0 x3, f32x4.relaxed_madd): validates only where relaxed SIMD runs.
const zeros = (n: number) => new Array<number>(n).fill(0);
const v128Zero = [0xfd, 0x0c, ...zeros(16)];
// prettier-ignore
const RELAXED_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type section: () -> v128
  0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
  0x0a, 0x3d, 0x01, 0x3b, 0x00, ...v128Zero, ...v128Zero, ...v128Zero, 0xfd, 0x85, 0x02, 0x0b, // code
]);

/** Whether this runtime runs relaxed SIMD's `f32x4.relaxed_madd` (Node 22+ by default). */
export function relaxedSimdSupported(): boolean {
  return WebAssembly.validate(RELAXED_PROBE);
}

let variant: KernelVariant | undefined;
let compiled: WebAssembly.Module | undefined;
const attached = new WeakMap<WebAssembly.Memory, Instance>();
let own: Instance | undefined;

/** The build in use (chosen on first use: relaxed SIMD where the runtime has it). */
export function kernelVariant(): KernelVariant {
  variant ??= relaxedSimdSupported() ? 'relaxed-simd' : 'simd';
  return variant;
}

/**
 * Chooses the build before the kernels' first use in this thread (tests run both; benchmarks
 * compare them). Throws if relaxed SIMD is asked for where it does not run, or if a different
 * build is already in use.
 */
export function selectKernelVariant(v: KernelVariant): void {
  if (v === 'relaxed-simd' && !relaxedSimdSupported())
    throw new Error('relaxed SIMD (f32x4.relaxed_madd) is not supported by this WebAssembly runtime');
  if (compiled && v !== variant) throw new Error(`the ${variant} kernels are already in use in this thread`);
  variant = v;
}

function instantiate(memory: WebAssembly.Memory): Exports {
  compiled ??= new WebAssembly.Module(
    readFileSync(new URL(`../wasm/${FILES[kernelVariant()]}`, import.meta.url)),
  );
  return new WebAssembly.Instance(compiled, { env: { memory } }).exports as unknown as Exports;
}

/** A memory of our own, allocated by bumping from `__heap_base`; the kernels' stack sits below it. */
function ownInstance(): Instance {
  if (own) return own;
  const memory = new WebAssembly.Memory({ initial: 32 });
  const exports = instantiate(memory);
  let top = exports.__heap_base.value as number;
  const host: Host = {
    memory,
    malloc(bytes) {
      const at = Math.ceil(top / 16) * 16;
      top = at + bytes;
      const short = top - memory.buffer.byteLength;
      if (short > 0) memory.grow(Math.ceil(short / 65536));
      return at;
    },
    // Everything after the params block is released after each call (see `call`).
    free() {},
  };
  const params = host.malloc(PARAM_BYTES);
  const base = top;
  own = { exports, host: { ...host, free: () => void (top = base) }, params };
  return own;
}

function instanceFor(host: Host | undefined): Instance {
  if (!host || host.memory.buffer instanceof SharedArrayBuffer) return ownInstance();
  let inst = attached.get(host.memory);
  if (!inst) {
    const exports = instantiate(host.memory);
    // The linker put the stack at the bottom of memory, which is tfjs' there: move it.
    exports.__stack_pointer.value = host.malloc(STACK_BYTES) + STACK_BYTES;
    inst = { exports, host, params: host.malloc(PARAM_BYTES) };
    attached.set(host.memory, inst);
  }
  return inst;
}

/**
 * Creates the kernels' instance on `host` now: that allocates (stack, params) and may grow the
 * memory, so it must come before the caller takes views of the heap.
 */
export function attach(host: Host): void {
  instanceFor(host);
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
 * Runs `fn(params, ...inputs, ...outs[, scratch], ...extra)`: `params` is a struct of int32 (then
 * float32) fields. Arrays in the instance's memory are passed where they lie, others copied; a
 * null input is a null pointer.
 */
export function call(
  host: Host | undefined,
  fn: KernelName,
  params: number[],
  inputs: (Float32Array | null)[],
  outs: Float32Array[],
  { floats = [], scratch = 0, extra = [], zero = true }: CallOptions = {},
): void {
  const inst = instanceFor(host);
  const { memory, malloc, free } = inst.host;
  const arrays = [...inputs, ...outs].map((a) => a ?? new Float32Array(0));
  // Pointers first: an allocation below may grow the memory and detach the views passed in.
  const direct = [...inputs, ...outs].map((a) =>
    a === null ? 0 : a.buffer === memory.buffer ? a.byteOffset : -1,
  );
  const temps: number[] = [];
  try {
    const ptrs = arrays.map((a, i) => {
      if (direct[i]! >= 0) return direct[i]!;
      const p = malloc(a.byteLength);
      temps.push(p);
      return p;
    });
    if (scratch > 0) temps.push(malloc(scratch * 4));
    const buffer = memory.buffer;
    if (params.length + floats.length > PARAM_BYTES / 4) throw new Error(`${fn}: too many params`);
    new Int32Array(buffer, inst.params, params.length).set(params);
    new Float32Array(buffer, inst.params + params.length * 4, floats.length).set(floats);
    const view = (i: number) => new Float32Array(buffer, ptrs[i], arrays[i]!.length);
    inputs.forEach((a, i) => a !== null && direct[i]! < 0 && view(i).set(a));
    if (zero) outs.forEach((_, j) => view(inputs.length + j).fill(0));
    const scratchPtr = scratch > 0 ? [temps[temps.length - 1]!] : [];
    inst.exports[fn](inst.params, ...ptrs, ...scratchPtr, ...extra);
    outs.forEach((o, j) => {
      const i = inputs.length + j;
      if (direct[i]! < 0) o.set(new Float32Array(memory.buffer, ptrs[i], o.length));
    });
  } finally {
    for (const p of temps.reverse()) free(p);
  }
}

/** kernels.c's `Conv` struct. */
export function convParams(info: backend_util.Conv2DInfo): number[] {
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

/** Whether `conv2d` may take Winograd's F(2x2, 3x3) (tests and benchmarks compare both). */
let winograd = true;

/** Turns the Winograd path of `conv2d` on or off for this thread (on by default). */
export function setWinograd(on: boolean): void {
  winograd = on;
}

/**
 * Whether a convolution takes kernels.c's `conv2d_winograd`: 3x3, stride 1, dilation 1, input
 * channels a multiple of 4 (at least 8: thinner inputs gain little over the transforms' cost) and
 * output channels a multiple of 8. The MNIST CNN's second convolution and its input gradient
 * (the same shape, padded) are such.
 */
export function winogradApplies(info: backend_util.Conv2DInfo): boolean {
  return (
    winograd &&
    info.filterHeight === 3 &&
    info.filterWidth === 3 &&
    info.strideHeight === 1 &&
    info.strideWidth === 1 &&
    info.dilationHeight === 1 &&
    info.dilationWidth === 1 &&
    info.inChannels >= 8 &&
    info.inChannels % 4 === 0 &&
    info.outChannels % 8 === 0
  );
}

/** Floats of the Winograd paths' transformed tiles (V and M, or V and Z) held at once: 256 KiB, within L2. */
const WINOGRAD_TILE_FLOATS = 64 * 1024;

/**
 * The tile rows kernels.c's Winograd functions transform at once, and their scratch floats: the
 * transformed filter (or its gradient), 16 x Ci x Co, then both transformed operands of those rows.
 */
function winogradChunk(info: backend_util.Conv2DInfo): { rows: number; scratch: number } {
  const perRow = 16 * Math.ceil(info.outWidth / 2) * (info.inChannels + info.outChannels);
  const rows = Math.min(
    Math.ceil(info.outHeight / 2),
    Math.max(1, Math.floor(WINOGRAD_TILE_FLOATS / perRow)),
  );
  return { rows, scratch: 16 * info.inChannels * info.outChannels + rows * perRow };
}

/**
 * dW = the filter gradient of a 2-D convolution (NHWC, filter [kH, kW, Ci, Co]) for any stride,
 * dilation and padding that `computeConv2DInfo` describes. Writes into `out`. Where
 * `winogradApplies`, by Winograd's F(3x3, 2x2) (kernels.c: the forward algorithm transposed).
 */
export function conv2dBackpropFilter(
  x: Float32Array,
  dy: Float32Array,
  info: backend_util.Conv2DInfo,
  out: Float32Array,
  host?: Host,
): void {
  if (winogradApplies(info)) {
    const { rows, scratch } = winogradChunk(info);
    call(host, 'conv2d_backprop_filter_winograd', convParams(info), [x, dy], [out], {
      scratch,
      extra: [rows],
      zero: false,
    });
    return;
  }
  const rowFloats = info.outWidth * info.outChannels + info.strideHeight * info.inWidth * info.inChannels;
  const rows = Math.max(1, Math.floor(CHUNK_FLOATS / rowFloats));
  call(host, 'conv2d_backprop_filter', convParams(info), [x, dy], [out], { extra: [rows] });
}

/**
 * A 2-D convolution (NHWC, filter [kH, kW, Ci, Co]), any stride, dilation and padding, optionally
 * with a bias ([Co]) and relu applied as each output row completes. Writes into `out`. 3x3
 * stride-1 convolutions that `winogradApplies` to run as Winograd's F(2x2, 3x3) (16 multiply-adds
 * per 2x2 outputs and channel pair instead of 36; see kernels.c); results then differ from the
 * direct sum by rounding only (relative error ~1e-6).
 */
export function conv2d(
  x: Float32Array,
  filter: Float32Array,
  info: backend_util.Conv2DInfo,
  out: Float32Array,
  host?: Host,
  { bias = null, relu = false }: { bias?: Float32Array | null; relu?: boolean } = {},
): void {
  if (winogradApplies(info)) {
    const { rows, scratch } = winogradChunk(info);
    call(host, 'conv2d_winograd', convParams(info), [x, filter, bias], [out], {
      scratch,
      extra: [relu ? 1 : 0, rows],
      zero: false,
    });
    return;
  }
  call(host, 'conv2d', convParams(info), [x, filter, bias], [out], { extra: [relu ? 1 : 0] });
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
  host?: Host,
): void {
  // prettier-ignore
  const params = [
    info.batchSize, info.inHeight, info.inWidth, info.inChannels, info.outHeight, info.outWidth,
    info.effectiveFilterHeight, info.effectiveFilterWidth, info.strideHeight, info.strideWidth,
    info.padInfo.top, info.padInfo.left,
  ];
  call(host, 'max_pool_grad', params, [x, dy], [out]);
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
  host?: Host,
): void {
  const params = [m, n, k, transA ? 1 : 0, transB ? 1 : 0];
  call(host, 'matmul', params, [a, b], [out], { scratch: transB ? k * n : 0 });
}

/** One Keras/PyTorch Adadelta step: [w, accGrad, accDelta] from their old values and g into `outs`. */
export function adadelta(
  [w, g, accGrad, accDelta]: [Float32Array, Float32Array, Float32Array, Float32Array],
  { lr, rho, eps }: { lr: number; rho: number; eps: number },
  outs: [Float32Array, Float32Array, Float32Array],
  host?: Host,
): void {
  call(host, 'adadelta', [w.length], [w, g, accGrad, accDelta], outs, {
    floats: [lr, rho, eps],
    zero: false,
  });
}

/** Inverted dropout: `mask` gets 1/keep or 0 per element (xorshift from `seed`), `y` = x * mask. */
export function dropout(
  x: Float32Array,
  keep: number,
  seed: number,
  [y, mask]: [Float32Array, Float32Array],
  host?: Host,
): void {
  call(host, 'dropout', [x.length, seed | 0], [x], [y, mask], { floats: [keep], zero: false });
}
