/**
 * `s3://bucket/prefix` artifact store over the AWS SDK, for AWS S3 and S3-compatible servers (MinIO, s3rver).
 * Credentials and region come from the SDK's standard chain (env, ~/.aws, instance roles); the endpoint of
 * an S3-compatible server from `?endpoint=` on the URI or the SDK's own `AWS_ENDPOINT_URL_S3` /
 * `AWS_ENDPOINT_URL` variables. Connections resolve hosts with the system's DNS, or through the lookup a
 * store is given (`lookup`: the egress policy's, for an endpoint a user's URI names; see `s3ObjectOf`).
 * Requests wait as long as the SDK lets them (no bound), or as long as a store's `timeoutMs` (the fetch
 * cache's reads: FETCH_TIMEOUT_MS; see `s3ObjectOf`).
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { LookupFunction } from 'node:net';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
  type CompletedPart,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { NotFoundError } from '../util/errors.ts';
import { checkKey, type ArtifactStore } from './artifact-store.ts';

/** How to reach the server; part of the store URI's query, never of the keys' URIs. */
export interface S3Connection {
  endpoint?: string;
  region?: string;
  forcePathStyle?: boolean;
}

/** A parsed `s3://bucket/prefix?endpoint=…&region=…&forcePathStyle=…` URI. */
export interface S3Location extends S3Connection {
  bucket: string;
  /** Without leading or trailing slash; empty for the bucket's root. */
  prefix: string;
  /** True when the URI itself named connection settings (then they override any inherited ones). */
  hasQuery: boolean;
}

const QUERY_KEYS = new Set(['endpoint', 'region', 'forcePathStyle']);
/** S3 refuses single PUTs and CopyObject above 5 GiB; larger objects would need multipart copies. */
const MAX_PUT_BYTES = 5 * 1024 ** 3;
/**
 * Multipart upload of a stream: parts of 5 MiB (S3's smallest), one in flight, all read into one
 * buffer that is reused. The API streams uploads through this. lib-storage's Upload allocated a new
 * 5 MiB buffer per part; those waited for a full GC, and bench/upload.ts measured the API's peak RSS
 * at 189–222 MB (the bar is 200) with it, against ~157 MB on the file store.
 */
const PART_BYTES = 5 * 1024 ** 2;

/** Parses an `s3://` URI; throws on a malformed bucket, prefix or unknown query parameter. */
export function parseS3Uri(uri: string): S3Location {
  // Not `new URL`: it would percent-encode keys, while uriOf writes them raw (as the aws CLI does).
  const m = /^s3:\/\/([^/?#]+)(\/[^?#]*)?(?:\?([^#]*))?$/.exec(uri);
  const bucket = m?.[1];
  if (!m || !bucket || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new Error(`invalid S3 URI "${uri}": expected s3://bucket/prefix`);
  }
  const prefix = (m[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (prefix) checkKey(prefix);
  const q = new URLSearchParams(m[3] ?? '');
  for (const k of q.keys()) {
    if (!QUERY_KEYS.has(k)) throw new Error(`invalid S3 URI "${uri}": unknown parameter "${k}"`);
  }
  const fps = q.get('forcePathStyle');
  if (fps !== null && fps !== 'true' && fps !== 'false') {
    throw new Error(`invalid S3 URI "${uri}": forcePathStyle must be true or false`);
  }
  return {
    bucket,
    prefix,
    endpoint: q.get('endpoint') ?? undefined,
    region: q.get('region') ?? undefined,
    forcePathStyle: fps === null ? undefined : fps === 'true',
    hasQuery: q.size > 0,
  };
}

/**
 * Clients are shared by connection (and bound on waits), so per-URI stores (model-io's foreign URIs)
 * reuse sockets and credentials.
 */
const clients = new Map<string, S3Client>();
/** Clients that connect through a lookup of their own, shared by lookup, connection and bound. */
const clientsByLookup = new WeakMap<LookupFunction, Map<string, S3Client>>();

function clientFor(c: S3Connection, lookup?: LookupFunction, timeoutMs?: number): S3Client {
  // The SDK resolves AWS_ENDPOINT_URL(_S3) itself; we look only to know a non-AWS server is meant: those
  // rarely resolve virtual-hosted `bucket.host` names, and some do not decode the aws-chunked bodies that the
  // SDK's default checksums send with streams, and store the framing as data (s3rver does).
  // eslint-disable-next-line no-restricted-properties -- the SDK's own variables, not app configuration
  const env = process.env;
  const custom = Boolean(c.endpoint ?? env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL);
  const checksums = custom ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED';
  const config: S3ClientConfig = {
    endpoint: c.endpoint,
    // An S3-compatible server ignores the region but the SDK insists on one for signing.
    region: c.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? (custom ? 'us-east-1' : undefined),
    forcePathStyle: c.forcePathStyle ?? custom,
    requestChecksumCalculation: checksums,
    responseChecksumValidation: checksums,
  };
  const id = JSON.stringify({ ...config, timeoutMs });
  let shared = clients;
  if (lookup) {
    shared = clientsByLookup.get(lookup) ?? new Map<string, S3Client>();
    clientsByLookup.set(lookup, shared);
  }
  let client = shared.get(id);
  if (!client) {
    const requestHandler = handlerFor(lookup, timeoutMs);
    client = new S3Client(requestHandler ? { ...config, requestHandler } : config);
    shared.set(id, client);
  }
  return client;
}

/**
 * The SDK's Node handler (undefined: its default) with agents whose every connection resolves its host
 * through `lookup` (else the system's), as its defaults would be otherwise (keep-alive, 50 sockets).
 * Agents, not agent options: the handler swaps agent options for a fresh default agent on
 * `Expect: 100-continue` requests (large PUTs), and keeps an agent given. Node's http does not follow
 * redirects, nor does the SDK (its region redirects are off by default and only change the signing
 * region), so every request goes to the endpoint's host (or `bucket.host` when not path-style), through
 * `lookup`.
 *
 * `timeoutMs` bounds each wait with @smithy/node-http-handler's own timers: `connectionTimeout` the
 * connect (DNS lookup included), `socketTimeout` any silence of the socket after it (the answer's
 * headers, each pause in the body; the SDK destroys the body with its error). Not `requestTimeout`:
 * there it bounds the whole request until its headers, never a pause in the body, and without
 * `throwOnRequestTimeout` only logs a warning (packages/core/test/s3-timeout.test.ts stalls each wait).
 * At 6 s and more the SDK arms the idle timer 3 s after the request starts, so the first wait may last
 * up to 3 s longer. Either timer fails the request with a TimeoutError (see isS3Timeout).
 */
function handlerFor(
  lookup: LookupFunction | undefined,
  timeoutMs: number | undefined,
): S3ClientConfig['requestHandler'] {
  if (!lookup && timeoutMs === undefined) return undefined;
  const agent = { keepAlive: true, maxSockets: 50, ...(lookup && { lookup }) };
  return {
    httpAgent: new HttpAgent(agent),
    httpsAgent: new HttpsAgent(agent),
    ...(timeoutMs !== undefined && { connectionTimeout: timeoutMs, socketTimeout: timeoutMs }),
  };
}

/**
 * True when an S3 request failed on a store's `timeoutMs` (the connect or a silence, see handlerFor):
 * the SDK's TimeoutError without a code, or ETIMEDOUT. Not the ECONNRESET and EPIPE errors the SDK
 * renames TimeoutError too: a connection the server drops is no wait that ran out.
 */
export function isS3Timeout(e: unknown): boolean {
  const err = e as { name?: unknown; code?: unknown } | null | undefined;
  return err?.name === 'TimeoutError' && (err.code === undefined || err.code === 'ETIMEDOUT');
}

/**
 * True when `isS3Timeout(e)` is a connect that did not finish (else a silence after it), as the SDK's
 * message says ("did not establish a connection"); a message worded otherwise reads as a silence.
 */
export function isS3ConnectTimeout(e: unknown): boolean {
  return isS3Timeout(e) && /establish a connection/.test((e as Error).message);
}

function isNotFound(e: unknown): boolean {
  return (
    e instanceof S3ServiceException &&
    (e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata.httpStatusCode === 404)
  );
}

export interface S3StoreOptions {
  /** Mostly for tests: page size of list and batch delete calls (S3's maximum is 1000). */
  pageSize?: number;
  /** Connection settings used when the URI has no query of its own. */
  connection?: S3Connection;
  /**
   * The DNS lookup of every connection the client opens (e.g. the egress policy's checking lookup,
   * whose error then fails the request); default the system's (`dns.lookup`). Not called for an
   * endpoint that is a literal address.
   */
  lookup?: LookupFunction | undefined;
  /**
   * The longest wait of every request, in ms: the connect, then any silence of the connection (for the
   * answer's headers, in the body); past it the request, or its body stream, fails with the SDK's
   * TimeoutError (`isS3Timeout`). The SDK's own retries (3 attempts in all) try a request again, not
   * a body. Default: none (the SDK's). Reads through the fetch cache have FETCH_TIMEOUT_MS (s3ObjectOf).
   */
  timeoutMs?: number | undefined;
}

/** Artifact store in an S3 bucket under a key prefix. Each PUT is atomic per object, as the interface needs. */
export class S3ArtifactStore implements ArtifactStore {
  /** The URI given (with its query), so the same store can be reopened from it elsewhere. */
  readonly uri: string;
  /** `s3://bucket/prefix`: what key URIs start with. */
  readonly base: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly connection: S3Connection;
  readonly client: S3Client;
  private readonly pageSize: number;

  constructor(uri: string, opts: S3StoreOptions = {}) {
    const loc = parseS3Uri(uri);
    this.bucket = loc.bucket;
    this.prefix = loc.prefix;
    this.base = `s3://${loc.bucket}${loc.prefix ? `/${loc.prefix}` : ''}`;
    const { endpoint, region, forcePathStyle } = loc;
    this.connection = loc.hasQuery ? { endpoint, region, forcePathStyle } : (opts.connection ?? {});
    this.uri = uri.replace(/\/+(?=\?|$)/, '');
    this.client = clientFor(this.connection, opts.lookup, opts.timeoutMs);
    this.pageSize = Math.min(Math.max(1, opts.pageSize ?? 1000), 1000);
  }

  /** The full object key of a store key. */
  objectKey(key: string): string {
    checkKey(key);
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  async put(key: string, data: Uint8Array | string): Promise<void> {
    await this.client.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key), Body: data }),
    );
  }

  async putFile(key: string, localPath: string): Promise<void> {
    const Key = this.objectKey(key);
    const { size } = await stat(localPath);
    if (size > MAX_PUT_BYTES)
      throw new Error(`${localPath} is ${size} bytes: above S3's 5 GiB single-PUT limit`);
    // A stream with a known length is sent as it is read, so memory stays flat whatever the file size.
    const Body = createReadStream(localPath);
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key, Body, ContentLength: size }));
    } finally {
      Body.destroy();
    }
  }

  /**
   * Stores a stream of unknown length: one PUT when it fits one part, else a multipart upload (parts
   * of PART_BYTES from one reused buffer), aborted when the stream or a part fails, so the object never
   * appears half-written. Memory: one part buffer, whatever the stream's size.
   */
  async putStream(key: string, body: Readable): Promise<void> {
    const Bucket = this.bucket;
    const Key = this.objectKey(key);
    const part = Buffer.allocUnsafe(PART_BYTES);
    let filled = 0;
    let UploadId: string | undefined;
    const parts: CompletedPart[] = [];
    const sendPart = async () => {
      UploadId ??= (await this.client.send(new CreateMultipartUploadCommand({ Bucket, Key }))).UploadId;
      const PartNumber = parts.length + 1;
      const Body = part.subarray(0, filled);
      const r = await this.client.send(
        new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body, ContentLength: filled }),
      );
      parts.push({ ETag: r.ETag, PartNumber });
      filled = 0;
    };
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        for (let off = 0; off < chunk.length;) {
          const n = Math.min(chunk.length - off, PART_BYTES - filled);
          chunk.copy(part, filled, off, off + n);
          filled += n;
          off += n;
          if (filled === PART_BYTES) await sendPart();
        }
      }
      if (UploadId === undefined) {
        const Body = part.subarray(0, filled);
        await this.client.send(new PutObjectCommand({ Bucket, Key, Body, ContentLength: filled }));
        return;
      }
      if (filled > 0) await sendPart();
      await this.client.send(
        new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts } }),
      );
    } catch (e) {
      // The stream's or the part's error is the cause; an abort that fails too (s3rver has none) must not hide it.
      if (UploadId !== undefined)
        await this.client
          .send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId }))
          .catch(() => undefined);
      throw e;
    }
  }

  /**
   * The object's body, as a stream, and its size. `opts.signal` stops the request until its answer
   * comes (the SDK's AbortError, not retried); the body is then the caller's to stop.
   */
  async getStream(
    key: string,
    opts: { signal?: AbortSignal | undefined } = {},
  ): Promise<{ body: Readable; bytes: number }> {
    try {
      const res = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }),
        { abortSignal: opts.signal },
      );
      // In Node the SDK's body is an http.IncomingMessage: a Readable.
      if (!(res.Body instanceof Readable)) throw new Error(`GET ${this.uriOf(key)} gave no stream`);
      return { body: res.Body, bytes: res.ContentLength ?? 0 };
    } catch (e) {
      if (isNotFound(e)) throw new NotFoundError(`artifact not found: ${this.uriOf(key)}`);
      throw e;
    }
  }

  async move(from: string, to: string): Promise<void> {
    const source = this.objectKey(from);
    try {
      await this.client.send(
        new CopyObjectCommand({
          Bucket: this.bucket,
          Key: this.objectKey(to),
          CopySource: encodeURI(`${this.bucket}/${source}`),
        }),
      );
    } catch (e) {
      if (isNotFound(e)) throw new NotFoundError(`artifact not found: ${this.uriOf(from)}`);
      throw e;
    }
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: source }));
  }

  async get(key: string): Promise<Buffer> {
    try {
      const res = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }),
      );
      const bytes = (await res.Body?.transformToByteArray()) ?? new Uint8Array();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (e) {
      if (isNotFound(e)) throw new NotFoundError(`artifact not found: ${this.uriOf(key)}`);
      throw e;
    }
  }

  /**
   * The object's ETag (quotes kept, as S3 gives it), size and last change; NotFoundError when absent.
   * `opts.signal` stops the request (the SDK's AbortError, not retried).
   */
  async head(
    key: string,
    opts: { signal?: AbortSignal | undefined } = {},
  ): Promise<{ etag?: string | undefined; bytes: number; lastModified?: Date | undefined }> {
    try {
      const res = await this.client.send(
        new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }),
        { abortSignal: opts.signal },
      );
      return { etag: res.ETag, bytes: res.ContentLength ?? 0, lastModified: res.LastModified };
    } catch (e) {
      if (isNotFound(e)) throw new NotFoundError(`not found: ${this.uriOf(key)}`);
      throw e;
    }
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return true;
    } catch (e) {
      // Only a 404 means "absent": a 403 or a network error must not read as a missing checkpoint.
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  /** Full object keys under an object-key prefix, page by page. */
  private async *listObjects(objectPrefix: string): AsyncGenerator<string[]> {
    let token: string | undefined;
    do {
      const res = await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: objectPrefix,
          ContinuationToken: token,
          MaxKeys: this.pageSize,
        }),
      );
      yield (res.Contents ?? []).flatMap((o) => (o.Key === undefined ? [] : [o.Key]));
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
  }

  /** Keys under `prefix` (a "directory", as in the file store), relative to the store, sorted. */
  async list(prefix: string): Promise<string[]> {
    const p = prefix.replace(/\/+$/, '');
    const objectPrefix = p ? `${this.objectKey(p)}/` : this.prefix ? `${this.prefix}/` : '';
    const strip = this.prefix ? this.prefix.length + 1 : 0;
    const keys: string[] = [];
    for await (const page of this.listObjects(objectPrefix)) keys.push(...page.map((k) => k.slice(strip)));
    // S3 orders by UTF-8 bytes; sort again so the order matches the file store's JS string order.
    return keys.sort();
  }

  async delete(keyOrPrefix: string): Promise<void> {
    const key = this.objectKey(keyOrPrefix.replace(/\/+$/, ''));
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    // Listed in full before deleting, so removals cannot shift the listing's continuation.
    const all: string[] = [];
    for await (const page of this.listObjects(`${key}/`)) all.push(...page);
    for (let i = 0; i < all.length; i += this.pageSize) {
      const batch = all.slice(i, i + this.pageSize);
      const res = await this.client.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
        }),
      );
      const err = res.Errors?.[0];
      if (err)
        throw new Error(
          `deleting ${this.base}/${err.Key ?? '?'} failed: ${err.Code ?? ''} ${err.Message ?? ''}`,
        );
    }
  }

  uriOf(key: string): string {
    return `${this.base}/${checkKey(key)}`;
  }

  localPath(): undefined {
    return undefined;
  }

  keyOf(uri: string): string | undefined {
    return uri.startsWith(`${this.base}/`) ? uri.slice(this.base.length + 1) : undefined;
  }
}

/**
 * The store (over the object's own folder) and key through which any `s3://bucket/key` object is read,
 * e.g. a user-given base model or dataset. Without a query of its own the URI is read over `like`'s
 * connection when that is an S3 store (its bucket or another on the same server, e.g. MinIO); else over
 * the SDK's defaults (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, else AWS). Those are the operator's and
 * connect with the system's lookup. An endpoint the URI names itself (`?endpoint=`) is the user's: its
 * connections resolve through `opts.endpointLookup` when given (the egress policy's `lookup`; the
 * caller checks the endpoint's scheme and a literal address, which no lookup sees, with `checkStatic`).
 * `opts.timeoutMs` bounds each wait of the store's requests (S3StoreOptions.timeoutMs), whichever
 * connection it reads over: the operator's too, since a stalled endpoint holds a job as long whoever
 * configured it; its client is then not `like`'s own, whose requests (uploads of the job's artifacts,
 * reads of models) keep the SDK's defaults. Throws on a malformed URI (parseS3Uri).
 */
export function s3ObjectOf(
  uri: string,
  like?: ArtifactStore,
  opts: { endpointLookup?: LookupFunction | undefined; timeoutMs?: number | undefined } = {},
): { store: S3ArtifactStore; key: string } {
  const loc = parseS3Uri(uri);
  const slash = loc.prefix.lastIndexOf('/');
  const dir = `s3://${loc.bucket}${slash > 0 ? `/${loc.prefix.slice(0, slash)}` : ''}`;
  const query = uri.includes('?') ? uri.slice(uri.indexOf('?')) : '';
  const connection = like instanceof S3ArtifactStore ? like.connection : undefined;
  const lookup = loc.endpoint ? opts.endpointLookup : undefined;
  return {
    store: new S3ArtifactStore(dir + query, { connection, lookup, timeoutMs: opts.timeoutMs }),
    key: loc.prefix.slice(slash + 1),
  };
}
