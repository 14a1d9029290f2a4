/**
 * The wasm training kernels against tfjs-cpu: same inputs, gradients compared numerically. Defined
 * once, run once per build of the SIMD kernels (wasm-kernels.test.ts: relaxed SIMD;
 * wasm-kernels-simd.test.ts: the 128-bit SIMD fallback), each in a test file of its own since the
 * build is chosen once per thread.
 *
 * Tensors are always created inside the backend that uses them: tfjs-cpu's int32->float32 Cast
 * shares its buffer, and moving such a tensor to wasm later copies it with the int32 dtype.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.ts';
// Keras' BatchNormalization rule, whose training-mode call runs on our kernels.
import '../src/batch-norm.ts';
import { FeatureDropout } from '../src/dropout.ts';
import { kernelVariant, selectKernelVariant, type KernelVariant } from '../src/simd-kernels.ts';
import { registerWasmTrainingKernels } from '../src/wasm-kernels.ts';

type Shape4 = [number, number, number, number];
type Pad = 'valid' | 'same' | [[number, number], [number, number], [number, number], [number, number]];
interface Out {
  shape: number[];
  data: Float32Array;
}

const SLOW = 60_000;

/** Deterministic values in [-1, 1) (mulberry32), identical for both backends. */
function values(n: number, seed: number): Float32Array {
  let a = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * 2 - 1;
  });
}

function rand4(shape: Shape4, seed: number): tf.Tensor4D {
  return tf.tensor4d(
    values(
      shape.reduce((p, d) => p * d, 1),
      seed,
    ),
    shape,
  );
}

/** Run `f` on one backend and read its outputs back. */
async function on(backend: 'cpu' | 'wasm', f: () => tf.Tensor[]): Promise<Out[]> {
  await tf.setBackend(backend);
  const ts = tf.tidy(f);
  const out = ts.map((t) => ({ shape: t.shape, data: t.dataSync() as Float32Array }));
  tf.dispose(ts);
  return out;
}

/** Max abs difference within `tol` of the reference's largest magnitude, per output. */
function expectClose(actual: Out[], expected: Out[], tol = 1e-4): void {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => {
    const a = actual[i]!;
    expect(a.shape).toEqual(e.shape);
    let diff = 0;
    let scale = 0;
    e.data.forEach((v, j) => {
      diff = Math.max(diff, Math.abs(v - a.data[j]!));
      scale = Math.max(scale, Math.abs(v));
    });
    expect(diff, `output ${i}: max |diff| ${diff} vs max |ref| ${scale}`).toBeLessThanOrEqual(
      tol * Math.max(scale, 1e-3),
    );
  });
}

/** Both backends, same function; wasm must match cpu. */
async function compare(f: () => tf.Tensor[], tol?: number): Promise<void> {
  const wasm = await on('wasm', f);
  const cpu = await on('cpu', f);
  expectClose(wasm, cpu, tol);
}

/** Gradients of sum(op(x, w) * r) w.r.t. x and w, with a fixed random r (so dy = r). */
function gradsOf(op: (x: tf.Tensor4D, w: tf.Tensor4D) => tf.Tensor4D, xShape: Shape4, wShape: Shape4) {
  return (): tf.Tensor[] => {
    const x = rand4(xShape, 1);
    const w = rand4(wShape, 2);
    const y = op(x, w);
    const r = rand4(y.shape, 3);
    const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(op(a as tf.Tensor4D, b as tf.Tensor4D), r)),
    );
    return g([x, w]);
  };
}

/** A dilated filter as the equivalent undilated one, zeros between taps (differentiable). */
function expandFilter(w: tf.Tensor4D, d: number): tf.Tensor4D {
  const [kh, kw, a, b] = w.shape;
  const split = tf.reshape(w, [kh, 1, kw, 1, a, b]);
  const zeros = tf.pad(
    split,
    [0, d - 1, 0, d - 1, 0, 0].map((p): [number, number] => [0, p]),
  );
  const full = tf.reshape(zeros, [kh * d, kw * d, a, b]) as tf.Tensor4D;
  return tf.slice(full, [0, 0, 0, 0], [(kh - 1) * d + 1, (kw - 1) * d + 1, a, b]);
}

function outShape(x: Shape4, f: Shape4, s: number, d: number, pad: Pad, depthwise: boolean): Shape4 {
  return tf.backend_util.computeConv2DInfo(x, f, s, d, pad, undefined, depthwise).outShape;
}

// prettier-ignore
const PADS: Pad[] = ['valid', 'same', [[0, 0], [1, 2], [2, 0], [0, 0]]];
const CONV_SHAPES: { x: Shape4; w: Shape4 }[] = [
  { x: [2, 9, 10, 1], w: [3, 3, 1, 4] },
  { x: [3, 8, 7, 3], w: [2, 3, 3, 8] },
  { x: [2, 12, 12, 16], w: [5, 5, 16, 8] },
  // The SIMD filter gradient's tails: 4-channel input tiles then single rows, 8 outputs then scalar.
  { x: [2, 7, 9, 6], w: [3, 2, 6, 12] },
  // 1x1 (MobileNets' pointwise layers): the input gradient is one product at stride 1.
  { x: [2, 5, 6, 12], w: [1, 1, 12, 10] },
  // An image's first conv (< 8 input channels: the thin input-gradient kernel), Co not a multiple of 4.
  { x: [2, 11, 10, 3], w: [3, 3, 3, 6] },
  // 3x3 at stride 1 from 8 input channels: Winograd's F(2x2, 3x3), forward and (as a padded
  // convolution) the input gradient; odd output sizes leave half tiles, 9 tiles a row leave a
  // GEMM tail, and Ci = 12 is not a multiple of 8.
  { x: [2, 10, 9, 8], w: [3, 3, 8, 16] },
  { x: [3, 9, 12, 12], w: [3, 3, 12, 8] },
  // The MNIST CNN's second convolution.
  { x: [1, 26, 26, 32], w: [3, 3, 32, 32] },
];
const DW_SHAPES: { x: Shape4; w: Shape4 }[] = [
  { x: [2, 9, 10, 1], w: [3, 3, 1, 1] },
  { x: [3, 8, 7, 3], w: [3, 3, 3, 2] },
  { x: [2, 12, 11, 8], w: [5, 5, 8, 1] },
  // Multiplier 1 on the SIMD kernels: 4-channel lanes, then a scalar tail.
  { x: [2, 10, 9, 14], w: [3, 3, 14, 1] },
];

/** Every kernel comparison, on the `variant` build of the SIMD kernels. */
export function kernelSuite(variant: KernelVariant): void {
  let firstRegistration: string[] = [];

  beforeAll(async () => {
    selectKernelVariant(variant);
    const require = createRequire(import.meta.url);
    setWasmPaths(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')) + '/dist/');
    expect(await tf.setBackend('wasm')).toBe(true);
    firstRegistration = registerWasmTrainingKernels();
  }, SLOW);

  describe('registerWasmTrainingKernels', () => {
    it('registers the missing gradient kernels once', () => {
      const names = tf.getKernelsForBackend('wasm').map((k) => k.kernelName);
      for (const k of [
        'Conv2DBackpropFilter',
        'DepthwiseConv2dNativeBackpropFilter',
        'DepthwiseConv2dNativeBackpropInput',
      ]) {
        expect(names).toContain(k);
        expect(firstRegistration).toContain(k);
      }
      expect(registerWasmTrainingKernels()).toEqual([]);
    });

    it('rejects NCHW with a clear error', async () => {
      await tf.setBackend('wasm');
      const x = tf.zeros([1, 4, 6, 6]);
      const dy = tf.zeros([1, 2, 4, 4]);
      const attrs = { strides: 1, pad: 'valid', dataFormat: 'NCHW', filterShape: [3, 3, 4, 2] };
      expect(() => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, attrs)).toThrow(/NHWC/);
      tf.dispose([x, dy]);
    });
  });

  describe('conv2d gradients (filter and input) match tfjs-cpu', () => {
    for (const pad of PADS) {
      for (const s of [1, 2]) {
        for (const { x, w } of CONV_SHAPES) {
          it(`pad ${JSON.stringify(pad)} stride ${s} x ${x} w ${w}`, async () => {
            await compare(gradsOf((a, b) => tf.conv2d(a, b, s, pad), x, w));
          });
        }
      }
    }
  });

  describe('Conv2D forward (our kernel from 4 input channels) matches tfjs-cpu', () => {
    for (const pad of PADS) {
      for (const [s, d] of [
        [1, 1],
        [2, 1],
        [1, 2],
      ] as const) {
        for (const { x, w } of CONV_SHAPES) {
          it(`pad ${JSON.stringify(pad)} stride ${s} dilation ${d} x ${x} w ${w}`, async () => {
            await compare(() => [tf.conv2d(rand4(x, 1), rand4(w, 2), s, pad, 'NHWC', d)]);
          });
        }
      }
    }
  });

  describe('FusedConv2D (our kernel for bias and/or relu) matches tfjs-cpu', () => {
    for (const activation of ['linear', 'relu', 'elu'] as const) {
      for (const withBias of [true, false]) {
        it(`${activation}${withBias ? ' + bias' : ''}, pad same, stride 2`, async () => {
          await compare(() => {
            const [x, filter] = [rand4([2, 12, 11, 6], 1), rand4([3, 3, 6, 12], 2)];
            const bias = withBias ? tf.tensor1d(values(12, 3)) : undefined;
            return [tf.fused.conv2d({ x, filter, strides: 2, pad: 'same', bias, activation })];
          });
        });
        // Stride 1 from 8 channels: the Winograd path, whose epilogue adds the bias and applies relu.
        it(`${activation}${withBias ? ' + bias' : ''}, pad same, stride 1 (Winograd)`, async () => {
          await compare(() => {
            const [x, filter] = [rand4([2, 11, 10, 8], 1), rand4([3, 3, 8, 16], 2)];
            const bias = withBias ? tf.tensor1d(values(16, 3)) : undefined;
            return [tf.fused.conv2d({ x, filter, strides: 1, pad: 'same', bias, activation })];
          });
        });
      }
    }
  });

  describe('FeatureDropout on the wasm kernel', () => {
    it('keeps about 1 - rate, scales by 1/keep, passes the gradient through the same mask, leaks nothing', async () => {
      await initBackend('wasm');
      const layer = new FeatureDropout({ rate: 0.25 });
      const x = tf.add(tf.abs(tf.tensor2d(values(64 * 1001, 21), [64, 1001])), 0.5); // no zeros
      const before = tf.memory().numTensors;
      const [y, g] = tf.tidy(() => {
        const f = (a: tf.Tensor) => tf.sum(tf.mul(layer.apply(a, { training: true }) as tf.Tensor, 3));
        const { value, grad } = tf.valueAndGrad(f)(x);
        const out = layer.apply(x, { training: true }) as tf.Tensor; // another draw
        value.dispose();
        return [out.dataSync(), grad.dataSync()];
      });
      expect(tf.memory().numTensors).toBe(before);
      const xs = x.dataSync();
      let kept = 0;
      for (let i = 0; i < xs.length; i++) {
        const m = y![i]! / xs[i]!;
        if (m !== 0) {
          kept++;
          expect(m).toBeCloseTo(1 / 0.75, 5);
        }
        // The gradient's mask: 3 * (0 or 1/keep).
        expect([0, 4]).toContainEqual(Math.round(g![i]! * 1000) / 1000);
      }
      expect(kept / xs.length).toBeGreaterThan(0.73);
      expect(kept / xs.length).toBeLessThan(0.77);
      expect((layer.apply(x, { training: false }) as tf.Tensor).dataSync()).toEqual(xs);
    });
  });

  describe('depthwise conv gradients (filter and input) match tfjs-cpu', () => {
    for (const pad of ['valid', 'same'] as const) {
      for (const s of [1, 2]) {
        for (const { x, w } of DW_SHAPES) {
          it(`pad ${pad} stride ${s} x ${x} w ${w}`, async () => {
            await compare(gradsOf((a, b) => tf.depthwiseConv2d(a, b, s, pad), x, w));
          });
        }
      }
    }
  });

  describe('depthwise conv forward matches tfjs-cpu', () => {
    for (const pad of PADS) {
      for (const [st, d] of [
        [1, 1],
        [2, 1],
        [1, 2],
      ] as const) {
        for (const { x, w } of DW_SHAPES) {
          it(`pad ${JSON.stringify(pad)} stride ${st} dilation ${d} x ${x} w ${w}`, async () => {
            await compare(() => [tf.depthwiseConv2d(rand4(x, 1), rand4(w, 2), st, pad, 'NHWC', d)]);
          });
        }
      }
    }
  });

  it('Relu6, and the gradients of Relu6 and ClipByValue, match tfjs-cpu, at the kinks too', async () => {
    await compare(() => {
      // Values in [-8, 8), with exact 0s and 6s.
      const x = tf.concat([
        tf.mul(rand4([2, 5, 7, 3], 4), 8).reshape([210]),
        tf.tensor1d([0, 6, 6, 0, -0, 7]),
      ]);
      const r = tf.tensor1d(values(216, 5));
      const grad = (f: (a: tf.Tensor) => tf.Tensor) => tf.grad((a: tf.Tensor) => tf.sum(tf.mul(f(a), r)))(x);
      return [
        grad(tf.relu6),
        tf.relu6(x),
        grad((a) => tf.clipByValue(a, 0, 6)),
        grad((a) => tf.clipByValue(a, -0.5, 0.25)),
      ];
    }, 0);
  });

  it('BatchNormalization training (our kernels on wasm) matches tfjs-cpu: y, gradients, moving statistics', async () => {
    const step = () => {
      const layer = tf.layers.batchNormalization({
        momentum: 0.9,
        gammaInitializer: tf.initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: 1 }),
        betaInitializer: tf.initializers.randomUniform({ minval: -1, maxval: 1, seed: 2 }),
      });
      // 13 channels: 4-lane SIMD, then a scalar tail; mean far from 0 as after a conv.
      const x = tf.add(tf.mul(rand4([4, 7, 5, 13], 1), 3), 2);
      const r = rand4([4, 7, 5, 13], 3);
      const loss = (a: tf.Tensor) => tf.sum(tf.mul(layer.apply(a, { training: true }) as tf.Tensor, r));
      const y = layer.apply(x, { training: true }) as tf.Tensor;
      const dx = tf.grad(loss)(x);
      const { grads } = tf.variableGrads(() => loss(x) as tf.Scalar);
      const byLayer = layer.trainableWeights.map((w) => grads[w.originalName] ?? grads[w.name]!);
      return [y, dx, ...byLayer, ...layer.nonTrainableWeights.map((w) => w.read())];
    };
    const wasm = await on('wasm', step);
    const names = await tf.profile(() => void tf.dispose(step()));
    expect(names.kernelNames).toEqual(expect.arrayContaining(['MlqBatchNormTrain', 'MlqBatchNormTrainGrad']));
    expect(wasm.length).toBe(6);
    expectClose(wasm, await on('cpu', step), 2e-4);
  });

  it('FusedBatchNorm with given statistics (inference) matches tfjs-cpu, with and without offset and scale', async () => {
    await compare(() => {
      const x = tf.add(tf.mul(rand4([3, 5, 4, 13], 1), 3), 2);
      const [mean, offset] = [tf.tensor1d(values(13, 2)), tf.tensor1d(values(13, 3))];
      const variance = tf.add(tf.abs(tf.tensor1d(values(13, 4))), 0.1);
      const scale = tf.add(tf.tensor1d(values(13, 5)), 1.5);
      return [
        tf.batchNorm(x, mean, variance, offset, scale, 1e-3),
        tf.batchNorm(x, mean, variance, undefined, scale),
        tf.batchNorm(x, mean, variance, offset),
        tf.batchNorm(x.reshape([60, 13]), mean, variance),
      ];
    });
  });

  // tfjs-core refuses dilation > 1 in the conv gradients and tfjs-cpu's backprop kernels ignore
  // it, so dilated kernels are called directly and checked against the undilated equivalent
  // (the filter expanded with zeros) on cpu.
  describe('dilation 2 (kernels called directly)', () => {
    const d = 2;
    const run = (k: string, inputs: tf.NamedTensorMap, attrs: object) =>
      tf.engine().runKernel(k, inputs, attrs as tf.NamedAttrMap) as tf.Tensor;
    const kinds = [
      { op: 'Conv2D', x: [2, 13, 12, 3] as Shape4, w: [3, 3, 3, 4] as Shape4, depthwise: false },
      {
        op: 'DepthwiseConv2dNative',
        x: [2, 13, 12, 4] as Shape4,
        w: [3, 3, 4, 2] as Shape4,
        depthwise: true,
      },
    ];
    for (const { op, x: xShape, w: wShape, depthwise } of kinds) {
      for (const pad of ['valid', 'same'] as const) {
        for (const s of [1, 2]) {
          it(`${op}BackpropFilter/Input pad ${pad} stride ${s}`, async () => {
            const eShape: Shape4 = [5, 5, wShape[2], wShape[3]];
            const dyShape = outShape(xShape, wShape, s, d, pad, depthwise);
            const grads = (
              dilations: number,
              filterShape: Shape4,
              filter: (w: tf.Tensor4D) => tf.Tensor4D,
            ) => {
              const [x, w, dy] = [rand4(xShape, 1), rand4(wShape, 2), rand4(dyShape, 3)];
              const attrs = { strides: s, pad, dilations, ...(depthwise ? {} : { dataFormat: 'NHWC' }) };
              return [
                run(`${op}BackpropFilter`, { x, dy }, { ...attrs, filterShape }),
                run(`${op}BackpropInput`, { dy, filter: filter(w) }, { ...attrs, inputShape: xShape }),
              ];
            };
            const wasm = await on('wasm', () => grads(d, wShape, (w) => w));
            const cpu = await on('cpu', () => {
              const [dwFull, dx] = grads(1, eShape, (w) => expandFilter(w, d));
              return [tf.stridedSlice(dwFull!, [0, 0, 0, 0], eShape, [d, d, 1, 1]), dx!];
            });
            expectClose(wasm, cpu);
          });
        }
      }
    }
  });

  describe('replaced kernels match tfjs-cpu', () => {
    it('BatchMatMul with transposed operands', async () => {
      await compare(() => {
        const a = tf.tensor2d(values(6 * 40, 1), [6, 40]);
        const b = tf.tensor2d(values(40 * 9, 2), [40, 9]);
        const [aT, bT] = [a.transpose(), b.transpose()];
        const batched = tf.matMul(
          tf.tensor3d(values(2 * 3 * 4, 3), [2, 3, 4]),
          tf.tensor3d(values(2 * 5 * 4, 4), [2, 5, 4]),
          false,
          true,
        );
        // Past the SIMD kernel's 256-long reduction panels and 512-column panels, with tails.
        const c = tf.tensor2d(values(5 * 300, 5), [5, 300]);
        const d = tf.tensor2d(values(300 * 530, 6), [300, 530]);
        return [
          tf.matMul(a, b),
          tf.matMul(aT, b, true, false),
          tf.matMul(a, bT, false, true),
          tf.matMul(aT, bT, true, true),
          batched,
          tf.matMul(c, d),
          tf.matMul(c.transpose(), d, true, false),
          tf.matMul(c, d.transpose(), false, true),
        ];
      });
    });

    it('fused MatMul with relu and relu6 (Dense layers) matches tfjs-cpu, and keeps NaN as it does', async () => {
      const dense = (activation: 'relu' | 'relu6', a: tf.Tensor2D) =>
        tf.fused.matMul({
          a,
          b: tf.tensor2d(values(40 * 9, 2), [40, 9]),
          bias: tf.tensor1d(values(9, 3)),
          activation,
        });
      // Finite: values scaled so that relu6 clips some outputs at 6.
      await compare(() => {
        const a = tf.tensor2d(values(6 * 40, 1), [6, 40]).mul(8) as tf.Tensor2D;
        return [dense('relu', a), dense('relu6', a)];
      });
      // inf - inf inside the product: a NaN with its sign bit set, which the backend's own fused
      // clamp, Relu and Relu6 turn into 0. Row 0 holds +inf (NaN in every output), row 1 is finite.
      const nans = async (backend: 'cpu' | 'wasm') =>
        (
          await on(backend, () => {
            const a = tf.tensor2d([...new Array<number>(40).fill(Infinity), ...values(40, 4)], [2, 40]);
            return [dense('relu', a), dense('relu6', a), tf.maximum(tf.sub(a, a), 0)];
          })
        ).map((o) => Array.from(o.data, (v) => (Number.isNaN(v) ? 'NaN' : 'finite')));
      const [cpu, wasm] = [await nans('cpu'), await nans('wasm')];
      expect(wasm).toEqual(cpu);
      expect(wasm[0]!.slice(0, 9)).toEqual(new Array(9).fill('NaN'));
      expect(wasm[0]!.slice(9)).toEqual(new Array(9).fill('finite'));
      // The operand order the kernel relies on: Maximum(x, 0) keeps a negative NaN.
      expect(wasm[2]!.slice(0, 40)).toEqual(new Array(40).fill('NaN'));
    });

    it('MaxPoolGrad routes to the first maximum, also for windows <= 0', async () => {
      for (const [k, s, pad] of [
        [2, 2, 'valid'],
        [3, 1, 'same'],
        [3, 2, 'same'],
      ] as const) {
        await compare(() => {
          // Rounded values make ties common; negative values catch a wrong running-max start.
          const x = tf.round(tf.mul(rand4([2, 9, 8, 5], 7), 3));
          return [tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, k, s, pad), 1.5)))(x)];
        }, 1e-6);
      }
    });

    it('Tile, as batch-norm gradients use it and in general', async () => {
      await compare(() => {
        const c = tf.tensor4d(values(16, 8), [1, 1, 1, 16]);
        const x = tf.tensor3d(values(12, 9), [2, 3, 2]);
        return [tf.tile(c, [4, 5, 6, 1]), tf.tile(x, [2, 1, 3]), tf.tile(x.reshape([12]), [3])];
      }, 0);
    });

    it('Sum and Mean over leading axes', async () => {
      await compare(() => {
        const x = rand4([16, 20, 20, 12], 5);
        return [
          tf.sum(x, [0, 1, 2]),
          tf.mean(x, [0, 1, 2], true),
          tf.sum(x, [1, 0]),
          tf.mean(x.reshape([6400, 12]), 0),
        ];
      });
    });
  });

  describe('training on wasm', () => {
    it(
      'a small conv net learns and leaks no tensors',
      async () => {
        await tf.setBackend('wasm');
        const model = tf.sequential({
          layers: [
            // Seeded initialisers: the same start every run, so the learning check is not a coin toss.
            tf.layers.conv2d({
              inputShape: [12, 12, 2],
              filters: 8,
              kernelSize: 3,
              activation: 'relu',
              kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
            }),
            tf.layers.depthwiseConv2d({
              kernelSize: 3,
              strides: 2,
              padding: 'same',
              activation: 'relu6',
              depthwiseInitializer: tf.initializers.glorotUniform({ seed: 2 }),
            }),
            tf.layers.maxPooling2d({ poolSize: 2 }),
            tf.layers.flatten(),
            // logits, for softmaxCrossEntropy
            tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.glorotUniform({ seed: 3 }) }),
          ],
        });
        const optimizer = tf.train.adam(0.01);
        const x = rand4([16, 12, 12, 2], 11);
        const labels = Array.from({ length: 16 }, (_, i) => [
          i % 3 === 0 ? 1 : 0,
          i % 3 === 1 ? 1 : 0,
          i % 3 === 2 ? 1 : 0,
        ]);
        const y = tf.tensor2d(labels);
        const step = () => {
          const loss = optimizer.minimize(
            () => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor),
            true,
          );
          const value = loss!.dataSync()[0]!;
          loss!.dispose();
          return value;
        };
        const losses = [step(), step()];
        const tensors = tf.memory().numTensors;
        for (let i = 0; i < 30; i++) losses.push(step());
        expect(tf.memory().numTensors).toBe(tensors);
        expect(losses.at(-1)!).toBeLessThan(losses[0]! * 0.8);
        model.dispose();
        tf.dispose([x, y]);
      },
      SLOW,
    );
  });

  it(`ran on the ${variant} build`, () => {
    expect(kernelVariant()).toBe(variant);
  });
}
