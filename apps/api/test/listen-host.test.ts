import { describe, expect, it } from 'vitest';
import { apiEnvSchema, listenHost } from '../src/env.ts';

const envOf = (vars: Record<string, string>) => apiEnvSchema.parse(vars);

describe('where the API listens', () => {
  it('listens on loopback only while API_KEYS is empty, and everywhere once keys are set', () => {
    expect(listenHost(envOf({}))).toEqual({ host: '127.0.0.1' });
    expect(listenHost(envOf({ API_KEYS: 'k1' }))).toEqual({ host: '0.0.0.0' });
    expect(listenHost(envOf({ API_KEYS: 'k1', HOST: '10.0.0.5' }))).toEqual({ host: '10.0.0.5' });
    for (const host of ['127.0.0.1', '127.0.1.1', '::1', 'localhost'])
      expect(listenHost(envOf({ HOST: host }))).toEqual({ host });
  });

  it('honours an explicit open HOST without keys, with a warning that names the risk', () => {
    const { host, warning } = listenHost(envOf({ HOST: '0.0.0.0' }));
    expect(host).toBe('0.0.0.0');
    expect(warning).toMatch(/HOST=0\.0\.0\.0 with API_KEYS empty: authentication is OFF/);
    expect(warning).toMatch(/anyone who can reach the port can submit jobs/);
  });

  it('reads REDIS_CLUSTER_NODES, and names a bad entry', () => {
    expect(envOf({ REDIS_CLUSTER_NODES: 'a:7000,b:7001' }).REDIS_CLUSTER_NODES).toMatchObject({
      kind: 'cluster',
      nodes: [
        { host: 'a', port: 7000 },
        { host: 'b', port: 7001 },
      ],
    });
    expect(envOf({ REDIS_CLUSTER_NODES: '' }).REDIS_CLUSTER_NODES).toBeUndefined();
    const bad = apiEnvSchema.safeParse({ REDIS_CLUSTER_NODES: 'a:7000,b' });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues[0]).toMatchObject({
      path: ['REDIS_CLUSTER_NODES'],
      message: expect.stringMatching(/"b"/),
    });
  });
});
