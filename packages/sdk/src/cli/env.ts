/** The CLI's defaults from the environment: the only place the CLI reads `process.env`. */

/** Where the CLI connects when no `--url`/`--key` is given. */
export interface CliEnv {
  url: string;
  apiKey: string | undefined;
}

/** `MLQ_URL` (default `http://127.0.0.1:3000`) and `MLQ_API_KEY`. */
export function loadCliEnv(env: Record<string, string | undefined> = process.env): CliEnv {
  return { url: env.MLQ_URL || 'http://127.0.0.1:3000', apiKey: env.MLQ_API_KEY || undefined };
}
