/**
 * Resolves what a predict URL names (latest, a version, a label) to a registry version, with caches
 * so that a predict costs no Redis round trip. Versions never change, so they are cached for good;
 * "latest" and labels are dropped when the registry announces a new version or a label move (Redis
 * pub/sub, on a connection of its own), all of them on every reconnect (which may have missed some),
 * and each after a short TTL in any case. While Redis is away, an expired entry is still used: a
 * model already served keeps answering (and no label can move while the registry is unreachable).
 */
import type { ModelVersion } from '@mlq/contract';
import { NotFoundError } from '@mlq/core/errors';
import type { ModelRegistry } from '@mlq/core/registry';
import { isConnectionError, type RedisClient } from '@mlq/queues';
import { SizedLru } from './model-lru.ts';

/** How long a "latest" or label entry is trusted: with the subscription live, and without it. */
const TTL_LIVE_MS = 60_000;
const TTL_MS = 5_000;

interface Entry {
  version: number;
  at: number;
}

/** What a predict URL names: `{name}`, `{name}/versions/{v}` or `{name}/labels/{label}`. */
export type ModelTarget = { name: string; version?: number; label?: string };

/** Called when a label that was being served moves (version null: deleted). */
export type LabelMoved = (name: string, label: string, version: number | null) => void;

/** Registry lookups for predict, cached and kept fresh by the registry's announcements. */
export class ModelResolver {
  private readonly sub: RedisClient;
  private readonly versions = new SizedLru<ModelVersion>(1000, Infinity);
  private readonly latest = new Map<string, Entry>();
  private readonly labels = new Map<string, Entry>();
  /** Bumped on every invalidation: a lookup that started before one must not fill the cache after it. */
  private epoch = 0;
  /** Nothing is cached until the subscription is live, or a move could slip by unseen. */
  private live = false;

  private readonly registry: ModelRegistry;
  private readonly onLabelMoved: LabelMoved;
  constructor(registry: ModelRegistry, redis: RedisClient, onLabelMoved: LabelMoved = () => undefined) {
    this.registry = registry;
    this.onLabelMoved = onLabelMoved;
    this.sub = redis.duplicate();
    this.sub.on('message', (channel: string, message: string) => this.onMessage(channel, message));
    this.sub.on('ready', () => {
      this.clear();
      this.sub.subscribe(registry.labelChannel, registry.versionChannel).then(
        () => (this.live = true),
        () => (this.live = false),
      );
    });
    // Entries stay: they serve while Redis is away, and are dropped when it is back ('ready').
    this.sub.on('close', () => (this.live = false));
    // ioredis logs and retries by itself; without a listener an error event would throw.
    this.sub.on('error', () => undefined);
  }

  private clear(): void {
    this.epoch++;
    this.latest.clear();
    this.labels.clear();
  }

  private onMessage(channel: string, message: string): void {
    let m: { name?: string; label?: string; version?: number | null };
    try {
      m = JSON.parse(message) as typeof m;
    } catch {
      return;
    }
    if (typeof m.name !== 'string') return;
    this.epoch++;
    if (channel === this.registry.versionChannel) {
      this.latest.delete(m.name);
    } else if (channel === this.registry.labelChannel && typeof m.label === 'string') {
      const key = `${m.name}@${m.label}`;
      const served = this.labels.delete(key);
      if (served) this.onLabelMoved(m.name, m.label, m.version ?? null);
    }
  }

  /** The version with its artifact URI; NotFoundError (→ 404) for an unknown model, version or label. */
  async resolve(t: ModelTarget): Promise<ModelVersion> {
    return this.version(t.name, await this.number(t));
  }

  private async number(t: ModelTarget): Promise<number> {
    if (t.version !== undefined) return t.version;
    if (t.label === undefined) {
      return this.cached(this.latest, t.name, async () => (await this.registry.latest(t.name)).version);
    }
    return this.cached(this.labels, `${t.name}@${t.label}`, async () => {
      const v = (await this.registry.labels(t.name))[t.label!];
      if (v === undefined) {
        await this.registry.versions(t.name); // an unknown model is reported as such first
        throw new NotFoundError(`model "${t.name}" has no label "${t.label}"`);
      }
      return v;
    });
  }

  /** A trusted entry, else a fresh read; when Redis cannot be reached, the entry however old. */
  private async cached(map: Map<string, Entry>, key: string, read: () => Promise<number>): Promise<number> {
    const hit = map.get(key);
    if (hit && Date.now() - hit.at < (this.live ? TTL_LIVE_MS : TTL_MS)) return hit.version;
    const epoch = this.epoch;
    let version: number;
    try {
      version = await read();
    } catch (e) {
      if (hit && isConnectionError(e)) return hit.version;
      throw e;
    }
    // Only what was read after the last invalidation may fill the cache.
    if (epoch === this.epoch) map.set(key, { version, at: Date.now() });
    return version;
  }

  private async version(name: string, version: number): Promise<ModelVersion> {
    const key = `${name}@${version}`;
    const hit = this.versions.get(key);
    if (hit) return hit;
    const v = await this.registry.get(name, version);
    this.versions.set(key, v, 0);
    return v;
  }

  async close(): Promise<void> {
    this.live = false;
    await this.sub.quit().catch(() => this.sub.disconnect());
  }
}
