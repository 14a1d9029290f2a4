/** The training vocabulary shared by fine-tune and tune: architectures, heads, optimizers, progress. */
import { z } from 'zod';
import { augmentSchema } from './augment.ts';
import { datasetSchema } from './datasets.ts';
import { modelNameSchema, modelRefSchema } from './model-refs.ts';

export const architectures = ['mnist-cnn', 'mlp', 'mobilenet-v2'] as const;
export type Architecture = (typeof architectures)[number];
export const optimizers = ['adam', 'sgd', 'adadelta', 'rmsprop'] as const;
export type OptimizerName = (typeof optimizers)[number];

/** A new dense head on top of the base's features (Keras: Dense + Dropout blocks, then softmax). */
export const headSchema = z.strictObject({
  units: z.array(z.number().int().min(1).max(8192)).max(8).default([128]),
  dropout: z.number().min(0).max(0.95).default(0.5),
  activation: z.enum(['relu', 'tanh', 'sigmoid', 'elu']).default('relu'),
});

/**
 * The optimizer's own constants, where a reference differs from tfjs/Keras defaults (PyTorch's
 * Adadelta: rho 0.9, epsilon 1e-6; Keras': 0.95, 1e-7). Which apply: `optimizerOptionsApply`.
 */
export const optimizerOptionsSchema = z.strictObject({
  rho: z.number().gt(0).lt(1).optional(),
  epsilon: z.number().positive().max(1).optional(),
  beta1: z.number().gt(0).lt(1).optional(),
  beta2: z.number().gt(0).lt(1).optional(),
  momentum: z.number().min(0).lt(1).optional(),
});
export type OptimizerOptions = z.infer<typeof optimizerOptionsSchema>;

/** The options each optimizer takes; any other is a 400 naming it. */
export const optimizerOptionsApply: Record<OptimizerName, (keyof OptimizerOptions)[]> = {
  adam: ['beta1', 'beta2', 'epsilon'],
  sgd: [],
  adadelta: ['rho', 'epsilon'],
  rmsprop: ['rho', 'momentum', 'epsilon'],
};

/** The training fields shared by fine-tune and tune. */
export const trainingFields = {
  model: modelNameSchema,
  base: modelRefSchema.optional(),
  architecture: z.enum(architectures).optional(),
  /**
   * Options of the architecture (mobilenet-v2: alpha; mlp: units). The input size is always the
   * dataset's (an image-folder's `imageSize`), so there is no `inputSize`.
   */
  architectureOptions: z
    .strictObject({
      alpha: z.number().positive().max(2).optional(),
      units: z.array(z.number().int().min(1).max(8192)).max(8).optional(),
    })
    .optional(),
  dataset: datasetSchema,
  trainableLayers: z.number().int().min(0).default(0),
  head: headSchema.optional(),
  /** Keep training the base's own head layers instead of a new head (the Keras transfer recipe). */
  reuseBaseHead: z
    .boolean()
    .default(false)
    .describe(
      "Keep training the base's own head layers instead of a new head (the last layer is replaced if the class count differs; `head` is then ignored). Needs `base`: true without one is a 400 naming reuseBaseHead.",
    ),
  epochs: z.number().int().min(1).max(1000),
  batchSize: z.number().int().min(1).max(8192).default(32),
  optimizer: z.enum(optimizers).default('adam'),
  learningRate: z.number().positive().max(100).optional(),
  optimizerOptions: optimizerOptionsSchema.optional(),
  validationSplit: z.number().min(0).max(0.5).default(0),
  augment: augmentSchema.optional(),
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 31 - 1)
    .default(42),
};

/** Refinement: a training job names a base to start from or an architecture to build. */
export function needsBaseOrArchitecture(p: {
  base?: string | undefined;
  architecture?: string | undefined;
}): boolean {
  return p.base !== undefined || p.architecture !== undefined;
}
export const baseOrArchitectureIssue = { message: 'give "base" or "architecture"', path: ['architecture'] };

/** Refinement: `reuseBaseHead` keeps training the base's own head, so it needs a `base`. */
export function checkReuseBaseHead(
  p: { base?: string | undefined; reuseBaseHead: boolean },
  ctx: z.RefinementCtx,
): void {
  if (p.reuseBaseHead && p.base === undefined)
    ctx.addIssue({
      code: 'custom',
      path: ['reuseBaseHead'],
      message:
        'reuseBaseHead needs "base": it keeps training the head layers of the base model; without a base, leave it out (a new head is built)',
    });
}

/** Refinement: options the chosen optimizer does not take (unless a tune searches over optimizers). */
export function checkOptimizerOptions(
  p: {
    optimizer: OptimizerName;
    optimizerOptions?: OptimizerOptions | undefined;
    search?: { space: object };
  },
  ctx: z.RefinementCtx,
): void {
  if (!p.optimizerOptions || (p.search && 'optimizer' in p.search.space)) return;
  const takes = optimizerOptionsApply[p.optimizer];
  for (const key of Object.keys(p.optimizerOptions) as (keyof OptimizerOptions)[]) {
    if (p.optimizerOptions[key] === undefined || takes.includes(key)) continue;
    ctx.addIssue({
      code: 'custom',
      path: ['optimizerOptions', key],
      message: `${p.optimizer} takes ${takes.length > 0 ? takes.join(', ') : 'no options'}, not ${key}`,
    });
  }
}

/**
 * A training job's progress: Keras' `loss`/`acc` names, samples per second, and the time left
 * (seconds). After each epoch: that epoch's metrics. Within an epoch (every few batches, at most once a
 * second): `batch` of `batches` done and the epoch's loss and accuracy so far; `epoch` is then the
 * epoch under way and there is no validation yet.
 */
export const epochProgressSchema = z.object({
  epoch: z.number().int(),
  epochs: z.number().int(),
  loss: z.number(),
  acc: z.number(),
  valLoss: z.number().optional(),
  valAcc: z.number().optional(),
  samplesPerSec: z.number(),
  /** Training time of this epoch in seconds (validation excluded); absent in histories saved before it existed. */
  epochSeconds: z.number().optional(),
  etaSeconds: z.number(),
  batch: z.number().int().optional(),
  batches: z.number().int().optional(),
});
export type EpochProgress = z.infer<typeof epochProgressSchema>;

/** One point within an epoch: the epoch's mean loss and accuracy over its first `batch` batches. */
export const batchPointSchema = z.object({
  epoch: z.number().int(),
  batch: z.number().int(),
  batches: z.number().int(),
  loss: z.number(),
  acc: z.number(),
  samplesPerSec: z.number(),
});
export type BatchPoint = z.infer<typeof batchPointSchema>;

/**
 * A training run's curves: one entry per finished epoch, and the points reported within epochs.
 * Kept in `runs/<jobId>/history.json` and with the registry version, so it outlives the job record.
 */
export const runHistorySchema = z.object({
  epochs: z.array(epochProgressSchema),
  points: z.array(batchPointSchema),
});
export type RunHistory = z.infer<typeof runHistorySchema>;

/** The last epoch's metrics of a training run. */
export const trainingMetricsSchema = z.object({
  loss: z.number(),
  acc: z.number(),
  valLoss: z.number().optional(),
  valAcc: z.number().optional(),
});
export type TrainingMetrics = z.infer<typeof trainingMetricsSchema>;
