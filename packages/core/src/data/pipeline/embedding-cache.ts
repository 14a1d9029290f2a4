/**
 * The embedding cache: with a frozen base only the head trains, on the base's outputs. They are
 * computed chunk by chunk from the decoded rows (never the whole dataset in memory), stored as a
 * float32 shard set under `cache/embeddings/<id>/` (id: the base, its feature layer and the decoded
 * data), and held in memory when they fit the job's budget, streamed from the store otherwise. A later
 * job or tune trial on the same base and data skips the base, and the decoding, entirely.
 */
import { createHash } from 'node:crypto';
import type * as tf from '@tensorflow/tfjs';
import { predictParallel } from '@mlq/engine';
import type { ArtifactStore } from '../../storage/artifact-store.ts';
import { cachePrefix } from '../../storage/layout.ts';
import { throwIfAborted } from '../../util/errors.ts';
import { mb, type DecodedCache } from './decoded-cache.ts';
import { inferenceBatch } from './memory-budget.ts';
import { ShardSet, writeShardSet, type RowsIn } from './shard-set.ts';

export interface EmbedOptions {
  store: ArtifactStore;
  log: (line: string) => Promise<void>;
  signal?: AbortSignal | undefined;
  /** Threads the base's forward pass may be split over (those already up are used). */
  threads: number;
  backend: string;
  /** Hold the features in memory when they take at most this many bytes. */
  keepBytes: number;
  /** Bytes of decoded rows (as float32) given to the base at once. */
  chunkBytes: number;
}

/** The features of `decoded` through `features` (the frozen base cut at its feature layer). */
export async function embeddedSet(
  features: tf.LayersModel,
  baseUri: string,
  decoded: DecodedCache,
  opts: EmbedOptions,
): Promise<ShardSet> {
  const layer = features.outputs[0]!.sourceLayer.name;
  const id = createHash('sha256')
    .update(`embeddings-v2|${baseUri}|${layer}|${decoded.prefix}`)
    .digest('hex')
    .slice(0, 24);
  const prefix = cachePrefix.embeddings(id);
  const found = await ShardSet.open(opts.store, prefix);
  if (found) {
    const keep = found.bytes <= opts.keepBytes;
    if (keep) await found.loadAll();
    await opts.log(
      `embedding cache hit: ${found.info.rows} rows (${mb(found.bytes)} MB, ${keep ? 'held in memory' : 'streamed'}), ${prefix}`,
    );
    return found;
  }
  const set = await decoded.get({ store: opts.store, log: opts.log, signal: opts.signal });
  const t0 = performance.now();
  const featShape = features.outputs[0]!.shape.slice(1) as number[];
  const featWidth = featShape.reduce((a, b) => a * b, 1);
  const inShape = set.info.featureShape;
  const batch = inferenceBatch(features, opts.chunkBytes);
  const chunkRows = Math.max(2 * batch, Math.floor(opts.chunkBytes / (set.width * 4)));
  let used = 1;
  let readMs = 0;
  async function* rows(): AsyncIterable<RowsIn> {
    for (let k = 0; k < set.manifest.shards; k++) {
      const r0 = performance.now();
      const shard = await set.shard(k);
      readMs += performance.now() - r0;
      for (let s = 0; s < shard.rows; s += chunkRows) {
        throwIfAborted(opts.signal);
        const e = Math.min(shard.rows, s + chunkRows);
        const part = shard.x.subarray(s * set.width, e * set.width);
        const x = part instanceof Float32Array ? part : Float32Array.from(part, (v) => v / 255);
        const out = await predictParallel(features, x, inShape, opts.threads, opts.backend, batch);
        used = Math.max(used, out.threads);
        yield { count: e - s, x: out.out, y: shard.y.length ? shard.y.subarray(s, e) : undefined };
      }
    }
  }
  const info = { ...set.info, featureShape: featShape };
  const keep = info.rows * (featWidth + 1) * 4 <= opts.keepBytes;
  const out = await writeShardSet(opts.store, prefix, info, 'float32', rows(), { keep });
  await opts.log(
    `embedded ${info.rows} rows with the frozen base in ${((performance.now() - t0) / 1000).toFixed(1)} s on ${used} thread(s), batches of ${batch}, ${(readMs / 1000).toFixed(1)} s of it reading decoded rows (${mb(out.bytes)} MB of features, ${keep ? 'held in memory' : 'streamed'}), ${prefix}`,
  );
  return out;
}
