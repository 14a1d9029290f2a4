/**
 * `mlq dataset upload|list|show|delete`, `mlq artifacts` and `mlq download` as a user runs them: the CLI
 * as its own process against a real API and worker.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatUploadBar } from '../src/cli/dataset-commands.ts';
import { MlqClient } from '../src/index.ts';
import { apiEnvSchema, startApi } from '../../../apps/api/src/index.ts';
import { repoRoot, startStack, type Stack } from '../../../test/support/stack.ts';

/** Runs the CLI as its own process; `input`, when given, is piped to its standard input. */
function cli(
  args: string[],
  input?: string | Buffer,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['packages/sdk/src/cli.ts', ...args], {
      cwd: repoRoot,
      env: { ...process.env, MLQ_URL: '', MLQ_API_KEY: '' },
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    if (input !== undefined) p.stdin!.end(input);
    let [stdout, stderr] = ['', ''];
    p.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
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
    // The message once: no `body:` line repeating it.
    expect(bad.stderr).toMatch(
      /^error \(400 invalid_dataset\): invalid csv dataset: line 3: ragged row[^\n]*\n$/,
    );
    const odd = await cli(['dataset', 'upload', 'x', file('job.txt'), ...url]);
    expect(odd.code).toBe(2);
    expect(odd.stderr).toMatch(/give --format csv\|jsonl\|zip\|tar\.gz/);

    const del = await cli(['dataset', 'delete', 'rows', '1', ...url]);
    expect(del.stdout.trim()).toBe('deleted dataset://rows@1');
    expect((await cli(['dataset', 'show', 'rows', ...url])).code).toBe(3);
  });

  it('reads standard input for `-`: a job file, and an upload with --format', async () => {
    const job = { model: 'stdin-x', architecture: 'mlp', dataset: { format: 'mnist', limit: 10 }, epochs: 1 };
    const sub = await cli(['submit', 'fine-tune', '--file', '-', ...url], JSON.stringify(job));
    expect(sub.code, sub.stderr).toBe(0);
    expect(sub.stdout).toMatch(/^submitted fine-tune job [\w-]+ \(waiting\)$/m);
    const notJson = await cli(['submit', 'fine-tune', '--file', '-', ...url], 'nope');
    expect(notJson.code).toBe(2);
    expect(notJson.stderr).toMatch(/^mlq submit: stdin is not valid JSON: /);

    const csv = 'a,b,label\n1,2,x\n3,4,y\n';
    const up = await cli(['dataset', 'upload', 'piped', '-', '--format', 'csv', ...url], csv);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toMatch(/^uploaded stdin as dataset:\/\/piped@1 \(csv, 2 rows, /m);
    const noFormat = await cli(['dataset', 'upload', 'piped', '-', ...url], csv);
    expect(noFormat.code).toBe(2);
    expect(noFormat.stderr).toMatch(/cannot tell the format of standard input: give --format/);
  });

  it('says nothing of 100% before the API has refused an upload too large (413)', async () => {
    const small = await startApi(
      apiEnvSchema.parse({
        ...stack.env,
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
        DATASET_MAX_BYTES: '100000',
      }),
    );
    try {
      await writeFile(file('big.csv'), `a,b,label\n${'1,2,x\n'.repeat(50_000)}`);
      const r = await cli(['dataset', 'upload', 'big', file('big.csv'), '--url', small.url]);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/^error \(413 payload_too_large\): /);
      expect(r.stdout).not.toMatch(/100%/);
    } finally {
      await small.stop();
    }
  });

  it("prints the API's warnings on stderr, one `warning:` line each, and still exits 0", async () => {
    await writeFile(file('semi.csv'), 'a;b;label\n1;2;x\n3;4;y\n');
    const semi = await cli(['dataset', 'upload', 'semi', file('semi.csv'), ...url]);
    expect(semi.code, semi.stderr).toBe(0);
    expect(semi.stdout).toMatch(/^uploaded semi\.csv as dataset:\/\/semi@1 /m);
    expect(semi.stderr).toBe(
      'warning: no "label" column: jobs must name one with dataset.label; columns are a;b;label\n',
    );
    await writeFile(file('noy.jsonl'), '{"x":[1,2]}\n{"x":[3,4]}\n');
    const noY = await cli(['dataset', 'upload', 'noy', file('noy.jsonl'), ...url]);
    expect(noY.code, noY.stderr).toBe(0);
    expect(noY.stderr).toMatch(/^warning: .*"y"/);
    expect(noY.stderr.trim().split('\n')).toHaveLength(1);
    await writeFile(file('clean.csv'), 'a,b,label\n1,2,x\n3,4,y\n');
    const clean = await cli(['dataset', 'upload', 'clean', file('clean.csv'), ...url]);
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.stderr).toBe('');
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

    // An -o into a directory that does not exist: one line, exit 2, and no download started.
    const missingDir = file('no-such-dir/m.zip');
    const lost = await cli(['download', ft.id, 'model.zip', '-o', missingDir, ...url]);
    expect(lost.code).toBe(2);
    expect(lost.stderr).toBe(
      `mlq download: cannot write ${missingDir}: the directory ${path.dirname(missingDir)} does not exist\n`,
    );
    const intoDir = await cli(['download', ft.id, 'model.zip', '-o', stack.dataDir, ...url]);
    expect(intoDir.code).toBe(2);
    expect(intoDir.stderr).toBe(`mlq download: cannot write ${stack.dataDir}: it is a directory\n`);
  });

  it('says in one line, with exit 2, what is wrong with a local file', async () => {
    const missing = file('missing.csv');
    const gone = await cli(['dataset', 'upload', 'x', missing, ...url]);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toBe(`mlq dataset: cannot read ${missing}: no such file or directory\n`);

    const dir = file('a-dir');
    await mkdir(dir, { recursive: true });
    // A directory, with or without --format: what to do with it, not "cannot tell the format".
    for (const format of [[], ['--format', 'zip']]) {
      const isDir = await cli(['dataset', 'upload', 'x', dir, ...format, ...url]);
      expect(isDir.code).toBe(2);
      expect(isDir.stderr).toBe(
        `mlq dataset: cannot upload ${dir}: it is a directory; upload an archive of it (one folder per class: ` +
          `zip -r a-dir.zip ${dir}, or tar czf a-dir.tar.gz ${dir}), or, where the API and workers can read it, ` +
          `name it in a job in place: {"format": "image-folder", "uri": "file://${dir}"}\n`,
      );
    }

    const job = await cli(['submit', 'fine-tune', '--file', dir, ...url]);
    expect(job.code).toBe(2);
    expect(job.stderr).toBe(`mlq submit: cannot read ${dir}: it is a directory\n`);
    const image = await cli(['predict', 'm', '--image', missing, ...url]);
    expect(image.code).toBe(2);
    expect(image.stderr).toBe(`mlq predict: cannot read ${missing}: no such file or directory\n`);
    // None of them reached the API.
    expect((await new MlqClient({ baseUrl: stack.url }).listDatasets()).map((d) => d.name)).not.toContain(
      'x',
    );
  });
});

describe('an error nothing expected', () => {
  it('is one line and exit code 4, not a stack trace', async () => {
    // An "API" whose 200 answers are JSON null: the CLI's code reads a field of null.
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end('null');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const r = await cli(['jobs', '--url', `http://127.0.0.1:${port}`]);
      expect(r.code).toBe(4);
      expect(r.stderr).toBe(
        "mlq jobs: unexpected error: TypeError: Cannot read properties of null (reading 'jobs')\n",
      );
    } finally {
      server.close();
    }
  });
});
