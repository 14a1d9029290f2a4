/**
 * The dataset registry: names → numbered versions of uploaded files, each a record of its SHA-256 and
 * what validation learned. The bytes live once per hash in the artifact store (`datasets/sha256/<hash>`);
 * a blob goes when the last version using it is deleted. Its Redis keys are RedisKeys' `dataset*` (@mlq/contract).
 */
import { randomUUID } from 'node:crypto';
import { parseDatasetUri, RedisKeys, type DatasetSummary, type DatasetVersion } from '@mlq/contract';
import { ConflictError, InputError, NotFoundError } from '../util/errors.ts';

/** The Redis commands the dataset registry needs; an ioredis client satisfies it as is. */
export interface DatasetKvPort {
  incr(key: string): Promise<number>;
  hget(key: string, field: string): Promise<string | null>;
  hset(key: string, field: string, value: string): Promise<unknown>;
  hdel(key: string, field: string): Promise<unknown>;
  hgetall(key: string): Promise<Record<string, string>>;
  hlen(key: string): Promise<number>;
  sadd(key: string, member: string): Promise<unknown>;
  srem(key: string, member: string): Promise<unknown>;
  scard(key: string): Promise<number>;
  smembers(key: string): Promise<string[]>;
  del(key: string): Promise<unknown>;
  set(key: string, value: string, px: 'PX', ms: number, nx: 'NX'): Promise<unknown>;
  get(key: string): Promise<string | null>;
}

/** A version before it has a number. */
export type NewDatasetVersion = Omit<DatasetVersion, 'version' | 'uri' | 'createdAt'>;

const LOCK_MS = 60_000;

export class DatasetRegistry {
  private readonly keys: RedisKeys;

  private readonly kv: DatasetKvPort;
  /** @param keys the install's keys (or its QUEUE_PREFIX). */
  constructor(kv: DatasetKvPort, keys: RedisKeys | string) {
    this.kv = kv;
    this.keys = typeof keys === 'string' ? new RedisKeys(keys) : keys;
  }

  /** Runs `fn` holding the lock of one blob, so an upload and a delete of the same bytes never interleave. */
  private async withBlobLock<T>(sha256: string, fn: () => Promise<T>): Promise<T> {
    const key = this.keys.datasetBlobLock(sha256);
    const token = randomUUID();
    const until = Date.now() + LOCK_MS;
    while (!(await this.kv.set(key, token, 'PX', LOCK_MS, 'NX'))) {
      if (Date.now() > until) throw new Error(`dataset blob ${sha256} stayed locked for ${LOCK_MS} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
    try {
      return await fn();
    } finally {
      if ((await this.kv.get(key)) === token) await this.kv.del(key);
    }
  }

  /**
   * Registers the next version of `v.name`. `keepBlob` puts the bytes under `blobKey(v.sha256)` unless
   * they are there already; it runs under the blob's lock, after the new version holds a reference.
   */
  async add(v: NewDatasetVersion, keepBlob: (exists: boolean) => Promise<void>): Promise<DatasetVersion> {
    const version = await this.kv.incr(this.keys.dataset(v.name, 'seq'));
    const ref = `${v.name}@${version}`;
    await this.withBlobLock(v.sha256, async () => {
      const exists = (await this.kv.scard(this.keys.datasetBlobRefs(v.sha256))) > 0;
      await this.kv.sadd(this.keys.datasetBlobRefs(v.sha256), ref);
      try {
        await keepBlob(exists);
      } catch (e) {
        await this.kv.srem(this.keys.datasetBlobRefs(v.sha256), ref);
        throw e;
      }
    });
    const { name, ...rest } = v;
    const record: DatasetVersion = {
      name,
      version,
      uri: `dataset://${ref}`,
      ...rest,
      createdAt: new Date().toISOString(),
    };
    await this.kv.hset(this.keys.dataset(v.name, 'versions'), String(version), JSON.stringify(record));
    await this.kv.sadd(this.keys.datasets, v.name);
    return record;
  }

  async get(name: string, version: number): Promise<DatasetVersion> {
    const raw = await this.kv.hget(this.keys.dataset(name, 'versions'), String(version));
    if (raw) return JSON.parse(raw) as DatasetVersion;
    const exists = (await this.kv.hlen(this.keys.dataset(name, 'versions'))) > 0;
    throw new NotFoundError(
      exists ? `dataset "${name}" has no version ${version}` : `dataset "${name}" not found`,
    );
  }

  /** A name's versions, oldest first; NotFoundError when it has none. */
  async versions(name: string): Promise<DatasetVersion[]> {
    const all = Object.values(await this.kv.hgetall(this.keys.dataset(name, 'versions')));
    if (all.length === 0) throw new NotFoundError(`dataset "${name}" not found`);
    return all.map((s) => JSON.parse(s) as DatasetVersion).sort((a, b) => a.version - b.version);
  }

  async list(): Promise<DatasetSummary[]> {
    const out: DatasetSummary[] = [];
    for (const name of (await this.kv.smembers(this.keys.datasets)).sort()) {
      const vs = await this.versions(name).catch(() => []);
      const latest = vs[vs.length - 1];
      if (!latest) continue;
      out.push({
        name,
        latestVersion: latest.version,
        versions: vs.map((v) => v.version),
        format: latest.format,
        updatedAt: latest.createdAt,
      });
    }
    return out;
  }

  /**
   * Resolves `dataset://<name>[@<version>]` to its version (the latest when none is given). The API calls
   * this at submit and the worker before reading, so both agree. InputError for a malformed URI,
   * NotFoundError for a name or version that does not exist.
   */
  async resolve(uri: string): Promise<DatasetVersion> {
    const ref = parseDatasetUri(uri);
    if (!ref) throw new InputError(`"${uri}" is not dataset://<name> or dataset://<name>@<version>`);
    if (ref.version !== undefined) return this.get(ref.name, ref.version);
    const vs = await this.versions(ref.name);
    return vs[vs.length - 1]!;
  }

  /** Records that a job was submitted with a version, so deleting it is refused while the job may run. */
  async markUse(v: Pick<DatasetVersion, 'name' | 'version'>, jobId: string): Promise<void> {
    await this.kv.sadd(this.keys.datasetJobs(v.name, v.version), jobId);
  }

  /**
   * Deletes a version. `busy` gets the ids of the jobs submitted with it and returns those still
   * waiting or running: any makes this a ConflictError. The blob is removed (`dropBlob`) with the last
   * version that uses it.
   */
  async remove(
    name: string,
    version: number,
    busy: (jobIds: string[]) => Promise<string[]>,
    dropBlob: (sha256: string) => Promise<void>,
  ): Promise<void> {
    const v = await this.get(name, version);
    const using = await busy(await this.kv.smembers(this.keys.datasetJobs(name, version)));
    if (using.length > 0) {
      const shown = using.slice(0, 5).join(', ') + (using.length > 5 ? ', ...' : '');
      throw new ConflictError(
        `dataset ${name}@${version} is used by ${using.length} waiting or running job(s): ${shown}`,
      );
    }
    await this.kv.hdel(this.keys.dataset(name, 'versions'), String(version));
    await this.kv.del(this.keys.datasetJobs(name, version));
    if ((await this.kv.hlen(this.keys.dataset(name, 'versions'))) === 0)
      await this.kv.srem(this.keys.datasets, name);
    await this.withBlobLock(v.sha256, async () => {
      await this.kv.srem(this.keys.datasetBlobRefs(v.sha256), `${name}@${version}`);
      if ((await this.kv.scard(this.keys.datasetBlobRefs(v.sha256))) === 0) await dropBlob(v.sha256);
    });
  }
}
