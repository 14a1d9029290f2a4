/**
 * Docs as tests: every runnable block of README.md and docs/api.md (```` ```bash run ````,
 * ```` ```ts run ````), in order, against a real API and a real worker process, from a directory
 * inside the clone, as a user pastes them into a terminal.
 *
 * - Shell blocks run with `bash -euo pipefail`, `API` and `MLQ_URL` set to the stack's URL, `pnpm` on
 *   PATH (pnpm 10 through npx when the machine has none).
 * - TypeScript blocks run with Node's own type stripping (`node block.ts`), importing `@mlq/sdk` from
 *   the repository's root package.
 * - The working directory holds a copy of `examples/` in which every job trains 1 epoch on at most
 *   256 rows (`shrink` below), so the suite takes about a minute; the files as shipped are checked
 *   against the job schemas instead.
 */
import { spawn, execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobCatalog } from '../../packages/contract/src/index.ts';
import { startStack, repoRoot, type Stack } from '../support/stack.ts';
import { runnableBlocksOf, type RunnableBlock } from './markdown-blocks.ts';

const docs = ['README.md', 'docs/api.md'];
const EPOCHS = 1;
const ROWS = 256;

/** A job file made fast: 1 epoch, at most 256 rows of its dataset. Other files are kept as they are. */
function shrink(json: unknown): unknown {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return json;
  const o = { ...(json as Record<string, unknown>) };
  if (typeof o.epochs === 'number') o.epochs = EPOCHS;
  for (const k of ['dataset', 'input']) {
    const d = o[k];
    if (typeof d === 'object' && d !== null && !('limit' in d)) o[k] = { ...d, limit: ROWS };
  }
  return o;
}

/** A directory with `pnpm` (10) in it, for machines where it is only reachable through npx. */
async function pnpmPath(dir: string): Promise<string> {
  try {
    if (execFileSync('pnpm', ['--version'], { encoding: 'utf8' }).startsWith('10.')) return '';
  } catch {
    /* not installed: fetch it below */
  }
  const bin = execFileSync('npx', ['--yes', '-p', 'pnpm@10', 'which', 'pnpm'], { encoding: 'utf8' }).trim();
  await mkdir(dir, { recursive: true });
  await symlink(bin, path.join(dir, 'pnpm'));
  return `${dir}${path.delimiter}`;
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv) {
  return new Promise<{ code: number | null; out: string }>((resolve, reject) => {
    const p = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, out }));
  });
}

describe('the examples of README.md and docs/api.md', () => {
  let stack: Stack;
  let work: string;
  let env: NodeJS.ProcessEnv;
  const blocks: RunnableBlock[] = [];

  beforeAll(async () => {
    for (const tool of ['curl', 'jq'])
      try {
        execFileSync(tool, ['--version'], { stdio: 'ignore' });
      } catch {
        throw new Error(`the README's examples need ${tool}: install it (Debian: apt-get install ${tool})`);
      }
    for (const f of docs) blocks.push(...(await runnableBlocksOf(repoRoot, f)));
    await mkdir(path.join(repoRoot, '.data'), { recursive: true });
    work = await mkdtemp(path.join(repoRoot, '.data', 'docs-test-'));
    await mkdir(path.join(work, 'examples'));
    for (const f of await readdir(path.join(repoRoot, 'examples'))) {
      const text = await readFile(path.join(repoRoot, 'examples', f), 'utf8');
      const out = f.endsWith('.json') ? `${JSON.stringify(shrink(JSON.parse(text)), null, 2)}\n` : text;
      await writeFile(path.join(work, 'examples', f), out);
    }
    stack = await startStack('docs');
    const { npm_lifecycle_event: _e, INIT_CWD: _c, ...rest } = process.env;
    env = {
      ...rest,
      API: stack.url,
      MLQ_URL: stack.url,
      MLQ_API_KEY: '',
      PATH: `${await pnpmPath(path.join(work, '.bin'))}${process.env.PATH}`,
    };
  });
  afterAll(async () => {
    await stack?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('ships example job files that the job schemas accept as they are', async () => {
    const jobs: Record<string, keyof typeof jobCatalog> = {
      'job.json': 'fine-tune',
      'transfer.json': 'fine-tune',
      'evaluate.json': 'evaluate',
    };
    for (const [file, type] of Object.entries(jobs)) {
      const json = JSON.parse(await readFile(path.join(repoRoot, 'examples', file), 'utf8')) as unknown;
      const r = jobCatalog[type].payload.safeParse(json);
      expect(r.success, `${file}: ${JSON.stringify(r.error?.issues)}`).toBe(true);
    }
    const digit = JSON.parse(await readFile(path.join(repoRoot, 'examples/digit-7.json'), 'utf8')) as {
      instances: number[][];
    };
    expect(digit.instances[0]).toHaveLength(784);
    expect(digit.instances[0]!.every((v) => v >= 0 && v <= 1)).toBe(true);
  });

  it('marks every shell and TypeScript block as `run` or `no-run`', async () => {
    for (const f of docs) {
      const text = await readFile(path.join(repoRoot, f), 'utf8');
      text.split('\n').forEach((l, i) => {
        const m = /^```(bash|sh|shell|ts|typescript|js|javascript)(\s.*)?$/.exec(l);
        if (m) expect((m[2] ?? '').trim(), `${f}:${i + 1}: ${l}`).toMatch(/^(run|no-run)$/);
      });
    }
    expect(blocks.filter((b) => b.file === 'README.md').length).toBeGreaterThanOrEqual(5);
    expect(blocks.filter((b) => b.file === 'docs/api.md').length).toBeGreaterThanOrEqual(1);
  });

  it('runs every runnable block in order', { timeout: 300_000 }, async () => {
    for (const [i, b] of blocks.entries()) {
      const file = path.join(work, `block-${i}.${b.lang === 'ts' ? 'ts' : 'sh'}`);
      await writeFile(file, b.code);
      const r =
        b.lang === 'ts'
          ? await run(process.execPath, [file], work, env)
          : await run('bash', ['-euo', 'pipefail', file], work, env);
      expect(
        r.code,
        `${b.file}:${b.line} (${b.lang}) exited ${r.code}:\n${b.code}\n--- output ---\n${r.out}`,
      ).toBe(0);
    }
  });
});
