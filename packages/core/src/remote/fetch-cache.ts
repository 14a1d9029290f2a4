/**
 * The worker-local cache of files fetched from `s3://` and `http(s)://` URIs (`WORKER_CACHE_DIR/fetch/`),
 * so that a retried or resumed job, or the next job on the same data, does not download it again; and
 * of uploaded datasets (`dataset://`, datasets/locate.ts), copied from the artifact store or extracted,
 * as entries keyed by the bytes' SHA-256 (`getContent`), which never go stale. Both kinds share the
 * one bound and the same eviction.
 *
 * Layout: `<dir>/<id>/` per entry, `id` = SHA-256 of the URI and its validator (the ETag, else the
 * content's SHA-256), holding `meta.json` (written last: an entry without it is incomplete), `body` (the
 * file), or `tree/` (an image-folder archive, extracted through datasets/archive.ts' checks; the archive
 * itself is then dropped), and `holds/` (one file per job using the entry). `<dir>/uris/<sha256(uri)>.json`
 * names the latest entry of a URI (per mode: file or extracted archive) with its validators, and
 * `<dir>/jobs/<sha256(job, uri)>` the entry a job read.
 *
 * A later attempt of a job (a retry, a resume) reads the entry its earlier attempt read without asking
 * the source, so it trains on the same bytes. Any other job revalidates a URI seen before: http(s) with a
 * conditional GET (If-None-Match / If-Modified-Since; `304` is a cache hit, no body is sent), s3 with a
 * HEAD whose ETag is compared. The cache is bounded by
 * `maxBytes` (WORKER_CACHE_MB): after each new entry the least recently used entries are removed until
 * it fits, except entries a running job holds (a hold names the job and its process; a hold whose
 * process is gone does not count). Several worker processes may share the folder: entries are built
 * in a temp folder and renamed into place.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import { mkdir, open, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { DEFAULT_IMAGE_MAX_PIXELS } from '@mlq/contract/env';
import { walkArchive, type ArchiveKind, type ArchiveLimits } from '../datasets/archive.ts';
import { ImageFolderCheck, isIgnoredEntry } from '../datasets/image-archive.ts';
import type { ArtifactStore } from '../storage/artifact-store.ts';
import { isS3ConnectTimeout, isS3Timeout, parseS3Uri, s3ObjectOf } from '../storage/s3-store.ts';
import { DataError, InputError, isPermanentError, NotFoundError, redactUserinfo } from '../util/errors.ts';
import {
  discard,
  egressGet,
  fetchError,
  FetchLimitError,
  networkError,
  type EgressPolicy,
} from './egress.ts';

export interface FetchCacheOptions {
  /** `WORKER_CACHE_DIR/fetch`. */
  dir: string;
  /** WORKER_CACHE_MB in bytes. */
  maxBytes: number;
  /**
   * Checks every http(s) URL, redirect and connection, and the connections to an endpoint an s3:// URI
   * names itself; its maxBytes bounds each download.
   */
  policy: EgressPolicy;
  /** The artifact store: an `s3://` URI without a query of its own is read over its connection. */
  store?: ArtifactStore | undefined;
  /** Most entries an archive may hold (default 100,000). */
  maxArchiveFiles?: number | undefined;
  /**
   * Most pixels (width × height, from each image's header) an image of an archive may have
   * (IMAGE_MAX_PIXELS; default DEFAULT_IMAGE_MAX_PIXELS of packages/contract/src/env.ts): past it the
   * archive is refused, naming the entry, before it is extracted.
   */
  imageMaxPixels?: number | undefined;
}

export interface FetchRequest {
  /** Who holds the entry until `release(holder)`: `<pid>-<jobId>` by convention. */
  holder: string;
  /**
   * The job id (the same in every attempt): a later attempt of the job on this machine reads the copy
   * its earlier attempt read, without asking the source, so a resumed run sees the same bytes.
   */
  job?: string | undefined;
  /** Extract it as an image-folder archive (`.zip` or `.tar.gz`) and return the folder of its classes. */
  extract?: boolean | undefined;
  /** Where "cache hit" and "fetched" lines go (the job's log). */
  log?: ((line: string) => unknown) | undefined;
  /**
   * Aborting it stops the request under way (http(s), or S3's HEAD or GET) or the body being
   * downloaded (its partial file is removed). The fetch then fails with what the transfer did, mostly
   * a network error: the caller knows why it aborted (remote/resolve-uri.ts).
   */
  signal?: AbortSignal | undefined;
}

/**
 * Bytes known by their SHA-256 (an uploaded dataset's blob in the artifact store): cached under that
 * hash, so never revalidated, and checked against it when copied.
 */
export interface ContentSource {
  /** The bytes' SHA-256, hex. */
  sha256: string;
  /** How the job log and `entries()` name it: `dataset://pets@2`. */
  name: string;
  /** Their size. */
  bytes: number;
  /** A local file with the bytes (a file store's blob): read in place, so only an extraction is cached. */
  file?: string | undefined;
  /** Streams the bytes (when there is no `file`). */
  open(): Promise<Readable>;
  /**
   * An image-folder archive, checked at upload: extracted (its files held to the bytes the upload
   * counted), and the folder of its class folders (`root` inside the archive) returned.
   */
  archive?: { kind: ArchiveKind; root: string; expandedBytes?: number | undefined } | undefined;
}

interface Meta {
  /** The URI fetched, or a content entry's name (ContentSource.name). */
  uri: string;
  etag?: string | undefined;
  lastModified?: string | undefined;
  sha256: string;
  /** Bytes downloaded. */
  bytes: number;
  /** Bytes on disk: the body, or the extracted files. */
  size: number;
  /** For an extracted archive: the folder of the class folders, relative to `tree/` ("" or one folder). */
  root?: string | undefined;
  fetchedAt: string;
}

interface UriIndex {
  id: string;
  etag?: string | undefined;
  lastModified?: string | undefined;
}

/** What a remote source answers: nothing new (the cached entry is current), or a body to store. */
type Fresh =
  | { kind: 'current' }
  | {
      kind: 'body';
      body: Readable;
      length?: number | undefined;
      etag?: string | undefined;
      lastModified?: string | undefined;
    };

type Mode = 'body' | 'tree';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const header = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

/** True while the process `pid` runs (on this machine). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
const describe = (m: Meta) =>
  `${m.etag ? `ETag ${m.etag}` : `sha256 ${m.sha256.slice(0, 12)}`}, ${mb(m.bytes)}`;

export class FetchCache {
  readonly options: FetchCacheOptions;
  constructor(options: FetchCacheOptions) {
    this.options = options;
  }

  private entryDir(id: string): string {
    return path.join(this.options.dir, id);
  }

  /** Where the latest entry of `uri` read as a file (`body`) or as an extracted archive (`tree`) is named. */
  private indexFile(uri: string, mode: Mode): string {
    return path.join(this.options.dir, 'uris', `${sha256(`${uri}\n${mode}`)}.json`);
  }

  /**
   * The local path of `uri`'s bytes (a file), or with `extract` of the folder of its image classes.
   * Holds the entry for `req.holder` until `release`. Throws NotFoundError (404, 410, no such object),
   * EgressRefusedError, FetchLimitError (FETCH_MAX_MB, FETCH_TIMEOUT_MS, larger than the cache), DataError
   * (refused by the server, a broken archive); a network error or a 5xx is thrown as is (may pass).
   */
  async get(uri: string, req: FetchRequest): Promise<string> {
    const mode: Mode = req.extract ? 'tree' : 'body';
    const pinned = await this.pinned(uri, mode, req);
    if (pinned) return pinned;
    const prior = await this.current(uri, mode);
    let fresh: Fresh;
    try {
      fresh = await this.revalidate(uri, prior, req.signal);
    } catch (e) {
      // The source cannot be asked now (a network error, a 5xx): the copy this machine has will do.
      if (!prior || isPermanentError(e) || req.signal?.aborted) throw e;
      await req.log?.(
        `could not revalidate ${redactUserinfo(uri)} (${(e as Error).message}); using the copy fetched at ${prior.meta.fetchedAt}`,
      );
      fresh = { kind: 'current' };
    }
    if (fresh.kind === 'current' && prior) {
      const dir = this.entryDir(prior.index.id);
      // Evicted between reading it and holding it: fetch anew.
      if ((await this.hold(dir, req.holder)) && (await exists(path.join(dir, 'meta.json')))) {
        await req.log?.(`cache hit: ${redactUserinfo(uri)} (${describe(prior.meta)})`);
        await this.pin(uri, mode, prior.index.id, req);
        return this.pathOf(dir, prior.meta, req);
      }
      return this.get(uri, req);
    }
    if (fresh.kind !== 'body')
      throw new Error(`${redactUserinfo(uri)}: the server answered 304 to an unconditional request`);
    return this.download(uri, mode, fresh, req);
  }

  /**
   * The local path of content-addressed bytes (see ContentSource): the file, or the folder of an
   * archive's classes. A copy this machine has is used as it is; otherwise the bytes are copied (or a
   * local file extracted) into a new entry, which counts toward `maxBytes` like a fetched one. Holds
   * the entry for `req.holder` until `release`. Throws FetchLimitError when it could never fit in the
   * cache, DataError when the bytes do not have their SHA-256.
   */
  async getContent(src: ContentSource, req: FetchRequest): Promise<string> {
    const extract = src.archive !== undefined;
    if (src.file !== undefined && !extract) return src.file;
    const at = { ...req, extract };
    const id = sha256(`sha256:${src.sha256}\n${extract ? 'tree' : 'body'}`);
    const dir = this.entryDir(id);
    if (await this.hold(dir, req.holder)) {
      const meta = await readFile(path.join(dir, 'meta.json'), 'utf8').then(
        (t) => JSON.parse(t) as Meta,
        () => undefined,
      );
      if (meta) {
        await req.log?.(`cache hit: ${src.name} (${describe(meta)})`);
        return this.pathOf(dir, meta, at);
      }
      // Incomplete, or evicted between the two: built anew below.
    }
    const { maxBytes } = this.options;
    const size = src.archive ? (src.archive.expandedBytes ?? 0) : src.bytes;
    if (size > maxBytes)
      throw new FetchLimitError(
        `${src.name} is ${size} bytes${extract ? ' once extracted' : ''}, more than the worker's cache holds (WORKER_CACHE_MB: ${maxBytes} bytes); raise WORKER_CACHE_MB on the worker to read it`,
      );
    const t0 = performance.now();
    const tmp = path.join(this.options.dir, `new-${randomUUID()}.tmp`);
    await mkdir(tmp, { recursive: true });
    try {
      const meta: Meta = {
        uri: src.name,
        sha256: src.sha256,
        bytes: src.bytes,
        size: src.bytes,
        fetchedAt: new Date().toISOString(),
      };
      let file = src.file;
      if (file === undefined) {
        file = path.join(tmp, 'body');
        await copyChecked(src, file);
      }
      if (src.archive) {
        const { kind, expandedBytes } = src.archive;
        // The same bytes the upload checked (the hash says so): its counts are the limits.
        const limits = {
          maxFiles: Number.MAX_SAFE_INTEGER,
          maxExpandedBytes: Math.min(expandedBytes ?? maxBytes, maxBytes),
        };
        meta.size = await extractTree(file, kind, limits, path.join(tmp, 'tree'));
        meta.root = src.archive.root;
        await rm(path.join(tmp, 'body'), { force: true });
      }
      await this.place(tmp, id, meta, req.holder);
      const secs = ((performance.now() - t0) / 1000).toFixed(1);
      const how = src.file === undefined ? 'copied from the artifact store' : 'extracted';
      await req.log?.(`${how}: ${src.name} (${describe(meta)}) in ${secs} s`);
      await this.fit(req);
      return this.pathOf(dir, meta, at);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  /** Removes the holds of `holder` (its job ended). */
  async release(holder: string): Promise<void> {
    const ids = await readdir(this.options.dir).catch(() => [] as string[]);
    await Promise.all(ids.map((id) => rm(path.join(this.options.dir, id, 'holds', holder), { force: true })));
  }

  /** The cache's entries, least recently used first. */
  async entries(): Promise<{ id: string; uri: string; size: number; usedAt: number; held: boolean }[]> {
    const out = [];
    for (const id of await readdir(this.options.dir).catch(() => [] as string[])) {
      if (!/^[0-9a-f]{64}$/.test(id)) continue;
      const dir = this.entryDir(id);
      const metaFile = path.join(dir, 'meta.json');
      let meta: Meta;
      let usedAt: number;
      try {
        meta = JSON.parse(await readFile(metaFile, 'utf8')) as Meta;
        usedAt = (await stat(metaFile)).mtimeMs;
      } catch {
        continue; // incomplete, or removed meanwhile
      }
      out.push({ id, uri: meta.uri, size: meta.size, usedAt, held: await this.held(dir) });
    }
    return out.sort((a, b) => a.usedAt - b.usedAt);
  }

  /**
   * Removes least recently used entries that no live job holds until the cache fits `maxBytes`;
   * returns the URIs removed. Entries held stay even when the cache is over its bound.
   */
  async evict(): Promise<string[]> {
    await this.removeLeftovers();
    const all = await this.entries();
    let total = all.reduce((s, e) => s + e.size, 0);
    const removed: string[] = [];
    for (const e of all) {
      if (total <= this.options.maxBytes) break;
      if (e.held) continue;
      // Renamed first (atomic), so no reader ever sees half an entry.
      const gone = path.join(this.options.dir, `evict-${e.id}.${randomUUID()}.tmp`);
      try {
        await rename(this.entryDir(e.id), gone);
      } catch {
        continue;
      }
      await rm(gone, { recursive: true, force: true });
      total -= e.size;
      removed.push(e.uri);
    }
    return removed;
  }

  private pinFile(job: string, uri: string, mode: Mode): string {
    return path.join(this.options.dir, 'jobs', sha256(`${job}\n${uri}\n${mode}`));
  }

  /** Records which entry job `req.job` read for `uri`. */
  private async pin(uri: string, mode: Mode, id: string, req: FetchRequest): Promise<void> {
    if (!req.job) return;
    const file = this.pinFile(req.job, uri, mode);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, id);
  }

  /** The entry an earlier attempt of the same job read, when it is still here (held, touched, logged). */
  private async pinned(uri: string, mode: Mode, req: FetchRequest): Promise<string | undefined> {
    if (!req.job) return undefined;
    const id = await readFile(this.pinFile(req.job, uri, mode), 'utf8').catch(() => undefined);
    if (!id || !/^[0-9a-f]{64}$/.test(id)) return undefined;
    const dir = this.entryDir(id);
    if (!(await this.hold(dir, req.holder))) return undefined;
    let meta: Meta;
    try {
      meta = JSON.parse(await readFile(path.join(dir, 'meta.json'), 'utf8')) as Meta;
    } catch {
      return undefined;
    }
    await req.log?.(
      `cache hit: ${redactUserinfo(uri)} (${describe(meta)}; the copy an earlier attempt of this job read)`,
    );
    return this.pathOf(dir, meta, req);
  }

  /** Temp folders of downloads or evictions that a killed process left, a day or more old. */
  private async removeLeftovers(): Promise<void> {
    for (const name of await readdir(this.options.dir).catch(() => [] as string[])) {
      if (!name.endsWith('.tmp')) continue;
      const p = path.join(this.options.dir, name);
      const age = Date.now() - ((await stat(p).catch(() => undefined))?.mtimeMs ?? Date.now());
      if (age > 86_400_000) await rm(p, { recursive: true, force: true });
    }
    // Which entry a job read matters while it may be retried or resumed: a week.
    const jobs = path.join(this.options.dir, 'jobs');
    for (const name of await readdir(jobs).catch(() => [] as string[])) {
      const p = path.join(jobs, name);
      const age = Date.now() - ((await stat(p).catch(() => undefined))?.mtimeMs ?? Date.now());
      if (age > 7 * 86_400_000) await rm(p, { force: true });
    }
  }

  /** The URI's latest complete entry, if any. */
  private async current(uri: string, mode: Mode): Promise<{ index: UriIndex; meta: Meta } | undefined> {
    try {
      const index = JSON.parse(await readFile(this.indexFile(uri, mode), 'utf8')) as UriIndex;
      const meta = JSON.parse(
        await readFile(path.join(this.entryDir(index.id), 'meta.json'), 'utf8'),
      ) as Meta;
      return meta.uri === uri ? { index, meta } : undefined;
    } catch {
      return undefined;
    }
  }

  /** Asks the source whether the cached copy is current; otherwise opens its body. */
  private async revalidate(
    uri: string,
    prior: { meta: Meta } | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Fresh> {
    if (uri.startsWith('s3://')) return this.openS3(uri, prior?.meta, signal);
    if (/^https?:\/\//.test(uri)) return this.openHttp(uri, prior?.meta, signal);
    throw new InputError(`cannot fetch "${redactUserinfo(uri)}": only s3:// and http(s):// URIs are fetched`);
  }

  private async openHttp(
    uri: string,
    prior: Meta | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Fresh> {
    const headers: Record<string, string> = {};
    if (prior?.etag) headers['if-none-match'] = prior.etag;
    else if (prior?.lastModified) headers['if-modified-since'] = prior.lastModified;
    const res = await egressGet(uri, this.options.policy, { headers, signal });
    const s = res.status;
    if (s === 304 && prior) {
      discard(res.body);
      return { kind: 'current' };
    }
    if (s < 200 || s >= 300) {
      discard(res.body);
      const status = `${s} ${STATUS_CODES[s] ?? ''}`.trim();
      if (s === 404 || s === 410)
        throw new NotFoundError(`not found: ${redactUserinfo(uri)} (HTTP ${status})`);
      // Refused (401, 403...): asking again will not help. A server error, 408 or 429 may pass.
      if (s >= 400 && s < 500 && s !== 408 && s !== 429)
        throw new DataError(`GET ${redactUserinfo(uri)} answered ${status}`);
      throw new Error(`GET ${redactUserinfo(uri)} answered ${status}`);
    }
    const length = Number(header(res.headers['content-length']));
    return {
      kind: 'body',
      body: res.body,
      length: Number.isFinite(length) ? length : undefined,
      etag: header(res.headers.etag),
      lastModified: header(res.headers['last-modified']),
    };
  }

  private async openS3(
    uri: string,
    prior: Meta | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Fresh> {
    let loc;
    try {
      loc = parseS3Uri(uri);
      if (!loc.prefix)
        throw new Error(`invalid S3 URI "${redactUserinfo(uri)}": it names a bucket, not an object`);
    } catch (e) {
      throw new InputError((e as Error).message);
    }
    // An endpoint named in the URI itself is a host the worker connects to: the policy decides, on the
    // scheme and a literal address now, and on the address each connection resolves to as it is made
    // (its lookup is the policy's, as egressGet's is), so no DNS answer can change in between. The
    // store's own connection and the SDK's defaults are the operator's: they keep the system's lookup.
    // FETCH_TIMEOUT_MS bounds each wait over any of them, as egressGet's dispatcher does for http(s):
    // an endpoint that stalls holds the job as long whoever configured it. The operator's store keeps
    // its own client, unbounded, for everything else it does (s3ObjectOf).
    const { policy } = this.options;
    if (loc.endpoint) policy.checkStatic(loc.endpoint);
    const { store, key } = s3ObjectOf(uri, this.options.store, {
      endpointLookup: policy.lookup,
      timeoutMs: policy.options.timeoutMs,
    });
    let head;
    try {
      head = await store.head(key, { signal });
    } catch (e) {
      // A missing object is the store's NotFoundError: permanent, passed on as it is.
      if (isPermanentError(e)) throw e;
      if (isS3Timeout(e)) throw this.s3Timeout(e, uri, 'S3 sent no answer to the HEAD request');
      // Refused (403: no access, 400: bad request): asking again will not help; 5xx and network errors may pass.
      const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? 0;
      if (status >= 400 && status < 500 && status !== 408 && status !== 429)
        throw new DataError(`S3 answered ${status} ${(e as Error).name} for ${redactUserinfo(uri)}`);
      throw networkError(e, uri);
    }
    if (prior && head.etag && prior.etag === head.etag) return { kind: 'current' };
    const { body } = await store.getStream(key, { signal }).catch((e: unknown) => {
      if (isS3Timeout(e)) throw this.s3Timeout(e, uri, 'S3 sent no answer to the GET request');
      throw isPermanentError(e) ? e : networkError(e, uri);
    });
    return {
      kind: 'body',
      body,
      length: head.bytes,
      etag: head.etag,
      lastModified: head.lastModified?.toUTCString(),
    };
  }

  /**
   * An S3 request or body past FETCH_TIMEOUT_MS (`isS3Timeout`), worded as egressGet's timeouts are:
   * `<uri>: no answer within FETCH_TIMEOUT_MS (<n> ms; <what>)`, where `what` says which wait ran out
   * (`waiting`, unless the connection itself was not made). A FetchLimitError: the job fails at once.
   */
  private s3Timeout(e: unknown, uri: string, waiting: string): FetchLimitError {
    const what = isS3ConnectTimeout(e) ? 'the S3 endpoint did not accept a connection' : waiting;
    return new FetchLimitError(
      `${redactUserinfo(uri)}: no answer within FETCH_TIMEOUT_MS (${this.options.policy.options.timeoutMs} ms; ${what})`,
    );
  }

  /** Streams a body into a new entry (extracting an archive when asked), holds it, and evicts to fit. */
  private async download(
    uri: string,
    mode: Mode,
    fresh: Extract<Fresh, { kind: 'body' }>,
    req: FetchRequest,
  ): Promise<string> {
    const { policy, maxBytes: cacheBytes } = this.options;
    const limit = policy.options.maxBytes;
    const t0 = performance.now();
    const tooLarge = (n: number | string) =>
      new FetchLimitError(
        `${redactUserinfo(uri)} is larger than FETCH_MAX_MB (${n} bytes > ${limit}); raise FETCH_MAX_MB on the worker to read it`,
      );
    if (fresh.length !== undefined && fresh.length > limit) {
      discard(fresh.body);
      throw tooLarge(fresh.length);
    }
    if (fresh.length !== undefined && fresh.length > cacheBytes) {
      discard(fresh.body);
      throw new FetchLimitError(
        `${redactUserinfo(uri)} is ${fresh.length} bytes, more than the worker's cache holds (WORKER_CACHE_MB: ${cacheBytes} bytes)`,
      );
    }
    const tmp = path.join(this.options.dir, `new-${randomUUID()}.tmp`);
    await mkdir(tmp, { recursive: true });
    try {
      const hash = createHash('sha256');
      let bytes = 0;
      const meter = new Transform({
        transform(chunk: Buffer, _e, cb) {
          bytes += chunk.length;
          if (bytes > limit) return cb(tooLarge(`more than ${limit}`));
          hash.update(chunk);
          cb(null, chunk);
        },
      });
      const bodyFile = path.join(tmp, 'body');
      try {
        // The signal stops the body too: an S3 body has no signal of its own (http's has egressGet's).
        await pipeline(fresh.body, meter, createWriteStream(bodyFile), { signal: req.signal });
      } catch (e) {
        if (uri.startsWith('s3://') && isS3Timeout(e))
          throw this.s3Timeout(e, uri, `the body stopped after ${bytes} of ${fresh.length ?? '?'} bytes`);
        throw fetchError(e, uri, policy);
      }
      const digest = hash.digest('hex');
      const meta: Meta = {
        uri,
        etag: fresh.etag,
        lastModified: fresh.lastModified,
        sha256: digest,
        bytes,
        size: bytes,
        fetchedAt: new Date().toISOString(),
      };
      if (req.extract) {
        const { root, expandedBytes } = await this.extract(uri, bodyFile, path.join(tmp, 'tree'));
        await rm(bodyFile, { force: true });
        meta.root = root;
        meta.size = expandedBytes;
      }
      const id = sha256(`${uri}\n${fresh.etag ?? `sha256:${digest}`}\n${mode}`);
      const dir = this.entryDir(id);
      await this.place(tmp, id, meta, req.holder);
      const index = this.indexFile(uri, mode);
      await mkdir(path.dirname(index), { recursive: true });
      const indexTmp = `${index}.${randomUUID()}.tmp`;
      await writeFile(indexTmp, JSON.stringify({ id, etag: meta.etag, lastModified: meta.lastModified }));
      await rename(indexTmp, index);
      await this.pin(uri, mode, id, req);
      const secs = ((performance.now() - t0) / 1000).toFixed(1);
      await req.log?.(
        `fetched ${redactUserinfo(uri)}: ${mb(bytes)} in ${secs} s${fresh.etag ? ` (ETag ${fresh.etag})` : ''}`,
      );
      await this.fit(req);
      return this.pathOf(dir, meta, req);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  /** Moves a built entry (`tmp`, its files complete) into place as `id`, held for `holder`. */
  private async place(tmp: string, id: string, meta: Meta, holder: string): Promise<void> {
    const dir = this.entryDir(id);
    await this.hold(tmp, holder);
    await writeFile(path.join(tmp, 'meta.json'), JSON.stringify(meta));
    try {
      await rename(tmp, dir);
    } catch (e) {
      // Another process of this machine stored the same entry first: use that one.
      if (!(await exists(path.join(dir, 'meta.json'))) || !(await this.hold(dir, holder))) throw e;
    }
  }

  /** After a new entry: evicts until the cache fits, and says so in the job log. */
  private async fit(req: FetchRequest): Promise<void> {
    const evicted = await this.evict();
    if (evicted.length)
      await req.log?.(
        `cache: removed ${evicted.length} least recently used entr${evicted.length === 1 ? 'y' : 'ies'} to stay within WORKER_CACHE_MB`,
      );
  }

  /** Checks an image-folder archive (as an upload is checked) and extracts it into `tree`. */
  private async extract(
    uri: string,
    file: string,
    tree: string,
  ): Promise<{ root: string; expandedBytes: number }> {
    const kind = await archiveKind(file);
    if (!kind)
      throw new DataError(
        `${redactUserinfo(uri)} is not a .zip or .tar.gz archive: an image-folder dataset from s3:// or http(s):// is an archive with one folder per class`,
      );
    const limits = {
      maxFiles: this.options.maxArchiveFiles ?? 100_000,
      maxExpandedBytes: this.options.maxBytes,
    };
    const check = new ImageFolderCheck(this.options.imageMaxPixels ?? DEFAULT_IMAGE_MAX_PIXELS);
    await walkArchive(file, kind, limits, check.onFile);
    const { root } = check.finish();
    return { root, expandedBytes: await extractTree(file, kind, limits, tree) };
  }

  /** Touches the entry (its last use, for LRU) and gives the path the caller asked for. */
  private async pathOf(dir: string, meta: Meta, req: FetchRequest): Promise<string> {
    const now = new Date();
    await utimes(path.join(dir, 'meta.json'), now, now).catch(() => undefined);
    if (!req.extract) return path.join(dir, 'body');
    if (meta.root === undefined)
      throw new DataError(`${redactUserinfo(meta.uri)} was cached as a file, not an archive`);
    return meta.root ? path.join(dir, 'tree', ...meta.root.split('/')) : path.join(dir, 'tree');
  }

  /** Marks the entry in `dir` as used by `holder` (this process); false when the entry is gone. */
  private async hold(dir: string, holder: string): Promise<boolean> {
    if (!/^[\w.-]+$/.test(holder)) throw new Error(`invalid cache holder "${holder}"`);
    try {
      // Not recursive: a removed entry must not come back as an empty folder.
      await mkdir(path.join(dir, 'holds')).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw e;
      });
      await writeFile(path.join(dir, 'holds', holder), String(process.pid));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  }

  /** True when a live process holds the entry; holds of dead processes are removed. */
  private async held(dir: string): Promise<boolean> {
    const holds = await readdir(path.join(dir, 'holds')).catch(() => [] as string[]);
    let any = false;
    for (const h of holds) {
      const file = path.join(dir, 'holds', h);
      const pid = Number(await readFile(file, 'utf8').catch(() => ''));
      if (Number.isInteger(pid) && pid > 0 && alive(pid)) any = true;
      else await rm(file, { force: true });
    }
    return any;
  }
}

/** Extracts an archive's files (not the ignored ones: `.DS_Store`...) into `tree`; returns their bytes. */
async function extractTree(
  file: string,
  kind: ArchiveKind,
  limits: ArchiveLimits,
  tree: string,
): Promise<number> {
  let expandedBytes = 0;
  await mkdir(tree, { recursive: true });
  await walkArchive(file, kind, limits, async (f, body) => {
    if (isIgnoredEntry(f.name)) return void (await finished(body.resume()));
    const dest = path.join(tree, ...f.name.split('/'));
    await mkdir(path.dirname(dest), { recursive: true });
    await pipeline(body, createWriteStream(dest));
    expandedBytes += f.size;
  });
  return expandedBytes;
}

/** Streams a content source's bytes into `dest`, checking them against its SHA-256. */
async function copyChecked(src: ContentSource, dest: string): Promise<void> {
  const hash = createHash('sha256');
  const tap = new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  await pipeline(await src.open(), tap, createWriteStream(dest));
  const got = hash.digest('hex');
  if (got !== src.sha256)
    throw new DataError(
      `the stored bytes of ${src.name} have SHA-256 ${got}, not ${src.sha256}: the store copy is damaged`,
    );
}

/** `zip` or `tar.gz` by the file's first bytes (`PK\3\4`, gzip's 1f 8b), or undefined. */
async function archiveKind(file: string): Promise<ArchiveKind | undefined> {
  const fh = await open(file, 'r');
  try {
    const head = Buffer.alloc(4);
    await fh.read(head, 0, 4, 0);
    if (head.readUInt32BE(0) === 0x504b0304) return 'zip';
    if (head[0] === 0x1f && head[1] === 0x8b) return 'tar.gz';
    return undefined;
  } finally {
    await fh.close();
  }
}
