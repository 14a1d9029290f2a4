/** Starts the API on a port; used by main.ts, the demo and the tests. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jobNames } from '@mlq/contract';
import { redisTargetOf } from '@mlq/contract/env';
import { claimArtifactStore, openArtifactStore, StoreClaimError } from '@mlq/core/storage';
import {
  closeClient,
  closeQueues,
  connect,
  createQueues,
  describeTarget,
  installIdRecord,
  isConnectionError,
  redisKeysFor,
  reportErrors,
  type Queues,
} from '@mlq/queues';
import { createApp, type App } from './app.ts';
import { listenHost, type ApiEnv } from './env.ts';
import { createLogger, type Logger } from './logger.ts';

export interface RunningApi extends App {
  server: Server;
  url: string;
  /** The address the server is bound to (`127.0.0.1`, `0.0.0.0`…). */
  host: string;
  logger: Logger;
  /** Stops within about 2 s, whether Redis answers or not. */
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

/**
 * Starts the API. Rejects with StoreClaimError when ARTIFACT_STORE belongs to another install
 * (packages/core/src/storage/install-claim.ts) and Redis answered within 2 s; when Redis comes later
 * and the store proves to be another install's, `onStoreClaimError` is called (default: log it, exit 78),
 * and until the store is claimed every route that needs Redis answers 503.
 */
export async function startApi(
  env: ApiEnv,
  opts: { logger?: Logger; onStoreClaimError?: (e: StoreClaimError) => void } = {},
): Promise<RunningApi> {
  const logger = opts.logger ?? createLogger('api', { level: env.LOG_LEVEL, format: env.LOG_FORMAT });
  const target = redisTargetOf(env);
  // Request paths fail fast while Redis is away (503, see redis-gate.middleware.ts); it reconnects by itself.
  const redis = connect(target, { name: 'mlq-api', failFast: true });
  const keys = redisKeysFor(env.QUEUE_PREFIX, target);
  const queues = createQueues(redis, keys, reportErrors(target));
  const store = openArtifactStore(env.ARTIFACT_STORE);
  let storeClaimed = false;
  let claimError: StoreClaimError | undefined;
  let started = false;
  const claim = async () => {
    if (storeClaimed || claimError) return;
    try {
      const r = await claimArtifactStore(
        store,
        { queuePrefix: env.QUEUE_PREFIX, redis: describeTarget(target) },
        installIdRecord(redis, keys),
      );
      storeClaimed = true;
      if (r.how !== 'own')
        logger.info({ store: store.uri, install: r.id }, `artifact store claimed (${r.how})`);
    } catch (e) {
      if (e instanceof StoreClaimError) {
        claimError = e;
        if (started) (opts.onStoreClaimError ?? exitOnClaimError(logger))(e);
        return;
      }
      // Redis away: tried again at the next 'ready'. The store failing (permissions, S3 credentials) is
      // not Redis's error: said as the store's, and tried again in 5 s.
      if (isConnectionError(e)) throw e;
      logger.error(
        { store: store.uri },
        `cannot claim the artifact store ${store.uri}: ${(e as Error).message}; retrying in 5 s (routes that need Redis answer 503 until then)`,
      );
      setTimeout(() => void claim().catch(reportErrors(target)), 5000).unref();
    }
  };
  // Applied on every (re)connect: the API may start before Redis, and a Redis restarted without its
  // data would have lost the limits.
  const connected = new Promise<unknown>((resolve) =>
    redis.on('ready', () =>
      resolve(
        Promise.all([claim(), applyGlobalConcurrency(env, queues, logger)]).catch(reportErrors(target)),
      ),
    ),
  );
  // Listening before Redis answers would turn the first requests away with 503: wait for it (and
  // the limits) up to 2 s, then start anyway; the gate answers for it while it is away.
  await Promise.race([connected, new Promise((r) => setTimeout(r, 2000).unref())]);
  if (claimError) {
    await closeQueues(queues, 300);
    await closeClient(redis, 200);
    throw claimError;
  }
  started = true;
  const app = createApp({
    env,
    keys,
    redis,
    redisTarget: target,
    queues,
    store,
    logger,
    storeClaimed: () => storeClaimed,
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
    logger,
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

/** Logs the claim error and ends the process as a configuration error does (EX_CONFIG). */
const exitOnClaimError = (logger: Logger) => (e: StoreClaimError) => {
  logger.fatal(e.message);
  process.exit(78);
};
