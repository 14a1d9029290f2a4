/**
 * Where a worker reads a `dataset://` upload from: the registry says which bytes (by SHA-256), the
 * artifact store has them. A file store's bytes are read in place; from any other store they are
 * copied into the worker's cache (remote/fetch-cache.ts, checked against the hash). Archives are
 * extracted once into the cache (the archive itself is not kept there). Those copies are entries of
 * the same cache as fetched `s3://` and `http(s)://` files: keyed by content, so they never go stale
 * and a retried or resumed job finds them; held while a job reads them; and counted in the one bound,
 * WORKER_CACHE_MB, past which the least recently used entries no running job holds are removed.
 */
import { stat } from 'node:fs/promises';
import type { UriLocator } from '../data/dataset.ts';
import type { DatasetRegistry } from '../registry/dataset-registry.ts';
import type { FetchCache, FetchRequest } from '../remote/fetch-cache.ts';
import type { ArtifactStore } from '../storage/artifact-store.ts';
import { datasetBlobKey as blobKey } from '../storage/layout.ts';
import { InputError, NotFoundError } from '../util/errors.ts';
import type { DatasetVersion } from '@mlq/contract';

export interface DatasetLocatorOptions {
  registry: DatasetRegistry;
  store: ArtifactStore;
  /** The worker's cache (`WORKER_CACHE_DIR/fetch`, bounded by WORKER_CACHE_MB). */
  cache: FetchCache;
}

/** Who holds what a job reads (until the cache's `release(holder)`), and where its log lines go. */
export type DatasetRequest = Pick<FetchRequest, 'holder' | 'log' | 'signal'>;

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

/** The local path of a version's data: its file (csv, jsonl) or the folder of its class folders. */
async function localPath(v: DatasetVersion, o: DatasetLocatorOptions, req: DatasetRequest): Promise<string> {
  const key = blobKey(v.sha256);
  // A store of local files is read in place.
  const inPlace = o.store.localPath(key);
  if (inPlace !== undefined && !(await exists(inPlace)))
    throw new NotFoundError(`the bytes of ${v.uri} are missing from the artifact store (${key})`);
  if (inPlace !== undefined && !v.archive) return inPlace;
  return o.cache.getContent(
    {
      sha256: v.sha256,
      name: v.uri,
      bytes: v.bytes,
      file: inPlace,
      open: async () => (await o.store.getStream(key)).body,
      archive: v.archive
        ? { kind: v.archive, root: v.root ?? '', expandedBytes: v.expandedBytes }
        : undefined,
    },
    req,
  );
}

/**
 * The worker's `locate` for openDataset, per job: resolves `dataset://name[@version]` with the registry
 * (the same function the API checks submissions with) and returns where its data is on this machine,
 * named `dataset://<name>@<version>` for messages. What the job reads is held for `req.holder`.
 * Concurrent jobs of one process share one copy: a second waits for the first's, then holds it too.
 */
export function datasetLocator(o: DatasetLocatorOptions): (req: DatasetRequest) => UriLocator {
  const inflight = new Map<string, Promise<string>>();
  return (req) => async (uri) => {
    if (!uri.startsWith('dataset://'))
      throw new InputError(
        `cannot read "${uri}": workers read file:// URIs inside DATA_ROOTS and dataset:// uploads`,
      );
    const v = await o.registry.resolve(uri);
    while (inflight.has(v.sha256)) await inflight.get(v.sha256)!.catch(() => undefined);
    const p = localPath(v, o, req);
    inflight.set(v.sha256, p);
    try {
      // Messages name the upload with its version (`dataset://pets@2`), never the store's path.
      return { path: await p, name: v.uri, inside: v.archive ? (v.root ?? '') : undefined };
    } finally {
      if (inflight.get(v.sha256) === p) inflight.delete(v.sha256);
    }
  };
}
