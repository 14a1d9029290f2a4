/**
 * The entry points a person starts by hand (`pnpm start:api`, `pnpm start:worker`, `mlq`) under a Node
 * too old to run TypeScript (before 22.18): one line naming the version needed, not Node's raw
 * ERR_UNKNOWN_FILE_EXTENSION. Needs such a node on the machine (Debian's `nodejs` is 20 on bookworm);
 * OLD_NODE names one, else `node` on PATH is tried.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './support/stack.ts';

const OLD_NODE = process.env.OLD_NODE ?? '/usr/bin/node';
const version = spawnSync(OLD_NODE, ['--version'], { encoding: 'utf8' }).stdout?.trim() ?? '';
const [major = 0, minor = 0] = version.replace(/^v/, '').split('.').map(Number);
const old = version !== '' && (major < 22 || (major === 22 && minor < 18));
if (!old) console.log(`skipping the old-Node tests: ${OLD_NODE} is ${version || 'missing'}`);

describe.skipIf(!old)(`the entry points under Node ${version}`, () => {
  it.each([
    ['api', 'apps/api/src/start.mjs'],
    ['worker', 'apps/worker/src/start.mjs'],
    ['mlq', 'packages/sdk/bin/mlq.js'],
  ])('%s says in one line that Node is too old', (name, entry) => {
    const r = spawnSync(OLD_NODE, [path.join(repoRoot, entry), '--help'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(
      new RegExp(
        `^${name}: Node ${version.slice(1).replaceAll('.', '\\.')} is too old: mlq needs Node >= 22\\.18`,
      ),
    );
    expect(r.stderr).not.toContain('ERR_UNKNOWN_FILE_EXTENSION');
  });

  it('the start scripts run those files', async () => {
    const { readFile } = await import('node:fs/promises');
    for (const app of ['api', 'worker']) {
      const pkg = JSON.parse(await readFile(path.join(repoRoot, `apps/${app}/package.json`), 'utf8')) as {
        scripts: { start: string };
      };
      expect(pkg.scripts.start).toMatch(/ src\/start\.mjs$/);
    }
  });
});
