/**
 * Redis connections: one Redis (`REDIS_URL`) or a Redis Cluster (`REDIS_CLUSTER_NODES`), with a
 * reconnect backoff, one readable log line per outage instead of an error event per retry, and the two
 * kinds the processes need:
 * - `waiting` (BullMQ's workers and queue events, the sandbox): a command issued while Redis is away
 *   waits for it to return (BullMQ requires `maxRetriesPerRequest: null` for blocking commands);
 * - `failFast` (the API's request paths): a command issued while Redis is away fails at once, so a
 *   request is answered `503` instead of hanging.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { RedisKeys } from '@mlq/contract';
import type { RedisTarget } from '@mlq/contract/env';

export type RedisClient = Redis | Cluster;

/**
 * The install's keys on `t`: on a cluster their root is the hash tag `{<prefix>}`, so every key of
 * the install lands in one slot (BullMQ's requirement there); on one Redis it is the plain prefix.
 */
export const redisKeysFor = (prefix: string, t: RedisTarget): RedisKeys =>
  new RedisKeys(prefix, { hashTag: t.kind === 'cluster' });

/** For logs: the URL without its password, or the cluster's seed nodes. */
export function describeTarget(t: RedisTarget): string {
  if (t.kind === 'cluster') return `cluster ${t.nodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  const u = new URL(t.url);
  if (u.password) u.password = '***';
  return u.href.replace(/\/$/, '');
}

/** Reconnect backoff: 200 ms, doubling, at most 2 s, forever. */
export const reconnectDelayMs = (attempt: number): number => Math.min(100 * 2 ** Math.max(1, attempt), 2000);

/** Seconds a client is told to wait (`Retry-After`) while Redis is away. */
export const RETRY_AFTER_S = 2;

/** True for errors that mean "Redis cannot be reached right now", as opposed to a bad command. */
export function isConnectionError(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const code = (e as { code?: string }).code ?? '';
  if (
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH'].includes(
      code,
    )
  )
    return true;
  return (
    e.name === 'MaxRetriesPerRequestError' ||
    e.name === 'ClusterAllFailedError' ||
    /Connection is closed|Stream isn't writeable|enableOfflineQueue|None of startup nodes|Failed to refresh slots|CLUSTERDOWN|^LOADING|Command timed out|connect E[A-Z]+/.test(
      e.message,
    )
  );
}

/** One log line when Redis goes away, one per interval while it stays away, one when it is back. */
class OutageLog {
  private downSince: number | undefined;
  private lastLine = 0;

  private readonly target: RedisTarget;
  private readonly log: (line: string) => void;
  private readonly everyMs: number;
  constructor(target: RedisTarget, log: (line: string) => void, everyMs = 10_000) {
    this.target = target;
    this.log = log;
    this.everyMs = everyMs;
  }

  private reason(e: Error): string {
    return (e as { code?: string }).code ?? e.message.split('\n')[0]!.slice(0, 120);
  }

  down(e: Error): void {
    const now = Date.now();
    const where = describeTarget(this.target);
    if (this.downSince === undefined) {
      this.downSince = now;
      this.lastLine = now;
      const fix =
        this.target.kind === 'cluster'
          ? 'start the cluster or set REDIS_CLUSTER_NODES'
          : 'start redis-server or set REDIS_URL';
      this.log(
        `Redis not reachable at ${where}: ${fix} (${this.reason(e)}; retrying every ${reconnectDelayMs(99) / 1000} s at most)`,
      );
    } else if (now - this.lastLine >= this.everyMs) {
      this.lastLine = now;
      const s = Math.round((now - this.downSince) / 1000);
      this.log(`Redis still not reachable at ${where} after ${s} s (${this.reason(e)}); retrying`);
    }
  }

  up(): void {
    if (this.downSince === undefined) return;
    const s = ((Date.now() - this.downSince) / 1000).toFixed(1);
    this.downSince = undefined;
    this.log(`Redis reachable again at ${describeTarget(this.target)} after ${s} s`);
  }

  other(e: Error): void {
    this.log(`Redis error at ${describeTarget(this.target)}: ${e.message.split('\n')[0]}`);
  }
}

/** One outage log per target and process, shared by all of its connections. */
const outageLogs = new Map<string, OutageLog>();
let outageSink: (line: string) => void = (line) => console.warn(line);

/** Where outage lines go (default console.warn); the sandbox child sends them nowhere, its worker reports. */
export function setRedisLog(sink: (line: string) => void): void {
  outageSink = sink;
  outageLogs.clear();
}

function outageLogOf(t: RedisTarget): OutageLog {
  const key = describeTarget(t);
  let log = outageLogs.get(key);
  if (!log) outageLogs.set(key, (log = new OutageLog(t, (line) => outageSink(line))));
  return log;
}

/** Routes a client's (or a BullMQ object's) error events to the outage log; returns the handler. */
export function reportErrors(t: RedisTarget): (e: Error) => void {
  const log = outageLogOf(t);
  return (e) => (isConnectionError(e) ? log.down(e) : log.other(e));
}

export interface ConnectOptions {
  /** CLIENT SETNAME, visible in CLIENT LIST. */
  name: string;
  /** Commands fail at once while Redis is away (request paths); default: they wait for it. */
  failFast?: boolean;
  /** Connect on first use only (a template for BullMQ to copy). */
  lazy?: boolean;
}

/** Opens a connection (or cluster client) to `t`; it reconnects by itself with backoff, forever. */
export function connect(t: RedisTarget, opts: ConnectOptions): RedisClient {
  const failFast = opts.failFast ?? false;
  const common: RedisOptions = {
    connectionName: opts.name,
    maxRetriesPerRequest: failFast ? 0 : null,
    lazyConnect: opts.lazy ?? false,
  };
  let client: RedisClient;
  if (t.kind === 'single') {
    client = new Redis(t.url, {
      ...common,
      enableOfflineQueue: !failFast,
      retryStrategy: (times) => reconnectDelayMs(times),
    });
  } else {
    client = new Cluster(t.nodes, {
      lazyConnect: opts.lazy ?? false,
      enableOfflineQueue: !failFast,
      clusterRetryStrategy: (times) => reconnectDelayMs(times),
      redisOptions: {
        ...common,
        ...(t.username ? { username: t.username } : {}),
        ...(t.password ? { password: t.password } : {}),
        ...(t.tls ? { tls: {} } : {}),
      },
    });
  }
  const log = outageLogOf(t);
  client.on('error', reportErrors(t));
  client.on('ready', () => log.up());
  return client;
}

export const isReady = (c: RedisClient): boolean => c.status === 'ready';

/** Every key matching `pattern`; on a cluster, SCAN runs on every master (each holds only its slots). */
export async function scanKeys(c: RedisClient, pattern: string): Promise<string[]> {
  const nodes: Redis[] = c instanceof Cluster ? c.nodes('master') : [c];
  const keys: string[] = [];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
  }
  return [...new Set(keys)];
}

/**
 * Closes a client within `deadlineMs`: QUIT (pending replies arrive) when Redis is there, else, or
 * when QUIT takes longer, a hard disconnect. Never throws.
 */
export async function closeClient(c: RedisClient, deadlineMs = 1000): Promise<void> {
  if (c.status === 'end') return;
  if (!isReady(c)) return void c.disconnect();
  const timer = new Promise<void>((r) => setTimeout(r, deadlineMs).unref());
  await Promise.race([
    c.quit().then(
      () => undefined,
      () => undefined,
    ),
    timer,
  ]);
  if ((c.status as string) !== 'end') c.disconnect();
}
