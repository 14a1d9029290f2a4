/**
 * The memory budget of a training job (the worker's `WORKER_MEMORY_MB`, or its cgroup limit, shared
 * among the jobs it runs at once): what the model needs to train is checked against it before
 * anything else, and what is left bounds the input pipeline's buffers.
 */
import type * as tf from '@tensorflow/tfjs';
import { modelSize, type ModelSize } from '../../ml/model-plan.ts';
import { InputError } from '../../util/errors.ts';

const MB = 1 << 20;

/** Optimizer state per trainable weight, in weights (Adam: two moments; Adadelta: two accumulators). */
const OPTIMIZER_SLOTS: Record<string, number> = { adam: 2, adadelta: 2, rmsprop: 2, sgd: 0 };

/** What training a model takes, in bytes. */
export interface TrainingMemory {
  gradients: number;
  optimizer: number;
  /** One batch's layer outputs, kept for the backward pass, and as much again for their gradients. */
  activations: number;
  /** Model replicas of the data-parallel helper threads. */
  replicas: number;
  total: number;
}

const elements = (shape: (number | null)[]) => shape.reduce<number>((a, d) => a * (d ?? 1), 1);

/** The largest layer output of one example, in floats (what bounds an inference batch). */
export function largestActivation(model: tf.LayersModel): number {
  let n = 0;
  for (const l of model.layers) {
    const out = l.outputShape;
    const shapes = (Array.isArray(out[0]) ? out : [out]) as (number | null)[][];
    for (const s of shapes) n = Math.max(n, elements(s.slice(1)));
  }
  return n;
}

/**
 * Rows per inference batch of `model` so that its largest layer output, with its input and output
 * alive, takes about `bytes` (1..512).
 */
export function inferenceBatch(model: tf.LayersModel, bytes: number): number {
  return Math.max(1, Math.min(512, Math.floor(bytes / (3 * 4 * largestActivation(model)))));
}

/**
 * An estimate of what training a model of `size` (float32 values: model-plan.ts's ModelSize, of a built
 * model or of one planned before it is built) with batches of `batchSize` takes beyond its weights, in
 * bytes; `threads` data-parallel threads each hold a replica of the weights.
 */
export function trainingMemoryOf(
  size: ModelSize,
  batchSize: number,
  optimizer: string,
  threads = 1,
): TrainingMemory {
  const gradients = size.trainable * 4;
  const optimizerBytes = size.trainable * 4 * (OPTIMIZER_SLOTS[optimizer] ?? 2);
  const activations = 2 * batchSize * size.activations * 4;
  const replicas = (threads - 1) * size.weights * 4;
  return {
    gradients,
    optimizer: optimizerBytes,
    activations,
    replicas,
    total: gradients + optimizerBytes + activations + replicas,
  };
}

/** An estimate of what training the built `model` with batches of `batchSize` takes beyond its weights. */
export function trainingMemory(
  model: tf.LayersModel,
  batchSize: number,
  optimizer: string,
  threads = 1,
): TrainingMemory {
  return trainingMemoryOf(modelSize(model), batchSize, optimizer, threads);
}

/**
 * The WebAssembly heap of the wasm backend: 32-bit addresses, so at most 4 GiB, which every tensor of
 * the process (weights, gradients, optimizer state, a batch's activations, data uploaded for a step)
 * shares with tfjs's own allocations and the allocator's fragmentation. Training is planned to fit in
 * 3 GiB of it: past the heap's end a kernel aborts the whole instance ("memory access out of bounds",
 * "Aborted()"), and that instance cannot run anything again.
 */
export const WASM_HEAP_BYTES = 4 * 1024 * MB;
export const WASM_TRAINING_BYTES = 3 * 1024 * MB;

/**
 * Checks that training fits the backend's own memory, whatever the machine has: on wasm the tensors
 * on the backend (`heldBytes`: a base's weights and the model's, built or about to be) plus `need`
 * (without the helper threads' replicas, which live in their own instances) must stay within
 * WASM_TRAINING_BYTES; an InputError naming the limit and what to change otherwise. Other backends keep tensors in the
 * process's own memory, which the budget (planBuffers) bounds.
 */
export function checkBackendMemory(
  backend: string,
  heldBytes: number,
  need: TrainingMemory,
  batchSize: number,
): void {
  if (backend !== 'wasm') return;
  const heap = heldBytes + need.total - need.replicas;
  if (heap <= WASM_TRAINING_BYTES) return;
  throw new InputError(
    `the model does not fit in the wasm backend's memory: training needs about ${fmt(heap)} of its WebAssembly heap ` +
      `(weights and other tensors ${fmt(heldBytes)}, activations of a batch of ${batchSize}: ${fmt(need.activations)}, ` +
      `gradients ${fmt(need.gradients)}, optimizer state ${fmt(need.optimizer)}), and that heap holds at most ${fmt(WASM_HEAP_BYTES)}, ` +
      `of which training may plan on ${fmt(WASM_TRAINING_BYTES)} whatever memory the machine has; ` +
      `use a smaller model (fewer or smaller architectureOptions.units, a smaller alpha), a smaller batchSize, ` +
      `an optimizer with less state (sgd), or a worker on the tensorflow backend`,
  );
}

/** Bytes left for the input pipeline: what the checks below found and how it is shared out. */
export interface BufferBudget {
  /** Bytes the data may take in memory (decoded rows or features held whole). */
  hold: number;
  /** Bytes of the shuffle buffer of a streamed set. */
  shuffle: number;
  /** Bytes of one chunk of rows decoded or embedded at once. */
  chunk: number;
}

const fmt = (b: number) => `${Math.round(b / MB)} MB`;

/**
 * Checks that training fits: `usedBytes` (the process now, model loaded) plus `need` must stay under
 * `budgetMb`; an InputError with the numbers otherwise (retrying on the same worker cannot help).
 * Returns how the rest is shared between the input pipeline's buffers.
 */
export function planBuffers(
  budgetMb: number,
  usedBytes: number,
  need: TrainingMemory,
  batchSize: number,
): BufferBudget {
  const budget = budgetMb * MB;
  const free = budget - usedBytes - need.total;
  if (free < 0) {
    const parts = [
      `activations of a batch of ${batchSize}: ${fmt(need.activations)}`,
      `gradients ${fmt(need.gradients)}`,
      `optimizer state ${fmt(need.optimizer)}`,
      ...(need.replicas > 0 ? [`helper-thread replicas ${fmt(need.replicas)}`] : []),
    ];
    throw new InputError(
      `the model does not fit in the job's memory budget: training needs about ${fmt(need.total)} (${parts.join(', ')}) ` +
        `on top of the ${fmt(usedBytes)} this process holds with the model loaded, and the budget is ${budgetMb} MB ` +
        `(WORKER_MEMORY_MB, or the cgroup limit, divided by WORKER_CONCURRENCY); use a smaller batchSize or a larger budget`,
    );
  }
  return { hold: free / 2, shuffle: free / 4, chunk: Math.max(MB, Math.min(64 * MB, free / 8)) };
}
