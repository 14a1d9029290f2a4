/** `pnpm start:api`: the HTTP API, configured by the environment (docs/api.md lists every variable). */
import { StoreClaimError } from '@mlq/core/storage';
import { setRedisLog } from '@mlq/queues';
import { listenHost, loadApiEnv } from './env.ts';
import { createLogger } from './logger.ts';
import { startApi, type RunningApi } from './server.ts';

const env = loadApiEnv();
const logger = createLogger('api', { level: env.LOG_LEVEL, format: env.LOG_FORMAT });
// Redis outages: one line when it goes, one per 10 s while it stays away, one when it is back.
setRedisLog((line) => logger.warn(line));

// Ctrl+C and SIGTERM end the process within 2 s whatever Redis does (stop() gives up on it after
// about 1.5 s); a second signal ends it at once. Installed before start, which may wait for Redis.
const running: { api?: RunningApi } = {};
let stopping = false;
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => {
    if (stopping || !running.api) process.exit(stopping ? 130 : 0);
    stopping = true;
    setTimeout(() => process.exit(0), 1900).unref();
    void running.api.stop().then(() => process.exit(0));
  });
}

const { warning } = listenHost(env);
// An artifact store another install owns is a configuration error: said once, exit 78 as for the env,
// whether Redis answered at start or only later.
const refuse = (e: StoreClaimError): never => {
  console.error(`api: ${e.message}`);
  process.exit(78);
};
const api = (running.api = await startApi(env, { logger, onStoreClaimError: refuse }).catch(
  (e: unknown): never => {
    if (e instanceof StoreClaimError) refuse(e);
    throw e;
  },
));
const bound = api.host === '0.0.0.0' || api.host === '::' ? `${api.host}, every interface` : api.host;
logger.info(
  { url: api.url, host: api.host, keys: env.API_KEYS.size },
  `api listening on ${api.url} (bound to ${bound}; Bull Board: ${api.url}/admin/queues)`,
);
if (warning) logger.warn(warning);
else if (!env.API_KEYS.enabled)
  logger.warn(
    'API_KEYS is empty: authentication is OFF; listening on this machine only (set API_KEYS to open it)',
  );
