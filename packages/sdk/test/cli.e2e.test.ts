import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAll, mnistSource } from '@mlq/core/data';
import { digitFile } from '../../../test/support/images.ts';
import { repoRoot, startStack, type Stack } from '../../../test/support/stack.ts';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI as its own process, as a user would: `node packages/sdk/src/cli.ts ...` (no loader). */
function cli(
  args: string[],
  env: Record<string, string> = {},
  entry = ['packages/sdk/src/cli.ts'],
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [...entry, ...args], {
      cwd: repoRoot,
      env: { ...process.env, MLQ_URL: '', MLQ_API_KEY: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('the mlq CLI against a real API and worker', () => {
  let stack: Stack;
  let url: string[];
  let jobId: string;
  const file = (name: string) => path.join(stack.dataDir, name);

  beforeAll(async () => {
    stack = await startStack('sdk-cli');
    url = ['--url', stack.url];
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('submits a job from a file and waits, printing plain progress lines when not on a terminal', async () => {
    const job = {
      model: 'cli-digits',
      architecture: 'mlp',
      dataset: { format: 'mnist', digits: [0, 1], limit: 200 },
      epochs: 2,
      validationSplit: 0.2,
    };
    await writeFile(file('job.json'), JSON.stringify(job));
    const r = await cli(['submit', 'fine-tune', '--file', file('job.json'), '--wait', ...url]);
    expect(r.code, r.stderr).toBe(0);
    const m = /^submitted fine-tune job ([\w-]+) \(\w+\)$/m.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    jobId = m![1]!;
    expect(r.stdout).toMatch(
      /^epoch 2\/2 {2}loss \d\.\d{4} {2}acc \d\.\d{4} .*val acc \d\.\d{4} .*samples\/s {2}ETA 0:00$/m,
    );
    expect(r.stdout).not.toContain('\r'); // no progress bar in a pipe
    const last = r.stdout.trim().split('\n').at(-1)!;
    expect(last).toMatch(
      new RegExp(`^completed fine-tune ${jobId} in [\\d.]+ s: model cli-digits@1 .*acc \\d\\.\\d{4}`),
    );
  });

  it('lists jobs, filtered by type and state', async () => {
    const all = await cli(['jobs', ...url]);
    expect(all.code).toBe(0);
    expect(all.stdout).toMatch(/^ID +TYPE +STATE +PROGRESS +CREATED$/m);
    expect(all.stdout).toMatch(new RegExp(`^${jobId} +fine-tune +completed +epoch 2/2 `, 'm'));
    expect((await cli(['jobs', '--type', 'fine-tune', '--state', 'completed', ...url])).stdout).toContain(
      jobId,
    );
    expect((await cli(['jobs', '--state', 'failed', ...url])).stdout.trim()).toBe('no jobs');
  });

  it('watch on a finished job prints the final line; logs prints the epochs', async () => {
    const w = await cli(['watch', jobId, ...url]);
    expect(w.code, w.stderr).toBe(0);
    expect(w.stdout.trim().split('\n').at(-1)).toMatch(
      new RegExp(`^completed fine-tune ${jobId} .*model cli-digits@1`),
    );
    const l = await cli(['logs', jobId, ...url]);
    expect(l.code).toBe(0);
    expect(l.stdout).toMatch(/epoch 2\/2 loss/);
  });

  it("watch says `state active` before that state's first epoch line", async () => {
    const job = {
      model: 'cli-watch',
      architecture: 'mlp',
      dataset: { format: 'mnist', digits: [0, 1], limit: 1000 },
      epochs: 8,
    };
    const sub = await cli(['submit', 'fine-tune', '--json', JSON.stringify(job), ...url]);
    const id = /job ([\w-]+)/.exec(sub.stdout)![1]!;
    // Watch a job already past its first epoch: its first view carries both the state and an epoch.
    for (let t = Date.now(); ;) {
      const view = (await (await fetch(`${stack.url}/v1/jobs/${id}`)).json()) as { progress?: unknown };
      if (typeof view.progress === 'object' && view.progress !== null && 'epoch' in view.progress) break;
      if (Date.now() - t > 120_000) throw new Error(`no epoch reported: ${JSON.stringify(view)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const w = await cli(['watch', id, ...url]);
    expect(w.code, w.stderr).toBe(0);
    const lines = w.stdout.trim().split('\n');
    expect(lines[0], w.stdout).toBe('state active');
    expect(lines[1], w.stdout).toMatch(/^epoch \d\/8 {2}loss/);
  });

  it('prints a batch-predict of one-row chunks in tenths, not a line per chunk, when not on a terminal', async () => {
    const job = {
      model: 'cli-digits@1',
      input: { format: 'mnist', digits: [0, 1], split: 'test', limit: 300 },
      chunkSize: 1,
    };
    const r = await cli(['submit', 'batch-predict', '--json', JSON.stringify(job), '--wait', ...url]);
    expect(r.code, r.stderr).toBe(0);
    const rows = r.stdout.split('\n').filter((l) => l.startsWith('rows '));
    expect(rows.length, r.stdout).toBeLessThanOrEqual(12);
    expect(rows.at(-1)).toBe('rows 300/300');
    expect(r.stdout.trim().split('\n').at(-1)).toMatch(/^completed batch-predict [\w-]+ .*300 rows → /);
  });

  it('lists models (taking the URL from MLQ_URL), shows one, and sets and deletes a label', async () => {
    const env = { MLQ_URL: stack.url };
    const models = await cli(['models'], env);
    expect(models.code, models.stderr).toBe(0);
    expect(models.stdout).toMatch(/^cli-digits +1 /m);
    const model = await cli(['model', 'cli-digits'], env);
    expect(model.stdout).toMatch(new RegExp(`^1 +(\\d+\\.\\d{4} +){3}- +${jobId} `, 'm'));

    const set = await cli(['label', 'cli-digits', 'production', '1'], env);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout.trim()).toBe('cli-digits@production → version 1');
    expect((await cli(['models'], env)).stdout).toMatch(/^cli-digits +1 +production=1 /m);
    expect((await cli(['model', 'cli-digits'], env)).stdout).toMatch(/^1 +production +0\.\d{4}/m);

    const del = await cli(['label', 'cli-digits', 'production', '--delete'], env);
    expect(del.code, del.stderr).toBe(0);
    const again = await cli(['label', 'cli-digits', 'production', '--delete'], env);
    expect(again.code).toBe(3);
    expect(again.stderr).toMatch(/error \(404 not_found\): model "cli-digits" has no label "production"/);
  });

  it('predicts from --json and from --file', async () => {
    const zero = Array.from({ length: 28 }, () => Array.from({ length: 28 }, () => [0]));
    const one = await cli(['predict', 'cli-digits@1', '--json', JSON.stringify([zero]), ...url]);
    expect(one.code, one.stderr).toBe(0);
    const out = JSON.parse(one.stdout) as { predictions: number[][] };
    expect(out.predictions).toHaveLength(1);
    expect(out.predictions[0]).toHaveLength(2);
    await writeFile(file('instances.json'), JSON.stringify({ instances: [zero, zero] }));
    const two = await cli(['predict', 'cli-digits', '--file', file('instances.json'), ...url]);
    expect(two.code, two.stderr).toBe(0);
    expect((JSON.parse(two.stdout) as { predictions: unknown[] }).predictions).toHaveLength(2);
    const bad = await cli(['predict', 'cli-digits', '--json', '[[1,2,3]]', ...url]);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/error \(400 invalid_request\): .*\[28,28,1\]/);
  });

  it('predicts from image files with --image', async () => {
    const test = await loadAll(mnistSource({ format: 'mnist', digits: [0, 1], split: 'test', limit: 2 }));
    const files = [0, 1].map((i) => {
      const f = digitFile(test.x.subarray(i * 784, (i + 1) * 784), i); // a PNG and a JPEG, 36x32
      return { path: file(f.name), bytes: f.bytes };
    });
    for (const f of files) await writeFile(f.path, f.bytes);
    const r = await cli([
      'predict',
      'cli-digits@1',
      '--image',
      files[0]!.path,
      '--image',
      files[1]!.path,
      ...url,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { predictions: number[][] };
    expect(out.predictions).toHaveLength(2);
    for (const p of out.predictions) expect(p[0]! + p[1]!).toBeCloseTo(1, 4);
    await writeFile(file('not-an-image.png'), 'a,b\n1,2\n');
    const bad = await cli(['predict', 'cli-digits', '--image', file('not-an-image.png'), ...url]);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(
      /error \(400 invalid_request\): unreadable image instances\[0\]: not a PNG or JPEG/,
    );
    const both = await cli(['predict', 'cli-digits', '--image', files[0]!.path, '--json', '[]', ...url]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/give --image, or --file \/ --json, not both/);
    const missing = await cli(['predict', 'cli-digits', '--image', '/no/such.png', ...url]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read \/no\/such\.png: no such file/);
  });

  it('exits 3 naming each bad field of a bad job file', async () => {
    const bad = { model: 'x', architecture: 'mlp', dataset: { format: 'mnist', digits: [1, 1] }, epochs: 0 };
    await writeFile(file('bad.json'), JSON.stringify(bad));
    const r = await cli(['submit', 'fine-tune', '--file', file('bad.json'), ...url]);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^error \(400 invalid_request\): invalid fine-tune job/);
    expect(r.stderr).toMatch(/^ {2}epochs: /m);
    expect(r.stderr).toMatch(/^ {2}dataset\.digits: digits must be distinct/m);
  });

  it('exits 3 for API refusals and an unreachable API', async () => {
    const unknown = await cli(['watch', '00000000-0000-0000-0000-000000000000', ...url]);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toMatch(/404 not_found.*not found/);
    const done = await cli(['cancel', jobId, ...url]);
    expect(done.code).toBe(3);
    expect(done.stderr).toMatch(/409 conflict.*completed/);
    const down = await cli(['models', '--url', 'http://127.0.0.1:9']);
    expect(down.code).toBe(3);
    expect(down.stderr).toMatch(/^error: cannot reach http:\/\/127\.0\.0\.1:9/);
  });

  it('exits 2 for usage mistakes', async () => {
    const cases: [string[], RegExp][] = [
      [[], /no command/],
      [['frobnicate'], /unknown command "frobnicate"/],
      [['submit', 'train-a-unicorn', '--json', '{}'], /unknown job type "train-a-unicorn"/],
      [['submit', 'fine-tune'], /--file <path> or --json <text>/],
      [
        ['submit', 'fine-tune', '--file', '/no/such/job.json'],
        /cannot read \/no\/such\/job\.json: no such file/,
      ],
      [['submit', 'fine-tune', '--json', '{"model":'], /--json is not valid JSON/],
      [['jobs', '--bogus'], /Unknown option '--bogus'/],
      [['label', 'm', 'production', 'three'], /<version> must be a whole number/],
      [['watch'], /missing <id>/],
    ];
    for (const [args, message] of cases) {
      const r = await cli([...args, ...url]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: mlq <command>/);
  });

  it('runs through the package bin (bin/mlq.js)', async () => {
    const r = await cli(['models', ...url], {}, ['packages/sdk/bin/mlq.js']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^cli-digits +1 /m);
  });
});
