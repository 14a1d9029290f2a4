/**
 * Import time of the platform's entry points, each in a fresh Node process (median of 5):
 *   npx tsx bench/import-time.ts
 * What an entry loads is what a user of it pays: the SDK and the queues must not load tfjs or the AWS
 * SDK. Baseline in the same run: `zod` alone, which every entry loads.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** [name, import specifier, the folder it is resolved from (a package that depends on it)]. */
const entries: [string, string, string][] = [
  ['zod (baseline)', 'zod', 'packages/contract'],
  ['@mlq/contract', '@mlq/contract', 'packages/sdk'],
  ['@mlq/sdk', '@mlq/sdk', 'packages/sdk'],
  ['@mlq/queues', '@mlq/queues', 'apps/worker'],
  ['apps/api env.ts', '../api/src/env.ts', 'apps/worker'],
  ['apps/worker env.ts', './src/env.ts', 'apps/worker'],
  ['@mlq/core/jobs (tfjs)', '@mlq/core/jobs', 'apps/worker'],
];

function once(spec: string, from: string): number {
  const code = `const t = performance.now(); await import(${JSON.stringify(spec)}); console.log(performance.now() - t);`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: path.join(root, from),
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`${spec}: ${r.stderr}`);
  return Number(r.stdout.trim().split('\n').pop());
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
let base = 0;
for (const [name, spec, from] of entries) {
  const ms = median(Array.from({ length: 5 }, () => once(spec, from)));
  if (!base) base = ms;
  console.log(`${name.padEnd(24)} ${ms.toFixed(0).padStart(6)} ms  (${(ms / base).toFixed(1)}× zod)`);
}
