/** The model registry as the API shows it: versions with metrics and lineage, and labels. */
import { z } from 'zod';
import type { RunHistory } from './training.ts';

/** One registered version of a model (`GET /v1/models/{name}/versions/{version}`). */
export const modelVersionSchema = z.object({
  name: z.string(),
  /** 1, 2, 3...: the job that registered it. */
  version: z.number().int(),
  /** The artifact URI of the saved tfjs LayersModel (its model.json's folder). */
  uri: z.string(),
  jobId: z.string(),
  createdAt: z.iso.datetime(),
  metrics: z.record(z.string(), z.number()),
  params: z.record(z.string(), z.unknown()),
  /** Lineage: the base reference as given and as resolved, and the training data. */
  base: z
    .object({
      ref: z.string(),
      uri: z.string(),
      name: z.string().optional(),
      version: z.number().int().optional(),
    })
    .optional(),
  dataset: z.object({ spec: z.unknown(), hash: z.string() }).optional(),
  /** One example's shape, without the batch dimension. */
  inputShape: z.array(z.number().int()),
  numClasses: z.number().int(),
  classNames: z.array(z.string()).optional(),
  /** Metrics of the latest evaluate job run on this version. */
  evaluation: z.record(z.string(), z.unknown()).optional(),
  /** The labels pointing at this version. */
  labels: z.array(z.string()).optional(),
});
export type ModelVersion = z.infer<typeof modelVersionSchema>;

/** A model name with its latest version and labels (`GET /v1/models`). */
export const modelSummarySchema = z.object({
  name: z.string(),
  latestVersion: z.number().int(),
  /** Label → version. */
  labels: z.record(z.string(), z.number().int()),
  updatedAt: z.iso.datetime(),
});
export type ModelSummary = z.infer<typeof modelSummarySchema>;

/**
 * A version to register. `history` (the training curves) is kept beside the version under its own key,
 * so that listing versions stays small; the registry's `history(name, version)` reads it.
 */
export type NewVersion = Omit<ModelVersion, 'version' | 'createdAt' | 'labels'> & { history?: RunHistory };
