/**
 * The settings the API and the worker share, as one zod fragment each app spreads into its own env
 * schema (apps/api/src/env.ts, apps/worker/src/env.ts). Node only: not exported from the package's
 * main entry, which browsers load.
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import { parseClusterNodes } from './redis-target.ts';

export * from './redis-target.ts';

/** The repository's root: defaults for the artifact store and data roots live under `<root>/.data`. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** `a, b,,c` → `['a', 'b', 'c']`. */
export const commaList = (s: string): string[] =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

/** tfjs backends: `auto` tries tfjs-node-gpu, tfjs-node, then wasm, then cpu. */
export const tfjsBackends = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type TfjsBackend = (typeof tfjsBackends)[number];

/** Every process: where Redis, the store and the data are, and the tfjs backend it computes on. */
export const sharedEnvShape = {
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).default('redis://127.0.0.1:6379'),
  /**
   * Redis Cluster seed nodes, `host:port,host:port,...` (or `redis[s]://[user:pass@]host:port` entries):
   * set, it selects cluster mode and REDIS_URL is ignored.
   */
  REDIS_CLUSTER_NODES: z
    .string()
    .optional()
    .transform((s, ctx) => {
      if (!s?.trim()) return undefined;
      try {
        return parseClusterNodes(s);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
        return z.NEVER;
      }
    }),
  QUEUE_PREFIX: z
    .string()
    .regex(/^[\w.-]+$/)
    .default('mlq'),
  ARTIFACT_STORE: z
    .string()
    .regex(/^(file|s3):\/\//, 'must be file:///abs/dir or s3://bucket/prefix')
    .default(pathToFileURL(path.join(repoRoot, '.data/artifacts')).href),
  DATA_ROOTS: z
    .string()
    .default(path.join(repoRoot, '.data'))
    .transform((s) => commaList(s).map((p) => path.resolve(p))),
  TFJS_BACKEND: z.enum(tfjsBackends).default('auto'),
};

/**
 * Parses `env` with `schema`; on error prints every problem (`<app>: invalid environment: …`) and
 * exits with 78 (EX_CONFIG).
 */
export function parseEnvOrExit<S extends z.ZodType>(
  app: string,
  schema: S,
  env: NodeJS.ProcessEnv,
): z.infer<S> {
  const r = schema.safeParse(env);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
  console.error(`${app}: invalid environment:\n${lines.join('\n')}`);
  process.exit(78);
}
