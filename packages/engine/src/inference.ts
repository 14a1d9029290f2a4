/** Inference helpers: a model over rows, in one call or in batches, in tfjs' inference mode. */
import * as tf from '@tensorflow/tfjs';
import { compileInference, type InferencePlan } from './inference-plan.ts';

/**
 * One inference call over `rows` (already batched by the caller; `shape` is `[rows, ...inputShape]`),
 * through a compiled plan (see inference-plan.ts: batch norms folded, activations fused) or
 * `model.apply` in inference mode, never `model.predict`, which slices its input per batch (an extra
 * copy, slow on wasm). Callers that predict many batches with fixed weights compile a plan once.
 * The tensor leaves tidy and is read outside it: returning the typed array from tidy makes tidy walk
 * every element looking for tensors.
 */
export function predictRows(
  model: tf.LayersModel | InferencePlan,
  rows: Float32Array,
  shape: number[],
): Float32Array {
  const out = tf.tidy(() => {
    const x = tf.tensor(rows, shape);
    return model instanceof tf.LayersModel
      ? (model.apply(x, { training: false }) as tf.Tensor)
      : model.predict(x);
  });
  try {
    return out.dataSync() as Float32Array;
  } finally {
    out.dispose();
  }
}

/**
 * Runs a model over rows (`shape` = one row's shape) in batches and returns its outputs as one
 * Float32Array (`into`, when given: rows x the output's width floats, e.g. a view of shared
 * memory), compiling it for inference once for all the batches.
 */
export function predictBatched(
  model: tf.LayersModel,
  x: Float32Array,
  shape: number[],
  batchSize = 512,
  into?: Float32Array,
): Float32Array {
  const width = shape.reduce((a, b) => a * b, 1);
  const n = x.length / width;
  const outDim = (model.outputs[0]!.shape.slice(1) as number[]).reduce((a, b) => a * b, 1);
  if (into && into.length !== n * outDim)
    throw new Error(`predictBatched: into holds ${into.length} floats, the outputs ${n * outDim}`);
  const out = into ?? new Float32Array(n * outDim);
  const plan = compileInference(model);
  try {
    for (let s = 0; s < n; s += batchSize) {
      const e = Math.min(n, s + batchSize);
      out.set(predictRows(plan, x.subarray(s * width, e * width), [e - s, ...shape]), s * outDim);
    }
  } finally {
    plan.dispose();
  }
  return out;
}

/**
 * Frees the weights of models that may share layers (a transfer model shares its base's layers).
 * `LayersModel.dispose` would fail on the second model that holds an already-disposed layer.
 */
export function disposeModels(...models: (tf.LayersModel | undefined)[]): void {
  const seen = new Set<unknown>();
  for (const m of models) {
    if (!m) continue;
    for (const w of m.weights) {
      if (seen.has(w)) continue;
      seen.add(w);
      w.dispose();
    }
  }
}
