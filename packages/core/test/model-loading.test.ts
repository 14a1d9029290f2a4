/**
 * Every way a model file can fail to load is classified once, where it is loaded, as permanent (with
 * what was found and what is supported) or transient; Keras 3's spellings load; a base whose input has
 * unknown (null) dimensions takes the data's shape.
 */
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/ml/model-io.ts';
import { EgressPolicy } from '../src/remote/egress.ts';
import { FetchCache } from '../src/remote/fetch-cache.ts';
import { uriResolver } from '../src/remote/resolve-uri.ts';
import { buildTransferModel } from '../src/ml/transfer.ts';
import { FileArtifactStore } from '../src/storage/file-store.ts';
import { DataError, isPermanentError, ModelFormatError, NotFoundError } from '../src/util/errors.ts';
import {
  graphModel,
  keras3Model,
  saveTfjsModel,
  writeModelFiles,
} from '../../../test/support/model-files.ts';

/**
 * A convolutional base that takes images of any size, as Keras writes one with `Input((None, None,
 * 1))`: conv 3x3 (4 filters) → GlobalAveragePooling2D → Dense(2, softmax).
 */
function anySizeImageModel(): tf.LayersModel {
  const input = tf.input({ shape: [null, null, 1] as unknown as number[], name: 'image' });
  let x = tf.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', name: 'conv' }).apply(input);
  x = tf.layers.globalAveragePooling2d({ name: 'pool' }).apply(x);
  const out = tf.layers
    .dense({ units: 2, activation: 'softmax', name: 'classes' })
    .apply(x) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

let dir: string;
let store: FileArtifactStore;
let server: Server;
let base: string;
beforeAll(async () => {
  await tf.setBackend('cpu');
  dir = await mkdtemp(path.join(os.tmpdir(), 'mlq-model-loading-'));
  store = new FileArtifactStore(path.join(dir, 'artifacts'));
  // A model server that answers each path with the status it names: /404/model.json → 404.
  server = createServer((req, res) => {
    res.statusCode = Number(req.url!.split('/')[1]);
    res.end('{}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

/** The worker's way to read a URI: file:// inside the data root, http(s) through a fetch cache. */
const locate = () =>
  uriResolver({
    dataRoots: [dir],
    fetch: {
      cache: new FetchCache({
        dir: path.join(dir, 'cache'),
        maxBytes: 1 << 20,
        policy: new EgressPolicy({ allowHosts: ['127.0.0.1'], timeoutMs: 5000, maxBytes: 1 << 20 }),
      }),
      holder: 'test',
    },
  });
const load = (uri: string, opts = {}) => loadModel(uri, store, [dir], { locate: locate(), ...opts });
const failure = (uri: string) =>
  load(uri).then(
    () => undefined,
    (e: unknown) => e as Error,
  );

describe('Keras 3 exports', () => {
  for (const functional of [false, true]) {
    it(`load a ${functional ? 'Functional' : 'Sequential'} model: batch_shape means batch_input_shape`, async () => {
      const uri = await writeModelFiles(
        path.join(dir, functional ? 'k3f' : 'k3s'),
        keras3Model({ features: 4, hidden: 3, classes: 2, functional }),
      );
      const { model, meta } = await load(uri);
      expect(meta).toEqual({ inputShape: [4], numClasses: 2 });
      // relu(0.1 * 4 ones) = 0.4 in each of 3 units; then equal logits: [0.5, 0.5].
      const p = (model.predict(tf.ones([1, 4])) as tf.Tensor).arraySync() as number[][];
      expect(p[0]![0]).toBeCloseTo(0.5, 6);
    });
  }
});

describe('model files tfjs cannot load fail permanently, saying what was found and what is supported', () => {
  it('a graph model', async () => {
    const e = await failure(await writeModelFiles(path.join(dir, 'graph'), graphModel()));
    expect(e).toBeInstanceOf(ModelFormatError);
    expect(isPermanentError(e)).toBe(true);
    expect(e!.message).toMatch(/is a TensorFlow\.js graph model \(format "graph-model"/);
    expect(e!.message).toMatch(
      /mlq loads TensorFlow\.js layers models \(model\.json with "format": "layers-model"/,
    );
  });

  it('a layer tfjs does not know, weights that do not fit, a file that is not JSON', async () => {
    const custom = keras3Model({ features: 4, hidden: 3, classes: 2 });
    const layers = (custom.modelTopology as { config: { layers: { class_name: string }[] } }).config.layers;
    layers[1]!.class_name = 'MyAttention';
    const e1 = await failure(await writeModelFiles(path.join(dir, 'custom'), custom));
    expect(e1).toBeInstanceOf(ModelFormatError);
    expect(e1!.message).toMatch(/^tfjs cannot build the model .*custom\/model\.json: .*MyAttention/);

    const short = keras3Model({ features: 4, hidden: 3, classes: 2 });
    short.weights = short.weights.subarray(0, 5);
    const e2 = await failure(await writeModelFiles(path.join(dir, 'short'), short));
    expect(e2).toBeInstanceOf(ModelFormatError);

    const h5 = path.join(dir, 'model.h5.json');
    await writeFile(h5, Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a]));
    const e3 = await failure(`file://${h5}`);
    expect(e3).toBeInstanceOf(ModelFormatError);
    expect(e3!.message).toMatch(/is not JSON \(.*\); mlq loads/);
  });

  it('weights that are NaN or infinite', async () => {
    const m = keras3Model({ features: 4, hidden: 3, classes: 2 });
    m.weights[13] = Number.NaN;
    m.weights[14] = Number.POSITIVE_INFINITY;
    const e = await failure(await writeModelFiles(path.join(dir, 'nan'), m));
    expect(e).toBeInstanceOf(ModelFormatError);
    expect(e!.message).toMatch(/cannot be used: weight dense\/bias has 1 NaN and 1 infinite of 3 values$/);
  });

  it('missing files, a directory, and HTTP answers: 404 not found, 403 refused, a 503 may pass on a retry', async () => {
    const uri = await writeModelFiles(
      path.join(dir, 'noweights'),
      keras3Model({ features: 2, hidden: 2, classes: 2 }),
    );
    await rm(path.join(fileURLToPath(uri), '..', 'weights.bin'));
    expect(await failure(uri)).toBeInstanceOf(DataError);
    // The folder of a model instead of its model.json: said so, and permanent (not a raw EISDIR).
    const folder = await failure(`file://${path.join(dir, 'noweights')}`);
    expect(folder).toBeInstanceOf(DataError);
    expect(folder!.message).toBe(
      `file://${path.join(dir, 'noweights')} is a directory; a model is the URI of its model.json file`,
    );
    const e404 = await failure(`${base}/404/model.json`);
    expect(e404).toBeInstanceOf(NotFoundError);
    expect(e404!.message).toBe(`not found: ${base}/404/model.json (HTTP 404 Not Found)`);
    const e403 = await failure(`${base}/403/model.json`);
    expect(isPermanentError(e403)).toBe(true);
    expect(e403!.message).toBe(`GET ${base}/403/model.json answered 403 Forbidden`);
    // Without the allow list, the worker's policy refuses the loopback server before connecting.
    const refused = await loadModel(`${base}/200/model.json`, store, [dir], {
      locate: uriResolver({
        dataRoots: [dir],
        fetch: {
          cache: new FetchCache({
            dir: path.join(dir, 'cache2'),
            maxBytes: 1 << 20,
            policy: new EgressPolicy({ allowHosts: [], timeoutMs: 5000, maxBytes: 1 << 20 }),
          }),
          holder: 'test',
        },
      }),
    }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(isPermanentError(refused)).toBe(true);
    expect(refused!.message).toMatch(/plain http:\/\/ is only allowed to hosts in FETCH_ALLOW_HOSTS/);
    const e503 = await failure(`${base}/503/model.json`);
    expect(isPermanentError(e503)).toBe(false);
    expect(await failure(`${base}/200/model.json`)).toBeInstanceOf(ModelFormatError);
  });
});

describe('a base whose input has null dimensions', () => {
  it('takes the data shape where the known dimensions agree, and a transfer model builds on it', async () => {
    const uri = await saveTfjsModel(anySizeImageModel(), path.join(dir, 'any-size'));
    expect((await load(uri)).meta.inputShape).toEqual([-1, -1, 1]);
    const fixed = await load(uri, { inputShape: [12, 12, 1] });
    expect(fixed.model.inputs[0]!.shape).toEqual([null, 12, 12, 1]);
    expect(fixed.meta.inputShape).toEqual([12, 12, 1]);
    // A known dimension that disagrees is left as it is (the transfer check then names it).
    expect((await load(uri, { inputShape: [12, 12, 3] })).meta.inputShape).toEqual([-1, -1, 1]);
    const json = JSON.parse(await readFile(fileURLToPath(uri), 'utf8')) as object;
    expect(JSON.stringify(json)).toContain('[null,null,null,1]');

    const anySize = await load(uri);
    const tm = buildTransferModel({
      base: { ref: 'any-size', loaded: anySize },
      trainableLayers: 0,
      inputShape: [28, 28, 1],
      numClasses: 3,
    });
    expect((tm.model.predict(tf.zeros([2, 28, 28, 1])) as tf.Tensor).shape).toEqual([2, 3]);
    expect(() =>
      buildTransferModel({
        base: { ref: 'any-size', loaded: anySize },
        trainableLayers: 0,
        inputShape: [28, 28, 3],
        numClasses: 3,
      }),
    ).toThrow('base "any-size" takes input [-1, -1, 1] but the dataset has [28, 28, 3]');
  });
});
