/** Starts the API on a port; used by main.ts, the demo and the tests. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jobNames, RedisKeys } from '@mlq/contract';
import { openArtifactStore } from '@mlq/core/storage';
import { closeQueues, connect, createQueues, type Queues } from '@mlq/queues';
import { createApp, type App } from './app.ts';
import type { ApiEnv } from './env.ts';
import { createLogger, type Logger } from './logger.ts';

export interface RunningApi extends App {
  server: Server;
  url: string;
  logger: Logger;
  stop(): Promise<void>;
}

/**
 * QUEUE_GLOBAL_CONCURRENCY is the whole truth: the queues it names get their limit, and a limit an
 * earlier start set on any other queue is removed (BullMQ keeps it in Redis until then).
 */
async function applyGlobalConcurrency(env: ApiEnv, queues: Queues, logger: Logger): Promise<void> {
  for (const name of jobNames) {
    const n = env.QUEUE_GLOBAL_CONCURRENCY[name];
    if (n !== undefined) {
      await queues[name].setGlobalConcurrency(n);
      logger.info({ queue: name, globalConcurrency: n }, 'global concurrency set');
    } else if ((await queues[name].getGlobalConcurrency()) !== null) {
      await queues[name].removeGlobalConcurrency();
      logger.info({ queue: name }, 'global concurrency limit removed (not in QUEUE_GLOBAL_CONCURRENCY)');
    }
  }
}

export async function startApi(env: ApiEnv, opts: { logger?: Logger } = {}): Promise<RunningApi> {
  const logger = opts.logger ?? createLogger('api', { level: env.LOG_LEVEL, format: env.LOG_FORMAT });
  const redis = connect(env.REDIS_URL, 'mlq-api');
  const keys = new RedisKeys(env.QUEUE_PREFIX);
  const queues = createQueues(redis, keys);
  await applyGlobalConcurrency(env, queues, logger);
  const store = openArtifactStore(env.ARTIFACT_STORE);
  const app = createApp({ env, keys, redis, queues, store, logger });
  const server = await new Promise<Server>((resolve) => {
    const s = app.app.listen(env.PORT, env.HOST, () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  const host = env.HOST === '0.0.0.0' || env.HOST === '::' ? '127.0.0.1' : env.HOST;
  return {
    ...app,
    server,
    url: `http://${host}:${port}`,
    logger,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await app.close();
      await closeQueues(queues);
      await redis.quit().catch(() => undefined);
    },
  };
}
