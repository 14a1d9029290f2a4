/**
 * Where a worker reads a `dataset://` upload from: the registry says which bytes (by SHA-256), the
 * artifact store has them. A file store's bytes are read in place; from any other store they are
 * streamed into the worker-local cache (`<cacheDir>/datasets/<sha256>.blob`, checked against the hash).
 * Archives are extracted once into `<cacheDir>/datasets/<sha256>.d/` (through the same checks as at
 * upload). Entries are keyed by content, so they never go stale, and a retried or resumed job finds them.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import type { UriLocator } from '../data/dataset.ts';
import type { DatasetRegistry } from '../registry/dataset-registry.ts';
import type { ArtifactStore } from '../storage/artifact-store.ts';
import { datasetBlobKey as blobKey } from '../storage/layout.ts';
import { DataError, InputError, NotFoundError } from '../util/errors.ts';
import { walkArchive } from './archive.ts';
import { isIgnoredEntry } from './image-archive.ts';
import type { DatasetVersion } from '@mlq/contract';

export interface DatasetLocatorOptions {
  registry: DatasetRegistry;
  store: ArtifactStore;
  /** The worker-local cache (`WORKER_CACHE_DIR`); datasets go under its `datasets/`. */
  cacheDir: string;
}

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

/** Streams a blob from the store into the cache, verifying its hash; returns its path. */
async function download(v: DatasetVersion, o: DatasetLocatorOptions, dest: string): Promise<string> {
  if (await exists(dest)) return dest;
  await mkdir(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.${randomUUID()}.tmp`;
  const hash = createHash('sha256');
  const tap = new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  try {
    const { body } = await o.store.getStream(blobKey(v.sha256));
    await pipeline(body, tap, createWriteStream(tmp));
    const got = hash.digest('hex');
    if (got !== v.sha256)
      throw new DataError(
        `the stored bytes of ${v.uri} have SHA-256 ${got}, not ${v.sha256}: the store copy is damaged`,
      );
    await rename(tmp, dest);
    return dest;
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Extracts an archive into `dir` (via a temp folder renamed into place); returns `dir`. */
async function extract(v: DatasetVersion, archive: string, dir: string): Promise<string> {
  if (await exists(dir)) return dir;
  const tmp = `${dir}.${randomUUID()}.tmp`;
  try {
    // The bytes are the ones validated at upload (same hash): its own counts are the limits.
    await walkArchive(
      archive,
      v.archive!,
      { maxFiles: Number.MAX_SAFE_INTEGER, maxExpandedBytes: v.expandedBytes ?? Number.MAX_SAFE_INTEGER },
      async (f, body) => {
        if (isIgnoredEntry(f.name)) return void (await finished(body.resume()));
        const dest = path.join(tmp, ...f.name.split('/'));
        await mkdir(path.dirname(dest), { recursive: true });
        await pipeline(body, createWriteStream(dest));
      },
    );
    await mkdir(tmp, { recursive: true });
    await rename(tmp, dir).catch(async (e: NodeJS.ErrnoException) => {
      // Another job of this machine extracted it first.
      if (!(await exists(dir))) throw e;
    });
    return dir;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** The local path of a version's data: its file (csv, jsonl) or the folder of its class folders. */
async function localPath(v: DatasetVersion, o: DatasetLocatorOptions): Promise<string> {
  const cache = path.join(o.cacheDir, 'datasets');
  // A store of local files is read in place.
  const inPlace = o.store.localPath(blobKey(v.sha256));
  let blob: string;
  if (inPlace !== undefined) {
    blob = inPlace;
    if (!(await exists(blob)))
      throw new NotFoundError(
        `the bytes of ${v.uri} are missing from the artifact store (${blobKey(v.sha256)})`,
      );
  } else {
    blob = await download(v, o, path.join(cache, `${v.sha256}.blob`));
  }
  if (!v.archive) return blob;
  const dir = await extract(v, blob, path.join(cache, `${v.sha256}.d`));
  // The archive is no longer needed once extracted: only the store's copy is kept.
  if (inPlace === undefined) await rm(blob, { force: true });
  return v.root ? path.join(dir, ...v.root.split('/')) : dir;
}

/**
 * The worker's `locate` for openDataset: resolves `dataset://name[@version]` with the registry (the
 * same function the API checks submissions with) and returns where its data is on this machine, named
 * `dataset://<name>@<version>` for messages.
 * Concurrent jobs of one process share one download.
 */
export function datasetLocator(o: DatasetLocatorOptions): UriLocator {
  const inflight = new Map<string, Promise<string>>();
  return async (uri) => {
    if (!uri.startsWith('dataset://'))
      throw new InputError(
        `cannot read "${uri}": workers read file:// URIs inside DATA_ROOTS and dataset:// uploads`,
      );
    const v = await o.registry.resolve(uri);
    let p = inflight.get(v.sha256);
    if (!p) {
      p = localPath(v, o).finally(() => inflight.delete(v.sha256));
      inflight.set(v.sha256, p);
    }
    // Messages name the upload with its version (`dataset://pets@2`), never the store's path.
    return { path: await p, name: v.uri, inside: v.archive ? (v.root ?? '') : undefined };
  };
}
