/**
 * Dataset uploads and artifact downloads: the request body is the file itself, streamed (never read
 * whole into memory), with byte progress. Fetch and web streams only, so it runs in Node and browsers.
 */
import type {
  ArtifactList,
  ArtifactView,
  DatasetList,
  DatasetSummary,
  DatasetUpload,
  DatasetVersion,
  UploadFormat,
} from '@mlq/contract';
import { MlqError } from './errors.ts';
import { seg, type CallOptions, type Transport } from './transport.ts';

export type { ArtifactView, DatasetSummary, DatasetUpload, DatasetVersion, UploadFormat };

/**
 * What `uploadDataset` sends: a `Blob` (a browser `File`; in Node `fs.openAsBlob(path)` streams a file
 * without reading it), a web `ReadableStream`, any async iterable of bytes (a Node stream), or bytes.
 */
export type UploadData = Blob | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | Uint8Array;

export interface UploadOptions extends CallOptions {
  /** The format; by default taken from a `File`'s name or a `Blob`'s type. */
  format?: UploadFormat | undefined;
  /** CSV: the column whose values are counted as classes (default: a column named `label`). */
  label?: string | undefined;
  /** Called as bytes go out: bytes sent so far, and the total when known. */
  onProgress?: ((sentBytes: number, totalBytes: number | undefined) => void) | undefined;
}

/** The media type the API takes for each format. */
export const uploadMediaType: Record<UploadFormat, string> = {
  csv: 'text/csv',
  jsonl: 'application/x-ndjson',
  zip: 'application/zip',
  'tar.gz': 'application/gzip',
};

/** The format a file name implies (`x.csv`, `x.jsonl`/`.ndjson`, `x.zip`, `x.tar.gz`/`.tgz`), if any. */
export function formatFromName(name: string): UploadFormat | undefined {
  const n = name.toLowerCase();
  if (n.endsWith('.csv')) return 'csv';
  if (n.endsWith('.jsonl') || n.endsWith('.ndjson')) return 'jsonl';
  if (n.endsWith('.zip')) return 'zip';
  if (n.endsWith('.tar.gz') || n.endsWith('.tgz')) return 'tar.gz';
  return undefined;
}

function formatOf(data: UploadData, given: UploadFormat | undefined): UploadFormat {
  if (given) return given;
  if (typeof Blob !== 'undefined' && data instanceof Blob) {
    const byName = 'name' in data && typeof data.name === 'string' ? formatFromName(data.name) : undefined;
    const byType = (Object.keys(uploadMediaType) as UploadFormat[]).find(
      (f) => uploadMediaType[f] === data.type,
    );
    if (byName ?? byType) return (byName ?? byType)!;
  }
  // fs.openAsBlob(path) gives a Blob with neither: the caller knows the format, this cannot.
  throw new MlqError(
    'invalid_format',
    'give the upload format: { format: "csv" | "jsonl" | "zip" | "tar.gz" } (it is read from a File\'s ' +
      "name or a Blob's type; a Blob from fs.openAsBlob(path) has neither, and a stream or bytes never do)",
  );
}

/** The data as a stream that reports the bytes pulled from it. */
function counted(
  data: UploadData,
  onProgress: NonNullable<UploadOptions['onProgress']>,
): ReadableStream<Uint8Array> {
  const total =
    typeof Blob !== 'undefined' && data instanceof Blob
      ? data.size
      : data instanceof Uint8Array
        ? data.byteLength
        : undefined;
  const source: AsyncIterable<Uint8Array> =
    typeof Blob !== 'undefined' && data instanceof Blob
      ? (data.stream() as unknown as AsyncIterable<Uint8Array>)
      : data instanceof Uint8Array
        ? ((function* () {
            for (let i = 0; i < data.byteLength; i += 1 << 20) yield data.subarray(i, i + (1 << 20));
          })() as unknown as AsyncIterable<Uint8Array>)
        : (data as AsyncIterable<Uint8Array>);
  const it = source[Symbol.asyncIterator]();
  let sent = 0;
  onProgress(0, total);
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await it.next();
      if (done) return controller.close();
      sent += value.byteLength;
      controller.enqueue(value);
      onProgress(sent, total);
    },
    async cancel() {
      await it.return?.();
    },
  });
}

/** `POST /v1/datasets/{name}` with the data as the body. */
export async function uploadDataset(
  t: Transport,
  name: string,
  data: UploadData,
  opts: UploadOptions = {},
): Promise<DatasetUpload> {
  const format = formatOf(data, opts.format);
  const isBlob = typeof Blob !== 'undefined' && data instanceof Blob;
  // A Blob or bytes go as they are (with a length) unless progress is wanted; anything else is streamed.
  const body: BodyInit =
    opts.onProgress || !(isBlob || data instanceof Uint8Array)
      ? counted(data, opts.onProgress ?? (() => undefined))
      : (data as BodyInit);
  const res = await t.send('POST', `/v1/datasets/${seg(name)}`, {
    ...opts,
    raw: { body, contentType: uploadMediaType[format] },
    query: { label: opts.label },
  });
  return (await res.json()) as DatasetUpload;
}

/** `GET /v1/datasets`. */
export async function listDatasets(t: Transport, opts: CallOptions = {}): Promise<DatasetSummary[]> {
  return (await t.json<DatasetList>('GET', '/v1/datasets', opts)).datasets;
}

/** `GET /v1/jobs/{id}/artifacts`. */
export async function listArtifacts(
  t: Transport,
  jobId: string,
  opts: CallOptions = {},
): Promise<ArtifactView[]> {
  return (await t.json<ArtifactList>('GET', `/v1/jobs/${seg(jobId)}/artifacts`, opts)).artifacts;
}
