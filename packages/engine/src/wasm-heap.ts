/**
 * What the wasm training kernels share (wasm-kernels.ts, mobilenet-kernels.ts): shapes and conv
 * geometry from kernel attrs, float32 views of tensors on tfjs' heap with our SIMD kernels
 * attached to it, and the backend's own kernels that ours replace (kept for the cases left to them).
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import * as simd from './simd-kernels.ts';

type Info = tf.TensorInfo;
export type Shape4 = [number, number, number, number];
export type ConvInfo = tf.backend_util.Conv2DInfo;

/** A rank-4 shape, or a clear error naming the shape found. */
export function shape4(s: number[]): Shape4 {
  if (s.length !== 4) throw new Error(`wasm training kernels expect rank-4 tensors, got [${s.join(',')}]`);
  return [s[0] ?? 0, s[1] ?? 0, s[2] ?? 0, s[3] ?? 0];
}

/** Conv geometry from a backprop kernel's attrs; only NHWC is supported. */
export function geometry(
  x: number[],
  f: number[],
  attrs: tf.NamedAttrMap,
  depthwise: boolean,
  name: string,
): ConvInfo {
  if (attrs['dataFormat'] === 'NCHW') {
    throw new Error(`${name} on the wasm backend supports only NHWC (channelsLast) data; got NCHW.`);
  }
  // tfjs-core's Conv2D gradient refuses dilation > 1 and passes none; the identities hold for any.
  // tfjs-layers passes null dilations.
  const { strides, pad, dimRoundingMode: round, dilations } = attrs as unknown as tf.Conv2DAttrs;
  const d = dilations ?? 1;
  return tf.backend_util.computeConv2DInfo(shape4(x), shape4(f), strides, d, pad, round, depthwise);
}

/**
 * Float32 views of tensors on the wasm heap. Take them after every makeOutput: an allocation can
 * grow the heap and detach older views (so can our kernels' first use, which hostOf does here).
 */
export const heap = (be: BackendWasm, ...ts: Info[]) => {
  hostOf(be);
  return ts.map((t) => be.typedArrayFromHeap(t) as Float32Array);
};

const hosts = new WeakMap<BackendWasm, simd.Host | undefined>();

/** tfjs' heap and allocator as our SIMD kernels' host, so that they work on tensors in place. */
export function hostOf(be: BackendWasm): simd.Host | undefined {
  if (!hosts.has(be)) {
    const m = be.wasm as unknown as {
      asm?: { memory?: unknown };
      _malloc(n: number): number;
      _free(p: number): void;
    };
    const memory = m.asm?.memory;
    const host =
      memory instanceof WebAssembly.Memory ? { memory, malloc: m._malloc, free: m._free } : undefined;
    if (host) simd.attach(host);
    hosts.set(be, host);
  }
  return hosts.get(be);
}

/** The backend's kernels that ours replace (registerWasmTrainingKernels keeps them here), for the cases left to them. */
export const originals = new Map<string, tf.KernelFunc>();

/** The backend's own kernel `name`, which one of ours replaced. */
export function original(name: string): tf.KernelFunc {
  const f = originals.get(name);
  if (f === undefined) throw new Error(`wasm ${name}: the original kernel is missing`);
  return f;
}
