import { describe, it } from 'vitest';
import { relaxedSimdSupported } from '../src/simd-kernels.ts';
import { kernelSuite } from './kernel-suite.ts';

if (relaxedSimdSupported()) {
  describe('wasm kernels, relaxed SIMD build (kernels-relaxed.wasm)', () => kernelSuite('relaxed-simd'));
} else {
  const why = 'this runtime has no relaxed SIMD (Node 22+ has it by default)';
  console.log(`skipped: ${why}`);
  it.skip(`relaxed SIMD kernels: ${why}`, () => {});
}
