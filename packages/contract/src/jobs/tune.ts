/**
 * `tune`: a hyper-parameter search whose trials are fine-tune jobs (children of the tune on the
 * fine-tune queue); the best trial's model becomes the next version of `model`.
 */
import { defineJobType } from '../job-type.ts';
import { tuneSpaceIssues } from './tune-space.ts';
import { tunePayloadSchema, tuneProgressSchema, tuneResultSchema } from './tune.schema.ts';

export * from './tune.schema.ts';
export * from './tune-space.ts';

export const tuneJob = defineJobType({
  summary: 'Search fine-tune hyper-parameters; the best trial becomes the next version of `model`',
  payload: tunePayloadSchema,
  result: tuneResultSchema,
  progress: tuneProgressSchema,
  policy: { attempts: 3, backoffMs: 2000 },
  refs: { models: ['base'], datasets: ['dataset'], labelled: ['dataset'], trained: ['dataset'], outputs: [] },
  check: tuneSpaceIssues,
});
