/**
 * The egress policy for `http(s)://` URIs that users give (datasets, model files), and for the
 * endpoint an `s3://…?endpoint=` URI names: a defence against server-side request forgery. The API
 * checks a submitted URI (or endpoint) with `check` (scheme, a literal address, and the addresses its
 * host resolves to); the worker fetches with `egressGet`, whose connections go only to addresses
 * checked at connect time (the lookup of the connection itself is checked, so a DNS answer cannot
 * change between the check and the connect) and which checks every redirect again. The S3 client of
 * a URI's own endpoint connects through the same `lookup` (fetch-cache.ts, storage/s3-store.ts).
 *
 * Refused unless FETCH_ALLOW_HOSTS lists the host (by name, address or CIDR): every address that is
 * not public unicast (ipaddr.js' `range()` is not `unicast`): loopback, link-local (169.254.0.0/16,
 * fe80::/10), private (10/8, 172.16/12, 192.168/16), carrier-grade NAT (100.64/10), unique-local
 * (fc00::/7), unspecified, broadcast, multicast, reserved and the other special-purpose ranges, and
 * IPv4-mapped IPv6 forms of all of these. Plain `http://` only to allowed hosts.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import type { Readable } from 'node:stream';
import ipaddr from 'ipaddr.js';
import { Agent, request } from 'undici';
import { DataError, InputError, redactUserinfo } from '../util/errors.ts';

export interface EgressOptions {
  /** FETCH_ALLOW_HOSTS: host names (exact, any case), IP addresses or CIDRs. */
  allowHosts: readonly string[];
  /** FETCH_TIMEOUT_MS: connect, response headers, and the longest pause within a body, in ms. */
  timeoutMs: number;
  /** FETCH_MAX_MB in bytes: the largest body a fetch may bring. */
  maxBytes: number;
}

/** A URI the egress policy refuses: the job fails at once; the API answers 400 naming the field. */
export class EgressRefusedError extends InputError {
  override name = 'EgressRefusedError';
}

/** A fetch went past FETCH_MAX_MB or FETCH_TIMEOUT_MS: the job fails at once. */
export class FetchLimitError extends DataError {
  override name = 'FetchLimitError';
}

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** Redirects followed at most, each checked again. */
export const MAX_REDIRECTS = 5;

const RANGE_NAMES: Record<string, string> = {
  loopback: 'loopback',
  linkLocal: 'link-local',
  private: 'private',
  carrierGradeNat: 'carrier-grade NAT (100.64.0.0/10)',
  uniqueLocal: 'unique-local (fc00::/7)',
  unspecified: 'unspecified',
  multicast: 'multicast',
  broadcast: 'broadcast',
  reserved: 'reserved',
};

const NOT_LISTED = '; FETCH_ALLOW_HOSTS does not list it';

const bare = (hostname: string) => hostname.replace(/^\[|\]$/g, '').toLowerCase();

export class EgressPolicy {
  private readonly names = new Set<string>();
  private readonly nets: [Address, number][] = [];
  private agent: Agent | undefined;

  readonly options: EgressOptions;
  /** Throws on an allow-list entry that is no host name, address or CIDR. */
  constructor(options: EgressOptions) {
    this.options = options;
    for (const entry of options.allowHosts) {
      const e = entry.trim().toLowerCase();
      if (e.includes('/')) {
        let [addr, bits] = ipaddr.parseCIDR(e);
        // `::ffff:10.0.0.0/104` is 10.0.0.0/8: addresses are compared after process() unwraps them.
        if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) {
          addr = (addr as ipaddr.IPv6).toIPv4Address();
          bits -= 96;
        }
        this.nets.push([addr, bits]);
      } else if (ipaddr.isValid(bare(e))) {
        const addr = ipaddr.process(bare(e));
        this.nets.push([addr, addr.kind() === 'ipv4' ? 32 : 128]);
      } else {
        this.names.add(e);
      }
    }
  }

  /** Connections of every egressGet: one pool, each new connection's lookup checked. */
  get dispatcher(): Agent {
    const t = this.options.timeoutMs;
    return (this.agent ??= new Agent({
      connect: { lookup: this.lookup, timeout: t },
      headersTimeout: t,
      bodyTimeout: t,
    }));
  }

  /** True when FETCH_ALLOW_HOSTS names the host or holds the address. */
  private allowed(host: string): boolean {
    const h = bare(host);
    if (this.names.has(h)) return true;
    if (!ipaddr.isValid(h)) return false;
    const addr = ipaddr.process(h);
    return this.nets.some(([net, bits]) => net.kind() === addr.kind() && addr.match(net, bits));
  }

  /**
   * What `address` is when connecting to it (for `host`) is refused (`a loopback address`), or
   * undefined when it may be connected to.
   */
  addressRefusal(address: string, host: string): string | undefined {
    if (this.names.has(bare(host)) || this.allowed(address)) return undefined;
    // process(): `::ffff:127.0.0.1` is judged as 127.0.0.1.
    const range = ipaddr.process(address).range();
    if (range === 'unicast') return undefined;
    return `a ${RANGE_NAMES[range] ?? `special-purpose (${range})`} address`;
  }

  /**
   * Checks what can be checked without DNS: the URL parses (WHATWG rules: `http://2130706433/` is
   * 127.0.0.1), is `https:` (or `http:` to an allowed host), and a literal address is allowed. Returns
   * the parsed URL; throws EgressRefusedError.
   */
  checkStatic(raw: string): URL {
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw new EgressRefusedError(`"${raw}" is not a valid URL`);
    }
    const host = bare(u.hostname);
    if (u.protocol !== 'https:' && u.protocol !== 'http:')
      throw new EgressRefusedError(`${raw}: only https:// (and http:// to FETCH_ALLOW_HOSTS) is fetched`);
    if (u.protocol === 'http:' && !this.allowed(host))
      throw new EgressRefusedError(
        `${raw}: plain http:// is only allowed to hosts in FETCH_ALLOW_HOSTS (${host} is not); use https://`,
      );
    if (isIP(host)) {
      const why = this.addressRefusal(host, host);
      if (why) throw new EgressRefusedError(`${raw} is refused: ${host} is ${why}${NOT_LISTED}`);
    }
    return u;
  }

  /**
   * The API's check at submit: checkStatic, then every address the host resolves to must be allowed.
   * A host that does not exist (ENOTFOUND) is refused; a DNS failure that may pass (a timeout) is not,
   * since the worker checks again before it connects.
   */
  async check(raw: string): Promise<URL> {
    const u = this.checkStatic(raw);
    const host = bare(u.hostname);
    if (isIP(host) || this.names.has(host)) return u;
    let addresses: LookupAddress[];
    try {
      addresses = await lookupAll(host, this.options.timeoutMs);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTFOUND' || code === 'ENODATA')
        throw new EgressRefusedError(`${raw}: the host ${host} does not exist (DNS: ${code})`);
      return u;
    }
    for (const a of addresses) {
      const why = this.addressRefusal(a.address, host);
      if (why)
        throw new EgressRefusedError(
          `${raw} is refused: ${host} resolves to ${a.address}, ${why}${NOT_LISTED}`,
        );
    }
    return u;
  }

  /**
   * The checking DNS lookup (node:net's LookupFunction) of every connection made under the policy: the
   * dispatcher's (egressGet) and the S3 client of an endpoint a URI names itself (fetch-cache.ts via
   * s3ObjectOf). Resolves, drops the addresses the policy refuses, and fails with an
   * EgressRefusedError (`<host> is refused: it resolves to <address>, a loopback address; …`) when none
   * is left, so the address checked is the address connected to. Node calls it with `all: true` (happy
   * eyeballs) or without; it is not called for a literal address (checkStatic judges those).
   */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      const ok = addresses.filter((a) => !this.addressRefusal(a.address, hostname));
      if (ok.length === 0) {
        const first = addresses[0];
        const why = first
          ? `${first.address}, ${this.addressRefusal(first.address, hostname)}`
          : 'no address';
        return callback(
          new EgressRefusedError(`${hostname} is refused: it resolves to ${why}${NOT_LISTED}`),
          [],
        );
      }
      if (options.all) callback(null, ok);
      else callback(null, ok[0]!.address, ok[0]!.family);
    });
  };

  /** Closes the dispatcher's connections. */
  async close(): Promise<void> {
    await this.agent?.close();
  }
}

function lookupAll(host: string, timeoutMs: number): Promise<LookupAddress[]> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(
      () => reject(Object.assign(new Error(`DNS lookup of ${host} timed out`), { code: 'ETIMEOUT' })),
      timeoutMs,
    );
    dnsLookup(host, { all: true }, (err, addresses) => {
      clearTimeout(t);
      if (err) reject(err);
      else resolve(addresses);
    });
  });
}

export interface EgressResponse {
  /** The URL that answered (after redirects). */
  url: string;
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Must be read to its end or destroyed. */
  body: Readable;
}

/** Drops a body not to be read (undici's destroy() emits an AbortError, which must not go unheard). */
export function discard(body: Readable): void {
  body.on('error', () => undefined);
  body.destroy();
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/**
 * A network error naming what was fetched: `cannot fetch <uri>: <reason>` (uri redacted). The error's
 * `code` is kept and the original is its `cause`; it is not permanent, so the job retries it.
 */
export function networkError(e: unknown, uri: string): Error {
  const err = e as Error & { code?: string };
  const reason = err instanceof Error ? err.message || err.name : String(e);
  const out = new Error(`cannot fetch ${redactUserinfo(uri)}: ${reason}`, { cause: e }) as Error & {
    code?: string;
  };
  if (err?.code) out.code = err.code;
  return out;
}

/**
 * An undici error as the job should see it: a refusal or a timeout is permanent, anything else (a
 * refused connection, a reset, an answer that is not HTTP) is a networkError naming `url` and may pass.
 */
export function fetchError(e: unknown, url: string, policy: EgressPolicy): Error {
  const err = e as Error & { code?: string; cause?: unknown };
  if (err instanceof EgressRefusedError) return err;
  if (err?.cause instanceof EgressRefusedError) return err.cause;
  if (err instanceof FetchLimitError) return err;
  if (err?.code && TIMEOUT_CODES.has(err.code))
    return new FetchLimitError(
      `${redactUserinfo(url)}: no answer within FETCH_TIMEOUT_MS (${policy.options.timeoutMs} ms; ${err.message})`,
    );
  if (err instanceof Error && err.message.startsWith('cannot fetch ')) return err;
  return networkError(e, url);
}

/**
 * GET through the policy: every URL (the first and each redirect's, at most MAX_REDIRECTS) is checked
 * before it is requested, and each connection's resolved address when it is made. Redirect bodies are
 * dropped; the final answer, whatever its status, is returned with its body unread. Throws
 * EgressRefusedError, FetchLimitError (a timeout), DataError (too many or broken redirects), or the
 * network's error (transient).
 */
export async function egressGet(
  raw: string,
  policy: EgressPolicy,
  opts: { headers?: Record<string, string>; signal?: AbortSignal | undefined } = {},
): Promise<EgressResponse> {
  let url = raw;
  for (let hop = 0; ; hop++) {
    let u: URL;
    try {
      u = policy.checkStatic(url);
    } catch (e) {
      if (hop > 0 && e instanceof EgressRefusedError)
        throw new EgressRefusedError(`${e.message} (redirected from ${raw})`);
      throw e;
    }
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(u, {
        method: 'GET',
        headers: opts.headers ?? {},
        dispatcher: policy.dispatcher,
        signal: opts.signal ?? null,
      });
    } catch (e) {
      const err = fetchError(e, u.href, policy);
      if (hop > 0 && err instanceof EgressRefusedError)
        throw new EgressRefusedError(`${err.message} (redirected from ${raw})`);
      throw err;
    }
    if (!REDIRECTS.has(res.statusCode)) {
      return { url: u.href, status: res.statusCode, headers: res.headers, body: res.body };
    }
    discard(res.body);
    const location = res.headers.location;
    const to = Array.isArray(location) ? location[0] : location;
    if (!to) throw new DataError(`${u.href} answered ${res.statusCode} without a Location`);
    if (hop >= MAX_REDIRECTS) throw new DataError(`${raw}: more than ${MAX_REDIRECTS} redirects`);
    try {
      url = new URL(to, u).href;
    } catch {
      throw new DataError(`${u.href} redirects to "${to}", which is not a URL`);
    }
  }
}
