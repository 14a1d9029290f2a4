/** Opens any dataset spec of the catalog as a chunked source. */
import type { DatasetSpec } from '../jobs/catalog.ts';
import { InputError } from '../util/errors.ts';
import type { DatasetSource } from './dataset.ts';
import { mnistSource } from './mnist.ts';

export interface OpenDatasetOptions {
  /** Directories that file:// URIs may point into. */
  dataRoots: readonly string[];
  /**
   * Class names of the model the data is fed to (evaluate, batch-predict): labels given as names are
   * mapped with these, so index i means the same class as when the model was trained.
   */
  classNames?: readonly string[] | undefined;
}

export function openDataset(spec: DatasetSpec, opts: OpenDatasetOptions): DatasetSource {
  switch (spec.format) {
    case 'mnist':
      return mnistSource(spec);
    default:
      void opts;
      throw new InputError(`dataset format "${spec.format}" is not supported by this worker`);
  }
}
