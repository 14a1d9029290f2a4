/** The evaluate job: loss, accuracy, per-class metrics, confusion matrix (+ ROC-AUC for two classes). */
import { openDataset } from '../data/open.ts';
import { inferenceBatch } from '../data/pipeline/memory-budget.ts';
import { checkFiniteScores } from '../ml/fit.ts';
import { classificationMetrics } from '../ml/metrics.ts';
import { acceptsShape } from '../ml/model-io.ts';
import { resolveAndLoad } from '../ml/resolve.ts';
import { DataError, InputError, throwIfAborted } from '../util/errors.ts';
import type { EvaluatePayload, EvaluateResult } from '@mlq/contract';
import { compileInference, disposeModels, predictRows } from '@mlq/engine';
import type { JobContext } from './context.ts';

export async function runEvaluate(p: EvaluatePayload, ctx: JobContext): Promise<EvaluateResult> {
  const m = await resolveAndLoad(p.model, ctx.registry, ctx.store, ctx.dataRoots, { locate: ctx.locate });
  // Compiled for inference once (batch norms folded, activations fused): the weights do not change.
  const plan = compileInference(m.loaded.model);
  try {
    const { meta, model } = m.loaded;
    const source = openDataset(p.dataset, {
      dataRoots: ctx.dataRoots,
      locate: ctx.locate,
      classNames: meta.classNames,
      imageMaxPixels: ctx.imageMaxPixels,
    });
    const info = await source.info();
    if (!acceptsShape(meta.inputShape, info.featureShape)) {
      throw new InputError(
        `model ${p.model} takes input [${meta.inputShape.join(', ')}] but the dataset has [${info.featureShape.join(', ')}]`,
      );
    }
    if (info.rows === 0) throw new DataError('the dataset has no rows');
    const k = meta.numClasses;
    const probs = new Float32Array(info.rows * k);
    const labels = new Int32Array(info.rows);
    let done = 0;
    // Chunks as large as one inference batch that keeps the model's layer outputs near 128 MB (1024
    // MNIST digits, 16 images of 160 px through MobileNetV2): memory stays flat whatever the rows.
    const chunkSize = Math.min(1024, inferenceBatch(model, 128 << 20));
    for await (const c of source.chunks({ chunkSize })) {
      // A cancel fails the job with its reason; a shutdown hands it back (it starts again elsewhere).
      throwIfAborted(ctx.signal);
      const scores = predictRows(plan, c.x, [c.count, ...info.featureShape]);
      checkFiniteScores(scores, k, c.start);
      probs.set(scores, c.start * k);
      if (!c.y) throw new DataError('the dataset has no labels: evaluate needs a label for every row');
      for (const [i, v] of c.y.entries()) {
        if (v >= k)
          throw new DataError(`row ${c.start + i}: label index ${v} but the model has ${k} classes`);
      }
      labels.set(c.y, c.start);
      done += c.count;
      await ctx.progress({ rows: done, total: info.rows });
    }
    const metrics = classificationMetrics(probs, labels, k, meta.classNames);
    await ctx.log(
      `evaluated ${info.rows} rows: accuracy ${metrics.accuracy.toFixed(4)}, loss ${metrics.loss.toFixed(4)}`,
    );
    if (m.version)
      await ctx.registry.setEvaluation(m.version.name, m.version.version, {
        ...metrics,
        jobId: ctx.jobId,
        dataset: p.dataset,
      });
    return { metrics, backend: ctx.backend };
  } finally {
    plan.dispose();
    disposeModels(m.loaded.model);
  }
}
