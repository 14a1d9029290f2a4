/**
 * The fine-tune job: data → model (base + head) → fit with per-epoch checkpoints → saved model →
 * next registry version. A retried job resumes from its last checkpoint.
 */
import { createHash } from 'node:crypto';
import { featureWidth, loadAll, type DatasetInfo } from '../data/dataset.ts';
import { openDataset } from '../data/open.ts';
import { findCheckpoint, restoreCheckpoint, saveCheckpoint } from '../ml/checkpoint.ts';
import { runPrefix } from '../storage/layout.ts';
import { fitModel } from '../ml/fit.ts';
import type { TrainData } from '@mlq/engine';
import { saveModel } from '../ml/model-io.ts';
import { resolveAndLoad } from '../ml/resolve.ts';
import { buildTransferModel, compile, makeOptimizer, type TransferModel } from '../ml/transfer.ts';
import { DataError } from '../util/errors.ts';
import type { FineTunePayload, FineTuneResult } from '@mlq/contract';
import { disposeModels, predictParallel } from '@mlq/engine';
import type { JobContext } from './context.ts';

/**
 * The head of a frozen base trains on the base's outputs, computed once per (base, dataset) and kept
 * in the artifact store, so a second job or a tune trial on the same data skips the base entirely.
 */
async function cachedFeatures(
  tm: TransferModel,
  baseUri: string,
  data: TrainData,
  datasetHash: string,
  ctx: JobContext,
): Promise<TrainData> {
  const featShape = tm.features.outputs[0]!.shape.slice(1) as number[];
  const id = createHash('sha256')
    .update(`${baseUri}|${tm.meta.featuresLayer}|${datasetHash}`)
    .digest('hex')
    .slice(0, 24);
  const key = `cache/embeddings/${id}.f32`;
  const n = data.y.length;
  if (await ctx.store.exists(key)) {
    const buf = await ctx.store.get(key);
    const x = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    if (x.length === n * featureWidth({ featureShape: featShape })) {
      await ctx.log(`embedding cache hit: ${key}`);
      return { ...data, x, shape: featShape };
    }
  }
  const t0 = performance.now();
  // Split over the helper threads that are up (see parallel.ts): the base's forward pass is the
  // costly part of a cold-cache transfer.
  const { out: x, threads } = await predictParallel(
    tm.features,
    data.x,
    data.shape,
    ctx.trainThreads ?? 1,
    ctx.backend,
  );
  await ctx.store.put(key, new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
  await ctx.log(
    `embedded ${n} rows with the frozen base in ${((performance.now() - t0) / 1000).toFixed(1)} s on ${threads} thread(s) (${key})`,
  );
  return { ...data, x, shape: featShape };
}

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

export async function runFineTune(p: FineTunePayload, ctx: JobContext): Promise<FineTuneResult> {
  const source = openDataset(p.dataset, { dataRoots: ctx.dataRoots });
  const data = await loadAll(source);
  const info = data.info;
  if (info.rows === 0) throw new DataError('the dataset has no rows');
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
    ? await resolveAndLoad(p.base, ctx.registry, ctx.store, ctx.dataRoots, { inputShape: info.featureShape })
    : undefined;
  if (base) await ctx.log(`base ${p.base} → ${base.uri}`);
  const tm = buildTransferModel({
    architecture: p.architecture,
    architectureOptions: p.architectureOptions,
    base: base ? { ref: p.base!, loaded: base.loaded } : undefined,
    trainableLayers: p.trainableLayers,
    head: p.head,
    reuseBaseHead: p.reuseBaseHead,
    inputShape: info.featureShape,
    numClasses: info.numClasses,
    classNames: info.classNames,
  });
  const optimizer = makeOptimizer(p.optimizer, p.learningRate, p.optimizerOptions);
  try {
    // With a frozen base only the head trains, on cached base outputs; the saved model is still base + head.
    const trained = tm.frozenBase && base ? tm.head : tm.model;
    compile(trained, optimizer);

    const checkpoint = await findCheckpoint(ctx.jobId, ctx.store);
    if (checkpoint) {
      await restoreCheckpoint(checkpoint, ctx.store, tm.model, optimizer);
      const where = checkpoint.partial
        ? `epoch ${checkpoint.partial.epoch}, batch ${checkpoint.partial.batches}`
        : `the end of epoch ${checkpoint.epoch}`;
      await ctx.log(`resuming from the checkpoint at ${where} (attempt ${ctx.attempt})`);
    }
    let train: TrainData = { x: data.x, y: data.y, shape: info.featureShape, numClasses: info.numClasses };
    if (trained === tm.head) train = await cachedFeatures(tm, base!.uri, train, info.hash, ctx);
    const trainable = trained.trainableWeights.reduce(
      (s, w) => s + (w.shape as number[]).reduce((a, b) => a * b, 1),
      0,
    );
    await ctx.log(
      `training ${trainable} weights for ${p.epochs} epochs, batch ${p.batchSize}, ${p.optimizer} on ${ctx.backend}`,
    );

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
      onInterrupt: async (partial, history) => {
        await saveCheckpoint(ctx.jobId, ctx.store, tm.model, optimizer, tm.meta, {
          epoch: partial.epoch - 1,
          history,
          seed: p.seed,
          partial,
        });
        await ctx.log(
          `shutdown: saved a checkpoint at epoch ${partial.epoch}, batch ${partial.batches}; handing the job back to the queue`,
        );
      },
      onEpoch: async (e, history) => {
        await saveCheckpoint(ctx.jobId, ctx.store, tm.model, optimizer, tm.meta, {
          epoch: e.epoch,
          history,
          seed: p.seed,
        });
        await ctx.progress(e);
        const v =
          e.valAcc !== undefined ? ` val_loss ${e.valLoss!.toFixed(4)} val_acc ${e.valAcc.toFixed(4)}` : '';
        await ctx.log(
          `epoch ${e.epoch}/${e.epochs} loss ${e.loss.toFixed(4)} acc ${e.acc.toFixed(4)}${v} ${Math.round(e.samplesPerSec)} samples/s`,
        );
      },
    });

    const uri = await saveModel(tm.model, ctx.store, `${runPrefix(ctx.jobId)}/model`, tm.meta);
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
