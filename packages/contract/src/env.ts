/**
 * The settings the API and the worker share, as one zod fragment each app spreads into its own env
 * schema (apps/api/src/env.ts, apps/worker/src/env.ts). Node only: not exported from the package's
 * main entry, which browsers load.
 */
import { isIP } from 'node:net';
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

/**
 * The default of IMAGE_MAX_PIXELS: 50 megapixels, so a 48 or 50 MP phone's full-size photo is read
 * (8160x6120 is 49.9 MP). Decoding one that large takes 200 MB of RGBA (a JPEG up to 24 bytes a pixel
 * while it decodes) and seconds of a core.
 */
export const DEFAULT_IMAGE_MAX_PIXELS = 50_000_000;

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
  /**
   * The egress policy for `http(s)://` dataset and model URIs (packages/core/src/remote/egress.ts):
   * host names, IP addresses or CIDRs that may be fetched even when they are private or loopback, and
   * the only hosts plain `http://` may reach. Checked by the API at submit and by the worker again.
   */
  FETCH_ALLOW_HOSTS: z
    .string()
    .default('')
    .transform(commaList)
    .pipe(
      z.array(z.string().refine(isHostOrCidr, { message: 'expected a host name, an IP address or a CIDR' })),
    ),
  /** Longest wait, in ms, for a connection, for response headers, and between two chunks of a body. */
  FETCH_TIMEOUT_MS: z.coerce.number().int().min(100).default(30_000),
  /** Largest file fetched from an `http(s)://` or `s3://` URI, in MiB (fractions allowed). */
  FETCH_MAX_MB: z.coerce.number().positive().default(4096),
  /**
   * Most pixels (width × height) a PNG or JPEG may have, read from its header before anything is
   * decoded: above it predict's `{"b64": ...}` instance and an uploaded image-folder archive's entry
   * are a 400 naming them, and a job reading an image-folder dataset fails at once naming the file.
   */
  IMAGE_MAX_PIXELS: z.coerce.number().int().min(1).default(DEFAULT_IMAGE_MAX_PIXELS),
};

/** `example.com`, `10.0.0.5`, `fd00::1`, `10.0.0.0/8` or `fc00::/7`: an entry of FETCH_ALLOW_HOSTS. */
function isHostOrCidr(s: string): boolean {
  const cidr = /^([^/]+)\/(\d{1,3})$/.exec(s);
  if (cidr) {
    const kind = isIP(cidr[1]!);
    return kind !== 0 && Number(cidr[2]) <= (kind === 4 ? 32 : 128);
  }
  return (
    isIP(s) !== 0 ||
    /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(s)
  );
}

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
