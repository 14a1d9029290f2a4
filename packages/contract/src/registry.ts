/** The model registry as the API shows it: versions with metrics and lineage, and labels. */
import type { RunHistory } from './training.ts';

export interface ModelVersion {
  name: string;
  version: number;
  /** The artifact URI of the saved tfjs LayersModel (its model.json's folder). */
  uri: string;
  jobId: string;
  createdAt: string;
  metrics: Record<string, number>;
  params: Record<string, unknown>;
  /** Lineage: the base reference as given and as resolved, and the training data. */
  base?: { ref: string; uri: string; name?: string; version?: number };
  dataset?: { spec: unknown; hash: string };
  /** One example's shape, without the batch dimension. */
  inputShape: number[];
  numClasses: number;
  classNames?: string[];
  /** Metrics of the latest evaluate job run on this version. */
  evaluation?: Record<string, unknown>;
  labels?: string[];
}

export interface ModelSummary {
  name: string;
  latestVersion: number;
  labels: Record<string, number>;
  updatedAt: string;
}

/**
 * A version to register. `history` (the training curves) is kept beside the version under its own key,
 * so that listing versions stays small; the registry's `history(name, version)` reads it.
 */
export type NewVersion = Omit<ModelVersion, 'version' | 'createdAt' | 'labels'> & { history?: RunHistory };
