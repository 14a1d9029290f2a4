/** `fine-tune`: train a model (a base cut at its features + a new head, or a fresh architecture). */
import { z } from 'zod';
import { checkAugment } from '../augment.ts';
import { defineJobType } from '../job-type.ts';
import { modelVersionRefSchema } from '../model-refs.ts';
import {
  baseOrArchitectureIssue,
  checkOptimizerOptions,
  checkReuseBaseHead,
  epochProgressSchema,
  needsBaseOrArchitecture,
  trainingFields,
  trainingMetricsSchema,
} from '../training.ts';

export const fineTunePayloadSchema = z
  .strictObject(trainingFields)
  .refine(needsBaseOrArchitecture, baseOrArchitectureIssue)
  .superRefine(checkOptimizerOptions)
  .superRefine(checkReuseBaseHead)
  .superRefine(checkAugment);
export type FineTunePayload = z.infer<typeof fineTunePayloadSchema>;

export const fineTuneResultSchema = z.object({
  model: modelVersionRefSchema,
  metrics: trainingMetricsSchema,
  epochs: z.number().int(),
  backend: z.string(),
  history: z.array(epochProgressSchema).optional(),
  samplesPerSec: z.number().optional(),
  trainSeconds: z.number().optional(),
  /** Training rows per class (validation rows included), by class name, or index when unnamed. */
  classCounts: z.record(z.string(), z.number().int()).optional(),
});
export type FineTuneResult = z.infer<typeof fineTuneResultSchema>;

export const fineTuneJob = defineJobType({
  summary: 'Fine-tune a model and register it as the next version of `model`',
  payload: fineTunePayloadSchema,
  result: fineTuneResultSchema,
  progress: epochProgressSchema,
  // Training is costly: a few retries (each resumes from its checkpoint), not many.
  policy: { attempts: 3, backoffMs: 2000 },
  // "model" is the name to register, not a model to read.
  refs: { models: ['base'], datasets: ['dataset'], labelled: ['dataset'], trained: ['dataset'], outputs: [] },
});
