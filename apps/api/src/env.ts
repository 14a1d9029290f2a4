/** The API's configuration: parsed once from the environment; start-up fails listing every problem. */
import { availableParallelism } from 'node:os';
import { z } from 'zod';
import { jobNames, type JobName } from '@mlq/contract';
import { commaList, parseEnvOrExit, sharedEnvShape, tfjsBackends } from '@mlq/contract/env';
import { KeyRing } from './auth/keys.ts';

const list = commaList;

export const apiEnvSchema = z.object({
  ...sharedEnvShape,
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  /** Unset: 127.0.0.1 while API_KEYS is empty, else 0.0.0.0 (see listenHost). */
  HOST: z.string().min(1).optional(),
  /**
   * Accepted keys and their scopes: `<key>[:<scope>]` or `sha256:<hex>[:<scope>]`, comma-separated;
   * scope `read`, `submit` or `admin` (the default). Empty: auth off. See auth/keys.ts.
   */
  API_KEYS: z
    .string()
    .default('')
    .transform((s, ctx) => {
      try {
        return KeyRing.parse(s);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
        return z.NEVER;
      }
    }),
  /** Origins allowed to call the API from a browser (CORS): a comma list, or `*`. Empty: CORS off. */
  CORS_ORIGINS: z.string().default('').transform(list),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** `auto`: pino-pretty lines when stdout is a terminal, JSON lines otherwise. */
  LOG_FORMAT: z.enum(['auto', 'json', 'pretty']).default('auto'),
  BODY_LIMIT: z.string().default('20mb'),
  RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(0).default(6000),
  /**
   * Jobs of a queue running at once across all workers, e.g. `fine-tune=4,tune=2` (a GPU pool of 4,
   * or a license limit); unset queues are bounded only by their workers' concurrency.
   */
  QUEUE_GLOBAL_CONCURRENCY: z
    .string()
    .default('')
    .transform((s, ctx) => {
      const out: Record<string, number> = {};
      for (const part of list(s)) {
        const m = /^([a-z-]+)=(\d+)$/.exec(part);
        if (!m || !(jobNames as string[]).includes(m[1]!) || Number(m[2]) < 1) {
          ctx.addIssue({
            code: 'custom',
            message: `"${part}" is not <queue>=<n> with a known queue and n >= 1`,
          });
          continue;
        }
        out[m[1]!] = Number(m[2]);
      }
      return out as Partial<Record<JobName, number>>;
    }),
  /**
   * Dataset uploads (POST /v1/datasets/{name}): the largest body in bytes (413 above it; at most 5 GiB,
   * S3's CopyObject limit, since an upload is copied into place), and for archives the most entries and
   * the most bytes they may expand to (400 above them: archive bombs).
   */
  DATASET_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .max(5 * 1024 ** 3)
    .default(1024 ** 3),
  DATASET_MAX_FILES: z.coerce.number().int().min(1).default(100_000),
  DATASET_MAX_EXPANDED_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .default(4 * 1024 ** 3),
  /** Backend of the predict threads (each loads its own tfjs); wasm unless asked. */
  TFJS_BACKEND: z.enum(tfjsBackends).default('wasm'),
  // Online predict (apps/api/src/serving). One core stays with the HTTP event loop.
  SERVING_THREADS: z.coerce
    .number()
    .int()
    .min(1)
    .max(64)
    .default(Math.max(1, Math.min(4, availableParallelism() - 1))),
  SERVING_BATCHING: z.enum(['on', 'off']).default('on'),
  SERVING_MAX_BATCH: z.coerce.number().int().min(1).max(4096).default(64),
  SERVING_MAX_WAIT_MS: z.coerce.number().min(0).max(1000).default(2),
  SERVING_MAX_INSTANCES: z.coerce.number().int().min(1).default(1024),
  // Back-pressure: rows and requests of one model version waiting for a predict thread; past either, 503.
  SERVING_QUEUE_MAX_ROWS: z.coerce.number().int().min(1).default(1024),
  SERVING_QUEUE_MAX_REQUESTS: z.coerce.number().int().min(1).default(256),
  SERVING_CACHE_MODELS: z.coerce.number().int().min(1).default(8),
  SERVING_CACHE_MB: z.coerce.number().min(1).default(512),
});

export type ApiEnv = z.infer<typeof apiEnvSchema>;

const loopback = (host: string) => /^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(host);

/**
 * Where the API listens. Without API_KEYS anyone who reaches the port may submit jobs and move or
 * read models, so an unset HOST means loopback only; other addresses need keys, or an explicit HOST,
 * which is honoured with a warning naming the risk.
 */
export function listenHost(env: Pick<ApiEnv, 'HOST' | 'API_KEYS'>): { host: string; warning?: string } {
  const open = !env.API_KEYS.enabled;
  if (env.HOST === undefined) return { host: open ? '127.0.0.1' : '0.0.0.0' };
  if (!open || loopback(env.HOST)) return { host: env.HOST };
  return {
    host: env.HOST,
    warning:
      `HOST=${env.HOST} with API_KEYS empty: authentication is OFF and the API is reachable beyond this ` +
      'machine; anyone who can reach the port can submit jobs, read and relabel models and cancel jobs. ' +
      'Set API_KEYS, or unset HOST to listen on 127.0.0.1 only.',
  };
}

export function loadApiEnv(env: NodeJS.ProcessEnv = process.env): ApiEnv {
  return parseEnvOrExit('api', apiEnvSchema, env);
}
