/**
 * `mlq dataset upload|list|show|delete`, `mlq artifacts` and `mlq download` as a user runs them: the CLI
 * as its own process against a real API and worker.
 */
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatUploadBar } from '../src/cli/dataset-commands.ts';
import { MlqClient } from '../src/index.ts';
import { repoRoot, startStack, type Stack } from '../../../test/support/stack.ts';

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['packages/sdk/src/cli.ts', ...args], {
      cwd: repoRoot,
      env: { ...process.env, MLQ_URL: '', MLQ_API_KEY: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let [stdout, stderr] = ['', ''];
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

it('draws an upload bar that fits the terminal', () => {
  const line = formatUploadBar('digits.csv', 50e6, 200e6, 2, 80);
  expect(line).toBe(
    `digits.csv [${'█'.repeat(6)}${'░'.repeat(19)}]  25%  50.0/200.0 MB  25.0 MB/s  ETA 0:06`,
  );
  expect(line.length).toBeLessThan(80);
  expect(formatUploadBar('x.csv', 3e6, undefined, 1)).toBe('x.csv 3.0 MB  3.0 MB/s');
});

describe('mlq dataset and download', () => {
  let stack: Stack;
  let url: string[];
  const file = (name: string) => path.join(stack.dataDir, name);
  beforeAll(async () => {
    stack = await startStack('sdk-datasets', { workers: 0 });
    url = ['--url', stack.url];
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('uploads a file with progress, lists, shows and deletes it', async () => {
    // ~3 MB, so a pipe gets the 10% progress lines.
    let csv = 'a,b,label\n';
    for (let i = 0; i < 200_000; i++) csv += `${i % 7},${i % 5},${i % 2 ? 'odd' : 'even'}\n`;
    await writeFile(file('rows.csv'), csv);
    const up = await cli(['dataset', 'upload', 'rows', file('rows.csv'), ...url]);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toMatch(/^uploaded 100% \(/m);
    expect(up.stdout.match(/^uploaded \d+% /gm)!.length).toBeGreaterThanOrEqual(5);
    expect(up.stdout).toMatch(/^uploaded rows\.csv as dataset:\/\/rows@1 \(csv, 200000 rows, /m);
    expect(up.stdout).toContain('classes: even=100000 odd=100000');

    const list = await cli(['dataset', 'list', ...url]);
    expect(list.stdout).toMatch(/^rows\s+1\s+1\s+csv\s/m);
    const show = await cli(['dataset', 'show', 'rows', ...url]);
    expect(show.stdout).toMatch(/^dataset:\/\/rows@1\s+csv\s+200000\s+2\s/m);

    await writeFile(file('bad.csv'), 'a,b\n1,2\n3\n');
    const bad = await cli(['dataset', 'upload', 'bad', file('bad.csv'), ...url]);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toContain('error (400 invalid_dataset): invalid csv dataset: line 3: ragged row');
    const odd = await cli(['dataset', 'upload', 'x', file('job.txt'), ...url]);
    expect(odd.code).toBe(2);
    expect(odd.stderr).toMatch(/give --format csv\|jsonl\|zip\|tar\.gz/);

    const del = await cli(['dataset', 'delete', 'rows', '1', ...url]);
    expect(del.stdout.trim()).toBe('deleted dataset://rows@1');
    expect((await cli(['dataset', 'show', 'rows', ...url])).code).toBe(3);
  });

  it('streams a Node stream through the SDK, and downloads a job output with the CLI', async () => {
    const mlq = new MlqClient({ baseUrl: stack.url });
    async function* lines() {
      yield new TextEncoder().encode('{"x":[1,2],"y":"a"}\n');
      yield new TextEncoder().encode('{"x":[3,4],"y":"b"}\n');
    }
    const v = await mlq.uploadDataset('pairs', lines(), { format: 'jsonl' });
    expect(v).toMatchObject({
      uri: 'dataset://pairs@1',
      rows: 2,
      featureShape: [2],
      classes: { a: 1, b: 1 },
    });

    const w = await stack.spawnWorker();
    const ft = await mlq.fineTune({
      model: 'pairs',
      architecture: 'mlp',
      architectureOptions: { units: [4] },
      dataset: { format: 'jsonl', uri: v.uri },
      epochs: 1,
    });
    await mlq.waitForJob(ft, { timeoutMs: 120_000 });
    w.kill('SIGKILL');
    const arts = await cli(['artifacts', ft.id, ...url]);
    expect(arts.stdout).toMatch(/^model\.zip\s+model\s+-\s+yes\s/m);
    const out = file('pairs.zip');
    const dl = await cli(['download', ft.id, 'model.zip', '-o', out, ...url]);
    expect(dl.code, dl.stderr).toBe(0);
    const zip = await readFile(out);
    expect(zip.readUInt32LE(0)).toBe(0x04034b50);
  });
});
