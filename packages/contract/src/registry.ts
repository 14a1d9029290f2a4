/** The model registry as the API shows it: versions with metrics and lineage, and labels. */

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

export type NewVersion = Omit<ModelVersion, 'version' | 'createdAt' | 'labels'>;
