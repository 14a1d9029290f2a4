/** What a built-in architecture builds: a feature extractor and its default head. */
import type * as tf from '@tensorflow/tfjs';

export interface Features {
  /** A model from the input to the feature layer. */
  model: tf.LayersModel;
  /** Head used when the job gives none. */
  defaultHead: { units: number[]; dropout: number };
}

export interface ArchitectureOptions {
  alpha?: number | undefined;
  units?: number[] | undefined;
}
