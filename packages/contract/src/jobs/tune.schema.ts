/** The `tune` job's schemas: fine-tune's fields plus the search, its trials and its result. */
import { z } from 'zod';
import { checkAugment } from '../augment.ts';
import { modelVersionRefSchema } from '../model-refs.ts';
import {
  baseOrArchitectureIssue,
  checkOptimizerOptions,
  checkReuseBaseHead,
  needsBaseOrArchitecture,
  trainingFields,
  trainingMetricsSchema,
} from '../training.ts';

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

export const tuneObjectives = ['valAcc', 'valLoss'] as const;

/**
 * A tune: fine-tune's fields plus the search. Each searched value is checked as the trials' fine-tune
 * payloads would parse it by `tuneSpaceIssues` (tune-space.ts), the job type's `check`.
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
    objective: z.enum(tuneObjectives).default('valAcc'),
  })
  .refine(needsBaseOrArchitecture, baseOrArchitectureIssue)
  .superRefine(checkOptimizerOptions)
  .superRefine(checkReuseBaseHead)
  .superRefine(checkAugment);
export type TunePayload = z.infer<typeof tunePayloadSchema>;

/** One trial of a tune: the searched values (by space key), and its outcome. */
export const tuneTrialSchema = z.object({
  trial: z.number().int(),
  jobId: z.string(),
  params: z.record(z.string(), z.unknown()),
  state: z.enum(['pending', 'completed', 'failed']),
  metrics: trainingMetricsSchema.optional(),
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
    metrics: trainingMetricsSchema,
    /** The next version of `<model>`: the best trial's model, registered without retraining. */
    model: modelVersionRefSchema,
  }),
  objective: z.enum(tuneObjectives),
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
  objective: z.enum(tuneObjectives),
  best: tuneTrialSchema.pick({ trial: true, jobId: true, params: true, metrics: true }).nullable(),
});
export type TuneProgress = z.infer<typeof tuneProgressSchema>;
