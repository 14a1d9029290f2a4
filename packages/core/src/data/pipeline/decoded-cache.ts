/**
 * The decoded-example cache: a dataset decoded once (images decoded and resized, CSV and JSONL parsed)
 * into a shard set under `cache/decoded/<id>/` of the artifact store, where `<id>` hashes the data's
 * content and the spec's preprocessing fields. Later epochs, retries and other jobs on the same data
 * read the shards instead of decoding again.
 */
import { createHash } from 'node:crypto';
import type { DatasetSpec } from '@mlq/contract';
import type { ArtifactStore } from '../../storage/artifact-store.ts';
import { cachePrefix } from '../../storage/layout.ts';
import { DataError, throwIfAborted } from '../../util/errors.ts';
import { featureWidth, type DatasetInfo, type DatasetSource } from '../dataset.ts';
import { bytesPerValue, ShardSet, writeShardSet, type ElementType, type RowsIn } from './shard-set.ts';

/** Floats of source rows decoded at once while a cache is built. */
const BUILD_CHUNK_BYTES = 16 << 20;

/** The spec's fields that change what decoding gives (everything but where the data is). */
export function preprocessingOf(spec: DatasetSpec): string {
  const rest: Record<string, unknown> = { ...spec };
  delete rest.uri;
  return JSON.stringify(rest, Object.keys(rest).sort());
}

/** How a format's decoded rows are stored: image pixels (0..1 from 8-bit files) as bytes. */
export const storedType = (spec: DatasetSpec): ElementType =>
  spec.format === 'image-folder' ? 'uint8' : 'float32';

export interface DecodedOptions {
  store: ArtifactStore;
  log: (line: string) => Promise<void>;
  signal?: AbortSignal | undefined;
  /** Keep the rows in memory too when the whole set takes at most this many bytes (default: never). */
  keepBytes?: number | undefined;
}

/** The content hash the cache is keyed by: cheap, as no row is decoded for it. */
async function contentHash(source: DatasetSource): Promise<string> {
  return source.fingerprint ? source.fingerprint() : (await source.info()).hash;
}

/**
 * A dataset's place in the decoded-example cache. `locate` is cheap (a content hash and a manifest
 * lookup), so a job knows the data's shape and classes, checks its model against the memory budget,
 * or finds its embeddings, before anything is decoded.
 */
export class DecodedCache {
  private readonly source: DatasetSource;
  private readonly spec: DatasetSpec;
  /** `cache/decoded/<id>`: the id hashes the content and the preprocessing. */
  readonly prefix: string;
  private found: ShardSet | undefined;
  private readonly store: ArtifactStore;
  private constructor(
    source: DatasetSource,
    spec: DatasetSpec,
    prefix: string,
    found: ShardSet | undefined,
    store: ArtifactStore,
  ) {
    this.source = source;
    this.spec = spec;
    this.prefix = prefix;
    this.found = found;
    this.store = store;
  }

  static async locate(source: DatasetSource, spec: DatasetSpec, store: ArtifactStore): Promise<DecodedCache> {
    const id = createHash('sha256')
      .update(`decoded-v1|${await contentHash(source)}|${preprocessingOf(spec)}`)
      .digest('hex')
      .slice(0, 24);
    const prefix = cachePrefix.decoded(id);
    return new DecodedCache(source, spec, prefix, await ShardSet.open(store, prefix), store);
  }

  /** True when the decoded rows are in the cache already. */
  get cached(): boolean {
    return this.found !== undefined;
  }

  /** The dataset's info: from the cache's manifest, else from the reader. */
  async info(): Promise<DatasetInfo> {
    return this.found?.info ?? this.source.info();
  }

  /**
   * The decoded rows: from the cache when they are there, else decoded chunk by chunk into it (never
   * all in memory unless `keepBytes` allows). A DataError of the reader (a broken image, a ragged
   * row) surfaces here, before any training.
   */
  async get(opts: DecodedOptions): Promise<ShardSet> {
    const t0 = performance.now();
    const seconds = () => ((performance.now() - t0) / 1000).toFixed(1);
    const keep = (bytes: number) => bytes <= (opts.keepBytes ?? -1);
    if (this.found) {
      const set = this.found;
      if (keep(set.bytes)) await set.loadAll();
      await opts.log(
        `decoded-example cache hit: ${set.info.rows} rows in ${set.manifest.shards} shards (${mb(set.bytes)} MB, ${set.inMemory ? 'read into memory' : 'streamed'}), opened in ${seconds()} s, ${this.prefix}`,
      );
      return set;
    }
    const info = await this.source.info();
    if (info.rows === 0) throw new DataError('the dataset has no rows');
    const dtype = storedType(this.spec);
    const width = featureWidth(info);
    const bytes = info.rows * (width * bytesPerValue(dtype) + 4);
    const chunkSize = Math.max(1, Math.floor(BUILD_CHUNK_BYTES / (width * 4)));
    const source = this.source;
    async function* rows(): AsyncIterable<RowsIn> {
      for await (const c of source.chunks({ chunkSize })) {
        // Between chunks: a cancel ends the job, a shutdown hands it back.
        throwIfAborted(opts.signal);
        yield c;
      }
    }
    const set = await writeShardSet(this.store, this.prefix, info, dtype, rows(), { keep: keep(bytes) });
    this.found = set;
    await opts.log(
      `decoded ${info.rows} rows into ${set.manifest.shards} ${dtype} shards (${mb(bytes)} MB${set.inMemory ? ', also kept in memory' : ''}) in ${seconds()} s, ${this.prefix}`,
    );
    return set;
  }
}

export const mb = (bytes: number): string => (bytes / (1 << 20)).toFixed(bytes < 10 << 20 ? 1 : 0);
