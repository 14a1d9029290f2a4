/** The CLI's defaults from the environment: the only place the CLI reads `process.env`. */

/** Where the CLI connects when no `--url`/`--key` is given, and where relative paths start. */
export interface CliEnv {
  url: string;
  apiKey: string | undefined;
  /** The directory relative `--file` paths resolve against: the caller's working directory. */
  cwd: string;
}

/** The CLI's variables and their defaults (the README's CLI table lists these). */
export const cliEnvDefaults = {
  /** The API's base URL. */
  MLQ_URL: 'http://127.0.0.1:3000',
  /** A bearer key (`API_KEYS` on the API); unset: no `Authorization` header. */
  MLQ_API_KEY: undefined,
} as const;

/**
 * `MLQ_URL` (default `http://127.0.0.1:3000`) and `MLQ_API_KEY`. The working directory is the
 * process's, except under `pnpm mlq …` (the root package's `mlq` script): pnpm runs scripts in the
 * package's directory and passes the directory it was called from as `INIT_CWD` (as npm does), so
 * that one is used when this process is that script (`npm_lifecycle_event` is `mlq`).
 */
export function loadCliEnv(
  env: Record<string, string | undefined> = process.env,
  processCwd: string = process.cwd(),
): CliEnv {
  const fromScript = env.npm_lifecycle_event === 'mlq' && env.INIT_CWD ? env.INIT_CWD : undefined;
  return {
    url: env.MLQ_URL || cliEnvDefaults.MLQ_URL,
    apiKey: env.MLQ_API_KEY || undefined,
    cwd: fromScript ?? processCwd,
  };
}
