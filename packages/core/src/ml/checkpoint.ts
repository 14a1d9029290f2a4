/**
 * Per-epoch checkpoints under `runs/<jobId>/`: each epoch's model and optimizer state go to
 * `epoch-<n>/`, then `checkpoint.json` is pointed at it (so a crash mid-write leaves the previous
 * checkpoint intact), then older epoch folders are deleted.
 */
import * as tf from '@tensorflow/tfjs';
import type { EpochProgress } from '@mlq/contract';
import type { ArtifactStore } from '../storage/artifact-store.ts';
import { runPrefix } from '../storage/layout.ts';
import type { PartialEpoch } from './fit.ts';
import { loadModel, saveModel, type ModelMeta } from './model-io.ts';

export interface CheckpointState {
  /** Epochs fully done. */
  epoch: number;
  /** Progress inside the next epoch, when a shutdown interrupted it. */
  partial?: PartialEpoch;
  history: EpochProgress[];
  seed: number;
  /** Rows of the streamed input's shuffle buffer: a resumed run keeps it, so its order is the same. */
  shuffleBufferRows?: number;
  dir: string;
  optimizer?: { specs: tf.io.WeightsManifestEntry[] };
  savedAt: string;
}

/** A copy of a Buffer's bytes as a standalone ArrayBuffer. */
export function toArrayBuffer(buf: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(buf.byteLength);
  new Uint8Array(out).set(buf);
  return out;
}

/**
 * The model's variables by the names this process gave them (`conv1/kernel_1`) and by their own
 * (`conv1/kernel`). Optimizer state is named after the variables (KerasAdadelta finds its slots by
 * those names), and tfjs makes them unique per process: a model whose layer names were used before
 * in the process gets suffixes, as in a sandbox child that has run a job already. So a checkpoint
 * names the state by the weights' own names, as the saved model does, and a restore maps them back
 * to the variables of the model it restores into.
 */
function variableNames(model: tf.LayersModel) {
  return {
    own: new Map(model.weights.map((w) => [w.name, w.originalName])),
    live: new Map(model.weights.map((w) => [w.originalName, w.name])),
  };
}

/** `<variable>/<slot>` with the variable renamed through `names`; other names as they are. */
function renameSlot(name: string, names: Map<string, string>): string {
  const i = name.lastIndexOf('/');
  const variable = i > 0 ? names.get(name.slice(0, i)) : undefined;
  return variable === undefined ? name : variable + name.slice(i);
}

async function saveOptimizer(opt: tf.Optimizer, model: tf.LayersModel, store: ArtifactStore, dir: string) {
  const { own } = variableNames(model);
  const weights = (await opt.getWeights()).map((w) => ({ ...w, name: renameSlot(w.name, own) }));
  if (weights.length === 0) return undefined;
  const { data, specs } = await tf.io.encodeWeights(weights);
  await store.put(`${dir}/optimizer.bin`, new Uint8Array(tf.io.CompositeArrayBuffer.join(data)));
  return { specs };
}

export async function saveCheckpoint(
  jobId: string,
  store: ArtifactStore,
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
  meta: ModelMeta,
  state: {
    epoch: number;
    history: EpochProgress[];
    seed: number;
    partial?: PartialEpoch;
    shuffleBufferRows?: number | undefined;
  },
): Promise<CheckpointState> {
  const run = runPrefix(jobId);
  const dir = state.partial
    ? `${run}/epoch-${state.epoch}-batch-${state.partial.batches}`
    : `${run}/epoch-${state.epoch}`;
  await saveModel(model, store, dir, meta);
  const optimizerState = await saveOptimizer(optimizer, model, store, dir).catch(() => undefined);
  const cp: CheckpointState = {
    ...state,
    dir,
    ...(optimizerState ? { optimizer: optimizerState } : {}),
    savedAt: new Date().toISOString(),
  };
  await store.put(`${run}/checkpoint.json`, JSON.stringify(cp));
  // Older checkpoints go once the pointer has moved on.
  for (const key of await store.list(run)) {
    if (/^runs\/[^/]+\/epoch-/.test(key) && !key.startsWith(`${dir}/`)) await store.delete(key);
  }
  return cp;
}

export async function findCheckpoint(
  jobId: string,
  store: ArtifactStore,
): Promise<CheckpointState | undefined> {
  const key = `${runPrefix(jobId)}/checkpoint.json`;
  if (!(await store.exists(key))) return undefined;
  return JSON.parse((await store.get(key)).toString('utf8')) as CheckpointState;
}

/**
 * Copies a checkpoint's weights (and, where tfjs allows, its optimizer state) into a freshly built
 * model of the same topology.
 */
export async function restoreCheckpoint(
  cp: CheckpointState,
  store: ArtifactStore,
  model: tf.LayersModel,
  optimizer: tf.Optimizer,
): Promise<void> {
  const saved = await loadModel(store.uriOf(`${cp.dir}/model.json`), store);
  const weights = saved.model.getWeights();
  model.setWeights(weights);
  saved.model.dispose();
  if (cp.optimizer) {
    const buf = await store.get(`${cp.dir}/optimizer.bin`);
    const named = tf.io.decodeWeights(toArrayBuffer(buf), cp.optimizer.specs);
    // Names that are no weight's own (checkpoints written before these names) are passed as they are.
    const { live } = variableNames(model);
    await optimizer.setWeights(
      Object.entries(named).map(([name, tensor]) => ({ name: renameSlot(name, live), tensor })),
    );
  }
}
