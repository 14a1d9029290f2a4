/**
 * The model registry: names → numbered versions (artifact URI, metrics, params, lineage) and labels
 * (`production` → 3). It lives in Redis beside the queues, behind a small port that ioredis fills.
 */
import { InputError, NotFoundError } from '../util/errors.ts';
import {
  isUri,
  labelNameIssue,
  LATEST_TAG,
  RedisKeys,
  runHistorySchema,
  type ModelSummary,
  type ModelVersion,
  type NewVersion,
  type RunHistory,
} from '@mlq/contract';

/** The few Redis commands the registry needs; an ioredis client (single or cluster) satisfies it as is. */
export interface KeyValuePort {
  eval(script: string, numKeys: number, ...args: string[]): Promise<unknown>;
  hget(key: string, field: string): Promise<string | null>;
  hset(key: string, field: string, value: string): Promise<unknown>;
  hdel(key: string, field: string): Promise<unknown>;
  hgetall(key: string): Promise<Record<string, string>>;
  smembers(key: string): Promise<string[]>;
  publish(channel: string, message: string): Promise<unknown>;
}

export type { ModelSummary, ModelVersion, NewVersion };

/**
 * register() in one step: a job that already registered a version of the model gets that version
 * back (0, version); otherwise the next number is taken, the record stored under it, the job and the
 * name indexed and the version announced (1, version). The record's JSON is spliced, not decoded, so
 * its numbers and empty arrays come back exactly as written. On a cluster the keys share the install's
 * hash tag, so one script may touch them all.
 * KEYS: seq, versions, by-job, models. ARGV: jobId, name, record JSON without version, createdAt, channel.
 */
const REGISTER_SCRIPT = `
local prior = redis.call('HGET', KEYS[3], ARGV[1])
if prior then return {0, tonumber(prior)} end
local v = redis.call('INCR', KEYS[1])
local record = '{"version":' .. v .. ',"createdAt":' .. cjson.encode(ARGV[4]) .. ',' .. string.sub(ARGV[3], 2)
redis.call('HSET', KEYS[2], tostring(v), record)
redis.call('HSET', KEYS[3], ARGV[1], tostring(v))
redis.call('SADD', KEYS[4], ARGV[2])
redis.call('PUBLISH', ARGV[5], cjson.encode({name = ARGV[2], version = v}))
return {1, v}
`;

export class ModelRegistry {
  private readonly keys: RedisKeys;

  private readonly kv: KeyValuePort;
  /** @param keys the install's keys (or its QUEUE_PREFIX). */
  constructor(kv: KeyValuePort, keys: RedisKeys | string) {
    this.kv = kv;
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

  /**
   * Registers the next version of `name`, atomically and at most once per job: a job retried, resumed
   * on another worker, or whose first call's reply was lost with its Redis connection, gets back the
   * version it registered before (its record unchanged).
   */
  async register(v: NewVersion): Promise<ModelVersion> {
    const k = this.keys;
    const { history, ...fields } = v;
    const [, version] = (await this.kv.eval(
      REGISTER_SCRIPT,
      4,
      k.model(v.name, 'seq'),
      k.model(v.name, 'versions'),
      k.model(v.name, 'by-job'),
      k.models,
      v.jobId,
      v.name,
      JSON.stringify(fields),
      new Date().toISOString(),
      k.versionChannel,
    )) as [number, number];
    // The curves beside the record (a retried job writes the same ones again).
    if (history) await this.kv.hset(k.model(v.name, 'history'), String(version), JSON.stringify(history));
    return this.get(v.name, version);
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

  /**
   * Points `label` at `version` (which must exist) and announces the move. InputError for a name no
   * label may have (labelNameIssue: a number, `latest`...), NotFoundError for a missing version.
   */
  async setLabel(name: string, label: string, version: number): Promise<void> {
    const issue = labelNameIssue(label);
    if (issue) throw new InputError(issue);
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

  /** The training curves of a version, or undefined when it was registered without them. */
  async history(name: string, version: number): Promise<RunHistory | undefined> {
    const raw = await this.kv.hget(this.keys.model(name, 'history'), String(version));
    if (!raw) return undefined;
    const parsed = runHistorySchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
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

  /** Resolves `name` or `name@latest` (the newest version), `name@3` or `name@label` to a version. */
  async resolve(ref: string): Promise<ModelVersion> {
    if (isUri(ref)) throw new InputError(`"${ref}" is a URI, not a registry reference`);
    const at = ref.indexOf('@');
    if (at < 0) return this.latest(ref);
    const name = ref.slice(0, at);
    const tag = ref.slice(at + 1);
    if (tag.toLowerCase() === LATEST_TAG) return this.latest(name);
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
