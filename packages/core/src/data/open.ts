/** Opens any dataset spec of the catalog as a chunked source. */
import { pathToFileURL } from 'node:url';
import type { DatasetSpec } from '@mlq/contract';
import { csvSource } from './csv.ts';
import type { Chunk, DatasetSource, OpenDatasetOptions } from './dataset.ts';
import { imageFolderSource } from './image-folder.ts';
import { jsonlSource } from './jsonl.ts';
import { mnistSource } from './mnist.ts';

/**
 * Opens a dataset spec as a chunked source. File-backed readers resolve their URI (inside the data
 * roots, or through `locate`) and read the file on the first `info()` or `chunks()` call, so opening
 * never fails.
 */
export function openDataset(spec: DatasetSpec, opts: OpenDatasetOptions): DatasetSource {
  if (spec.format !== 'mnist' && opts.locate) return located(spec, opts);
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

/** A source whose URI is first made local by `opts.locate`; the reader then sees a file:// URI. */
function located(spec: Exclude<DatasetSpec, { format: 'mnist' }>, opts: OpenDatasetOptions): DatasetSource {
  let inner: Promise<DatasetSource> | undefined;
  const get = () =>
    (inner ??= opts.locate!(spec.uri, spec.format).then((local) =>
      // The located path is the only root the reader may read: it is where the bytes were put.
      // Messages name what the user gave (local.name), not that path.
      openDataset(
        { ...spec, uri: pathToFileURL(local.path).href },
        {
          ...opts,
          dataRoots: [local.path],
          locate: undefined,
          shownAs: { name: local.name, inside: local.inside },
        },
      ),
    ));
  return {
    info: async () => (await get()).info(),
    async *chunks(o): AsyncIterable<Chunk> {
      yield* (await get()).chunks(o);
    },
    // The reader's cheap content hash, when it has one (DatasetSource.fingerprint).
    fingerprint: async () => {
      const s = await get();
      return s.fingerprint ? s.fingerprint() : (await s.info()).hash;
    },
  };
}
