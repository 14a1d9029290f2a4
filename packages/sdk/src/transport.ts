/** HTTP under the client: base URL, bearer key, fetch, and turning error answers into `MlqApiError`s. */
import { errorFromResponse, MlqApiError } from './errors.ts';

/** The fetch function the SDK calls; the global one by default. */
export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** Options of one request. */
export interface CallOptions {
  /** Aborts the request (and, for streams, the stream). */
  signal?: AbortSignal | undefined;
  /** Extra headers, e.g. `Idempotency-Key`. */
  headers?: Record<string, string> | undefined;
}

interface SendOptions extends CallOptions {
  body?: unknown;
  /** A body sent as it is (a file upload) instead of JSON. */
  raw?: { body: BodyInit; contentType: string } | undefined;
  query?: Record<string, string | number | undefined> | undefined;
  accept?: string;
}

/** Percent-encodes one path segment. */
export const seg = (s: string | number): string => encodeURIComponent(String(s));

/** Sends requests to one API: joins paths onto the base URL, adds the key, maps errors. */
export class Transport {
  readonly baseUrl: string;
  private readonly apiKey: string | undefined;
  private readonly fetchFn: FetchLike;

  constructor(baseUrl: string, apiKey: string | undefined, fetchFn: FetchLike | undefined) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.apiKey = apiKey;
    // Looked up at call time and called as a plain function: browsers reject a fetch bound to another object.
    this.fetchFn = fetchFn ?? ((input, init) => globalThis.fetch(input, init));
  }

  /** The absolute URL of an API path (`/v1/jobs`) with an optional query. */
  url(path: string, query?: SendOptions['query']): string {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) params.set(k, String(v));
    const qs = params.toString();
    return `${this.baseUrl}${path}${qs ? `?${qs}` : ''}`;
  }

  /** Sends a request and returns the response when its status is 2xx; throws `MlqApiError` otherwise. */
  async send(method: string, path: string, opts: SendOptions = {}): Promise<Response> {
    const url = this.url(path, opts.query);
    const headers: Record<string, string> = { accept: opts.accept ?? 'application/json', ...opts.headers };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    if (opts.raw) headers['content-type'] = opts.raw.contentType;
    const body = opts.raw ? opts.raw.body : opts.body !== undefined ? JSON.stringify(opts.body) : undefined;
    let res: Response;
    try {
      res = await this.fetchFn(url, {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        // fetch sends a stream body only when told it is half-duplex (the answer comes after it).
        ...(body instanceof ReadableStream ? ({ duplex: 'half' } as RequestInit) : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      const why = e instanceof Error ? ((e.cause as Error | undefined)?.message ?? e.message) : String(e);
      throw new MlqApiError(0, 'network_error', `cannot reach ${this.baseUrl}: ${why}`, undefined, {
        cause: e,
      });
    }
    if (res.ok) return res;
    throw errorFromResponse(res.status, res.statusText, await res.text().catch(() => ''));
  }

  /** Sends a request and parses the JSON answer (`undefined` for 204). */
  async json<T>(method: string, path: string, opts: SendOptions = {}): Promise<T> {
    const res = await this.send(method, path, opts);
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    try {
      return (text ? JSON.parse(text) : undefined) as T;
    } catch (e) {
      throw new MlqApiError(
        res.status,
        'invalid_response',
        `${method} ${path} did not answer JSON: ${text.slice(0, 200)}`,
        undefined,
        {
          cause: e,
        },
      );
    }
  }
}
