/**
 * A tfjs LayersModel's `model.json`, read without tfjs: what `loadModel` (model-io.ts) refuses before
 * it builds anything, and the check the API makes at submit on a `file://` model URI
 * (`checkModelFileUri`), so that a base or model that cannot be loaded is a 400 naming the field, not
 * a job that fails on a worker. Importing this module does not load tfjs.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as tf from '@tensorflow/tfjs';
import { resolveDataPath } from '../storage/data-uri.ts';
import { DataError, InputError, ModelFormatError } from '../util/errors.ts';

/** A model.json as tfjs writes it (`tf.io.ModelJSON`), with mlq's metadata when mlq saved it. */
export interface ModelJson {
  modelTopology: object;
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  userDefinedMetadata?: { mlq?: unknown };
}

/** What mlq loads, said in every ModelFormatError. */
export const SUPPORTED =
  'mlq loads TensorFlow.js layers models (model.json with "format": "layers-model", as written by tfjs ' +
  'model.save or tensorflowjs_converter --output_format=tfjs_layers_model from a Keras 2 or 3 model)';

/** The parsed model.json `text` (from `uri`), refused with a ModelFormatError when it is not a layers model. */
export function parseModelJson(uri: string, text: Buffer): ModelJson {
  let json: ModelJson;
  try {
    json = JSON.parse(text.toString('utf8')) as ModelJson;
  } catch (e) {
    throw new ModelFormatError(`${uri} is not JSON (${(e as Error).message}); ${SUPPORTED}`);
  }
  if (typeof json !== 'object' || json === null)
    throw new ModelFormatError(`${uri} is not a model.json; ${SUPPORTED}`);
  const topology = json.modelTopology as { node?: unknown } | undefined;
  if (json.format === 'graph-model' || Array.isArray(topology?.node))
    throw new ModelFormatError(
      `${uri} is a TensorFlow.js graph model (format "graph-model", converted from a SavedModel or frozen graph), which cannot be fine-tuned or evaluated layer by layer; ${SUPPORTED}`,
    );
  if (json.format !== undefined && json.format !== 'layers-model')
    throw new ModelFormatError(`${uri} has format "${json.format}"; ${SUPPORTED}`);
  if (!json.modelTopology || !Array.isArray(json.weightsManifest))
    throw new ModelFormatError(
      `${uri} is not a tfjs model.json (it has no modelTopology and weightsManifest); ${SUPPORTED}`,
    );
  return json;
}

/**
 * Checks a `file://` model URI as a worker would read it, short of building the model: inside
 * `dataRoots` (no `..`, no symlink out), a file and not a directory, a layers-model model.json, and
 * each weight file its manifest names present beside it (inside the roots too). Throws InputError
 * (outside the roots, a directory), DataError (a file that is not there) or ModelFormatError (not a
 * layers model.json); each message names the URI.
 */
export async function checkModelFileUri(uri: string, dataRoots: readonly string[]): Promise<void> {
  const file = await resolveDataPath(uri, dataRoots);
  if ((await stat(file)).isDirectory())
    throw new InputError(`${uri} is a directory; a model is the URI of its model.json file`);
  const json = parseModelJson(uri, await readFile(file));
  const dir = uri.slice(0, uri.lastIndexOf('/'));
  for (const group of json.weightsManifest)
    for (const p of Array.isArray(group?.paths) ? group.paths : []) {
      const weights = `${dir}/${path.posix.normalize(p)}`;
      const local = await resolveDataPath(weights, dataRoots).catch((e: unknown) => {
        if (e instanceof DataError)
          throw new DataError(`${uri} names the weight file ${p}, which is not beside it (${weights})`);
        throw e;
      });
      if ((await stat(local)).isDirectory())
        throw new DataError(
          `${uri} names the weight file ${p}, which is a directory (${pathToFileURL(local).href})`,
        );
    }
}
