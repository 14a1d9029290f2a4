import { describe, expect, it } from 'vitest';
import { relaxedSimdSupported } from '../src/simd-kernels.ts';
import { kernelSuite } from './kernel-suite.ts';

// The tests run on Node 24 (scripts/lib.sh brings it), which has relaxed SIMD on by default.
it('the runtime has relaxed SIMD, so the relaxed build is the one chosen', () => {
  expect(relaxedSimdSupported()).toBe(true);
});

describe('wasm kernels, relaxed SIMD build (kernels-relaxed.wasm)', () => kernelSuite('relaxed-simd'));
