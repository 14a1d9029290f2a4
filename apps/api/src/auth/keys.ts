/**
 * API keys and their scopes, from `API_KEYS`.
 *
 * Format: a comma-separated list of entries, each `<key>[:<scope>]` or `sha256:<hex>[:<scope>]`:
 *   - `<key>`: the secret itself (any characters but `,` and `:`; at least 16 are advised);
 *   - `sha256:<hex>`: the lowercase or uppercase hex SHA-256 digest of the secret (64 digits), so the
 *     configuration need not hold secrets (`printf %s "$KEY" | sha256sum`);
 *   - `<scope>`: `read`, `submit` or `admin`. Scopes are levels: `submit` includes `read`, `admin`
 *     includes both. An entry without a scope has every scope (the meaning `API_KEYS` had before
 *     scopes existed).
 * Example: `API_KEYS=ci-9f2c7e4b1d:submit,dash-51aa0c9e77:read,sha256:5e88…42d8:admin`.
 *
 * A presented key is hashed with SHA-256 and compared with every configured digest with
 * `crypto.timingSafeEqual` (equal-length buffers, no early exit), so neither a match nor its position
 * leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

export const scopes = ['read', 'submit', 'admin'] as const;
export type Scope = (typeof scopes)[number];

/** Who made a request: a configured key (named by a prefix of its SHA-256), or anyone when auth is off. */
export interface Principal {
  /** First 12 hex digits of the key's SHA-256: safe to log, to key limits on, to show. `anonymous` when auth is off. */
  keyId: string;
  scopes: readonly Scope[];
}

interface KeyEntry {
  digest: Buffer;
  principal: Principal;
}

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** The scopes a level grants: itself and every level below it. */
export function scopesOf(level: Scope): Scope[] {
  return scopes.slice(0, scopes.indexOf(level) + 1);
}

export const anonymous: Principal = { keyId: 'anonymous', scopes };

/** One parsed entry, or a message saying what is wrong with it (never echoing the secret). */
function parseEntry(entry: string, index: number): KeyEntry | string {
  const where = `entry ${index + 1}`;
  const parts = entry.split(':');
  const hashed = parts[0] === 'sha256';
  const [secretOrHex, scope, ...extra] = hashed ? parts.slice(1) : parts;
  if (extra.length || secretOrHex === undefined)
    return `${where}: expected <key>[:<scope>] or sha256:<hex>[:<scope>]`;
  if (hashed && !/^[0-9a-fA-F]{64}$/.test(secretOrHex)) return `${where}: sha256: needs 64 hex digits`;
  if (!secretOrHex) return `${where}: the key is empty`;
  if (scope !== undefined && !(scopes as readonly string[]).includes(scope))
    return `${where}: scope "${scope.slice(0, 20)}" is not one of ${scopes.join(', ')}`;
  const digest = hashed ? Buffer.from(secretOrHex, 'hex') : sha256(secretOrHex);
  const level = (scope ?? 'admin') as Scope;
  return { digest, principal: { keyId: digest.toString('hex').slice(0, 12), scopes: scopesOf(level) } };
}

/** The configured keys; an empty ring means auth is off. */
export class KeyRing {
  private readonly entries: readonly KeyEntry[];
  private constructor(entries: readonly KeyEntry[]) {
    this.entries = entries;
  }

  /** Parses `API_KEYS`; throws an Error listing every bad entry (by position, never by content). */
  static parse(spec: string): KeyRing {
    const parts = spec
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const parsed = parts.map(parseEntry);
    const problems = parsed.filter((p): p is string => typeof p === 'string');
    if (problems.length) throw new Error(problems.join('; '));
    return new KeyRing(parsed as KeyEntry[]);
  }

  get enabled(): boolean {
    return this.entries.length > 0;
  }

  get size(): number {
    return this.entries.length;
  }

  /**
   * The principal of a configured key by its `keyId` (what a browser session cookie names), or
   * undefined when no configured key has it: removing a key from API_KEYS ends its sessions.
   */
  byKeyId(keyId: string): Principal | undefined {
    return this.entries.find((e) => e.principal.keyId === keyId)?.principal;
  }

  /** A digest of every configured key and scope: the session cookies' signing secret when none is set. */
  get fingerprint(): string {
    const h = createHash('sha256').update('mlq-session-v1');
    for (const e of [...this.entries].sort((a, b) => Buffer.compare(a.digest, b.digest)))
      h.update(e.digest).update(e.principal.scopes.join(','));
    return h.digest('hex');
  }

  /**
   * The principal a presented key (the secret, as the client sent it) stands for, or undefined when
   * no configured key matches. With auth off every caller is `anonymous`, with every scope.
   */
  resolve(presented: string | undefined): Principal | undefined {
    if (!this.enabled) return anonymous;
    if (presented === undefined) return undefined;
    const d = sha256(presented);
    let found: Principal | undefined;
    for (const e of this.entries) if (timingSafeEqual(d, e.digest) && !found) found = e.principal;
    return found;
  }
}
