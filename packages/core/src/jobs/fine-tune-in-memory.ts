/**
 * The fine-tune job's input path before the streaming pipeline: every row in one Float32Array
 * (`loadAll`) and, with a frozen base, every embedding in another. Kept only as the baseline that
 * bench/stream.ts measures the streaming path against (`WORKER_INPUT_PIPELINE=in-memory`).
 */
import { createHash } from 'node:crypto';
import { featureWidth, type InMemoryDataset } from '../data/dataset.ts';
import type { TrainData } from '@mlq/engine';
import { predictParallel } from '@mlq/engine';
import type { TransferModel } from '../ml/transfer.ts';
import { cachePrefix } from '../storage/layout.ts';
import { inferenceBatch } from '../data/pipeline/memory-budget.ts';
import type { JobContext } from './context.ts';

/** The rows as TrainData; with `frozenBaseUri`, the base's outputs instead (cached in the store). */
export async function inMemoryTrainData(
  data: InMemoryDataset,
  tm: TransferModel,
  frozenBaseUri: string | undefined,
  ctx: JobContext,
): Promise<TrainData> {
  const { info } = data;
  const rows: TrainData = { x: data.x, y: data.y, shape: info.featureShape, numClasses: info.numClasses };
  if (frozenBaseUri === undefined) return rows;
  const featShape = tm.features.outputs[0]!.shape.slice(1) as number[];
  const id = createHash('sha256')
    .update(`${frozenBaseUri}|${tm.meta.featuresLayer}|${info.hash}`)
    .digest('hex')
    .slice(0, 24);
  const key = `${cachePrefix.embeddings(id)}.f32`;
  const n = data.y.length;
  if (await ctx.store.exists(key)) {
    const buf = await ctx.store.get(key);
    const x = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    if (x.length === n * featureWidth({ featureShape: featShape })) {
      await ctx.log(`embedding cache hit: ${key}`);
      return { ...rows, x, shape: featShape };
    }
  }
  const t0 = performance.now();
  // One change from the old path: inference batches sized by the model (the old 512 rows of 160 px
  // images through MobileNetV2 would need gigabytes of layer outputs per thread).
  const { out: x, threads } = await predictParallel(
    tm.features,
    rows.x,
    rows.shape,
    ctx.trainThreads ?? 1,
    ctx.backend,
    inferenceBatch(tm.features, 64 << 20),
  );
  await ctx.store.put(key, new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
  await ctx.log(
    `embedded ${n} rows with the frozen base in ${((performance.now() - t0) / 1000).toFixed(1)} s on ${threads} thread(s) (${key})`,
  );
  return { ...rows, x, shape: featShape };
}
