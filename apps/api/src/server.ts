/** Starts the API on a port; used by main.ts, the demo and the tests. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JobName } from '@mlq/contract';
import { redisTargetOf } from '@mlq/contract/env';
import { openArtifactStore } from '@mlq/core/storage';
import { closeClient, closeQueues, connect, createQueues, redisKeysFor, reportErrors } from '@mlq/queues';
import { createApp, type App } from './app.ts';
import { listenHost, type ApiEnv } from './env.ts';

export interface RunningApi extends App {
  server: Server;
  url: string;
  /** The address the server is bound to (`127.0.0.1`, `0.0.0.0`…). */
  host: string;
  /** Stops within about 2 s, whether Redis answers or not. */
  stop(): Promise<void>;
}

export async function startApi(env: ApiEnv): Promise<RunningApi> {
  const target = redisTargetOf(env);
  // Request paths fail fast while Redis is away (503, see redis-gate.middleware.ts); it reconnects by itself.
  const redis = connect(target, { name: 'mlq-api', failFast: true });
  const keys = redisKeysFor(env.QUEUE_PREFIX, target);
  const queues = createQueues(redis, keys, reportErrors(target));
  // Written on every (re)connect: the API may start before Redis, and a Redis restarted without its
  // data would have lost them.
  const limits = Object.entries(env.QUEUE_GLOBAL_CONCURRENCY) as [JobName, number][];
  const applyLimits = () =>
    Promise.all(limits.map(([name, n]) => queues[name].setGlobalConcurrency(n))).catch(reportErrors(target));
  const connected = new Promise<unknown>((resolve) => redis.on('ready', () => resolve(applyLimits())));
  // Listening before Redis answers would turn the first requests away with 503: wait for it (and
  // the limits) up to 2 s, then start anyway; the gate answers for it while it is away.
  await Promise.race([connected, new Promise((r) => setTimeout(r, 2000).unref())]);
  const app = createApp({
    env,
    keys,
    redis,
    redisTarget: target,
    queues,
    store: openArtifactStore(env.ARTIFACT_STORE),
  });
  const { host } = listenHost(env);
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.app.listen(env.PORT, host, (e?: Error) => (e ? reject(e) : resolve(s)));
  });
  const { port } = server.address() as AddressInfo;
  const local = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return {
    ...app,
    server,
    host,
    url: `http://${local}:${port}`,
    async stop() {
      server.closeAllConnections();
      const closed = new Promise<void>((r) => server.close(() => r()));
      await Promise.race([
        Promise.all([closed, app.close()]),
        new Promise((r) => setTimeout(r, 1200).unref()),
      ]);
      await closeQueues(queues, 300);
      await closeClient(redis, 200);
    },
  };
}
