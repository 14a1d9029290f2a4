import { describe, expect, it } from 'vitest';
import { parseClusterNodes, redisTargetOf } from '@mlq/contract/env';
import { describeTarget, isConnectionError, reconnectDelayMs, redisKeysFor } from '../src/index.ts';

describe('keys', () => {
  it('puts every key and channel of an install on a cluster under its hash tag, and only there', () => {
    const k = redisKeysFor('mlq', parseClusterNodes('a:1'));
    const names = [
      k.all,
      k.jobTypes,
      k.cancelMark('j1'),
      k.rerunMark('j1'),
      k.sessionRevoked('s1'),
      k.sessionEpoch,
      k.idempotency('key-id', 'key'),
      k.rateLimit,
      k.cancelChannel,
      k.worker('w1'),
      k.workersPattern,
      k.workerBackends,
      k.models,
      ...(['seq', 'versions', 'by-job', 'labels'] as const).map((part) => k.model('m', part)),
      k.labelChannel,
      k.versionChannel,
    ];
    expect(k.root).toBe('{mlq}'); // BullMQ's prefix: queue keys are {mlq}:<queue>:…
    // Redis Cluster hashes only the text between the first "{" and the next "}": one slot for all.
    for (const n of names) expect(n.startsWith('{mlq}:'), n).toBe(true);
    expect(new Set(names).size).toBe(names.length);
    expect(redisKeysFor('mlq', { kind: 'single', url: 'redis://x:6379' }).jobTypes).toBe('mlq:job-types');
  });
});

describe('targets', () => {
  it('parses REDIS_CLUSTER_NODES entries, with credentials and TLS from URL entries', () => {
    expect(parseClusterNodes('10.0.0.1:7000, 10.0.0.2:7001')).toEqual({
      kind: 'cluster',
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
      ],
    });
    expect(parseClusterNodes('rediss://app:s%40cret@a.example:6380,b.example:6380')).toEqual({
      kind: 'cluster',
      nodes: [
        { host: 'a.example', port: 6380 },
        { host: 'b.example', port: 6380 },
      ],
      username: 'app',
      password: 's@cret',
      tls: true,
    });
    expect(() => parseClusterNodes('a.example')).toThrow(/"a.example" is not host:port/);
    expect(() => parseClusterNodes('http://a:1')).toThrow(/is not host:port/);
    expect(() => parseClusterNodes(' , ')).toThrow(/at least one/);
  });

  it('selects the cluster when REDIS_CLUSTER_NODES is set, and never logs a password', () => {
    const cluster = parseClusterNodes('a:1,b:2');
    expect(redisTargetOf({ REDIS_URL: 'redis://x:6379', REDIS_CLUSTER_NODES: cluster })).toBe(cluster);
    expect(redisTargetOf({ REDIS_URL: 'redis://x:6379' })).toEqual({ kind: 'single', url: 'redis://x:6379' });
    expect(describeTarget({ kind: 'single', url: 'redis://:hunter2@db:6379/0' })).toBe(
      'redis://:***@db:6379/0',
    );
    expect(describeTarget(parseClusterNodes('redis://u:pw@a:1,b:2'))).toBe('cluster a:1,b:2');
  });
});

describe('reconnects', () => {
  it('backs off from 200 ms, doubling, to at most 2 s', () => {
    expect([1, 2, 3, 4, 5, 50].map(reconnectDelayMs)).toEqual([200, 400, 800, 1600, 2000, 2000]);
  });

  it('tells "Redis is away" from a bad command', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' });
    expect(isConnectionError(refused)).toBe(true);
    expect(
      isConnectionError(new Error("Stream isn't writeable and enableOfflineQueue options is false")),
    ).toBe(true);
    expect(isConnectionError(new Error('Connection is closed.'))).toBe(true);
    expect(isConnectionError(new Error('CLUSTERDOWN The cluster is down'))).toBe(true);
    expect(isConnectionError(new Error('LOADING Redis is loading the dataset in memory'))).toBe(true);
    expect(
      isConnectionError(new Error('WRONGTYPE Operation against a key holding the wrong kind of value')),
    ).toBe(false);
    expect(isConnectionError('ECONNREFUSED')).toBe(false);
  });
});
