/** Inference helpers: a model over rows, in one call or in batches, in tfjs' inference mode. */
import * as tf from '@tensorflow/tfjs';

/**
 * One inference call over `rows` (already batched by the caller). `model.apply` in inference mode,
 * not `model.predict`, which slices its input per batch (an extra copy, slow on wasm). The tensor
 * leaves tidy and is read outside it: returning the typed array from tidy makes tidy walk every
 * element looking for tensors.
 */
export function predictRows(model: tf.LayersModel, rows: Float32Array, shape: number[]): Float32Array {
  const out = tf.tidy(() => model.apply(tf.tensor(rows, shape), { training: false }) as tf.Tensor);
  try {
    return out.dataSync() as Float32Array;
  } finally {
    out.dispose();
  }
}

/** Runs a model over rows in batches and returns its outputs as one Float32Array. */
export function predictBatched(
  model: tf.LayersModel,
  x: Float32Array,
  shape: number[],
  batchSize = 512,
): Float32Array {
  const width = shape.reduce((a, b) => a * b, 1);
  const n = x.length / width;
  const outDim = (model.outputs[0]!.shape.slice(1) as number[]).reduce((a, b) => a * b, 1);
  const out = new Float32Array(n * outDim);
  for (let s = 0; s < n; s += batchSize) {
    const e = Math.min(n, s + batchSize);
    out.set(predictRows(model, x.subarray(s * width, e * width), [e - s, ...shape]), s * outDim);
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
