/**
 * A predict thread: its own tfjs on the backend TFJS_BACKEND names, wasm by default (a wasm instance per
 * thread, so threads never share a heap or a lock), an LRU of loaded models, one synchronous predict call per batch.
 * Started by thread-pool.ts; requests are checked on the event loop before they get here.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { imageToFeatures } from '@mlq/core/data';
import { InputError } from '@mlq/core/errors';
import { loadModel, type LoadedModel } from '@mlq/core/ml';
import { openArtifactStore } from '@mlq/core/storage';
import {
  compileInference,
  disposeModels,
  initBackend,
  type BackendPreference,
  type InferencePlan,
} from '@mlq/engine';
import { SizedLru } from './model-lru.ts';
import type {
  DecodeRequest,
  FromThread,
  ModelInfo,
  ThreadConfig,
  ThreadError,
  ToThread,
} from './protocol.ts';

interface Entry {
  model: tf.LayersModel;
  /** The model compiled for inference once at load (batch norms folded, activations fused). */
  plan: InferencePlan;
  info: ModelInfo;
}

const config = workerData as ThreadConfig;
const port = parentPort!;
const store = openArtifactStore(config.storeUri);
const models = new SizedLru<Entry>(config.cacheModels, config.cacheBytes, (_key, e) => {
  e.plan.dispose();
  disposeModels(e.model);
});
/** Loads in progress: concurrent first requests for a model share one load. */
const loading = new Map<string, Promise<Entry>>();
let evicted: string[] = [];

function describe(loaded: LoadedModel): ModelInfo {
  const { model } = loaded;
  if (model.inputs.length !== 1 || model.outputs.length !== 1) {
    throw new InputError(
      `serving supports models with one input and one output; this one has ${model.inputs.length} and ${model.outputs.length}`,
    );
  }
  const dims = (shape: (number | null)[]) => shape.slice(1).map((d) => d ?? -1);
  return {
    inputName: model.inputNames[0] ?? 'input',
    inputShape: dims(model.inputs[0]!.shape),
    inputDtype: model.inputs[0]!.dtype,
    outputName: model.outputNames[0] ?? 'output',
    outputShape: dims(model.outputs[0]!.shape),
    outputDtype: model.outputs[0]!.dtype,
    bytes: loaded.bytes,
  };
}

function getModel(key: string, uri: string): Promise<Entry> {
  const hit = models.get(key);
  if (hit) return Promise.resolve(hit);
  let pending = loading.get(key);
  if (!pending) {
    pending = (async () => {
      const loaded = await loadModel(uri, store, config.dataRoots);
      let info: ModelInfo;
      let plan: InferencePlan;
      try {
        info = describe(loaded);
        plan = compileInference(loaded.model);
      } catch (e) {
        disposeModels(loaded.model);
        throw e;
      }
      const entry = { model: loaded.model, plan, info };
      evicted.push(...models.set(key, entry, loaded.bytes));
      return entry;
    })();
    loading.set(key, pending);
    void pending.finally(() => loading.delete(key)).catch(() => undefined);
  }
  return pending;
}

function predict(entry: Entry, rows: number, data: Float32Array): Float32Array {
  const { inputShape, inputDtype } = entry.info;
  // One call for the whole batch, through the compiled plan (inference mode), not
  // predict()/predictOnBatch(), which cut and copy their input per chunk. The tensor leaves tidy:
  // tidy would otherwise walk every element of a returned typed array looking for tensors.
  const out = tf.tidy(() =>
    entry.plan.predict(tf.tensor(data, [rows, ...inputShape], inputDtype as tf.DataType)),
  );
  try {
    // A fresh buffer: what dataSync returns may be a view we must not transfer away.
    return new Float32Array(out.dataSync());
  } finally {
    out.dispose();
  }
}

/**
 * Decodes images with the image-folder dataset's own function (decode, EXIF orientation, resize), so
 * an image sent to predict becomes exactly the pixels training and batch-predict saw for the same file.
 */
async function decode(m: DecodeRequest): Promise<Float32Array> {
  const size = m.height * m.width * m.channels;
  const out = new Float32Array(m.images.length * size);
  for (const [i, bytes] of m.images.entries()) {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    await imageToFeatures(
      buf,
      m.names[i]!,
      [m.height, m.width],
      m.channels,
      out,
      i * size,
      config.imageMaxPixels,
    );
  }
  return out;
}

function reply(msg: FromThread, transfer: ArrayBuffer[] = []): void {
  port.postMessage(msg, transfer);
}

function takeEvicted(): string[] {
  const out = evicted;
  evicted = [];
  return out;
}

function toThreadError(e: unknown): ThreadError {
  return e instanceof Error ? { name: e.name, message: e.message } : { name: 'Error', message: String(e) };
}

async function handle(m: ToThread): Promise<void> {
  try {
    if (m.type === 'decode') {
      const out = await decode(m);
      return reply({ type: 'reply', id: m.id, data: out, evicted: [] }, [out.buffer as ArrayBuffer]);
    }
    const entry = await getModel(m.key, m.uri);
    if (m.type === 'load')
      return reply({ type: 'reply', id: m.id, info: entry.info, evicted: takeEvicted() });
    const out = predict(entry, m.rows, m.data);
    reply({ type: 'reply', id: m.id, data: out, evicted: takeEvicted() }, [out.buffer as ArrayBuffer]);
  } catch (e) {
    reply({ type: 'reply', id: m.id, error: toThreadError(e), evicted: takeEvicted() });
  }
}

try {
  const backend = await initBackend(config.backend as BackendPreference);
  port.on('message', (m: ToThread) => void handle(m));
  reply({ type: 'ready', backend });
} catch (e) {
  reply({ type: 'fatal', error: toThreadError(e) });
}
