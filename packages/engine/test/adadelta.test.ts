import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { ADADELTA_KERNEL, KerasAdadelta } from '../src/adadelta.ts';
import { initBackend } from '../src/backend.ts';

describe(KerasAdadelta.name, () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('takes the Keras/PyTorch first step, not an SGD step of size lr', () => {
    const v = tf.variable(tf.tensor1d([1, -2, 3]), true, 'adadelta_v');
    const g = tf.tensor1d([0.5, -1, 2]);
    const opt = new KerasAdadelta(1.0, 0.95, 1e-7);
    opt.applyGradients({ adadelta_v: g });
    const gs = [0.5, -1, 2];
    const expected = [1, -2, 3].map(
      (x, i) => x - (Math.sqrt(1e-7) / Math.sqrt(0.05 * gs[i]! ** 2 + 1e-7)) * gs[i]!,
    );
    const got = Array.from(v.dataSync());
    got.forEach((x, i) => expect(x).toBeCloseTo(expected[i]!, 5));
    // tfjs' own Adadelta would have moved each weight by the full gradient.
    expect(Math.abs(got[2]! - 3)).toBeLessThan(0.01);
    opt.dispose();
    v.dispose();
  });

  it('restores its accumulators: resumed training equals uninterrupted training', async () => {
    const grads = [0.3, -0.7, 0.2, 0.9].map((x) => tf.tensor1d([x, -x]));
    const run = async (split: boolean) => {
      const v = tf.variable(tf.tensor1d([1, 1]), true, `adadelta_r${split}`);
      let opt = new KerasAdadelta(1.0);
      for (let i = 0; i < 4; i++) {
        if (split && i === 2) {
          const saved = (await opt.getWeights()).map((w) => ({ name: w.name, tensor: w.tensor.clone() }));
          opt.dispose();
          opt = new KerasAdadelta(1.0);
          await opt.setWeights(saved);
          tf.dispose(saved.map((s) => s.tensor));
        }
        opt.applyGradients({ [`adadelta_r${split}`]: grads[i]! });
      }
      const out = Array.from(v.dataSync());
      opt.dispose();
      v.dispose();
      return out;
    };
    const straight = await run(false);
    const resumed = await run(true);
    resumed.forEach((x, i) => expect(x).toBeCloseTo(straight[i]!, 6));
  });

  it('takes the same steps through the fused wasm kernel as op by op on cpu', async () => {
    // 1001 weights: the SIMD loop's 4-wide body and its scalar tail.
    const n = 1001;
    const init = Array.from({ length: n }, (_, i) => Math.sin(i));
    const grads = [0.3, -0.7, 0.2].map((s) => Array.from({ length: n }, (_, i) => s * Math.cos(i * s)));
    const run = (name: string) => {
      const v = tf.variable(tf.tensor1d(init), true, name);
      const opt = new KerasAdadelta(1.0);
      for (const g of grads) tf.tidy(() => opt.applyGradients({ [name]: tf.tensor1d(g) }));
      const out = Array.from(v.dataSync());
      opt.dispose();
      v.dispose();
      return out;
    };
    const cpu = run('adadelta_cpu');
    await initBackend('wasm');
    expect(tf.getKernel(ADADELTA_KERNEL, 'wasm')).toBeDefined();
    const wasm = run('adadelta_wasm');
    await tf.setBackend('cpu');
    expect(wasm.some((x, i) => Math.abs(x - init[i]!) > 0.001)).toBe(true);
    wasm.forEach((x, i) => expect(x).toBeCloseTo(cpu[i]!, 5));
  });
});
