/**
 * model.json files as people bring them, written by tests: Keras 3 exports (Sequential and
 * Functional, in Keras 3's spelling), a tfjs graph model, a model with NaN weights, and models built
 * with tfjs and saved in the standard layout (`model.json` + `weights.bin`).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export interface ModelFiles {
  modelTopology: unknown;
  weightSpecs: { name: string; shape: number[]; dtype: 'float32' }[];
  weights: Float32Array;
  format?: string;
}

/** Writes `<dir>/model.json` and `<dir>/weights.bin`; returns the model.json file:// URI. */
export async function writeModelFiles(dir: string, m: ModelFiles): Promise<string> {
  await mkdir(dir, { recursive: true });
  const json = {
    format: m.format ?? 'layers-model',
    generatedBy: 'keras v3.6.0',
    convertedBy: 'TensorFlow.js Converter v4.22.0',
    modelTopology: m.modelTopology,
    weightsManifest: [{ paths: ['weights.bin'], weights: m.weightSpecs }],
  };
  await writeFile(
    path.join(dir, 'weights.bin'),
    Buffer.from(m.weights.buffer, m.weights.byteOffset, m.weights.byteLength),
  );
  await writeFile(path.join(dir, 'model.json'), JSON.stringify(json));
  return pathToFileURL(path.join(dir, 'model.json')).href;
}

const policy = {
  module: 'keras',
  class_name: 'DTypePolicy',
  config: { name: 'float32' },
  registered_name: null,
};
const init = (name: string) => ({
  module: 'keras.initializers',
  class_name: name,
  config: {},
  registered_name: null,
});

/** A Keras 3 Dense layer entry. */
function dense(name: string, units: number, activation: string, inputs: number) {
  return {
    module: 'keras.layers',
    class_name: 'Dense',
    config: {
      name,
      trainable: true,
      dtype: policy,
      units,
      activation,
      use_bias: true,
      kernel_initializer: init('GlorotUniform'),
      bias_initializer: init('Zeros'),
      kernel_regularizer: null,
      bias_regularizer: null,
      kernel_constraint: null,
      bias_constraint: null,
    },
    registered_name: null,
    build_config: { input_shape: [null, inputs] },
  };
}

const inputLayer = (features: number) => ({
  module: 'keras.layers',
  class_name: 'InputLayer',
  config: { batch_shape: [null, features], dtype: 'float32', sparse: false, name: 'input_layer' },
  registered_name: null,
});

const kerasTensor = (layer: string, features: number) => ({
  class_name: '__keras_tensor__',
  config: { shape: [null, features], dtype: 'float32', keras_history: [layer, 0, 0] },
});

/**
 * Keras 3's `Sequential([Input((features,)), Dense(hidden, relu), Dense(classes, softmax)])` as its
 * tensorflowjs export writes it (`batch_shape`, DTypePolicy objects); `functional` gives the same
 * network as a Keras 3 Functional model. Weights: every kernel value `w`, biases 0.
 */
export function keras3Model(opts: {
  features: number;
  hidden: number;
  classes: number;
  functional?: boolean;
  w?: number;
}): ModelFiles {
  const { features, hidden, classes } = opts;
  const layers = [
    inputLayer(features),
    dense('dense', hidden, 'relu', features),
    dense('dense_1', classes, 'softmax', hidden),
  ];
  const modelTopology = opts.functional
    ? {
        class_name: 'Functional',
        config: {
          name: 'functional',
          trainable: true,
          layers: [
            { ...layers[0], name: 'input_layer', inbound_nodes: [] },
            {
              ...layers[1],
              name: 'dense',
              inbound_nodes: [{ args: [kerasTensor('input_layer', features)], kwargs: {} }],
            },
            {
              ...layers[2],
              name: 'dense_1',
              inbound_nodes: [{ args: [kerasTensor('dense', hidden)], kwargs: {} }],
            },
          ],
          input_layers: ['input_layer', 0, 0],
          output_layers: ['dense_1', 0, 0],
        },
        keras_version: '3.6.0',
        backend: 'tensorflow',
      }
    : {
        class_name: 'Sequential',
        config: {
          name: 'sequential',
          trainable: true,
          dtype: policy,
          layers,
          build_input_shape: [null, features],
        },
        keras_version: '3.6.0',
        backend: 'tensorflow',
      };
  const weightSpecs = [
    { name: 'dense/kernel', shape: [features, hidden], dtype: 'float32' as const },
    { name: 'dense/bias', shape: [hidden], dtype: 'float32' as const },
    { name: 'dense_1/kernel', shape: [hidden, classes], dtype: 'float32' as const },
    { name: 'dense_1/bias', shape: [classes], dtype: 'float32' as const },
  ];
  const weights = new Float32Array(features * hidden + hidden + hidden * classes + classes);
  weights.fill(opts.w ?? 0.1, 0, features * hidden);
  weights.fill(opts.w ?? 0.1, features * hidden + hidden, features * hidden + hidden + hidden * classes);
  return { modelTopology, weightSpecs, weights };
}

/** A tfjs graph model (what tensorflowjs_converter makes of a SavedModel): a GraphDef, not layers. */
export function graphModel(): ModelFiles {
  return {
    format: 'graph-model',
    modelTopology: {
      node: [
        {
          name: 'x',
          op: 'Placeholder',
          attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: { dim: [{ size: '-1' }, { size: '4' }] } } },
        },
        { name: 'w', op: 'Const', attr: { dtype: { type: 'DT_FLOAT' } } },
        { name: 'y', op: 'MatMul', input: ['x', 'w'] },
      ],
      library: {},
      versions: { producer: 1482 },
    },
    weightSpecs: [{ name: 'w', shape: [4, 2], dtype: 'float32' }],
    weights: new Float32Array(8),
  };
}

/** What `saveTfjsModel` needs of a tfjs LayersModel (this file does not import tfjs: tests bring their own). */
interface SavableModel {
  save(handler: {
    save(a: {
      modelTopology?: unknown;
      weightSpecs?: unknown[];
      weightData?: ArrayBuffer | ArrayBuffer[];
    }): Promise<{ modelArtifactsInfo: { dateSaved: Date; modelTopologyType: 'JSON' } }>;
  }): Promise<unknown>;
}

/** Saves a tfjs model in the standard layout under `dir` (tfjs' own artifacts, no mlq metadata). */
export async function saveTfjsModel(model: SavableModel, dir: string): Promise<string> {
  let files: ModelFiles | undefined;
  await model.save({
    save: async (a) => {
      const parts = Array.isArray(a.weightData) ? a.weightData : [a.weightData ?? new ArrayBuffer(0)];
      const bytes = Buffer.concat(parts.map((b) => Buffer.from(b)));
      files = {
        modelTopology: a.modelTopology,
        weightSpecs: (a.weightSpecs ?? []) as ModelFiles['weightSpecs'],
        weights: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4),
      };
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    },
  });
  return writeModelFiles(dir, files!);
}
