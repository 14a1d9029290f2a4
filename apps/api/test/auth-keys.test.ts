/** API_KEYS parsing and the scope table, without a server. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyRing } from '../src/auth/keys.ts';
import { requirementOf } from '../src/auth/policy.ts';
import { apiEnvSchema } from '../src/env.ts';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('API_KEYS', () => {
  it('resolves plain and hashed keys to their scopes, named by a hash prefix', () => {
    const ring = KeyRing.parse(
      `alpha-1234:read, beta-5678:submit,sha256:${sha('gamma-9').toUpperCase()}:admin,delta-0`,
    );
    expect(ring.size).toBe(4);
    expect(ring.resolve('alpha-1234')).toEqual({ keyId: sha('alpha-1234').slice(0, 12), scopes: ['read'] });
    expect(ring.resolve('beta-5678')?.scopes).toEqual(['read', 'submit']);
    expect(ring.resolve('gamma-9')).toEqual({
      keyId: sha('gamma-9').slice(0, 12),
      scopes: ['read', 'submit', 'admin'],
    });
    expect(ring.resolve('delta-0')?.scopes).toEqual(['read', 'submit', 'admin']);
    expect(ring.resolve('alpha-1234:read')).toBeUndefined();
    expect(ring.resolve(sha('gamma-9'))).toBeUndefined();
    expect(ring.resolve(undefined)).toBeUndefined();
    expect(ring.resolve('')).toBeUndefined();
  });

  it('is off when empty: every caller is anonymous with every scope', () => {
    const ring = KeyRing.parse(' , ');
    expect(ring.enabled).toBe(false);
    expect(ring.resolve(undefined)).toEqual({ keyId: 'anonymous', scopes: ['read', 'submit', 'admin'] });
  });

  it('lists every bad entry by position, never echoing a secret', () => {
    const r = apiEnvSchema.safeParse({ API_KEYS: 'sekrit-one:write,sha256:abc:read,:read,a:b:c,ok-key' });
    expect(r.success).toBe(false);
    const message = r.error!.issues.map((i) => i.message).join('\n');
    expect(message).toContain('entry 1: scope "write" is not one of read, submit, admin');
    expect(message).toContain('entry 2: sha256: needs 64 hex digits');
    expect(message).toContain('entry 3: the key is empty');
    expect(message).toContain('entry 4: expected <key>[:<scope>] or sha256:<hex>[:<scope>]');
    expect(message).not.toContain('sekrit');
  });
});

describe('scope table', () => {
  it.each([
    ['GET', '/healthz', 'public'],
    ['GET', '/openapi.json', 'public'],
    ['GET', '/v1/jobs', 'read'],
    ['GET', '/metrics', 'read'],
    ['GET', '/admin/queues/api/queues', 'read'],
    ['POST', '/v1/models/m:predict', 'read'],
    ['POST', '/v1/models/m/labels/production:predict', 'read'],
    ['POST', '/v2/models/m/versions/2/infer', 'read'],
    ['POST', '/v1/jobs/fine-tune', 'submit'],
    ['POST', '/v1/jobs/abc/retry', 'submit'],
    ['DELETE', '/v1/jobs/abc', 'submit'],
    ['POST', '/v1/datasets', 'submit'],
    ['PUT', '/v1/models/m/labels/production', 'admin'],
    ['DELETE', '/v1/models/m/labels/production', 'admin'],
    ['PUT', '/admin/queues/api/queues/fine-tune/pause', 'admin'],
    ['POST', '/v1/something-new', 'admin'],
  ])('%s %s needs %s', (method, path, need) => {
    expect(requirementOf(method, path)).toBe(need);
  });
});
