/** `batch-predict`: run a model over a dataset and write one prediction per row. */
import { z } from 'zod';
import { datasetSchema } from '../datasets.ts';
import { defineJobType } from '../job-type.ts';
import { modelRefSchema, uriSchema } from '../model-refs.ts';
import { rowsProgressSchema } from './evaluate.ts';

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

export const batchPredictJob = defineJobType({
  summary:
    'Run a model over a dataset and write the predictions to `output.uri` (default: the artifact store)',
  payload: batchPredictPayloadSchema,
  result: batchPredictResultSchema,
  progress: rowsProgressSchema,
  policy: { attempts: 5, backoffMs: 2000 },
  refs: { models: ['model'], datasets: ['input'], labelled: [], trained: [], outputs: ['output.uri'] },
});
