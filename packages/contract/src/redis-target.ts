/**
 * Where Redis is: one server (`REDIS_URL`) or the seed nodes of a Redis Cluster (`REDIS_CLUSTER_NODES`;
 * the other nodes are discovered). packages/queues/src/connection.ts connects to it.
 */

export type RedisTarget =
  | { kind: 'single'; url: string }
  | {
      kind: 'cluster';
      nodes: { host: string; port: number }[];
      username?: string | undefined;
      password?: string | undefined;
      tls?: boolean | undefined;
    };

export type ClusterTarget = Extract<RedisTarget, { kind: 'cluster' }>;

/**
 * Parses REDIS_CLUSTER_NODES: comma-separated `host:port`, or `redis://[user:pass@]host:port` /
 * `rediss://…` (TLS) entries; credentials and TLS come from the entries that carry them.
 * Throws an Error naming the first bad entry.
 */
export function parseClusterNodes(s: string): ClusterTarget {
  const out: ClusterTarget = { kind: 'cluster', nodes: [] };
  for (const entry of s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)) {
    let url: URL;
    try {
      url = new URL(/^[a-z]+:\/\//.test(entry) ? entry : `redis://${entry}`);
    } catch {
      throw new Error(`"${entry}" is not host:port (or redis[s]://[user:pass@]host:port)`);
    }
    const port = Number(url.port);
    if (!/^rediss?:$/.test(url.protocol) || !url.hostname || !Number.isInteger(port) || port < 1) {
      throw new Error(`"${entry}" is not host:port (or redis[s]://[user:pass@]host:port)`);
    }
    out.nodes.push({ host: url.hostname.replace(/^\[|\]$/g, ''), port });
    if (url.username) out.username = decodeURIComponent(url.username);
    if (url.password) out.password = decodeURIComponent(url.password);
    if (url.protocol === 'rediss:') out.tls = true;
  }
  if (out.nodes.length === 0) throw new Error('name at least one host:port');
  return out;
}

/** The target an app's environment names: the cluster when REDIS_CLUSTER_NODES is set, else REDIS_URL. */
export function redisTargetOf(env: {
  REDIS_URL: string;
  REDIS_CLUSTER_NODES?: ClusterTarget | undefined;
}): RedisTarget {
  return env.REDIS_CLUSTER_NODES ?? { kind: 'single', url: env.REDIS_URL };
}
