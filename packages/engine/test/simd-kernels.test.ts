import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import * as simd from '../src/simd-kernels.ts';

const wasmDir = fileURLToPath(new URL('../wasm/', import.meta.url));
/** A clang that builds relaxed SIMD's final opcodes (16 or later), with its wasm-ld beside it. */
const hasClang =
  process.env['CC'] !== undefined ||
  (existsSync('/usr/lib') &&
    readdirSync('/usr/lib').some(
      (d) => /^llvm-(\d+)$/.test(d) && Number(d.slice(5)) >= 16 && existsSync(`/usr/lib/${d}/bin/clang`),
    ));
const FILES = ['kernels.wasm', 'kernels-relaxed.wasm'];

describe('kernels.wasm and kernels-relaxed.wasm', () => {
  // Installs use the committed binaries; where a C toolchain exists, prove they are the source's.
  it('are what wasm/build.sh makes of kernels.c', (ctx) => {
    if (!hasClang) {
      const why = 'no clang 16+ here to rebuild the kernels (Debian: apt-get install clang-19 lld-19)';
      console.log(`skipped: ${why}`);
      ctx.skip(why);
    }
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlq-kernels-'));
    try {
      const r = spawnSync('bash', [path.join(wasmDir, 'build.sh'), dir], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      for (const f of FILES) {
        expect(readFileSync(path.join(dir, f)).equals(readFileSync(path.join(wasmDir, f))), f).toBe(true);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000); // two clang builds, on a loaded machine

  it('the relaxed SIMD probe agrees with the relaxed build, and Node 22+ runs it', () => {
    const relaxed = WebAssembly.validate(readFileSync(path.join(wasmDir, 'kernels-relaxed.wasm')));
    expect(simd.relaxedSimdSupported()).toBe(relaxed);
    expect(WebAssembly.validate(readFileSync(path.join(wasmDir, 'kernels.wasm')))).toBe(true);
    if (Number(process.versions.node.split('.')[0]) >= 22) expect(relaxed).toBe(true);
    expect(simd.kernelVariant()).toBe(relaxed ? 'relaxed-simd' : 'simd');
  });

  it.each(FILES)(
    "%s imports only a memory (tfjs' heap, or its own) and exports a movable stack pointer",
    async (f) => {
      const mod = await WebAssembly.compile(readFileSync(path.join(wasmDir, f)));
      expect(WebAssembly.Module.imports(mod)).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
      const names = WebAssembly.Module.exports(mod).map((e) => e.name);
      expect(names).toEqual(
        expect.arrayContaining([
          '__stack_pointer',
          'conv2d',
          'conv2d_winograd',
          'conv2d_backprop_filter_winograd',
          'conv2d_backprop_filter',
          'matmul',
          'max_pool_grad',
          'adadelta',
        ]),
      );
    },
  );
});

describe('SIMD kernels on arrays of their own (copied into a memory of the module)', () => {
  const values = (n: number, seed: number) =>
    Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed));

  it('matmul, every transpose, equals the triple loop', () => {
    const [m, n, k] = [7, 19, 300];
    const a = values(m * k, 1);
    const b = values(k * n, 2);
    const at = (i: number, p: number, ta: boolean) => (ta ? a[p * m + i]! : a[i * k + p]!);
    const bt = (p: number, j: number, tb: boolean) => (tb ? b[j * k + p]! : b[p * n + j]!);
    for (const [ta, tb] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      const out = new Float32Array(m * n);
      simd.matmul(a, b, [m, n, k], ta, tb, out);
      for (let i = 0; i < m; i++)
        for (let j = 0; j < n; j++) {
          let want = 0;
          for (let p = 0; p < k; p++) want += at(i, p, ta) * bt(p, j, tb);
          expect(out[i * n + j]).toBeCloseTo(want, 3);
        }
    }
  });

  /** The convolution as a plain sum (NHWC, filter [kh, kw, ci, co]), plus bias and relu. */
  function directConv(
    x: Float32Array,
    f: Float32Array,
    info: ReturnType<typeof tf.backend_util.computeConv2DInfo>,
    bias?: Float32Array,
    relu = false,
  ): Float32Array {
    const { batchSize: b, inHeight: h, inWidth: w, inChannels: ci, outChannels: co } = info;
    const { filterHeight: kh, filterWidth: kw, strideHeight: s } = info;
    const { top, left } = info.padInfo;
    const out = new Float32Array(b * info.outHeight * info.outWidth * co);
    let o = 0;
    for (let n = 0; n < b; n++)
      for (let oy = 0; oy < info.outHeight; oy++)
        for (let ox = 0; ox < info.outWidth; ox++)
          for (let c = 0; c < co; c++, o++) {
            let want = bias ? bias[c]! : 0;
            for (let r = 0; r < kh; r++)
              for (let q = 0; q < kw; q++) {
                const [iy, ix] = [oy * s + r - top, ox * s + q - left];
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                for (let d = 0; d < ci; d++)
                  want += x[((n * h + iy) * w + ix) * ci + d]! * f[((r * kw + q) * ci + d) * co + c]!;
              }
            out[o] = relu && want < 0 ? 0 : want;
          }
    return out;
  }

  it('conv2d with stride 2 and padding equals the direct sum', () => {
    const [b, h, w, ci, co, kh, kw] = [2, 7, 6, 5, 9, 3, 3];
    const x = values(b * h * w * ci, 3);
    const f = values(kh * kw * ci * co, 4);
    const info = tf.backend_util.computeConv2DInfo([b, h, w, ci], [kh, kw, ci, co], 2, 1, 'same');
    expect(simd.winogradApplies(info)).toBe(false);
    const out = new Float32Array(b * info.outHeight * info.outWidth * co);
    simd.conv2d(x, f, info, out);
    const want = directConv(x, f, info);
    out.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 4));
  });

  // 3x3 stride-1 convolutions from 8 input channels take Winograd's F(2x2, 3x3): transformed
  // tiles, 16 GEMMs, the inverse transform with bias and relu. Half tiles at odd output sizes,
  // several chunks of tile rows (the MNIST shape), padding on some sides only.
  it.each([
    { shape: [2, 9, 8, 8, 16], pad: 'valid', bias: false, relu: false },
    { shape: [1, 11, 13, 12, 8], pad: 'same', bias: true, relu: true },
    { shape: [2, 26, 26, 32, 32], pad: 'valid', bias: true, relu: true },
    { shape: [1, 24, 24, 32, 32], pad: 2, bias: false, relu: false },
  ] as const)('conv2d by Winograd equals the direct sum: $shape, pad $pad, bias $bias, relu $relu', (c) => {
    const [b, h, w, ci, co] = c.shape;
    const x = values(b * h * w * ci, 5);
    const f = values(9 * ci * co, 6);
    const bias = c.bias ? values(co, 7) : undefined;
    const info = tf.backend_util.computeConv2DInfo([b, h, w, ci], [3, 3, ci, co], 1, 1, c.pad);
    expect(simd.winogradApplies(info)).toBe(true);
    const out = new Float32Array(b * info.outHeight * info.outWidth * co);
    simd.conv2d(x, f, info, out, undefined, { bias: bias ?? null, relu: c.relu });
    const want = directConv(x, f, info, bias, c.relu);
    let worst = 0;
    want.forEach((v, i) => (worst = Math.max(worst, Math.abs(out[i]! - v) / (1 + Math.abs(v)))));
    expect(worst).toBeLessThan(1e-5);
    // And the direct kernel, with Winograd off, agrees with it.
    simd.setWinograd(false);
    try {
      expect(simd.winogradApplies(info)).toBe(false);
      const direct = new Float32Array(out.length);
      simd.conv2d(x, f, info, direct, undefined, { bias: bias ?? null, relu: c.relu });
      let gap = 0;
      direct.forEach((v, i) => (gap = Math.max(gap, Math.abs(out[i]! - v) / (1 + Math.abs(v)))));
      expect(gap).toBeLessThan(1e-5);
    } finally {
      simd.setWinograd(true);
    }
  });

  // The filter gradient of the same convolutions, by F(3x3, 2x2) (several chunks of tile rows
  // and a half tile at the edges in the MNIST shape), against the plain sum and the direct kernel.
  it.each([
    { shape: [2, 9, 8, 8, 16], pad: 'valid' },
    { shape: [1, 11, 13, 12, 8], pad: 'same' },
    { shape: [2, 26, 26, 32, 32], pad: 'valid' },
  ] as const)('the filter gradient by Winograd equals the direct sum: $shape, pad $pad', (c) => {
    const [b, h, w, ci, co] = c.shape;
    const info = tf.backend_util.computeConv2DInfo([b, h, w, ci], [3, 3, ci, co], 1, 1, c.pad);
    expect(simd.winogradApplies(info)).toBe(true);
    const x = values(b * h * w * ci, 8);
    const dy = values(b * info.outHeight * info.outWidth * co, 9);
    const { top, left } = info.padInfo;
    const want = new Float64Array(9 * ci * co);
    for (let n = 0; n < b; n++)
      for (let oy = 0; oy < info.outHeight; oy++)
        for (let ox = 0; ox < info.outWidth; ox++)
          for (let r = 0; r < 3; r++)
            for (let q = 0; q < 3; q++) {
              const [iy, ix] = [oy + r - top, ox + q - left];
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              for (let d = 0; d < ci; d++) {
                const xv = x[((n * h + iy) * w + ix) * ci + d]!;
                const g = ((n * info.outHeight + oy) * info.outWidth + ox) * co;
                for (let k = 0; k < co; k++) want[((r * 3 + q) * ci + d) * co + k]! += xv * dy[g + k]!;
              }
            }
    const out = new Float32Array(9 * ci * co);
    simd.conv2dBackpropFilter(x, dy, info, out);
    const scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    let worst = 0;
    want.forEach((v, i) => (worst = Math.max(worst, Math.abs(out[i]! - v) / scale)));
    expect(worst).toBeLessThan(1e-5);
    simd.setWinograd(false);
    try {
      const direct = new Float32Array(out.length);
      simd.conv2dBackpropFilter(x, dy, info, direct);
      let gap = 0;
      direct.forEach((v, i) => (gap = Math.max(gap, Math.abs(out[i]! - v) / scale)));
      expect(gap).toBeLessThan(1e-5);
    } finally {
      simd.setWinograd(true);
    }
  });
});
