/**
 * Saving and loading LayersModels through the ArtifactStore. Pure `@tensorflow/tfjs` has no file://
 * handler, so one IOHandler pair over the store serves every store kind; the layout on disk is the
 * standard tfjs one (`model.json` + `weights.bin`), loadable by any tfjs program.
 */
import * as tf from '@tensorflow/tfjs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { UriLocator } from '../data/dataset.ts';
import type { ArtifactStore } from '../storage/artifact-store.ts';
import { resolveDataPath } from '../storage/data-uri.ts';
import { DataError, ModelFormatError, TrainingDivergedError } from '../util/errors.ts';
import { disposeModels, installKerasBatchNormRule } from '@mlq/engine';
import { fixUnknownInputDims, kerasToTfjsTopology } from './keras-compat.ts';
import { parseModelJson, SUPPORTED, type ModelJson } from './model-json.ts';

// Every model loaded or built in this thread follows Keras' rule: frozen BatchNormalization layers
// run in inference mode (see @mlq/engine's batch-norm.ts).
installKerasBatchNormRule();

/** What we keep beside a model's topology so later jobs and the server know how to use it. */
export interface ModelMeta {
  /** Name of the last layer of the feature extractor (where a transfer job cuts the model). */
  featuresLayer?: string;
  /** Shape of one input example, without the batch dimension. */
  inputShape: number[];
  numClasses: number;
  classNames?: string[];
  architecture?: string;
  base?: string;
}

function joinWeights(data: tf.io.WeightData | undefined): Uint8Array {
  if (!data) return new Uint8Array();
  return new Uint8Array(tf.io.CompositeArrayBuffer.join(data));
}

/** Saves a model as `<prefix>/model.json` + `<prefix>/weights.bin`; returns the model.json URI. */
export async function saveModel(
  model: tf.LayersModel,
  store: ArtifactStore,
  prefix: string,
  meta: ModelMeta,
): Promise<string> {
  // The last guard: a model with NaN weights answers NaN for every input, so it is never written.
  const bad = nonFiniteWeight(model);
  if (bad) throw new TrainingDivergedError(`the model under ${prefix} cannot be saved: ${bad}`);
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      const json: ModelJson = {
        modelTopology: a.modelTopology as object,
        format: 'layers-model',
        generatedBy: a.generatedBy,
        convertedBy: null,
        weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs ?? [] }],
        userDefinedMetadata: { mlq: meta },
      };
      // Weights first: a model.json that exists always has its weights beside it.
      await store.put(`${prefix}/weights.bin`, joinWeights(a.weightData));
      await store.put(`${prefix}/model.json`, JSON.stringify(json));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return store.uriOf(`${prefix}/model.json`);
}

export interface LoadedModel {
  model: tf.LayersModel;
  meta: ModelMeta;
  /** Bytes of weights, for cache accounting. */
  bytes: number;
}

/** Reads a model file; a directory (`file:///models/base`, not its model.json) is a DataError naming `uri`. */
async function readLocal(file: string, uri: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EISDIR')
      throw new DataError(`${uri} is a directory; a model is the URI of its model.json file`);
    throw e;
  }
}

async function readUri(
  uri: string,
  store: ArtifactStore,
  dataRoots: readonly string[],
  locate: UriLocator | undefined,
): Promise<Buffer> {
  const key = store.keyOf(uri);
  if (key !== undefined) return store.get(key);
  // The job's resolver: s3:// and http(s):// through the fetch cache and the egress policy.
  if (locate) return readLocal((await locate(uri)).path, uri);
  if (uri.startsWith('file://')) return readLocal(await resolveDataPath(uri, dataRoots), uri);
  throw new DataError(
    `cannot read "${uri}" here: this process reads models from its artifact store and file:// URIs inside DATA_ROOTS (workers also read s3:// and http(s)://)`,
  );
}

export interface LoadModelOptions {
  /**
   * The shape of the data the model will take (no batch dimension): a model whose input has unknown
   * (null) dimensions is built with these where its known ones agree (see fixUnknownInputDims).
   */
  inputShape?: readonly number[] | undefined;
  /**
   * Reads a URI outside the artifact store (remote/resolve-uri.ts: file://, s3://, http(s):// through
   * the worker's fetch cache). Without it only the store and file:// URIs inside `dataRoots` are read.
   */
  locate?: UriLocator | undefined;
}

/**
 * Loads a tfjs LayersModel from the URI of its model.json (Keras 3 spellings are read too, see
 * keras-compat.ts). Errors: NotFoundError (no such file), ModelFormatError (not a layers model, a
 * layer or weights tfjs cannot build, non-finite weights), DataError (a URI that cannot be read);
 * each is permanent. Anything else (a network error) may pass on a retry.
 */
export async function loadModel(
  uri: string,
  store: ArtifactStore,
  dataRoots: readonly string[] = [],
  opts: LoadModelOptions = {},
): Promise<LoadedModel> {
  const json = parseModelJson(uri, await readUri(uri, store, dataRoots, opts.locate));
  kerasToTfjsTopology(json.modelTopology);
  const reshaped = opts.inputShape ? fixUnknownInputDims(json.modelTopology, opts.inputShape) : false;
  const dir = uri.slice(0, uri.lastIndexOf('/'));
  const weightSpecs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Buffer[] = [];
  for (const group of json.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const p of group.paths)
      buffers.push(await readUri(`${dir}/${path.posix.normalize(p)}`, store, dataRoots, opts.locate));
  }
  const weightData = Buffer.concat(buffers);
  let model: tf.LayersModel;
  try {
    model = await tf.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: json.modelTopology,
        weightSpecs,
        weightData: weightData.buffer.slice(
          weightData.byteOffset,
          weightData.byteOffset + weightData.byteLength,
        ),
      }),
    );
  } catch (e) {
    throw new ModelFormatError(`tfjs cannot build the model ${uri}: ${(e as Error).message}; ${SUPPORTED}`);
  }
  const bad = nonFiniteWeight(model);
  if (bad) {
    disposeModels(model);
    throw new ModelFormatError(`the model ${uri} cannot be used: ${bad}`);
  }
  const inputShape = (model.inputs[0]?.shape ?? []).slice(1).map((d) => d ?? -1);
  const outShape = model.outputs[0]?.shape ?? [];
  const meta: ModelMeta = (json.userDefinedMetadata?.mlq as ModelMeta | undefined) ?? {
    inputShape,
    numClasses: outShape[outShape.length - 1] ?? 0,
  };
  if (reshaped) meta.inputShape = inputShape;
  return { model, meta, bytes: weightData.byteLength };
}

/**
 * True when a model whose input is `modelShape` (one example, -1 for an unknown dimension) takes data
 * of `dataShape`: same rank, and every known dimension equal (an unknown one matches any size).
 */
export function acceptsShape(modelShape: readonly number[], dataShape: readonly number[]): boolean {
  return modelShape.length === dataShape.length && modelShape.every((d, i) => d === -1 || d === dataShape[i]);
}

/**
 * The first weight of `model` holding NaN or ±Infinity, described ("weight dense/kernel has 12 NaN of
 * 256 values"), or undefined when every weight is finite. Such a model answers NaN for any input.
 */
export function nonFiniteWeight(model: tf.LayersModel): string | undefined {
  for (const w of model.weights) {
    if (w.dtype !== 'float32') continue;
    const v = w.read().dataSync() as Float32Array;
    let nan = 0;
    let inf = 0;
    for (let i = 0; i < v.length; i++) {
      const x = v[i]!;
      if (x - x !== 0) {
        if (x !== x) nan++;
        else inf++;
      }
    }
    if (nan + inf > 0) {
      const what = [nan ? `${nan} NaN` : '', inf ? `${inf} infinite` : ''].filter(Boolean).join(' and ');
      return `weight ${w.originalName} has ${what} of ${v.length} values`;
    }
  }
  return undefined;
}
