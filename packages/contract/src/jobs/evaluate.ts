/** `evaluate`: loss, accuracy, per-class metrics and the confusion matrix of a model on a dataset. */
import { z } from 'zod';
import { datasetSchema } from '../datasets.ts';
import { defineJobType } from '../job-type.ts';
import { modelRefSchema } from '../model-refs.ts';

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
  /** `[true class][predicted class]` counts. */
  confusionMatrix: z.array(z.array(z.number().int())),
  /** Two-class models only: area under the ROC curve of class 1's score. */
  rocAuc: z.number().optional(),
  /** Two-class models only: the ROC curve of class 1's score, at most ~200 points from (0,0) to (1,1). */
  roc: z
    .object({ fpr: z.array(z.number()), tpr: z.array(z.number()), thresholds: z.array(z.number()) })
    .optional(),
  samples: z.number().int().optional(),
});
export type EvaluationMetrics = z.infer<typeof evaluationMetricsSchema>;

export const evaluateResultSchema = z.object({ metrics: evaluationMetricsSchema, backend: z.string() });
export type EvaluateResult = z.infer<typeof evaluateResultSchema>;

/** Rows scored so far. */
export const rowsProgressSchema = z.object({ rows: z.number().int(), total: z.number().int() });
export type RowsProgress = z.infer<typeof rowsProgressSchema>;

export const evaluateJob = defineJobType({
  summary: 'Evaluate a model on a labelled dataset',
  payload: evaluatePayloadSchema,
  result: evaluateResultSchema,
  progress: rowsProgressSchema,
  policy: { attempts: 5, backoffMs: 2000 },
  refs: { models: ['model'], datasets: ['dataset'], labelled: ['dataset'], trained: [], outputs: [] },
});
