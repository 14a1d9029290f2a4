/** Opens any dataset spec of the catalog as a chunked source. */
import type { DatasetSpec } from '@mlq/contract';
import { csvSource } from './csv.ts';
import type { DatasetSource, OpenDatasetOptions } from './dataset.ts';
import { imageFolderSource } from './image-folder.ts';
import { jsonlSource } from './jsonl.ts';
import { mnistSource } from './mnist.ts';

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
