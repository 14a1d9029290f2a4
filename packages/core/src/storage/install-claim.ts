/**
 * One artifact store, one install. Dataset and model bytes are counted per install, in that install's
 * Redis (packages/core/src/registry/dataset-registry.ts): an install that shared its store with another
 * would delete bytes the other still uses once its own count reached zero. So the API and every worker
 * claim the store at start: `install.json` at the store's root names the install that owns it, and a
 * process of any other install refuses to start (StoreClaimError).
 *
 * An install is its QUEUE_PREFIX on its Redis, identified by a random id kept in that Redis
 * (`<QUEUE_PREFIX>:install`, packages/contract/src/keys.ts). A Redis that lost its data (a new or
 * emptied server: the demo's own redis-server, a restart without persistence) holds no id: when the
 * marker names the same QUEUE_PREFIX and Redis address, that is the same install starting again, and
 * it takes the marker's id back. The registry that counted the store's bytes went with that data, so
 * nothing it held can be deleted by the new one.
 */
import { randomUUID } from 'node:crypto';
import type { ArtifactStore } from './artifact-store.ts';

/** The marker's key, at the root of the store. */
export const INSTALL_MARKER_KEY = 'install.json';

/** What `install.json` holds. */
export interface InstallMarker {
  /** The install's id (a UUID), as kept in its Redis. */
  install: string;
  /** The install's QUEUE_PREFIX. */
  queuePrefix: string;
  /** Its Redis, as `describeTarget` prints it (password hidden), e.g. `redis://127.0.0.1:6379`. */
  redis: string;
  /** When the install first claimed the store (ISO 8601). */
  claimedAt: string;
}

/** Where an install keeps its id: its own Redis, under its QUEUE_PREFIX (packages/queues/src/install.ts). */
export interface InstallIdRecord {
  /** The id, or null when this Redis holds none. */
  get(): Promise<string | null>;
  /** Sets the id unless one is set already (another process of the install may race this one). */
  setIfAbsent(id: string): Promise<void>;
}

/** The store belongs to another install, or its marker cannot be read: a configuration error (exit 78). */
export class StoreClaimError extends Error {
  override name = 'StoreClaimError';
}

export interface StoreClaim {
  /** The install's id. */
  id: string;
  /** `new`: this start wrote the marker; `own`: the marker named this install; `adopted`: see the file's comment. */
  how: 'new' | 'own' | 'adopted';
}

async function readMarker(store: ArtifactStore): Promise<InstallMarker | undefined> {
  if (!(await store.exists(INSTALL_MARKER_KEY))) return undefined;
  const text = (await store.get(INSTALL_MARKER_KEY)).toString('utf8');
  try {
    const m = JSON.parse(text) as Partial<InstallMarker>;
    if (typeof m.install === 'string' && typeof m.queuePrefix === 'string' && typeof m.redis === 'string')
      return { claimedAt: '?', ...m } as InstallMarker;
  } catch {
    /* reported below */
  }
  throw new StoreClaimError(
    `ARTIFACT_STORE ${store.uri} has an ${INSTALL_MARKER_KEY} that is not an install marker ` +
      `(${JSON.stringify(text.slice(0, 80))}); delete ${store.uriOf(INSTALL_MARKER_KEY)} only if no other ` +
      'mlq install uses this store, then start again',
  );
}

/**
 * Claims `store` for the install `self` (its QUEUE_PREFIX and Redis address), whose id `record` keeps:
 * writes the marker when there is none, accepts the one naming this install. Throws StoreClaimError,
 * with what to do, when the marker names another install; Redis and store errors pass through.
 */
export async function claimArtifactStore(
  store: ArtifactStore,
  self: { queuePrefix: string; redis: string },
  record: InstallIdRecord,
): Promise<StoreClaim> {
  let marker = await readMarker(store);
  let id = await record.get();
  let adopted = false;
  if (!id) {
    const same = marker?.queuePrefix === self.queuePrefix && marker.redis === self.redis;
    // Refused before anything is written: an id set here would make this Redis another install's,
    // and lock the store's own install out of it once it starts again.
    if (marker && !same) throw othersStore(store, marker, self, undefined);
    await record.setIfAbsent(same ? marker!.install : randomUUID());
    id = await record.get();
    if (!id) throw new Error(`the install id just set in Redis (${self.redis}) cannot be read back`);
    adopted = same && id === marker!.install;
  }
  if (!marker) {
    const mine: InstallMarker = { install: id, ...self, claimedAt: new Date().toISOString() };
    await store.put(INSTALL_MARKER_KEY, `${JSON.stringify(mine, null, 2)}\n`);
    // Two installs claiming a new store at once: the last write stays, and the other one sees it here.
    marker = await readMarker(store);
    if (marker?.install === id) return { id, how: 'new' };
  }
  if (marker?.install === id) return { id, how: adopted ? 'adopted' : 'own' };
  throw othersStore(store, marker!, self, id);
}

/** The StoreClaimError for a store whose marker names another install; `id`: this install's, if any. */
function othersStore(
  store: ArtifactStore,
  other: InstallMarker,
  self: { queuePrefix: string; redis: string },
  id: string | undefined,
): StoreClaimError {
  const marker = store.uriOf(INSTALL_MARKER_KEY);
  // Same QUEUE_PREFIX, and this Redis holds no id: maybe the owner itself, after its Redis lost its
  // data, reached by another address (localhost for 127.0.0.1, a service name for an IP).
  const maybeOwner =
    id === undefined && other.queuePrefix === self.queuePrefix
      ? ` If ${self.redis} is the same Redis as ${other.redis} and it lost its data, start once with ` +
        `REDIS_URL=${other.redis}: the install then takes its id back.`
      : '';
  return new StoreClaimError(
    `ARTIFACT_STORE ${store.uri} belongs to another mlq install: its ${INSTALL_MARKER_KEY} names ` +
      `QUEUE_PREFIX "${other.queuePrefix}" on ${other.redis} (install ${other.install}, since ${other.claimedAt}); ` +
      `this is QUEUE_PREFIX "${self.queuePrefix}" on ${self.redis} ` +
      `(${id ? `install ${id}` : 'whose Redis holds no install id'}). Installs sharing a store ` +
      "delete each other's dataset and model bytes (each counts its references in its own Redis). " +
      'Give this install its own ARTIFACT_STORE (another directory, or another s3:// prefix). ' +
      'To share the store on purpose, run both as one install: the same REDIS_URL and QUEUE_PREFIX.' +
      maybeOwner +
      ` If that install is gone for good, delete ${marker} and start again: this install then claims the store.`,
  );
}
