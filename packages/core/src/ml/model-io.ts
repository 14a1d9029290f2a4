/**
 * Saving and loading LayersModels through the ArtifactStore. Pure `@tensorflow/tfjs` has no file://
 * handler, so one IOHandler pair over the store serves every store kind; the layout on disk is the
 * standard tfjs one (`model.json` + `weights.bin`), loadable by any tfjs program.
 */
import * as tf from '@tensorflow/tfjs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ArtifactStore } from '../storage/artifact-store.ts';
import { resolveDataPath } from '../storage/data-uri.ts';
import { readS3Uri } from '../storage/s3-store.ts';
import { DataError, NotFoundError } from '../util/errors.ts';

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

interface ModelJson {
  modelTopology: object;
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  userDefinedMetadata?: { mlq?: ModelMeta };
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

async function readUri(uri: string, store: ArtifactStore, dataRoots: readonly string[]): Promise<Buffer> {
  const key = store.keyOf(uri);
  if (key !== undefined) return store.get(key);
  if (uri.startsWith('file://')) return readFile(await resolveDataPath(uri, dataRoots));
  if (uri.startsWith('s3://')) return readS3Uri(uri, store);
  if (/^https?:\/\//.test(uri)) {
    const res = await fetch(uri);
    if (res.status === 404) throw new NotFoundError(`model file not found: ${uri}`);
    if (!res.ok) throw new Error(`GET ${uri} answered ${res.status}`);
    return Buffer.from(await res.arrayBuffer());
  }
  throw new DataError(
    `cannot read "${uri}": supported are this artifact store, file://, s3:// and http(s)://`,
  );
}

/** Loads a tfjs LayersModel from the URI of its model.json. */
export async function loadModel(
  uri: string,
  store: ArtifactStore,
  dataRoots: readonly string[] = [],
): Promise<LoadedModel> {
  let json: ModelJson;
  try {
    json = JSON.parse((await readUri(uri, store, dataRoots)).toString('utf8')) as ModelJson;
  } catch (e) {
    if (e instanceof SyntaxError) throw new DataError(`${uri} is not JSON: ${e.message}`);
    throw e;
  }
  if (!json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new DataError(`${uri} is not a tfjs LayersModel model.json (no modelTopology / weightsManifest)`);
  }
  const dir = uri.slice(0, uri.lastIndexOf('/'));
  const weightSpecs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Buffer[] = [];
  for (const group of json.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const p of group.paths)
      buffers.push(await readUri(`${dir}/${path.posix.normalize(p)}`, store, dataRoots));
  }
  const weightData = Buffer.concat(buffers);
  const model = await tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs,
      weightData: weightData.buffer.slice(
        weightData.byteOffset,
        weightData.byteOffset + weightData.byteLength,
      ),
    }),
  );
  const inputShape = (model.inputs[0]?.shape ?? []).slice(1).map((d) => d ?? -1);
  const outShape = model.outputs[0]?.shape ?? [];
  const meta: ModelMeta = json.userDefinedMetadata?.mlq ?? {
    inputShape,
    numClasses: outShape[outShape.length - 1] ?? 0,
  };
  return { model, meta, bytes: weightData.byteLength };
}
