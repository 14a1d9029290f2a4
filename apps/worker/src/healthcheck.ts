/**
 * `node apps/worker/src/healthcheck.ts`: the worker images' health check (Dockerfile,
 * docker/worker-gpu.Dockerfile, docker-compose.yml). Exits 0 when a worker on this host has a live
 * heartbeat, else 1, printing one line that says which worker, or why not.
 *
 * A worker's event loop (jobs run in sandboxed children) writes its heartbeat record (`keys.worker(id)`,
 * the one `GET /v1/workers` lists) every 5 s with a 15 s TTL: a record that is there means the process
 * is up, reaches Redis and is not stuck. With WORKER_NAME the record of that name is read; without it,
 * any record whose `host` is this machine's hostname and whose `pid` is alive here (in a container: its
 * one worker). Reads the worker's own environment (REDIS_URL or REDIS_CLUSTER_NODES, QUEUE_PREFIX); gives
 * up after 3 s (Redis away: unhealthy, since the worker cannot take jobs either).
 */
import { hostname } from 'node:os';
import type { RedisKeys, WorkerInfo } from '@mlq/contract';
import { redisTargetOf } from '@mlq/contract/env';
import { closeClient, connect, redisKeysFor, scanKeys, setRedisLog, type RedisClient } from '@mlq/queues';
import { loadWorkerEnv } from './env.ts';

const DEADLINE_MS = 3000;

/** True when a process `pid` exists on this machine (EPERM: it exists, owned by another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The live heartbeat of this host's worker (or of the one named `name`), or why there is none. */
async function heartbeat(
  redis: RedisClient,
  keys: RedisKeys,
  name: string | undefined,
): Promise<WorkerInfo | string> {
  const found = name ? [keys.worker(name)] : await scanKeys(redis, keys.workersPattern);
  const host = hostname();
  for (const key of found) {
    const raw = await redis.get(key);
    if (!raw) continue;
    const info = JSON.parse(raw) as WorkerInfo;
    if (name || (info.host === host && alive(info.pid))) return info;
  }
  return name
    ? `no heartbeat from worker "${name}" (WORKER_NAME) under QUEUE_PREFIX "${keys.prefix}"`
    : `no heartbeat from a worker on host ${host} under QUEUE_PREFIX "${keys.prefix}"`;
}

const env = loadWorkerEnv();
const target = redisTargetOf(env);
setRedisLog(() => undefined);
const redis = connect(target, { name: `mlq-healthcheck-${hostname()}` });
setTimeout(() => {
  console.log(`unhealthy: no answer from Redis in ${DEADLINE_MS / 1000} s`);
  process.exit(1);
}, DEADLINE_MS);
const found = await heartbeat(redis, redisKeysFor(env.QUEUE_PREFIX, target), env.WORKER_NAME).catch(
  (e: Error) => `Redis error: ${e.message}`,
);
await closeClient(redis, 200);
if (typeof found === 'string') {
  console.log(`unhealthy: ${found}`);
  process.exit(1);
}
console.log(`healthy: worker ${found.id} (pid ${found.pid}) beat at ${found.heartbeatAt ?? '?'}`);
process.exit(0);
