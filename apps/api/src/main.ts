/** `pnpm start:api`: the HTTP API, configured by the environment (docs/api.md lists every variable). */
import { loadApiEnv } from './env.ts';
import { startApi } from './server.ts';

const env = loadApiEnv();
const api = await startApi(env);
api.logger.info(
  { url: api.url, keys: env.API_KEYS.size },
  `api listening on ${api.url} (Bull Board: ${api.url}/admin/queues)`,
);
if (!env.API_KEYS.enabled)
  api.logger.warn('API_KEYS is empty: authentication is OFF (fine for local use only)');

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.on(sig, () => void api.stop().then(() => process.exit(0)));
}
