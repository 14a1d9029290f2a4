/**
 * Datasets over HTTP against the real API and a real worker process: uploads (201 with what validation
 * learned and warnings, 400 naming the line or entry, 413, 415), dataset:// jobs pinned at submit, 409 on
 * deleting a version a waiting job uses, a job's outputs downloaded through the API (model zip,
 * predictions), and an upload read by a worker as it was validated.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatasetVersion } from '@mlq/contract';
import { walkArchive } from '@mlq/core/datasets';
import { http, startStack, waitForJob, type JobBody, type Stack } from '../../../test/support/stack.ts';
import { makeZip, png } from '../../../packages/core/test/fixtures/archives.ts';

/** Two well-separated classes in 4 features: an mlp learns them in a couple of epochs. */
function blobsCsv(rows: number): string {
  let s = 'f1,f2,f3,f4,label\n';
  for (let i = 0; i < rows; i++) {
    const c = i % 2;
    const v = (k: number) => (c * 2 - 1 + Math.sin(i * 7 + k) * 0.3).toFixed(4);
    s += `${v(1)},${v(2)},${v(3)},${v(4)},${c ? 'yes' : 'no'}\n`;
  }
  return s;
}

async function upload(stack: Stack, name: string, body: string | Buffer, type: string, query = '') {
  const res = await fetch(`${stack.url}/v1/datasets/${name}${query}`, {
    method: 'POST',
    headers: { 'content-type': type },
    body: typeof body === 'string' ? body : new Uint8Array(body),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

describe('datasets over HTTP', () => {
  let stack: Stack;
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mlq-ds-e2e-'));
    // evaluate is not served, so an evaluate job stays waiting (for the 409 case).
    stack = await startStack('datasets', {
      workerEnv: { WORKER_QUEUES: 'fine-tune,batch-predict', WORKER_CACHE_DIR: path.join(tmp, 'cache') },
      apiEnv: { DATASET_MAX_BYTES: '3000000' },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  it('uploads a CSV: 201 with what validation learned, listed and shown', async () => {
    const csv = blobsCsv(200);
    const r = await upload(stack, 'blobs', csv, 'text/csv');
    expect(r.status).toBe(201);
    expect(r.headers.get('location')).toBe('/v1/datasets/blobs/versions/1');
    expect(r.body).toMatchObject({
      name: 'blobs',
      version: 1,
      uri: 'dataset://blobs@1',
      bytes: csv.length,
      format: 'csv',
      rows: 200,
      columns: ['f1', 'f2', 'f3', 'f4', 'label'],
      classes: { no: 100, yes: 100 },
    });
    const list = await http<{ datasets: { name: string; latestVersion: number }[] }>(
      `${stack.url}/v1/datasets`,
    );
    expect(list.body.datasets).toEqual([
      expect.objectContaining({ name: 'blobs', latestVersion: 1, format: 'csv' }),
    ]);
    expect(r.body.warnings).toEqual([]);
    // Without a label column: valid, but the answer says what a training job will need.
    const nolabel = await upload(stack, 'nolabel', 'a,b,c,klass\n1,2,3,0\n4,5,6,1\n', 'text/csv');
    expect(nolabel.status).toBe(201);
    expect(nolabel.body.warnings).toEqual([
      'no "label" column: jobs must name one with dataset.label; columns are a, b, c, klass',
    ]);
    // Its columns are known at submit: a label or feature it lacks is a 400 naming the field.
    const bad = await http<{ error: { details: { field: string; message: string }[] } }>(
      `${stack.url}/v1/jobs/fine-tune`,
      'POST',
      {
        model: 'm',
        architecture: 'mlp',
        epochs: 1,
        dataset: { format: 'csv', uri: 'dataset://nolabel', label: 'label', features: ['a', 'zz'] },
      },
    );
    expect(bad.status).toBe(400);
    expect(bad.body.error.details).toEqual([
      {
        field: 'dataset.label',
        message: 'dataset://nolabel@1 has no column "label"; its columns are a, b, c, klass',
      },
      {
        field: 'dataset.features',
        message: 'dataset://nolabel@1 has no column "zz"; its columns are a, b, c, klass',
      },
    ]);
    // Without any label: a job that trains or evaluates on it is refused at submit; batch predict,
    // which needs none, is accepted.
    const unlabelled = { format: 'csv', uri: 'dataset://nolabel' } as const;
    for (const [type, body] of [
      ['fine-tune', { model: 'm', architecture: 'mlp', epochs: 1, dataset: unlabelled }],
      ['evaluate', { model: 'm', dataset: unlabelled }],
    ] as const) {
      const r = await http<{ error: { details: { field: string; message: string }[] } }>(
        `${stack.url}/v1/jobs/${type}`,
        'POST',
        body,
      );
      expect(r.status, type).toBe(400);
      // (evaluate also says that model "m" does not exist)
      expect(r.body.error.details, type).toContainEqual({
        field: 'dataset.label',
        message:
          'dataset://nolabel@1 has no column named "label" (the default label) and this job needs labels: set dataset.label to the column that holds them; its columns are a, b, c, klass',
      });
    }
    const named = await http(`${stack.url}/v1/jobs/fine-tune`, 'POST', {
      model: 'm',
      architecture: 'mlp',
      epochs: 1,
      dataset: { ...unlabelled, label: 'klass' },
    });
    expect(named.status).toBe(202);
    // A zip sent as text/csv is refused at upload, saying so.
    const zip = makeZip([{ name: 'cat/1.png', data: png(1) }]);
    const asCsv = await upload(stack, 'zipped', zip, 'text/csv');
    expect(asCsv.status).toBe(400);
    expect((asCsv.body.error as { message: string }).message).toMatch(
      /^invalid csv dataset: line 1: a NUL byte .*this looks like a zip archive: send it as application\/zip$/,
    );
    const one = await http<{ versions: DatasetVersion[] }>(`${stack.url}/v1/datasets/blobs`);
    expect(one.body.versions.map((v) => v.uri)).toEqual(['dataset://blobs@1']);
    expect((await http(`${stack.url}/v1/datasets/blobs/versions/2`)).status).toBe(404);
  });

  it('refuses bad uploads with the line or entry, and keeps nothing of them', async () => {
    // The bad row comes early in a 2 MB body: the answer still arrives as a clean 400.
    const ragged = `a,b\n1,2\n3\n${'4,5\n'.repeat(500_000)}`;
    const r = await upload(stack, 'bad', ragged, 'text/csv');
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({
      code: 'invalid_dataset',
      message: 'invalid csv dataset: line 3: ragged row: 1 columns, the header has 2',
    });
    const zip = makeZip([
      { name: 'cat/1.png', data: png(1) },
      { name: '../../etc/cron.d/x.png', data: png(1) },
    ]);
    const z = await upload(stack, 'bad', zip, 'application/zip');
    expect(z.status).toBe(400);
    expect((z.body.error as { message: string }).message).toMatch(
      /archive entry "\.\.\/\.\.\/etc\/cron\.d\/x\.png"/,
    );
    const big = await upload(stack, 'bad', 'x'.repeat(3_000_001), 'text/csv');
    expect(big.status).toBe(413);
    const odd = await upload(stack, 'bad', 'a,b\n1,2\n', 'text/plain');
    expect(odd.status).toBe(415);
    expect((odd.body.error as { message: string }).message).toMatch(/\?format=csv/);
    expect((await upload(stack, 'bad', 'a,b\n1,2\n', 'text/plain', '?format=csv')).status).toBe(201);
    expect((await upload(stack, 'b@d', 'a\n1\n', 'text/csv')).status).toBe(400);
    const keys = await readdirRecursive(path.join(stack.dataDir, 'artifacts', 'datasets'));
    // Three valid uploads (blobs@1, nolabel@1, bad@1): three blobs, no staging leftovers.
    expect(keys.filter((k) => !k.startsWith('sha256/'))).toEqual([]);
    expect(keys).toHaveLength(3);
  });

  it('trains on dataset://name (pinned at submit), and gives the model back as a zip', async () => {
    const missing = await http<{ error: { details: { field: string }[] } }>(
      `${stack.url}/v1/jobs/fine-tune`,
      'POST',
      {
        model: 'm',
        architecture: 'mlp',
        epochs: 1,
        dataset: { format: 'csv', uri: 'dataset://nope' },
      },
    );
    expect(missing.status).toBe(400);
    expect(missing.body.error.details).toEqual([
      { field: 'dataset.uri', message: 'dataset "nope" not found' },
    ]);
    const wrong = await http(`${stack.url}/v1/jobs/fine-tune`, 'POST', {
      model: 'm',
      architecture: 'mlp',
      epochs: 1,
      dataset: { format: 'jsonl', uri: 'dataset://blobs' },
    });
    expect(wrong.status).toBe(400);

    const { body } = await http<JobBody & { params: { dataset: { uri: string } } }>(
      `${stack.url}/v1/jobs/fine-tune`,
      'POST',
      {
        model: 'blobs-mlp',
        architecture: 'mlp',
        architectureOptions: { units: [16] },
        epochs: 4,
        learningRate: 0.02,
        batchSize: 16,
        dataset: { format: 'csv', uri: 'dataset://blobs' },
      },
    );
    expect(body.params.dataset.uri).toBe('dataset://blobs@1');
    const done = await waitForJob(stack.url, body.id);
    expect(done.state, done.error).toBe('completed');
    expect((done.result as { metrics: { acc: number } }).metrics.acc).toBeGreaterThan(0.9);

    const arts = await http<{ artifacts: { name: string; href: string; model: unknown }[] }>(
      `${stack.url}/v1/jobs/${body.id}/artifacts`,
    );
    expect(arts.body.artifacts).toEqual([
      expect.objectContaining({
        name: 'model.zip',
        kind: 'model',
        href: `/v1/jobs/${body.id}/artifacts/model.zip`,
        model: { name: 'blobs-mlp', version: 1 },
      }),
    ]);
    const res = await fetch(`${stack.url}${arts.body.artifacts[0]!.href}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/zip');
    const file = path.join(tmp, 'model.zip');
    await writeFile(file, Buffer.from(await res.arrayBuffer()));
    const files: Record<string, Buffer> = {};
    await walkArchive(file, 'zip', { maxFiles: 10, maxExpandedBytes: 1 << 24 }, async (f, b) => {
      const parts: Buffer[] = [];
      for await (const c of b) parts.push(c as Buffer);
      files[f.name] = Buffer.concat(parts);
    });
    expect(Object.keys(files).sort()).toEqual(['model.json', 'weights.bin']);
    const stored = path.join(stack.dataDir, 'artifacts', 'runs', body.id, 'model');
    expect(files['weights.bin']!.equals(await readFile(path.join(stored, 'weights.bin')))).toBe(true);
    expect(JSON.parse(files['model.json']!.toString()).format).toBe('layers-model');
  });

  it('batch-predicts into the store by default and serves the output', async () => {
    const { body } = await http<JobBody>(`${stack.url}/v1/jobs/batch-predict`, 'POST', {
      model: 'blobs-mlp',
      input: { format: 'csv', uri: 'dataset://blobs@1' },
    });
    const done = await waitForJob(stack.url, body.id);
    expect(done.state, done.error).toBe('completed');
    const out = done.result as { outputUri: string; rows: number };
    expect(out.outputUri).toBe(`${stack.storeUri}/outputs/${body.id}/predictions.jsonl`);
    const arts = await http<{ artifacts: { name: string; href: string }[] }>(
      `${stack.url}/v1/jobs/${body.id}/artifacts`,
    );
    expect(arts.body.artifacts).toEqual([
      expect.objectContaining({ name: 'predictions.jsonl', kind: 'predictions' }),
    ]);
    const res = await fetch(`${stack.url}${arts.body.artifacts[0]!.href}`);
    const lines = (await res.text()).trim().split('\n');
    expect(lines).toHaveLength(200);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      index: 0,
      prediction: expect.stringMatching(/^(yes|no)$/),
    });
    expect((await http(`${stack.url}/v1/jobs/${body.id}/artifacts/nope.csv`)).status).toBe(404);
  });

  it('refuses to delete a version a waiting job uses (409), then deletes it and its bytes', async () => {
    const again = await upload(stack, 'blobs', blobsCsv(200), 'text/csv');
    expect(again.body).toMatchObject({
      version: 2,
      sha256: (await http<DatasetVersion>(`${stack.url}/v1/datasets/blobs/versions/1`)).body.sha256,
    });
    const { body } = await http<JobBody>(`${stack.url}/v1/jobs/evaluate`, 'POST', {
      model: 'blobs-mlp',
      dataset: { format: 'csv', uri: 'dataset://blobs@2' },
    });
    expect(body.state).toBe('waiting');
    const refused = await http<{ error: { message: string } }>(
      `${stack.url}/v1/datasets/blobs/versions/2`,
      'DELETE',
    );
    expect(refused.status).toBe(409);
    expect(refused.body.error.message).toContain(body.id);
    await http(`${stack.url}/v1/jobs/${body.id}`, 'DELETE');
    expect((await http(`${stack.url}/v1/datasets/blobs/versions/2`, 'DELETE')).status).toBe(204);
    // Version 1 has the same bytes: they stay until it goes too.
    const sha = (await http<DatasetVersion>(`${stack.url}/v1/datasets/blobs/versions/1`)).body.sha256;
    const blob = path.join(stack.dataDir, 'artifacts', 'datasets', 'sha256', sha);
    await expect(readFile(blob)).resolves.toBeDefined();
    expect((await http(`${stack.url}/v1/datasets/blobs/versions/1`, 'DELETE')).status).toBe(204);
    await expect(readFile(blob)).rejects.toThrow(/ENOENT/);
    expect((await http(`${stack.url}/v1/datasets/blobs`)).status).toBe(404);
  });

  it('warns at upload about JSONL lines without "y", as it does about a CSV without a label column', async () => {
    const unlabelled = await upload(
      stack,
      'points',
      '{"x":[1,2],"label":"a"}\n{"x":[3,4],"label":"b"}\n',
      'application/x-ndjson',
    );
    expect(unlabelled.status).toBe(201);
    expect(unlabelled.body).toMatchObject({ format: 'jsonl', rows: 2, featureShape: [2] });
    expect(unlabelled.body.classes).toBeUndefined();
    expect(unlabelled.body.warnings).toEqual([
      'no "y" on the lines: training and evaluation need a label ("y": a class index or name) on every line; the first line\'s keys are x, label',
    ]);
    // The warning belongs to the upload's answer, not to the version kept.
    const kept = await http<Record<string, unknown>>(`${stack.url}/v1/datasets/points/versions/1`);
    expect(kept.body).toMatchObject({ format: 'jsonl', rows: 2 });
    expect(kept.body.warnings).toBeUndefined();
    const labelled = await upload(
      stack,
      'points',
      '{"x":[1,2],"y":"a"}\n{"x":[3,4],"y":"b"}\n',
      'application/x-ndjson',
    );
    expect(labelled.status).toBe(201);
    expect(labelled.body).toMatchObject({ version: 2, classes: { a: 1, b: 1 } });
    expect(labelled.body.warnings).toEqual([]);
  });

  it('a worker reads an uploaded CSV with spaces around quoted fields as its upload was validated', async () => {
    // Before upload validation and the reader shared one splitter, this validated and then failed the
    // job: the reader took ` "1.1" ` for the text `"1.1"`, not a number.
    const csv = 'f1, "f2" ,f3,f4,label\n 1.0, "1.1" ,0.9,"1.2", "yes" \n-1.0,\t"-0.9"\t,-1.1,"-1",no\n';
    const up = await upload(stack, 'spaced', csv, 'text/csv');
    expect(up.status).toBe(201);
    expect(up.body).toMatchObject({
      rows: 2,
      columns: ['f1', 'f2', 'f3', 'f4', 'label'],
      label: 'label',
      classes: { no: 1, yes: 1 },
    });
    const { body } = await http<JobBody>(`${stack.url}/v1/jobs/batch-predict`, 'POST', {
      model: 'blobs-mlp',
      input: { format: 'csv', uri: 'dataset://spaced' },
    });
    const done = await waitForJob(stack.url, body.id);
    expect(done.state, done.error).toBe('completed');
    const arts = await http<{ artifacts: { href: string }[] }>(`${stack.url}/v1/jobs/${body.id}/artifacts`);
    const lines = (await (await fetch(`${stack.url}${arts.body.artifacts[0]!.href}`)).text())
      .trim()
      .split('\n');
    expect(lines.map((l) => (JSON.parse(l) as { prediction: string }).prediction)).toEqual(['yes', 'no']);
    // Text after a closing quote is refused at upload, naming the line and the field.
    const bad = await upload(stack, 'spaced', 'f1,label\n1,"yes"x\n', 'text/csv');
    expect(bad.status).toBe(400);
    expect((bad.body.error as { message: string }).message).toBe(
      'invalid csv dataset: line 2: field 2 ("label"): text after the closing quote: "yes"x (a quote inside a quoted field is written twice: "")',
    );
  });
});

async function readdirRecursive(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}
