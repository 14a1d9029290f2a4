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

describe('the egress settings', () => {
  it('take host names, addresses and CIDRs, and name an entry that is none of them', () => {
    const env = workerEnvSchema.parse({ FETCH_ALLOW_HOSTS: 'minio, 10.0.0.0/8,fd00::/8,127.0.0.1' });
    expect(env.FETCH_ALLOW_HOSTS).toEqual(['minio', '10.0.0.0/8', 'fd00::/8', '127.0.0.1']);
    const r = workerEnvSchema.safeParse({
      FETCH_ALLOW_HOSTS: 'minio,10.0.0.0/33,http://x',
      FETCH_MAX_MB: '0',
    });
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).sort()).toEqual([
      'FETCH_ALLOW_HOSTS.1: expected a host name, an IP address or a CIDR',
      'FETCH_ALLOW_HOSTS.2: expected a host name, an IP address or a CIDR',
      expect.stringMatching(/^FETCH_MAX_MB: /),
    ]);
  });
});
