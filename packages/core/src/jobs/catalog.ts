/**
 * The job catalog: every job type the platform runs, with the zod schema of its payload and result.
 * The API validates requests with these schemas, the worker parses payloads with them again (a payload
 * may come from anyone who can write to Redis), and the SDK takes its types from here.
 */
import { z } from 'zod';

/** `<name>`, `<name>@<version>`, `<name>@<label>`, or a URI of a tfjs LayersModel model.json. */
export const modelRefSchema = z
  .string()
  .min(1)
  .max(500)
  .refine((s) => isUri(s) || /^[a-zA-Z0-9][\w.-]{0,99}(@[\w.-]{1,64})?$/.test(s), {
    message:
      'expected "<name>", "<name>@<version>", "<name>@<label>" or a file://, http(s):// or s3:// model.json URI',
  });

/** A registry model name: what a fine-tune or tune job registers its result under. */
export const modelNameSchema = z
  .string()
  .regex(/^[a-zA-Z0-9][\w.-]{0,99}$/, 'letters, digits, "_", "." and "-", starting with a letter or digit');

export function isUri(s: string): boolean {
  return /^(file|https?|s3):\/\//.test(s);
}

const uriSchema = z
  .string()
  .min(1)
  .max(2000)
  .refine(isUri, { message: 'expected a file://, http(s):// or s3:// URI' });

/** `dataset://<name>` (its latest version) or `dataset://<name>@<version>`: a dataset uploaded to the API. */
const DATASET_URI = /^dataset:\/\/([a-zA-Z0-9][\w.-]{0,99})(?:@([1-9]\d{0,9}))?$/;

/** The name and version (undefined: the latest) of a `dataset://` URI, or undefined for any other string. */
export function parseDatasetUri(uri: string): { name: string; version?: number } | undefined {
  const m = DATASET_URI.exec(uri);
  if (!m) return undefined;
  return m[2] === undefined ? { name: m[1]! } : { name: m[1]!, version: Number(m[2]) };
}

/** Where a dataset's file is: any URI a reader may get, or an uploaded dataset. */
const datasetUriSchema = z
  .string()
  .min(1)
  .max(2000)
  .refine((s) => isUri(s) || DATASET_URI.test(s), {
    message: 'expected a file://, http(s)://, s3:// URI, or dataset://<name>[@<version>]',
  });

export const mnistDatasetSchema = z.strictObject({
  format: z.literal('mnist'),
  digits: z
    .array(z.number().int().min(0).max(9))
    .min(2)
    .max(10)
    .refine((d) => new Set(d).size === d.length, { message: 'digits must be distinct' })
    .default([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
  split: z.enum(['train', 'test']).default('train'),
  limit: z.number().int().positive().optional(),
});

export const csvDatasetSchema = z.strictObject({
  format: z.literal('csv'),
  uri: datasetUriSchema,
  label: z.string().min(1).optional(),
  features: z.array(z.string().min(1)).min(1).optional(),
  limit: z.number().int().positive().optional(),
});

export const jsonlDatasetSchema = z.strictObject({
  format: z.literal('jsonl'),
  uri: datasetUriSchema,
  limit: z.number().int().positive().optional(),
});

export const imageFolderDatasetSchema = z.strictObject({
  format: z.literal('image-folder'),
  uri: datasetUriSchema,
  imageSize: z.tuple([z.number().int().min(8).max(1024), z.number().int().min(8).max(1024)]),
  channels: z.union([z.literal(1), z.literal(3)]).default(3),
  limit: z.number().int().positive().optional(),
});

export const datasetSchema = z.discriminatedUnion('format', [
  mnistDatasetSchema,
  csvDatasetSchema,
  jsonlDatasetSchema,
  imageFolderDatasetSchema,
]);
export type DatasetSpec = z.infer<typeof datasetSchema>;
export type DatasetSpecInput = z.input<typeof datasetSchema>;

export const architectures = ['mnist-cnn', 'mlp', 'mobilenet-v2'] as const;
export const optimizers = ['adam', 'sgd', 'adadelta', 'rmsprop'] as const;

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
export const optimizerOptionsApply: Record<(typeof optimizers)[number], (keyof OptimizerOptions)[]> = {
  adam: ['beta1', 'beta2', 'epsilon'],
  sgd: [],
  adadelta: ['rho', 'epsilon'],
  rmsprop: ['rho', 'momentum', 'epsilon'],
};

/** The training fields shared by fine-tune and tune. */
const trainingFields = {
  model: modelNameSchema,
  base: modelRefSchema.optional(),
  architecture: z.enum(architectures).optional(),
  /** Options of the architecture (mobilenet-v2: alpha, inputSize; mlp: units). */
  architectureOptions: z
    .strictObject({
      alpha: z.number().positive().max(2).optional(),
      inputSize: z.number().int().min(32).max(512).optional(),
      units: z.array(z.number().int().min(1).max(8192)).max(8).optional(),
    })
    .optional(),
  dataset: datasetSchema,
  trainableLayers: z.number().int().min(0).default(0),
  head: headSchema.optional(),
  /** Keep training the base's own head layers instead of a new head (the Keras transfer recipe). */
  reuseBaseHead: z.boolean().default(false),
  epochs: z.number().int().min(1).max(1000),
  batchSize: z.number().int().min(1).max(8192).default(32),
  optimizer: z.enum(optimizers).default('adam'),
  learningRate: z.number().positive().max(100).optional(),
  optimizerOptions: optimizerOptionsSchema.optional(),
  validationSplit: z.number().min(0).max(0.5).default(0),
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 31 - 1)
    .default(42),
};

function needsBaseOrArchitecture(p: {
  base?: string | undefined;
  architecture?: string | undefined;
}): boolean {
  return p.base !== undefined || p.architecture !== undefined;
}
const baseOrArchitectureIssue = { message: 'give "base" or "architecture"', path: ['architecture'] };

/** Options the chosen optimizer does not take (unless a tune searches over optimizers). */
function checkOptimizerOptions(
  p: {
    optimizer: (typeof optimizers)[number];
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

export const fineTunePayloadSchema = z
  .strictObject(trainingFields)
  .refine(needsBaseOrArchitecture, baseOrArchitectureIssue)
  .superRefine(checkOptimizerOptions);
export type FineTunePayload = z.infer<typeof fineTunePayloadSchema>;

export const epochProgressSchema = z.object({
  epoch: z.number().int(),
  epochs: z.number().int(),
  loss: z.number(),
  acc: z.number(),
  valLoss: z.number().optional(),
  valAcc: z.number().optional(),
  samplesPerSec: z.number(),
  etaSeconds: z.number(),
});
export type EpochProgress = z.infer<typeof epochProgressSchema>;

export const modelVersionRefSchema = z.object({
  name: z.string(),
  version: z.number().int(),
  uri: z.string(),
});

export const fineTuneResultSchema = z.object({
  model: modelVersionRefSchema,
  metrics: z.object({
    loss: z.number(),
    acc: z.number(),
    valLoss: z.number().optional(),
    valAcc: z.number().optional(),
  }),
  epochs: z.number().int(),
  backend: z.string(),
  history: z.array(epochProgressSchema).optional(),
  samplesPerSec: z.number().optional(),
  trainSeconds: z.number().optional(),
});
export type FineTuneResult = z.infer<typeof fineTuneResultSchema>;

export const evaluatePayloadSchema = z.strictObject({ model: modelRefSchema, dataset: datasetSchema });
export type EvaluatePayload = z.infer<typeof evaluatePayloadSchema>;

export const evaluationMetricsSchema = z.object({
  loss: z.number(),
  accuracy: z.number(),
  perClass: z.array(
    z.object({
      label: z.union([z.string(), z.number()]),
      precision: z.number(),
      recall: z.number(),
      f1: z.number(),
      support: z.number().int(),
    }),
  ),
  confusionMatrix: z.array(z.array(z.number().int())),
  rocAuc: z.number().optional(),
  samples: z.number().int().optional(),
});
export type EvaluationMetrics = z.infer<typeof evaluationMetricsSchema>;
export const evaluateResultSchema = z.object({ metrics: evaluationMetricsSchema, backend: z.string() });
export type EvaluateResult = z.infer<typeof evaluateResultSchema>;

export const batchPredictPayloadSchema = z.strictObject({
  model: modelRefSchema,
  input: datasetSchema,
  /** Without `uri`, the output goes to the artifact store as `outputs/<jobId>/predictions.<format>`. */
  output: z
    .strictObject({ uri: uriSchema.optional(), format: z.enum(['jsonl', 'csv']).default('jsonl') })
    .default({ format: 'jsonl' }),
  chunkSize: z.number().int().min(1).max(65536).default(4096),
});
export type BatchPredictPayload = z.infer<typeof batchPredictPayloadSchema>;
export const batchPredictResultSchema = z.object({ outputUri: z.string(), rows: z.number().int() });
export type BatchPredictResult = z.infer<typeof batchPredictResultSchema>;

/** The fine-tune parameters a tune job can search over (`head.*` are fields of `head`). */
export const tuneSpaceKeys = [
  'learningRate',
  'batchSize',
  'optimizer',
  'head.units',
  'head.dropout',
  'trainableLayers',
  'epochs',
] as const;
export type TuneSpaceKey = (typeof tuneSpaceKeys)[number];

/**
 * A tune: fine-tune's fields plus the search. Each searched value is checked as the trials' fine-tune
 * payloads would parse it by `tuneSpaceIssues` (tune-space.ts), which the API and the worker call.
 */
export const tunePayloadSchema = z
  .strictObject({
    ...trainingFields,
    search: z.strictObject({
      strategy: z.enum(['grid', 'random']).default('grid'),
      /** Grid: at most this many combinations, spread over the grid; random: this many samples. */
      trials: z.number().int().min(1).max(200).optional(),
      // partialRecord: zod 4's record over an enum would demand every key.
      space: z
        .partialRecord(z.enum(tuneSpaceKeys), z.array(z.unknown()).min(1).max(100))
        .refine((s) => Object.keys(s).length > 0, { message: 'give at least one parameter to search' }),
    }),
    objective: z.enum(['valAcc', 'valLoss']).default('valAcc'),
  })
  .refine(needsBaseOrArchitecture, baseOrArchitectureIssue)
  .superRefine(checkOptimizerOptions);
export type TunePayload = z.infer<typeof tunePayloadSchema>;

const trialMetricsSchema = fineTuneResultSchema.shape.metrics;
/** One trial of a tune: the searched values (by space key), and its outcome. */
export const tuneTrialSchema = z.object({
  trial: z.number().int(),
  jobId: z.string(),
  params: z.record(z.string(), z.unknown()),
  state: z.enum(['pending', 'completed', 'failed']),
  metrics: trialMetricsSchema.optional(),
  /** The trial's own model version (`<model>-trial-<n>`). */
  model: modelVersionRefSchema.optional(),
  error: z.string().optional(),
});
export type TuneTrial = z.infer<typeof tuneTrialSchema>;

export const tuneResultSchema = z.object({
  best: z.object({
    trial: z.number().int(),
    jobId: z.string(),
    params: z.record(z.string(), z.unknown()),
    metrics: trialMetricsSchema,
    /** The next version of `<model>`: the best trial's model, registered without retraining. */
    model: modelVersionRefSchema,
  }),
  objective: z.enum(['valAcc', 'valLoss']),
  trials: z.array(tuneTrialSchema),
  /** The validation split the trials used (0.2 when the request said 0: the objective needs validation data). */
  validationSplit: z.number(),
  notes: z.array(z.string()),
});
export type TuneResult = z.infer<typeof tuneResultSchema>;

/** Progress of a tune job, updated as its trials finish. */
export const tuneProgressSchema = z.object({
  trialsDone: z.number().int(),
  trials: z.number().int(),
  failed: z.number().int(),
  objective: z.enum(['valAcc', 'valLoss']),
  best: tuneTrialSchema.pick({ trial: true, jobId: true, params: true, metrics: true }).nullable(),
});
export type TuneProgress = z.infer<typeof tuneProgressSchema>;

/** Every job type, its payload schema and its result schema, in one table. */
export const jobCatalog = {
  'fine-tune': { payload: fineTunePayloadSchema, result: fineTuneResultSchema },
  evaluate: { payload: evaluatePayloadSchema, result: evaluateResultSchema },
  'batch-predict': { payload: batchPredictPayloadSchema, result: batchPredictResultSchema },
  tune: { payload: tunePayloadSchema, result: tuneResultSchema },
} as const;

export type JobName = keyof typeof jobCatalog;
export const jobNames = Object.keys(jobCatalog) as JobName[];
export type JobOf<N extends JobName> = z.infer<(typeof jobCatalog)[N]['payload']>;
export type JobInputOf<N extends JobName> = z.input<(typeof jobCatalog)[N]['payload']>;
export type ResultOf<N extends JobName> = z.infer<(typeof jobCatalog)[N]['result']>;

export function isJobName(s: string): s is JobName {
  return Object.hasOwn(jobCatalog, s);
}

/** One bad field: where it is (a dotted path) and what is wrong with it. */
export interface FieldIssue {
  field: string;
  message: string;
}

/** Flattens zod issues into `{field, message}` pairs a person can read. */
export function describeIssues(error: z.ZodError): FieldIssue[] {
  return error.issues.map((i) => ({
    field: i.path.length ? i.path.map(String).join('.') : '(body)',
    message: i.message,
  }));
}

/** Parses a payload of the named job, or returns the issues. */
export function parsePayload<N extends JobName>(
  name: N,
  data: unknown,
): { ok: true; value: JobOf<N> } | { ok: false; issues: FieldIssue[] } {
  const r = jobCatalog[name].payload.safeParse(data);
  return r.success ? { ok: true, value: r.data as JobOf<N> } : { ok: false, issues: describeIssues(r.error) };
}
