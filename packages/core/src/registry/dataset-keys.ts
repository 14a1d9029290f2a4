/**
 * Every Redis key of the dataset registry, in one place. Names cannot hold `:`, so keys never collide.
 */
export const datasetKeys = (prefix: string) => {
  const k = (...parts: (string | number)[]) => [prefix, 'registry', ...parts].join(':');
  return {
    /** Set of dataset names that have at least one version. */
    names: k('datasets'),
    /** Counter of a name's versions (never reset, so numbers are never reused). */
    seq: (name: string) => k('dataset', name, 'seq'),
    /** Hash version → JSON `DatasetVersion`. */
    versions: (name: string) => k('dataset', name, 'versions'),
    /** Set of ids of the jobs submitted with a version (checked by DELETE). */
    jobs: (name: string, version: number) => k('dataset', name, version, 'jobs'),
    /** Set of `name@version`s whose bytes are the blob `sha256` (the blob goes with the last one). */
    blobRefs: (sha256: string) => k('dataset-blob', sha256, 'refs'),
    /** Held while a blob is being added or removed. */
    blobLock: (sha256: string) => k('dataset-blob', sha256, 'lock'),
  };
};
