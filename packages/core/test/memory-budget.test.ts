import { describe, expect, it } from 'vitest';
import {
  checkBackendMemory,
  WASM_TRAINING_BYTES,
  type TrainingMemory,
} from '../src/data/pipeline/memory-budget.ts';
import { InputError } from '../src/util/errors.ts';

const MB = 1 << 20;
const need = (gradients: number, activations: number, replicas = 0): TrainingMemory => ({
  gradients,
  optimizer: 2 * gradients,
  activations,
  replicas,
  total: 3 * gradients + activations + replicas,
});

describe('checkBackendMemory', () => {
  // The reported job: eight dense layers of 8192 units on MNIST, Adam, batches of 32.
  const big = need(2_215_000_000, 17 * MB);

  it('refuses on wasm what its 4 GiB heap cannot hold, naming the limit and what to change', () => {
    let e: unknown;
    try {
      checkBackendMemory('wasm', 2_215_000_000, big, 32);
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(InputError);
    const m = (e as Error).message;
    expect(m).toMatch(/^the model does not fit in the wasm backend's memory: training needs about \d+ MB/);
    expect(m).toContain('holds at most 4096 MB, of which training may plan on 3072 MB');
    expect(m).toContain('architectureOptions.units');
    expect(m).toContain('batchSize');
  });

  it('lets through what fits, and leaves other backends to the memory budget', () => {
    expect(() => checkBackendMemory('wasm', 100 * MB, need(100 * MB, 100 * MB), 32)).not.toThrow();
    expect(() => checkBackendMemory('cpu', 2_215_000_000, big, 32)).not.toThrow();
    expect(() => checkBackendMemory('tensorflow', 2_215_000_000, big, 32)).not.toThrow();
  });

  it('counts neither the helper threads’ replicas (their own instances) nor beyond the planned 3 GiB', () => {
    const atLimit = need(0, WASM_TRAINING_BYTES - 100 * MB, 10_000 * MB);
    expect(() => checkBackendMemory('wasm', 100 * MB, atLimit, 32)).not.toThrow();
    expect(() => checkBackendMemory('wasm', 100 * MB + 1, atLimit, 32)).toThrow(InputError);
  });
});
