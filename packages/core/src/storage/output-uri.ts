/**
 * Where a user-given output (batch-predict's `output.uri`) may be written: a `file://` URI inside the
 * data roots (`DATA_ROOTS`), outside the artifact store, naming a file (not an existing directory, not
 * below a file). The store holds registered models, uploaded datasets and job records: an output
 * written there would overwrite them. The API checks this at submit and the worker again before it
 * writes (they may be on different machines, and the file system may change in between).
 */
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { InputError } from '../util/errors.ts';
import type { ArtifactStore } from './artifact-store.ts';
import { resolveDataPath } from './data-uri.ts';
import { FileArtifactStore } from './file-store.ts';
import { parseS3Uri, S3ArtifactStore } from './s3-store.ts';

const insideStore = (uri: string, store: ArtifactStore) =>
  `"${uri}" is inside the artifact store (${store.uri}), which holds registered models, uploaded datasets and job records that an output must not overwrite: name a file:// URI inside DATA_ROOTS outside the store, or leave output.uri out (the output is then kept in the store and downloadable from the job's artifacts)`;

/** True when `uri` (an s3:// URI) names an object under an S3 store's bucket and prefix. */
function inS3Store(uri: string, store: S3ArtifactStore): boolean {
  let loc: { bucket: string; prefix: string };
  try {
    loc = parseS3Uri(uri);
  } catch {
    return false;
  }
  if (loc.bucket !== store.bucket) return false;
  return !store.prefix || loc.prefix === store.prefix || loc.prefix.startsWith(`${store.prefix}/`);
}

/** The nearest existing ancestor of `p` that is not a directory, if any (then `p` cannot be created). */
async function fileAncestor(p: string): Promise<string | undefined> {
  for (let dir = path.dirname(p); ; dir = path.dirname(dir)) {
    const s = await stat(dir).catch(() => undefined);
    if (s) return s.isDirectory() ? undefined : dir;
    if (path.dirname(dir) === dir) return undefined;
  }
}

/**
 * Checks a user-given output URI and returns the local path to write; an InputError (message without
 * the field name, which the caller adds) says why it is refused. A path that does not exist here
 * (the API may not see the worker's file system) passes the directory checks.
 */
export async function checkOutputUri(
  uri: string,
  opts: { dataRoots: readonly string[]; store: ArtifactStore },
): Promise<string> {
  const { store } = opts;
  if (store.keyOf(uri) !== undefined || (store instanceof S3ArtifactStore && inS3Store(uri, store))) {
    throw new InputError(insideStore(uri, store));
  }
  if (!uri.startsWith('file://')) {
    throw new InputError(`"${uri}" is not a file:// URI: an output must be a file:// URI inside DATA_ROOTS`);
  }
  const dest = await resolveDataPath(uri, opts.dataRoots, { mustExist: false });
  if (store instanceof FileArtifactStore) {
    const root = await realpath(store.root).catch(() => path.resolve(store.root));
    if (dest === root || dest.startsWith(root + path.sep)) throw new InputError(insideStore(uri, store));
  }
  const s = await stat(dest).catch(() => undefined);
  if (s?.isDirectory()) {
    throw new InputError(
      `"${uri}" is an existing directory: an output must name a file (e.g. …/predictions.jsonl)`,
    );
  }
  if (s && !s.isFile()) throw new InputError(`"${uri}" exists and is not a regular file`);
  const blocker = await fileAncestor(dest);
  if (blocker) throw new InputError(`"${uri}" cannot be created: ${blocker} is a file, not a directory`);
  return dest;
}
