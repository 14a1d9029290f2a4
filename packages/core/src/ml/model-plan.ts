/**
 * The size of a model before it is built. Its layers are wired (features.ts's Wiring) onto shapes
 * instead of tensors: each layer's output shape comes from tfjs's own computeOutputShape and its
 * weights are counted from its config, so nothing is allocated. The fine-tune job checks the memory
 * training needs against this (fine-tune-data.ts's checkPlannedMemory) before it builds the model, so
 * a model too large is refused before its weights take the process's memory (on wasm, a heap that
 * never shrinks again).
 */
import type * as tf from '@tensorflow/tfjs';
import type { Wiring } from './features.ts';

/** A tensor in a plan: its shape without the batch dimension. */
export interface Planned {
  shape: number[];
}

/** A model's size, in float32 values. */
export interface ModelSize {
  /** All its weights. */
  weights: number;
  /** The weights that train (gradients and optimizer state are kept for these). */
  trainable: number;
  /** Its layers' outputs for one example, its input layer's included. */
  activations: number;
}

/** A model that cannot be sized before it is built (a layer class whose weights are not known here). */
export class PlanError extends Error {}

const elements = (shape: (number | null)[]) => shape.reduce<number>((a, d) => a * (d ?? 1), 1);
const count = (ws: tf.LayerVariable[]) => ws.reduce((a, w) => a + elements(w.shape), 0);

/** The size of a built model: its weights, trainable weights and layer outputs per example. */
export function modelSize(model: tf.LayersModel): ModelSize {
  let activations = 0;
  for (const l of model.layers) {
    const out = l.outputShape;
    const shapes = (Array.isArray(out[0]) ? out : [out]) as (number | null)[][];
    for (const s of shapes) activations += elements(s.slice(1));
  }
  return { weights: count(model.weights), trainable: count(model.trainableWeights), activations };
}

/** Layer classes without weights. */
const WEIGHTLESS = new Set([
  'Activation',
  'Add',
  'AveragePooling2D',
  'Concatenate',
  'Dropout',
  'Flatten',
  'GlobalAveragePooling2D',
  'GlobalMaxPooling2D',
  'InputLayer',
  'MaxPooling2D',
  'MlqFeatureDropout',
  'Multiply',
  'Permute',
  'ReLU',
  'Reshape',
]);

/**
 * The weights a layer not built yet will get for input `inShape` (without the batch dimension), as
 * its build would make them (tfjs-layers' Dense, Conv2D, DepthwiseConv2D, BatchNormalization): all,
 * and those that train. PlanError for a class not known here.
 */
function unbuiltWeights(layer: tf.layers.Layer, inShape: number[]): { all: number; trainable: number } {
  const c = layer.getConfig();
  const name = layer.getClassName();
  if (WEIGHTLESS.has(name)) return { all: 0, trainable: 0 };
  if (c['dataFormat'] === 'channelsFirst') throw new PlanError(`layer ${layer.name}: channelsFirst`);
  const channels = inShape[inShape.length - 1]!;
  const bias = (n: number) => (c['useBias'] === false ? 0 : n);
  const kernel = () => (c['kernelSize'] as number[]).reduce((a, k) => a * k, 1);
  let all: number;
  switch (name) {
    case 'Dense':
      all = channels * (c['units'] as number) + bias(c['units'] as number);
      return { all, trainable: all };
    case 'Conv2D':
      all = kernel() * channels * (c['filters'] as number) + bias(c['filters'] as number);
      return { all, trainable: all };
    case 'DepthwiseConv2D': {
      const out = channels * (c['depthMultiplier'] as number);
      all = kernel() * out + bias(out);
      return { all, trainable: all };
    }
    case 'BatchNormalization': {
      const axis = c['axis'] as number;
      if (axis !== -1 && axis !== inShape.length) throw new PlanError(`layer ${layer.name}: axis ${axis}`);
      // gamma and beta train; the moving mean and variance do not.
      const trainable = (c['scale'] === false ? 0 : channels) + (c['center'] === false ? 0 : channels);
      return { all: trainable + 2 * channels, trainable };
    }
    default:
      throw new PlanError(`cannot size a ${name} layer (${layer.name}) before it is built`);
  }
}

/**
 * A Wiring that builds nothing: it follows the shapes through the layers applied and adds up the
 * model's size. Layers already built (a loaded base's) count with the weights they have.
 */
export class ShapePlan implements Wiring<Planned> {
  /** Float32 values of the weights that building the model would allocate (layers not built yet). */
  newWeights = 0;
  readonly size: ModelSize = { weights: 0, trainable: 0, activations: 0 };
  /** Names of the layers applied, in order. */
  readonly names: string[] = [];
  private counted = new Set<tf.layers.Layer>();

  input(shape: number[]): Planned {
    this.size.activations += elements(shape);
    return { shape: [...shape] };
  }

  /** `layer` on `x`'s shape(s): PlanError if tfjs finds no whole, positive output shape for it. */
  apply(layer: tf.layers.Layer, x: Planned | Planned[]): Planned {
    const ins = Array.isArray(x) ? x : [x];
    const full = ins.map((t) => [null, ...t.shape]);
    const out = layer.computeOutputShape(full.length === 1 ? full[0]! : full) as (number | null)[];
    const shape = out.slice(1);
    if (Array.isArray(out[0]) || !shape.every((d) => typeof d === 'number' && Number.isInteger(d) && d > 0))
      throw new PlanError(`layer ${layer.name} would output ${JSON.stringify(out)}`);
    const planned = { shape: shape as number[] };
    this.size.activations += elements(planned.shape);
    this.names.push(layer.name);
    if (!this.counted.has(layer)) {
      this.counted.add(layer);
      if (layer.built) {
        this.size.weights += count(layer.weights);
        this.size.trainable += count(layer.trainableWeights);
      } else {
        const w = unbuiltWeights(layer, ins[0]!.shape);
        this.size.weights += w.all;
        this.size.trainable += layer.trainable ? w.trainable : 0;
        this.newWeights += w.all;
      }
    }
    return planned;
  }

  /**
   * A built model (a loaded base's feature extractor) as the start of this plan: its size counts as
   * it is (its weights exist already), and its output is returned. PlanError for an output whose
   * shape is not fully known.
   */
  adopt(model: tf.LayersModel): Planned {
    const s = modelSize(model);
    this.size.weights += s.weights;
    this.size.trainable += s.trainable;
    this.size.activations += s.activations;
    for (const l of model.layers) {
      this.counted.add(l);
      this.names.push(l.name);
    }
    const shape = model.outputs[0]!.shape.slice(1);
    if (!shape.every((d) => typeof d === 'number' && d > 0))
      throw new PlanError(`the features' output has shape [${shape.join(', ')}]`);
    return { shape: shape as number[] };
  }
}
