/** The model registry as the API shows it: versions with metrics and lineage, and labels. */
import { z } from 'zod';
import type { RunHistory } from './training.ts';

/** One registered version of a model (`GET /v1/models/{name}/versions/{version}`). */
export const modelVersionSchema = z.object({
  name: z.string(),
  version: z.number().int().describe('1, 2, 3...: each training job registers the next one.'),
  uri: z.string().describe("The artifact URI of the saved tfjs LayersModel (its model.json's folder)."),
  jobId: z.string(),
  createdAt: z.iso.datetime(),
  metrics: z.record(z.string(), z.number()),
  params: z.record(z.string(), z.unknown()),
  base: z
    .object({
      ref: z.string(),
      uri: z.string(),
      name: z.string().optional(),
      version: z.number().int().optional(),
    })
    .optional()
    .describe('Lineage: the base model, as the job named it and as it resolved.'),
  dataset: z
    .object({ spec: z.unknown(), hash: z.string() })
    .optional()
    .describe('Lineage: the training data, as the job gave it, and its hash.'),
  inputShape: z.array(z.number().int()).describe("One example's shape, without the batch dimension."),
  numClasses: z.number().int(),
  classNames: z.array(z.string()).optional(),
  evaluation: z
    .record(z.string(), z.unknown())
    .optional()
    .describe('Metrics of the latest evaluate job run on this version.'),
  labels: z.array(z.string()).optional().describe('The labels pointing at this version.'),
});
export type ModelVersion = z.infer<typeof modelVersionSchema>;

/** A model name with its latest version and labels (`GET /v1/models`). */
export const modelSummarySchema = z.object({
  name: z.string(),
  latestVersion: z.number().int(),
  labels: z.record(z.string(), z.number().int()).describe('Label → version.'),
  updatedAt: z.iso.datetime(),
});
export type ModelSummary = z.infer<typeof modelSummarySchema>;

/**
 * A version to register. `history` (the training curves) is kept beside the version under its own key,
 * so that listing versions stays small; the registry's `history(name, version)` reads it.
 */
export type NewVersion = Omit<ModelVersion, 'version' | 'createdAt' | 'labels'> & { history?: RunHistory };
