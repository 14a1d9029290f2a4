/**
 * Starts a worker thread on a TypeScript module. Node 20 runs no TypeScript and threads do not
 * inherit `--import tsx`, so the thread first registers tsx's ESM loader, then imports the module.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

/** The URL of tsx's ESM register API. */
function tsxRegisterUrl(): string {
  const req = createRequire(import.meta.url);
  const pkgPath = req.resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as {
    exports: Record<string, { import?: { default?: string } }>;
  };
  const entry = pkg.exports['./esm/api']?.import?.default ?? './dist/esm/api/index.mjs';
  return pathToFileURL(path.join(path.dirname(pkgPath), entry)).href;
}

/** A thread running `file` (an absolute path to a .ts module), with `workerData`. */
export function spawnTsThread(file: string, workerData: unknown): Worker {
  const target = pathToFileURL(file).href;
  const boot = `import(${JSON.stringify(tsxRegisterUrl())})
    .then(({ register }) => { register(); return import(${JSON.stringify(target)}); })`;
  // execArgv []: the parent's flags (a test runner's, tsx's own) mean nothing to the thread.
  return new Worker(boot, { eval: true, workerData, execArgv: [] });
}
