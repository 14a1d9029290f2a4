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
  trainingMemoryOf,
  type BufferBudget,
} from '../data/pipeline/memory-budget.ts';
import * as tf from '@tensorflow/tfjs';
import type { ModelSize } from '../ml/model-plan.ts';
import type { TransferModel } from '../ml/transfer.ts';
import type { FineTunePayload } from '@mlq/contract';
import type { JobContext } from './context.ts';

const MB = 1 << 20;

/** The job's memory budget in MB: the worker's, else all of this machine's memory. */
export function jobBudgetMb(ctx: JobContext): number {
  return ctx.memoryBudgetMb ?? Math.floor(os.totalmem() / MB);
}

/**
 * Before the model is built: checks that training a model of `trained`'s size (transfer.ts's
 * planTransferModel; sizes in float32 values) fits the backend's memory (the wasm heap: the tensors
 * held now plus the `newWeights` float32 values building it allocates) and the job's budget (those
 * new weights alone: a lower bound of what the process will hold, as a reused process's RSS may
 * already have room for them). The same InputErrors as checkMemory, thrown before a giant model's
 * weights take the memory (on wasm the heap they grow never shrinks, and the sandbox process would
 * keep it for later jobs); what passes here may still be refused by checkMemory once built.
 */
export function checkPlannedMemory(
  trained: ModelSize,
  newWeights: number,
  p: FineTunePayload,
  ctx: JobContext,
): void {
  const need = trainingMemoryOf(trained, p.batchSize, p.optimizer, ctx.trainThreads ?? 1);
  const weights = newWeights * 4;
  checkBackendMemory(ctx.backend, tf.memory().numBytes + weights, need, p.batchSize);
  planBuffers(jobBudgetMb(ctx), weights, need, p.batchSize);
}

/**
 * Checks that training the built model `trained` fits the backend's memory (the wasm heap) and the
 * job's budget (an InputError with the numbers if not), as checkPlannedMemory did from its plan (this
 * is the backstop, with what the process really holds), and shares the rest between the pipeline's
 * buffers.
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
