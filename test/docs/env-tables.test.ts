/**
 * Docs match the code: every variable in the environment tables of README.md and docs/api.md exists
 * in the schema of the process it configures, with the default that schema gives when the variable
 * is unset; every variable of the API's, the worker's and the CLI's schema is in a table.
 */
import { readFile } from 'node:fs/promises';
import os, { availableParallelism } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { apiEnvSchema } from '../../apps/api/src/env.ts';
import { workerEnvSchema } from '../../apps/worker/src/env.ts';
import { jobNames } from '../../packages/contract/src/index.ts';
import { cliEnvDefaults } from '../../packages/sdk/src/cli/env.ts';
import { repoRoot } from '../support/stack.ts';
import { envTableRows, schemaDefaults, type EnvRow } from './env-tables.ts';

type App = 'api' | 'worker' | 'cli';
const defaults: Record<App, Map<string, string | undefined>> = {
  api: schemaDefaults(apiEnvSchema),
  worker: schemaDefaults(workerEnvSchema),
  cli: new Map(Object.entries(cliEnvDefaults)),
};
/** Set by the worker for its own sandbox children (docs/api.md says so under the worker table). */
const internal = new Set(['WORKER_ID']);

/** Defaults the docs give as a formula: the text, and what the code computes on this machine. */
const formulas: Record<string, string> = {
  'max(1, min(4, cores - 1))': String(Math.max(1, Math.min(4, availableParallelism() - 1))),
};

/** Which processes a table configures, from the heading it is under. */
function appsOf(heading: string): App[] {
  if (/worker env/i.test(heading)) return ['worker'];
  if (/API env/i.test(heading)) return ['api'];
  if (/CLI/.test(heading)) return ['cli'];
  return ['api', 'worker'];
}

type Expected = { value: string | undefined } | { perApp: Partial<Record<App, string>> } | 'as-above';

/** What a default cell says, one entry per variable of its row. */
function expectedDefaults(row: EnvRow): Expected[] {
  const n = row.vars.length;
  const parts = n > 1 ? row.defaultCell.split(/\s+\/\s+|,\s+(?=`)/) : [row.defaultCell];
  if (parts.length !== n) {
    if (/^as above/.test(row.defaultCell)) return row.vars.map(() => 'as-above');
    throw new Error(`line ${row.line}: ${n} variables but default "${row.defaultCell}"`);
  }
  return parts.map((p): Expected => {
    const perApp = [...p.matchAll(/\b(worker|API) `([^`]*)`/g)];
    if (perApp.length > 1)
      return { perApp: Object.fromEntries(perApp.map((m) => [m[1]!.toLowerCase(), m[2]!])) };
    if (/^as above/.test(p)) return 'as-above';
    if (/^empty/.test(p)) return { value: '' };
    if (/^unset/.test(p)) return { value: undefined };
    if (/^all\b/.test(p)) return { value: jobNames.join(',') };
    const f = formulas[p.replace(/`/g, '')];
    if (f !== undefined) return { value: f };
    const token = /^`([^`]*)`/.exec(p)?.[1];
    // Words, not a value ("see left", "the cgroup limit, else …"): the app computes it at start.
    if (token === undefined) return { value: undefined };
    const v = token.replaceAll('<repo>', repoRoot).replaceAll('<tmp>', os.tmpdir());
    // Another placeholder (`<host>-<pid>-<random>`): computed at start when the variable is unset.
    return { value: /<[^>]+>/.test(v) ? undefined : v };
  });
}

for (const doc of ['README.md', 'docs/api.md']) {
  describe(`the environment tables of ${doc}`, () => {
    it('name variables that exist, with the defaults the code uses', async () => {
      const rows = envTableRows(await readFile(path.join(repoRoot, doc), 'utf8'));
      expect(rows.length).toBeGreaterThan(5);
      for (const row of rows) {
        const where = `${doc}:${row.line} (${row.heading})`;
        expect(row.vars.length, `${where}: no variable`).toBeGreaterThan(0);
        const apps = appsOf(row.heading);
        for (const [i, exp] of expectedDefaults(row).entries()) {
          const name = row.vars[i]!;
          const owners = apps.filter((a) => defaults[a].has(name));
          expect.soft(owners, `${where}: ${name} is in no schema of ${apps.join(', ')}`).not.toHaveLength(0);
          if (exp === 'as-above') continue;
          for (const app of owners) {
            const want = 'perApp' in exp ? exp.perApp[app] : exp.value;
            if ('perApp' in exp) expect.soft(want, `${where}: ${name} names no ${app} default`).toBeDefined();
            expect.soft(defaults[app].get(name), `${where}: ${name}'s default for the ${app}`).toBe(want);
          }
        }
      }
    });
  });
}

describe('the schemas', () => {
  it('have every variable documented in a table (api and worker in docs/api.md, the CLI in README.md)', async () => {
    const documented = async (doc: string, app: App) =>
      new Set(
        envTableRows(await readFile(path.join(repoRoot, doc), 'utf8'))
          .filter((r) => appsOf(r.heading).includes(app))
          .flatMap((r) => r.vars),
      );
    const wanted: [App, string][] = [
      ['api', 'docs/api.md'],
      ['worker', 'docs/api.md'],
      ['cli', 'README.md'],
    ];
    for (const [app, doc] of wanted) {
      const have = await documented(doc, app);
      const missing = [...defaults[app].keys()].filter((k) => !have.has(k) && !internal.has(k));
      expect.soft(missing, `${app} variables missing from ${doc}'s tables`).toEqual([]);
    }
    expect(await readFile(path.join(repoRoot, 'docs/api.md'), 'utf8')).toContain(
      '`WORKER_ID` is set by the worker',
    );
  });
});
