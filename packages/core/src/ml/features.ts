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

/**
 * How an architecture's layers are connected: `T` is what flows between them. architectures.ts's
 * `symbolic` applies each layer to tfjs symbolic tensors (building it: its weights are allocated);
 * model-plan.ts's ShapePlan follows only the shapes and counts the weights, allocating nothing.
 */
export interface Wiring<T> {
  /** The model's input, of `shape` (without the batch dimension). */
  input(shape: number[], name: string): T;
  /** `layer` applied to `x` (a list for merge layers such as add). */
  apply(layer: tf.layers.Layer, x: T | T[]): T;
}

/** A feature extractor as wired: its input, its feature output, its model name and its default head. */
export interface FeatureGraph<T> {
  input: T;
  output: T;
  name: string;
  defaultHead: Features['defaultHead'];
}
