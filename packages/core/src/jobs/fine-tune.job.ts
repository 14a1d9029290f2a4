/**
 * The fine-tune job: data → model (base + head) → fit with per-epoch checkpoints → saved model →
 * next registry version. A retried job resumes from its last checkpoint. The data streams through
 * the input pipeline (fine-tune-data.ts): nothing in the job grows with the dataset but the labels.
 */
import { loadAll, type DatasetInfo } from '../data/dataset.ts';
import { openDataset } from '../data/open.ts';
import { DecodedCache } from '../data/pipeline/decoded-cache.ts';
import { inferenceBatch } from '../data/pipeline/memory-budget.ts';
import type { BatchSource } from '../data/batches.ts';
import { findCheckpoint, restoreCheckpoint, saveCheckpoint } from '../ml/checkpoint.ts';
import { runPrefix } from '../storage/layout.ts';
import { fitModel } from '../ml/fit.ts';
import type { TrainData } from '@mlq/engine';
import { saveModel } from '../ml/model-io.ts';
import { resolveAndLoad } from '../ml/resolve.ts';
import { PlanError } from '../ml/model-plan.ts';
import {
  buildTransferModel,
  compile,
  makeOptimizer,
  planTransferModel,
  type TransferSpec,
} from '../ml/transfer.ts';
import { DataError } from '../util/errors.ts';
import type { FineTunePayload, FineTuneResult } from '@mlq/contract';
import { disposeModels } from '@mlq/engine';
import type { JobContext } from './context.ts';
import { checkMemory, checkPlannedMemory, streamedBatches } from './fine-tune-data.ts';
import { inMemoryTrainData } from './fine-tune-in-memory.ts';
import { loadRunHistory, RunHistoryRecorder } from './run-history.ts';

/** Rows per class, by class name (or index when the classes have no names), in class order. */
export function classCounts(info: DatasetInfo): Record<string, number> {
  const counts = info.classCounts ?? new Array<number>(info.numClasses).fill(0);
  return Object.fromEntries(counts.map((n, c) => [info.classNames?.[c] ?? String(c), n]));
}

/** "cat 12, dog 6" (the first 50 classes). */
function showCounts(counts: Record<string, number>): string {
  const all = Object.entries(counts);
  const shown = all.slice(0, 50).map(([c, n]) => `${c} ${n}`);
  return shown.join(', ') + (all.length > 50 ? `, ... (${all.length} classes)` : '');
}

/** Why data without labels cannot be trained on, and what to change: for a CSV, its columns and `dataset.label`. */
function unlabelled(format: string, columns: string[] | undefined): string {
  if (format === 'csv')
    return `the dataset has no label column: no column is named "label" and dataset.label names none${
      columns ? ` (the columns are ${columns.join(', ')})` : ''
    }; set dataset.label to the column that holds the classes`;
  if (format === 'jsonl') return 'the dataset has no labels: its lines have no "y"; training needs them';
  return 'the dataset has no labels; training needs them';
}

export async function runFineTune(p: FineTunePayload, ctx: JobContext): Promise<FineTuneResult> {
  const source = openDataset(p.dataset, {
    dataRoots: ctx.dataRoots,
    locate: ctx.locate,
    imageMaxPixels: ctx.imageMaxPixels,
  });
  // The cache lookup is cheap: the data's shape and classes are known before anything is decoded.
  const inMemory = ctx.inputPipeline === 'in-memory' ? await loadAll(source) : undefined;
  const decoded = inMemory ? undefined : await DecodedCache.locate(source, p.dataset, ctx.store);
  const info = inMemory?.info ?? (await decoded!.info());
  if (info.rows === 0) throw new DataError('the dataset has no rows');
  if (info.numClasses === 0 && !info.classCounts)
    throw new DataError(unlabelled(p.dataset.format, info.columns));
  const counts = classCounts(info);
  const present = Object.entries(counts).filter(([, n]) => n > 0);
  if (present.length < 2) {
    const only = present.length === 1 ? ` (every row is labelled "${present[0]![0]}")` : '';
    throw new DataError(`the dataset has ${present.length} class(es)${only}; training needs at least 2`);
  }
  await ctx.log(
    `dataset ${p.dataset.format}: ${info.rows} rows of shape [${info.featureShape.join(', ')}], ${info.numClasses} classes`,
  );
  await ctx.log(`rows per class: ${showCounts(counts)}`);
  for (const note of info.notes ?? []) await ctx.log(note);

  // A base whose input has unknown (null) dimensions is built for this data's shape.
  const base = p.base
    ? await resolveAndLoad(p.base, ctx.registry, ctx.store, ctx.dataRoots, {
        inputShape: info.featureShape,
        locate: ctx.locate,
      })
    : undefined;
  if (base) await ctx.log(`base ${p.base} → ${base.uri}`);
  const spec: TransferSpec = {
    architecture: p.architecture,
    architectureOptions: p.architectureOptions,
    base: base ? { ref: p.base!, loaded: base.loaded } : undefined,
    trainableLayers: p.trainableLayers,
    head: p.head,
    reuseBaseHead: p.reuseBaseHead,
    inputShape: info.featureShape,
    numClasses: info.numClasses,
    classNames: info.classNames,
  };
  // With a frozen base only the head trains, on cached base outputs (below); augmented images change
  // on every pass, so their base outputs cannot be cached.
  const trainsHeadOnly = (frozenBase: boolean) => frozenBase && base !== undefined && !p.augment;
  try {
    // Sized before it is built: a model too large is refused before its weights exist.
    const plan = planTransferModel(spec);
    const trained = trainsHeadOnly(plan.frozenBase) && plan.head ? plan.head : plan.model;
    checkPlannedMemory(trained, plan.newWeights, p, ctx);
  } catch (e) {
    if (!(e instanceof PlanError)) {
      disposeModels(base?.loaded.model);
      throw e;
    }
    // The build and checkMemory below still refuse what does not fit, once it is built.
    await ctx.log(`memory: the model could not be sized before it is built (${e.message})`);
  }
  const tm = buildTransferModel(spec);
  const optimizer = makeOptimizer(p.optimizer, p.learningRate, p.optimizerOptions);
  try {
    // The saved model is still base + head when only the head trains.
    const frozenBaseUri = tm.frozenBase && base ? base.uri : undefined;
    if (frozenBaseUri !== undefined && p.augment)
      await ctx.log(
        'augmentation is on: the embedding cache does not apply, the frozen base runs on every augmented batch',
      );
    const headOnly = trainsHeadOnly(tm.frozenBase);
    const trained = headOnly ? tm.head : tm.model;
    compile(trained, optimizer);
    const buffers = await checkMemory(trained, p, ctx);

    const checkpoint = await findCheckpoint(ctx.jobId, ctx.store);
    if (checkpoint) {
      await restoreCheckpoint(checkpoint, ctx.store, tm.model, optimizer);
      const where = checkpoint.partial
        ? `epoch ${checkpoint.partial.epoch}, batch ${checkpoint.partial.batches}`
        : `the end of epoch ${checkpoint.epoch}`;
      await ctx.log(`resuming from the checkpoint at ${where} (attempt ${ctx.attempt})`);
    }
    let train: TrainData | BatchSource;
    let shuffleBufferRows: number | undefined;
    if (inMemory) {
      train = await inMemoryTrainData(inMemory, tm, headOnly ? frozenBaseUri : undefined, ctx);
    } else {
      const batches = await streamedBatches({
        p,
        ctx,
        tm,
        decoded: decoded!,
        frozenBaseUri: headOnly ? frozenBaseUri : undefined,
        buffers,
        shuffleBufferRows: checkpoint?.shuffleBufferRows,
      });
      shuffleBufferRows = batches.plan.bufferRows;
      train = batches;
    }
    const trainable = trained.trainableWeights.reduce(
      (s, w) => s + (w.shape as number[]).reduce((a, b) => a * b, 1),
      0,
    );
    await ctx.log(
      `training ${trainable} weights for ${p.epochs} epochs, batch ${p.batchSize}, ${p.optimizer} on ${ctx.backend}`,
    );
    const recorder = new RunHistoryRecorder(p.epochs);
    if (checkpoint)
      recorder.resume(await loadRunHistory(ctx.store, ctx.jobId), checkpoint.epoch, checkpoint.partial);

    const fit = await fitModel(trained, train, {
      epochs: p.epochs,
      batchSize: p.batchSize,
      validationSplit: p.validationSplit,
      seed: p.seed,
      initialEpoch: checkpoint?.epoch ?? 0,
      history: checkpoint?.history ?? [],
      partial: checkpoint?.partial,
      signal: ctx.signal,
      threads: ctx.trainThreads,
      backend: ctx.backend,
      log: ctx.log,
      evalBatchSize: Math.min(256, inferenceBatch(trained, 128 << 20)),
      onInterrupt: async (partial, history) => {
        await saveCheckpoint(ctx.jobId, ctx.store, tm.model, optimizer, tm.meta, {
          epoch: partial.epoch - 1,
          history,
          seed: p.seed,
          partial,
          shuffleBufferRows,
        });
        await ctx.log(
          `shutdown: saved a checkpoint at epoch ${partial.epoch}, batch ${partial.batches}; handing the job back to the queue`,
        );
      },
      onBatch: async (b) => {
        const report = recorder.onBatch(b);
        if (report) await ctx.progress(report);
      },
      onEpoch: async (e, history) => {
        await saveCheckpoint(ctx.jobId, ctx.store, tm.model, optimizer, tm.meta, {
          epoch: e.epoch,
          history,
          seed: p.seed,
          shuffleBufferRows,
        });
        await recorder.save(ctx.store, ctx.jobId, history);
        recorder.onEpoch();
        await ctx.progress(e);
        const v =
          e.valAcc !== undefined ? ` val_loss ${e.valLoss!.toFixed(4)} val_acc ${e.valAcc.toFixed(4)}` : '';
        await ctx.log(
          `epoch ${e.epoch}/${e.epochs} loss ${e.loss.toFixed(4)} acc ${e.acc.toFixed(4)}${v} ${Math.round(e.samplesPerSec)} samples/s`,
        );
      },
    });

    const uri = await saveModel(tm.model, ctx.store, `${runPrefix(ctx.jobId)}/model`, tm.meta);
    const runHistory = await recorder.save(ctx.store, ctx.jobId, fit.history);
    const last = fit.history[fit.history.length - 1]!;
    const metrics = {
      loss: last.loss,
      acc: last.acc,
      ...(last.valLoss !== undefined ? { valLoss: last.valLoss, valAcc: last.valAcc! } : {}),
    };
    const { model: _m, ...params } = p;
    const version = await ctx.registry.register({
      name: p.model,
      uri,
      jobId: ctx.jobId,
      metrics,
      params,
      ...(base
        ? {
            base: {
              ref: p.base!,
              uri: base.uri,
              ...(base.version ? { name: base.version.name, version: base.version.version } : {}),
            },
          }
        : {}),
      dataset: { spec: p.dataset, hash: info.hash },
      inputShape: info.featureShape,
      numClasses: info.numClasses,
      ...(info.classNames ? { classNames: info.classNames } : {}),
      history: runHistory,
    });
    await ctx.log(`registered ${p.model}@${version.version} (${uri})`);
    return {
      model: { name: p.model, version: version.version, uri },
      metrics,
      epochs: p.epochs,
      backend: ctx.backend,
      history: fit.history,
      samplesPerSec: fit.samplesPerSec,
      trainSeconds: fit.trainSeconds,
      classCounts: counts,
    };
  } finally {
    disposeModels(tm.model, tm.head, base?.loaded.model);
    optimizer.dispose();
  }
}
