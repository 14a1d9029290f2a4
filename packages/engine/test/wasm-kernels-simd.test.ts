import { describe } from 'vitest';
import { kernelSuite } from './kernel-suite.ts';

// The fallback build, for runtimes without relaxed SIMD, checked on this one too.
describe('wasm kernels, 128-bit SIMD build (kernels.wasm)', () => kernelSuite('simd'));
