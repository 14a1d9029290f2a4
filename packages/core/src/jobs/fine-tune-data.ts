/**
 * The fine-tune job's input pipeline: the decoded-example cache, the embedding cache of a frozen
 * base, augmentation, and the batch stream the fit loop reads, all within the job's memory budget.
 */
import os from 'node:os';
import { augmenter } from '../data/pipeline/augment.ts';
import { ShardBatches } from '../data/pipeline/batch-stream.ts';
import type { DecodedCache } from '../data/pipeline/decoded-cache.ts';
import { embeddedSet } from '../data/pipeline/embedding-cache.ts';
import {
  checkBackendMemory,
  planBuffers,
  trainingMemory,
  type BufferBudget,
} from '../data/pipeline/memory-budget.ts';
import * as tf from '@tensorflow/tfjs';
import type { TransferModel } from '../ml/transfer.ts';
import type { FineTunePayload } from '@mlq/contract';
import type { JobContext } from './context.ts';

const MB = 1 << 20;

/** The job's memory budget in MB: the worker's, else all of this machine's memory. */
export function jobBudgetMb(ctx: JobContext): number {
  return ctx.memoryBudgetMb ?? Math.floor(os.totalmem() / MB);
}

/**
 * Checks that training `trained` fits the backend's memory (the wasm heap) and the job's budget (an
 * InputError with the numbers if not) and
 * shares the rest between the pipeline's buffers.
 */
export async function checkMemory(
  trained: tf.LayersModel,
  p: FineTunePayload,
  ctx: JobContext,
): Promise<BufferBudget> {
  const budget = jobBudgetMb(ctx);
  const need = trainingMemory(trained, p.batchSize, p.optimizer, ctx.trainThreads ?? 1);
  // First the backend's own ceiling (the wasm heap): no budget, however large, lifts it.
  checkBackendMemory(ctx.backend, tf.memory().numBytes, need, p.batchSize);
  const used = process.memoryUsage().rss;
  const buffers = planBuffers(budget, used, need, p.batchSize);
  await ctx.log(
    `memory: budget ${budget} MB; the process holds ${Math.round(used / MB)} MB, training needs about ${Math.round(need.total / MB)} MB, ` +
      `${Math.round(buffers.hold / MB)} MB may hold data, ${Math.round(buffers.shuffle / MB)} MB the shuffle buffer`,
  );
  return buffers;
}

export interface StreamArgs {
  p: FineTunePayload;
  ctx: JobContext;
  tm: TransferModel;
  decoded: DecodedCache;
  /** The frozen base's URI when the head trains on its cached outputs. */
  frozenBaseUri: string | undefined;
  buffers: BufferBudget;
  /** The shuffle buffer of the run being resumed (its order must not change). */
  shuffleBufferRows: number | undefined;
}

/** The batches the fit loop reads: of the embeddings (frozen base), else of the decoded rows. */
export async function streamedBatches(a: StreamArgs): Promise<ShardBatches> {
  const { p, ctx, buffers } = a;
  const io = { store: ctx.store, log: ctx.log, signal: ctx.signal };
  const set =
    a.frozenBaseUri !== undefined
      ? await embeddedSet(a.tm.features, a.frozenBaseUri, a.decoded, {
          ...io,
          threads: ctx.trainThreads ?? 1,
          backend: ctx.backend,
          keepBytes: buffers.hold,
          chunkBytes: buffers.chunk,
        })
      : await a.decoded.get({ ...io, keepBytes: buffers.hold });
  const bufferRows = a.shuffleBufferRows ?? Math.max(p.batchSize, Math.floor(buffers.shuffle / set.rowBytes));
  const augment = p.augment && a.frozenBaseUri === undefined ? p.augment : undefined;
  const batches = new ShardBatches(set, {
    validationSplit: p.validationSplit,
    seed: p.seed,
    bufferRows,
    transform: augment ? augmenter(augment, set.info.featureShape, p.seed) : undefined,
  });
  const { plan } = batches;
  await ctx.log(
    `input: ${batches.trainRows} training and ${batches.valRows} validation rows ${set.inMemory ? 'held in memory' : `streamed from ${set.manifest.shards} shards`}, ` +
      `shuffled in shards of ${plan.shardRows} through a buffer of ${plan.bufferRows} rows${augment ? `, augmented (${JSON.stringify(augment)})` : ''}`,
  );
  return batches;
}
