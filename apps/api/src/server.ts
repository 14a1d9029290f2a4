/** Starts the API on a port; used by main.ts, the demo and the tests. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RedisKeys, type JobName } from '@mlq/contract';
import { openArtifactStore } from '@mlq/core/storage';
import { closeQueues, connect, createQueues } from '@mlq/queues';
import { createApp, type App } from './app.ts';
import type { ApiEnv } from './env.ts';

export interface RunningApi extends App {
  server: Server;
  url: string;
  stop(): Promise<void>;
}

export async function startApi(env: ApiEnv): Promise<RunningApi> {
  const redis = connect(env.REDIS_URL, 'mlq-api');
  const keys = new RedisKeys(env.QUEUE_PREFIX);
  const queues = createQueues(redis, keys);
  for (const [name, n] of Object.entries(env.QUEUE_GLOBAL_CONCURRENCY) as [JobName, number][]) {
    await queues[name].setGlobalConcurrency(n);
  }
  const app = createApp({ env, keys, redis, queues, store: openArtifactStore(env.ARTIFACT_STORE) });
  const server = await new Promise<Server>((resolve) => {
    const s = app.app.listen(env.PORT, env.HOST, () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  const host = env.HOST === '0.0.0.0' || env.HOST === '::' ? '127.0.0.1' : env.HOST;
  return {
    ...app,
    server,
    url: `http://${host}:${port}`,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await app.close();
      await closeQueues(queues);
      await redis.quit().catch(() => undefined);
    },
  };
}
