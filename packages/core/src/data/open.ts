/** Opens any dataset spec of the catalog as a chunked source. */
import type { DatasetSpec } from '../jobs/catalog.ts';
import { csvSource } from './csv.ts';
import type { DatasetSource } from './dataset.ts';
import { imageFolderSource } from './image-folder.ts';
import { jsonlSource } from './jsonl.ts';
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

/**
 * Opens a dataset spec as a chunked source. File-backed readers resolve their URI (inside the data
 * roots) and read the file on the first `info()` or `chunks()` call, so opening never fails.
 */
export function openDataset(spec: DatasetSpec, opts: OpenDatasetOptions): DatasetSource {
  switch (spec.format) {
    case 'mnist':
      return mnistSource(spec);
    case 'csv':
      return csvSource(spec, opts);
    case 'jsonl':
      return jsonlSource(spec, opts);
    case 'image-folder':
      return imageFolderSource(spec, opts);
  }
}
