/**
 * The transfer-learning recipe: take a base (a registry model, a model.json, or a fresh architecture),
 * cut it at its feature layer, freeze all but its top `trainableLayers`, put a new head on it, compile.
 */
import * as tf from '@tensorflow/tfjs';
import type { OptimizerOptions } from '@mlq/contract';
import { FeatureDropout, KerasAdadelta, trailingDropoutRate } from '@mlq/engine';
import { InputError } from '../util/errors.ts';
import { buildFeatures, wireFeatures, type ArchitectureOptions } from './architectures.ts';
import { acceptsShape, type LoadedModel, type ModelMeta } from './model-io.ts';
import { ShapePlan, type ModelSize, type Planned } from './model-plan.ts';

export interface HeadSpec {
  units: number[];
  dropout: number;
  activation?: 'relu' | 'tanh' | 'sigmoid' | 'elu';
}

export interface TransferSpec {
  architecture?: string | undefined;
  architectureOptions?: ArchitectureOptions | undefined;
  base?: { ref: string; loaded: LoadedModel } | undefined;
  trainableLayers: number;
  head?: HeadSpec | undefined;
  /**
   * Keep the base's own head layers (after its feature layer) and go on training them, as the Keras
   * mnist_transfer_cnn recipe and its PyTorch port do, instead of a freshly initialised head. The last
   * layer is replaced when the class count differs.
   */
  reuseBaseHead?: boolean | undefined;
  inputShape: number[];
  numClasses: number;
  classNames?: string[] | undefined;
}

export interface TransferModel {
  /** Base + head as one model: what is trained (unless the base is frozen), saved and served. */
  model: tf.LayersModel;
  /** The feature extractor (shares its layers with `model`). */
  features: tf.LayersModel;
  /**
   * The head alone, from features to classes (shares its layers with `model`), for training on
   * cached features: first the dropout the features end in, if any (the cache is taken without it).
   */
  head: tf.LayersModel;
  /** True when no base weight is trainable: the head can train on cached features. */
  frozenBase: boolean;
  meta: ModelMeta;
}

/** The base's feature extractor: up to its recorded feature layer, else up to its last layer's input. */
export function cutAtFeatures(loaded: LoadedModel): tf.LayersModel {
  const m = loaded.model;
  const name = loaded.meta.featuresLayer;
  if (name) return tf.model({ inputs: m.inputs, outputs: m.getLayer(name).output as tf.SymbolicTensor });
  const last = m.layers[m.layers.length - 1];
  if (!last || m.layers.length < 2)
    throw new InputError('the base model has too few layers to put a head on');
  return tf.model({ inputs: m.inputs, outputs: last.input as tf.SymbolicTensor });
}

function freeze(features: tf.LayersModel, trainableLayers: number): boolean {
  const withWeights = features.layers.filter((l) => l.weights.length > 0);
  if (trainableLayers > withWeights.length) {
    throw new InputError(
      `trainableLayers is ${trainableLayers} but the base has only ${withWeights.length} layers with weights`,
    );
  }
  const keep = new Set(withWeights.slice(withWeights.length - trainableLayers));
  for (const l of features.layers) l.trainable = keep.has(l);
  return trainableLayers === 0;
}

/** A layer-name prefix none of `names` uses, so heads stacked over generations never clash. */
function headPrefix(names: string[]): string {
  let k = 1;
  while (names.some((n) => n.startsWith(`head${k}_`))) k++;
  return `head${k}_`;
}

/** The head a base gets when the job names none. */
const BASE_HEAD: HeadSpec = { units: [128], dropout: 0.5 };

/**
 * The base's feature extractor for `spec`: checked against the data's shape, cut at its feature layer
 * and frozen but for its top `trainableLayers` (which sets the base's layers' `trainable`).
 */
function baseFeatures(
  spec: TransferSpec,
  base: NonNullable<TransferSpec['base']>,
): { features: tf.LayersModel; frozenBase: boolean } {
  const baseShape = base.loaded.meta.inputShape;
  if (!acceptsShape(baseShape, spec.inputShape)) {
    throw new InputError(
      `base "${base.ref}" takes input [${baseShape.join(', ')}] but the dataset has [${spec.inputShape.join(', ')}]`,
    );
  }
  const features = cutAtFeatures(base.loaded);
  return { features, frozenBase: freeze(features, spec.trainableLayers) };
}

/** The head's layers in order: the base's own (reuseBaseHead), else fresh ones as `spec.head` says. */
function headLayers(
  spec: TransferSpec,
  features: tf.LayersModel | undefined,
  defaultHead: HeadSpec,
  prefix: string,
): tf.layers.Layer[] {
  const layers =
    spec.reuseBaseHead && spec.base && features
      ? baseHeadLayers(spec.base.loaded, features, spec.numClasses, prefix)
      : [];
  if (layers.length === 0) newHead(layers, spec.head ?? defaultHead, prefix, spec.numClasses);
  return layers;
}

export function buildTransferModel(spec: TransferSpec): TransferModel {
  let features: tf.LayersModel;
  let defaultHead: HeadSpec;
  let frozenBase = false;
  if (spec.base) {
    ({ features, frozenBase } = baseFeatures(spec, spec.base));
    defaultHead = BASE_HEAD;
  } else if (spec.architecture) {
    const built = buildFeatures(spec.architecture, spec.inputShape, spec.architectureOptions);
    features = built.model;
    defaultHead = built.defaultHead;
  } else {
    throw new InputError('give "base" or "architecture"');
  }
  const prefix = headPrefix(features.layers.map((l) => l.name));
  const layers = headLayers(spec, features, defaultHead, prefix);
  const apply = (x: tf.SymbolicTensor) => layers.reduce((t, l) => l.apply(t) as tf.SymbolicTensor, x);
  const featOut = features.outputs[0]!;
  const model = tf.model({ inputs: features.inputs, outputs: apply(featOut), name: 'model' });
  const headIn = tf.input({ shape: featOut.shape.slice(1) as number[], name: `${prefix}in` });
  // The cache holds the base's outputs without its trailing dropout, which training applies.
  const rate = trailingDropoutRate(features);
  const noisy =
    rate > 0
      ? (new FeatureDropout({ rate, name: `${prefix}feature_dropout` }).apply(headIn) as tf.SymbolicTensor)
      : headIn;
  const headModel = tf.model({ inputs: headIn, outputs: apply(noisy), name: 'head' });
  const meta: ModelMeta = {
    featuresLayer: featOut.sourceLayer.name,
    inputShape: spec.inputShape,
    numClasses: spec.numClasses,
    ...(spec.classNames ? { classNames: spec.classNames } : {}),
    ...(spec.architecture && !spec.base ? { architecture: spec.architecture } : {}),
    ...(spec.base ? { base: spec.base.ref } : {}),
  };
  return { model, features, head: headModel, frozenBase, meta };
}

/** What building the transfer model of a spec would take, found without building it. */
export interface TransferPlan {
  /** Float32 values of the weights that building it allocates: all but a loaded base's. */
  newWeights: number;
  /** Base + head, as TransferModel.model. */
  model: ModelSize;
  /** With a base: the head alone, as TransferModel.head (what trains on a frozen base's cached outputs). */
  head?: ModelSize;
  /** As TransferModel.frozenBase. */
  frozenBase: boolean;
}

/**
 * The size of the model buildTransferModel(`spec`) builds, from the architecture and input shape (or
 * the loaded base's layers) and the head, allocating no weight (model-plan.ts). The same InputErrors
 * as buildTransferModel for a spec it refuses; PlanError for a model it cannot size. Like
 * buildTransferModel, it freezes a base's layers as `trainableLayers` says.
 */
export function planTransferModel(spec: TransferSpec): TransferPlan {
  const plan = new ShapePlan();
  let featOut: Planned;
  let defaultHead: HeadSpec;
  let base: ReturnType<typeof baseFeatures> | undefined;
  if (spec.base) {
    base = baseFeatures(spec, spec.base);
    featOut = plan.adopt(base.features);
    defaultHead = BASE_HEAD;
  } else if (spec.architecture) {
    const wired = wireFeatures(plan, spec.architecture, spec.inputShape, spec.architectureOptions);
    featOut = wired.output;
    defaultHead = wired.defaultHead;
  } else {
    throw new InputError('give "base" or "architecture"');
  }
  const layers = headLayers(spec, base?.features, defaultHead, headPrefix(plan.names));
  layers.reduce((x, l) => plan.apply(l, x), featOut);
  let head: ModelSize | undefined;
  if (base) {
    const alone = new ShapePlan();
    let x = alone.input(featOut.shape);
    const rate = trailingDropoutRate(base.features);
    if (rate > 0) x = alone.apply(new FeatureDropout({ rate, name: 'plan_feature_dropout' }), x);
    layers.reduce((t, l) => alone.apply(l, t), x);
    head = alone.size;
  }
  return {
    newWeights: plan.newWeights,
    model: plan.size,
    ...(head ? { head } : {}),
    frozenBase: base?.frozenBase ?? false,
  };
}

/** Dense layers (+ dropout) and a softmax layer, freshly initialised. */
function newHead(layers: tf.layers.Layer[], head: HeadSpec, prefix: string, numClasses: number): void {
  head.units.forEach((u, i) => {
    layers.push(
      tf.layers.dense({ units: u, activation: head.activation ?? 'relu', name: `${prefix}dense${i + 1}` }),
    );
    if (head.dropout > 0)
      layers.push(tf.layers.dropout({ rate: head.dropout, name: `${prefix}dropout${i + 1}` }));
  });
  if (head.units.length === 0 && head.dropout > 0)
    layers.push(tf.layers.dropout({ rate: head.dropout, name: `${prefix}dropout` }));
  layers.push(tf.layers.dense({ units: numClasses, activation: 'softmax', name: `${prefix}classes` }));
}

/**
 * The base's layers after its feature layer, in order (a plain chain is required), with the last one
 * replaced by a fresh softmax layer when the class count differs.
 */
function baseHeadLayers(
  loaded: LoadedModel,
  features: tf.LayersModel,
  numClasses: number,
  prefix: string,
): tf.layers.Layer[] {
  const stop = features.outputs[0]!.sourceLayer.name;
  const chain: tf.layers.Layer[] = [];
  let layer = loaded.model.outputs[0]!.sourceLayer as tf.layers.Layer;
  while (layer.name !== stop) {
    chain.unshift(layer);
    const inbound = layer.inboundNodes[0]?.inboundLayers ?? [];
    if (inbound.length !== 1)
      throw new InputError(
        `reuseBaseHead: the base's head is not a plain chain of layers at "${layer.name}"`,
      );
    layer = inbound[0] as tf.layers.Layer;
  }
  if (chain.length === 0)
    throw new InputError('reuseBaseHead: the base has no layers after its feature layer');
  const last = chain[chain.length - 1]!;
  const outUnits = (last.outputShape as number[])[(last.outputShape as number[]).length - 1];
  if (outUnits !== numClasses) {
    chain[chain.length - 1] = tf.layers.dense({
      units: numClasses,
      activation: 'softmax',
      name: `${prefix}classes`,
    });
  }
  return chain;
}

const defaultRates = { adam: 0.001, sgd: 0.01, adadelta: 1.0, rmsprop: 0.001 } as const;
export type OptimizerName = keyof typeof defaultRates;

export function makeOptimizer(
  name: OptimizerName,
  learningRate?: number,
  options: OptimizerOptions = {},
): tf.Optimizer {
  const lr = learningRate ?? defaultRates[name];
  // Unset: tfjs' own defaults, spelled out (its epsilon is the float32 backend's, 1e-7), and Keras' Adadelta.
  const { rho, epsilon, beta1 = 0.9, beta2 = 0.999, momentum = 0 } = options;
  switch (name) {
    case 'adam':
      return tf.train.adam(lr, beta1, beta2, epsilon ?? 1e-7);
    case 'sgd':
      return tf.train.sgd(lr);
    case 'adadelta':
      return new KerasAdadelta(lr, rho ?? 0.95, epsilon ?? 1e-7);
    case 'rmsprop':
      return tf.train.rmsprop(lr, rho ?? 0.9, momentum, epsilon ?? 1e-7);
  }
}

export function compile(model: tf.LayersModel, optimizer: tf.Optimizer): void {
  model.compile({ optimizer, loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
}
