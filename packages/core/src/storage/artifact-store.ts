import type { Readable } from 'node:stream';

/**
 * Where checkpoints, models, embedding caches and outputs live. Keys are relative POSIX paths
 * (`runs/<jobId>/epoch-3/model.json`); every worker and the API share one store.
 */
export interface ArtifactStore {
  /** The store's own URI, e.g. `file:///srv/artifacts`. */
  readonly uri: string;
  /** Writes atomically: readers see the old object or the new one, never half of it. */
  put(key: string, data: Uint8Array | string): Promise<void>;
  /** Copies a local file in (atomically), for outputs too large to hold in memory. */
  putFile(key: string, localPath: string): Promise<void>;
  /**
   * Writes a stream of unknown length atomically, holding only a few MiB of it at a time (S3: a
   * multipart upload). If `body` errors, the promise rejects and nothing is left under `key`.
   */
  putStream(key: string, body: Readable): Promise<void>;
  /** Throws NotFoundError when the key does not exist. */
  get(key: string): Promise<Buffer>;
  /** Reads a key as a stream, with its size in bytes; throws NotFoundError when it does not exist. */
  getStream(key: string): Promise<{ body: Readable; bytes: number }>;
  /** Renames a key (replacing `to` if it exists). File store: a rename; S3: a server-side copy, then a delete. */
  move(from: string, to: string): Promise<void>;
  exists(key: string): Promise<boolean>;
  /** Keys under a prefix, sorted. */
  list(prefix: string): Promise<string[]>;
  /** Deletes a key, or every key under `prefix/`. */
  delete(keyOrPrefix: string): Promise<void>;
  /** The URI of a key, as recorded in results and the registry. */
  uriOf(key: string): string;
  /** The key of a URI inside this store, or undefined when the URI points elsewhere. */
  keyOf(uri: string): string | undefined;
  /**
   * The key's path on this machine's file system, for a store that keeps keys as local files (so a
   * writer may append to it and rename it in place); undefined for a remote store.
   */
  localPath(key: string): string | undefined;
}

/** Rejects keys that could leave the store (absolute, `..`, backslashes, empty segments). */
export function checkKey(key: string): string {
  const parts = key.split('/');
  if (
    !key ||
    key.startsWith('/') ||
    key.includes('\\') ||
    parts.some((p) => p === '' || p === '.' || p === '..')
  ) {
    throw new Error(`invalid artifact key "${key}"`);
  }
  return key;
}
