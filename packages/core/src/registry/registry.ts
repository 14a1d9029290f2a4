/**
 * The model registry: names → numbered versions (artifact URI, metrics, params, lineage) and labels
 * (`production` → 3). It lives in Redis beside the queues, behind a small port that ioredis fills.
 */
import { InputError, NotFoundError } from '../util/errors.ts';
import { isUri, RedisKeys, type ModelSummary, type ModelVersion, type NewVersion } from '@mlq/contract';

/** The few Redis commands the registry needs; an ioredis client satisfies it as is. */
export interface KeyValuePort {
  incr(key: string): Promise<number>;
  hget(key: string, field: string): Promise<string | null>;
  hset(key: string, field: string, value: string): Promise<unknown>;
  hsetnx(key: string, field: string, value: string): Promise<unknown>;
  hdel(key: string, field: string): Promise<unknown>;
  hgetall(key: string): Promise<Record<string, string>>;
  sadd(key: string, member: string): Promise<unknown>;
  smembers(key: string): Promise<string[]>;
  publish(channel: string, message: string): Promise<unknown>;
}

export type { ModelSummary, ModelVersion, NewVersion };

export class ModelRegistry {
  private readonly keys: RedisKeys;

  /** @param keys the install's keys (or its QUEUE_PREFIX). */
  constructor(
    private readonly kv: KeyValuePort,
    keys: RedisKeys | string,
  ) {
    this.keys = typeof keys === 'string' ? new RedisKeys(keys) : keys;
  }

  /** The channel on which label moves are announced (servers reload). */
  get labelChannel(): string {
    return this.keys.labelChannel;
  }

  /** The channel on which new versions are announced (servers re-resolve a bare name to the latest). */
  get versionChannel(): string {
    return this.keys.versionChannel;
  }

  /** Registers the next version of `name`; a retried job gets back the version it registered before. */
  async register(v: NewVersion): Promise<ModelVersion> {
    const prior = await this.kv.hget(this.keys.model(v.name, 'by-job'), v.jobId);
    if (prior) return this.get(v.name, Number(prior));
    const version = await this.kv.incr(this.keys.model(v.name, 'seq'));
    const record: ModelVersion = { ...v, version, createdAt: new Date().toISOString() };
    await this.kv.hset(this.keys.model(v.name, 'versions'), String(version), JSON.stringify(record));
    await this.kv.hsetnx(this.keys.model(v.name, 'by-job'), v.jobId, String(version));
    await this.kv.sadd(this.keys.models, v.name);
    await this.kv.publish(this.versionChannel, JSON.stringify({ name: v.name, version }));
    return record;
  }

  async get(name: string, version: number): Promise<ModelVersion> {
    const raw = await this.kv.hget(this.keys.model(name, 'versions'), String(version));
    if (!raw) {
      const exists = (await this.kv.smembers(this.keys.models)).includes(name);
      throw new NotFoundError(
        exists ? `model "${name}" has no version ${version}` : `model "${name}" not found`,
      );
    }
    const labels = await this.labels(name);
    const mine = Object.entries(labels)
      .filter(([, n]) => n === version)
      .map(([l]) => l);
    return { ...(JSON.parse(raw) as ModelVersion), labels: mine };
  }

  async versions(name: string): Promise<ModelVersion[]> {
    const all = await this.kv.hgetall(this.keys.model(name, 'versions'));
    if (Object.keys(all).length === 0) throw new NotFoundError(`model "${name}" not found`);
    const labels = await this.labels(name);
    return Object.values(all)
      .map((s) => JSON.parse(s) as ModelVersion)
      .map((v) => ({
        ...v,
        labels: Object.entries(labels)
          .filter(([, n]) => n === v.version)
          .map(([l]) => l),
      }))
      .sort((a, b) => a.version - b.version);
  }

  async labels(name: string): Promise<Record<string, number>> {
    const raw = await this.kv.hgetall(this.keys.model(name, 'labels'));
    return Object.fromEntries(Object.entries(raw).map(([l, v]) => [l, Number(v)]));
  }

  async list(): Promise<ModelSummary[]> {
    const names = (await this.kv.smembers(this.keys.models)).sort();
    const out: ModelSummary[] = [];
    for (const name of names) {
      const vs = await this.versions(name);
      const latest = vs[vs.length - 1]!;
      out.push({
        name,
        latestVersion: latest.version,
        labels: await this.labels(name),
        updatedAt: latest.createdAt,
      });
    }
    return out;
  }

  async latest(name: string): Promise<ModelVersion> {
    const vs = await this.versions(name);
    return vs[vs.length - 1]!;
  }

  /** Points `label` at `version` (which must exist) and announces the move. */
  async setLabel(name: string, label: string, version: number): Promise<void> {
    if (/^\d+$/.test(label)) throw new InputError('a label cannot be a number: it would read as a version');
    await this.get(name, version);
    await this.kv.hset(this.keys.model(name, 'labels'), label, String(version));
    await this.kv.publish(this.labelChannel, JSON.stringify({ name, label, version }));
  }

  async deleteLabel(name: string, label: string): Promise<void> {
    const labels = await this.labels(name);
    if (!(label in labels)) throw new NotFoundError(`model "${name}" has no label "${label}"`);
    await this.kv.hdel(this.keys.model(name, 'labels'), label);
    await this.kv.publish(this.labelChannel, JSON.stringify({ name, label, version: null }));
  }

  async setEvaluation(name: string, version: number, evaluation: Record<string, unknown>): Promise<void> {
    const v = await this.get(name, version);
    delete v.labels;
    await this.kv.hset(
      this.keys.model(name, 'versions'),
      String(version),
      JSON.stringify({ ...v, evaluation }),
    );
  }

  /** Resolves `name`, `name@3` or `name@label` to a version. */
  async resolve(ref: string): Promise<ModelVersion> {
    if (isUri(ref)) throw new InputError(`"${ref}" is a URI, not a registry reference`);
    const at = ref.indexOf('@');
    if (at < 0) return this.latest(ref);
    const name = ref.slice(0, at);
    const tag = ref.slice(at + 1);
    if (/^\d+$/.test(tag)) return this.get(name, Number(tag));
    const labels = await this.labels(name);
    const v = labels[tag];
    if (v === undefined) {
      await this.versions(name); // 404 for the model itself first
      throw new NotFoundError(`model "${name}" has no label "${tag}"`);
    }
    return this.get(name, v);
  }
}
