/**
 * The one place a job turns a data or model URI into a path on this machine, by scheme:
 * `file://` → inside DATA_ROOTS (storage/data-uri.ts), `dataset://` → an upload located through the
 * registry and the store (datasets/locate.ts), `s3://` and `http(s)://` → the fetch cache
 * (fetch-cache.ts, under the egress policy). Dataset opening (data/open.ts) and model loading
 * (ml/model-io.ts) both go through it.
 */
import path from 'node:path';
import type { UriLocator } from '../data/dataset.ts';
import { resolveDataPath } from '../storage/data-uri.ts';
import { abortError, InputError, redactUserinfo } from '../util/errors.ts';
import type { FetchCache } from './fetch-cache.ts';

export interface UriResolverOptions {
  /** Where `file://` URIs may point (DATA_ROOTS). */
  dataRoots: readonly string[];
  /** `dataset://` URIs: the worker's locator of uploads. */
  datasets?: UriLocator | undefined;
  /** `s3://` and `http(s)://` URIs: the fetch cache, and the job that holds what it fetches. */
  fetch?:
    | {
        cache: FetchCache;
        holder: string;
        /** The job's id: its later attempts read what its first read (see FetchRequest.job). */
        job?: string | undefined;
        log?: ((line: string) => unknown) | undefined;
        /**
         * The job's signal: aborting it stops a download (its partial file is removed), and the URI
         * then fails with `abortError(signal)` (util/errors.ts), whatever the transfer failed with.
         */
        signal?: AbortSignal | undefined;
      }
    | undefined;
}

/**
 * A UriLocator over every scheme a job may name. With `format` `image-folder`, a fetched URI must be a
 * `.zip` or `.tar.gz` archive and the folder of its classes is returned; otherwise a file's path.
 * Throws what the scheme's reader throws (see FetchCache.get), except that a fetch that fails once
 * `fetch.signal` has aborted throws CancelledError (the abort's reason), or ReleasedError on a shutdown.
 */
export function uriResolver(o: UriResolverOptions): UriLocator {
  return async (uri, format) => {
    if (uri.startsWith('file://')) {
      // The user's own path: messages may show it.
      const p = await resolveDataPath(uri, o.dataRoots);
      return { path: p, name: p };
    }
    if (uri.startsWith('dataset://')) {
      if (!o.datasets) throw new InputError(`cannot read "${uri}" here: dataset:// URIs are read by workers`);
      return o.datasets(uri, format);
    }
    if (uri.startsWith('s3://') || /^https?:\/\//.test(uri)) {
      const f = o.fetch;
      if (!f)
        throw new InputError(`cannot read "${uri}" here: s3:// and http(s):// URIs are read by workers`);
      const extract = format === 'image-folder';
      let p: string;
      try {
        p = await f.cache.get(uri, { holder: f.holder, job: f.job, extract, log: f.log, signal: f.signal });
      } catch (e) {
        // The signal stops a download by aborting its connection, which the fetch reports as the
        // network error it then is ("cannot fetch …: cancelled by user"), retried as one. The job
        // stops as its signal says instead: cancelled at once, or handed back on a shutdown.
        if (f.signal?.aborted) throw abortError(f.signal);
        throw e;
      }
      // An extracted archive is `<dir>/<entry id>/tree/<root>` (fetch-cache.ts): `root` is the
      // class folders' place inside the archive, which entry names start from.
      const inside = extract
        ? path.relative(f.cache.options.dir, p).split(path.sep).slice(2).join('/')
        : undefined;
      return { path: p, name: redactUserinfo(uri), inside };
    }
    throw new InputError(
      `cannot read "${uri}": supported are file:// (inside DATA_ROOTS), dataset://, s3:// and http(s)://`,
    );
  };
}
