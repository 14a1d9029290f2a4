/**
 * docker-compose.yml as compose reads it (YAML anchors and `<<` merge keys resolved), for tests that run
 * what it says (its health checks) and check what it promises (pinned images, restart policies).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { repoRoot } from './stack.ts';

export interface ComposeService {
  image?: string;
  build?: unknown;
  restart?: string;
  environment?: Record<string, string>;
  entrypoint?: string[];
  command?: string[];
  healthcheck?: {
    test: string[];
    interval?: string;
    timeout?: string;
    retries?: number;
    start_period?: string;
  };
  depends_on?: Record<string, { condition: string }> | string[];
  profiles?: string[];
  stop_grace_period?: string;
}

/** The services of the repo's docker-compose.yml, by name. */
export function composeServices(): Record<string, ComposeService> {
  const doc = parse(readFileSync(path.join(repoRoot, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, ComposeService>;
  };
  return doc.services;
}

/** A healthcheck's `test` as a command line: `['CMD', ...argv]` gives argv. */
export function healthcheckArgv(service: string): string[] {
  const test = composeServices()[service]?.healthcheck?.test;
  if (!test || test[0] !== 'CMD')
    throw new Error(`docker-compose.yml: ${service} has no ['CMD', ...] healthcheck`);
  return test.slice(1);
}
