import { totalmem } from 'node:os';
import { describe, expect, it } from 'vitest';
import { cgroupMemoryLimit, jobMemoryMb, workerEnvSchema } from '../src/env.ts';

describe('the worker memory budget', () => {
  it('is WORKER_MEMORY_MB shared among the jobs run at once', () => {
    const env = workerEnvSchema.parse({ WORKER_MEMORY_MB: '3000', WORKER_CONCURRENCY: '2' });
    expect(jobMemoryMb(env)).toBe(1500);
  });

  it('defaults to the cgroup limit when one is set, else to the machine memory', () => {
    const env = workerEnvSchema.parse({});
    const limit = cgroupMemoryLimit();
    expect(jobMemoryMb(env)).toBe(Math.floor((limit ?? totalmem()) / (1 << 20)));
  });

  it('rejects budgets under 64 MB and unknown input pipelines, naming the variable', () => {
    const r = workerEnvSchema.safeParse({ WORKER_MEMORY_MB: '10', WORKER_INPUT_PIPELINE: 'disk' });
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => i.path.join('.')).sort()).toEqual([
      'WORKER_INPUT_PIPELINE',
      'WORKER_MEMORY_MB',
    ]);
  });
});
