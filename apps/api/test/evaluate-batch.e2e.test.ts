/**
 * evaluate and batch-predict over HTTP, on real CSV files this test writes (Gaussian blobs with named
 * classes), with real Redis, real worker processes and real tfjs: an mlp is trained, evaluated,
 * run over files to JSONL and CSV, fails on a ragged file, and resumes after its worker is killed.
 */
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '@mlq/contract';
import { http, startStack, waitForJob, type JobBody, type Stack } from '../../../test/support/stack.ts';

interface Metrics {
  loss: number;
  accuracy: number;
  perClass: { label: string | number; precision: number; recall: number; f1: number; support: number }[];
  confusionMatrix: number[][];
  rocAuc?: number;
}

const THREE = { alpha: [3, 0, 0, 0], beta: [0, 3, 0, 0], gamma: [0, 0, 3, 0] };
const TWO = { no: [0, 0, 0, 0], yes: [2.5, 2.5, 0, 0] };

/** n rows around the given centres (classes in turn), standard deviation 0.7, seeded. */
function blobs(n: number, centres: Record<string, number[]>, seed: number): { x: number[]; cls: string }[] {
  const rand = mulberry32(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const names = Object.keys(centres);
  return Array.from({ length: n }, (_, i) => {
    const cls = names[i % names.length]!;
    return { x: centres[cls]!.map((c) => c + 0.7 * normal()), cls };
  });
}

const f = (v: number) => v.toFixed(3);
/** The class column sits between features, so "all other columns" is really tested. */
const labelledCsv = (rows: { x: number[]; cls: string }[]) =>
  `x1,class,x2,x3,x4\n${rows.map((r) => `${f(r.x[0]!)},${r.cls},${r.x.slice(1).map(f).join(',')}`).join('\n')}\n`;
const featuresCsv = (rows: { x: number[] }[]) =>
  `x1,x2,x3,x4\n${rows.map((r) => r.x.map(f).join(',')).join('\n')}\n`;

/** Pids of a process's children (the worker's sandboxed job processes). */
async function childPids(pid: number): Promise<number[]> {
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  const out: number[] = [];
  for (const t of tasks) {
    const text = await readFile(`/proc/${pid}/task/${t}/children`, 'utf8').catch(() => '');
    out.push(...text.split(/\s+/).filter(Boolean).map(Number));
  }
  return out;
}

function killAll(pids: number[]): void {
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

describe('evaluate and batch-predict over HTTP', () => {
  let stack: Stack;
  /** The fine-tune jobs of blobs and pair (their models are at runs/<id>/model in the store). */
  let trained: { blobs: string; pair: string };
  const sandboxes: number[] = [];
  const uri = (name: string) => pathToFileURL(path.join(stack.dataDir, name)).href;
  const write = async (name: string, text: string) => (
    await writeFile(path.join(stack.dataDir, name), text),
    uri(name)
  );
  const submit = async (type: string, body: unknown) => {
    const r = await http<JobBody>(`${stack.url}/v1/jobs/${type}`, 'POST', body);
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    return r.body.id;
  };
  const run = async (type: string, body: unknown) => {
    const j = await waitForJob(stack.url, await submit(type, body));
    // GET /v1/jobs/:id reads the job, then its state: a job that finishes in between shows
    // "completed" without its result. Read it once more (a race of the API, not of these jobs).
    return j.state === 'completed' && !j.result
      ? (await http<JobBody>(`${stack.url}/v1/jobs/${j.id}`)).body
      : j;
  };
  const predictRows = blobs(500, THREE, 3);

  beforeAll(async () => {
    // Short locks: a killed worker's job is taken over within seconds, not the default ~45 s.
    stack = await startStack('evaluate-batch', {
      workerEnv: { WORKER_LOCK_DURATION_MS: '3000', WORKER_STALLED_INTERVAL_MS: '1000' },
    });
    const train = await write('train.csv', labelledCsv(blobs(300, THREE, 1)));
    const pair = await write('pair.csv', labelledCsv(blobs(200, TWO, 4)));
    const common = {
      architecture: 'mlp',
      architectureOptions: { units: [16] },
      epochs: 15,
      batchSize: 32,
      learningRate: 0.02,
    };
    const [a, b] = await Promise.all([
      run('fine-tune', { model: 'blobs', dataset: { format: 'csv', uri: train, label: 'class' }, ...common }),
      run('fine-tune', { model: 'pair', dataset: { format: 'csv', uri: pair, label: 'class' }, ...common }),
    ]);
    expect(a.state, JSON.stringify(a)).toBe('completed');
    expect(b.state, JSON.stringify(b)).toBe('completed');
    trained = { blobs: a.id, pair: b.id };
  });
  afterAll(async () => {
    for (const w of stack?.workers ?? []) if (w.proc.pid) sandboxes.push(...(await childPids(w.proc.pid)));
    await stack?.stop();
    // The harness kills workers with SIGKILL, which would leave their sandbox processes behind.
    killAll(sandboxes);
  });

  it('evaluates on held-out rows: accuracy is the diagonal share of the confusion matrix, stored on the version', async () => {
    const test = blobs(240, THREE, 2);
    const j = await run('evaluate', {
      model: 'blobs',
      dataset: { format: 'csv', uri: await write('test.csv', labelledCsv(test)), label: 'class' },
    });
    expect(j.state, JSON.stringify(j)).toBe('completed');
    const m = (j.result as { metrics: Metrics }).metrics;
    const cm = m.confusionMatrix;
    const diagonal = cm.reduce((s, row, i) => s + row[i]!, 0);
    const total = cm.flat().reduce((s, v) => s + v, 0);
    expect(total).toBe(240);
    expect(m.accuracy).toBeCloseTo(diagonal / total, 12);
    expect(m.accuracy).toBeGreaterThan(0.9); // chance is 1/3
    expect(m.perClass.map((c) => c.label)).toEqual(['alpha', 'beta', 'gamma']);
    m.perClass.forEach((c, i) => {
      expect(c.support).toBe(80);
      expect(c.recall).toBeCloseTo(cm[i]![i]! / 80, 12);
      expect(c.precision).toBeCloseTo(cm[i]![i]! / cm.reduce((s, row) => s + row[i]!, 0), 12);
    });
    expect(m.rocAuc).toBeUndefined();

    const model = await http<{ versions: { version: number; evaluation?: Metrics & { jobId: string } }[] }>(
      `${stack.url}/v1/models/blobs`,
    );
    expect(model.body.versions[0]!.evaluation).toMatchObject({
      accuracy: m.accuracy,
      jobId: j.id,
      confusionMatrix: cm,
    });
  });

  it('reports ROC-AUC for a two-class model', async () => {
    const j = await run('evaluate', {
      model: 'pair@1',
      dataset: {
        format: 'csv',
        uri: await write('pair-test.csv', labelledCsv(blobs(100, TWO, 5))),
        label: 'class',
      },
    });
    expect(j.state, JSON.stringify(j)).toBe('completed');
    const m = (j.result as { metrics: Metrics }).metrics;
    expect(m.perClass.map((c) => c.label)).toEqual(['no', 'yes']);
    expect(m.rocAuc).toBeGreaterThan(0.9);
    expect(m.rocAuc).toBeLessThanOrEqual(1);
  });

  let jsonlPredictions: string[] = [];

  it('batch-predicts a CSV to JSONL: one line per row, in input order, predictions as class names', async () => {
    const input = await write('predict.csv', featuresCsv(predictRows));
    const out = uri('out/predictions.jsonl');
    const j = await run('batch-predict', {
      model: 'blobs',
      input: { format: 'csv', uri: input },
      output: { uri: out, format: 'jsonl' },
      chunkSize: 64,
    });
    expect(j.state, JSON.stringify(j)).toBe('completed');
    expect(j.result).toEqual({ outputUri: out, rows: 500 });
    expect(j.progress).toEqual({ rows: 500, total: 500 });
    const lines = (await readFile(fileURLToPath(out), 'utf8')).trimEnd().split('\n');
    expect(lines).toHaveLength(500);
    const rows = lines.map((l) => JSON.parse(l) as { index: number; prediction: string; scores: number[] });
    const names = ['alpha', 'beta', 'gamma'];
    rows.forEach((r, i) => {
      expect(r.index).toBe(i);
      expect(r.scores).toHaveLength(3);
      expect(r.scores.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
      expect(r.prediction).toBe(names[r.scores.indexOf(Math.max(...r.scores))]);
    });
    jsonlPredictions = rows.map((r) => r.prediction);
    const right = jsonlPredictions.filter((p, i) => p === predictRows[i]!.cls).length;
    expect(right / 500).toBeGreaterThan(0.9);
    // Nothing but the output is left in its folder (no part file).
    expect(await readdir(path.join(stack.dataDir, 'out'))).toEqual(['predictions.jsonl']);
  });

  it('batch-predicts to CSV, with one score column per class name, replacing an earlier output', async () => {
    const out = uri('out/predictions.csv');
    await writeFile(fileURLToPath(out), 'an earlier output of the same user\n');
    const j = await run('batch-predict', {
      model: 'blobs@1',
      input: { format: 'csv', uri: uri('predict.csv') },
      output: { uri: out, format: 'csv' },
    });
    expect(j.state, JSON.stringify(j)).toBe('completed');
    const lines = (await readFile(fileURLToPath(out), 'utf8')).trimEnd().split('\n');
    expect(lines[0]).toBe('index,prediction,score_alpha,score_beta,score_gamma');
    expect(lines).toHaveLength(501);
    const cells = lines.slice(1).map((l) => l.split(','));
    expect(cells.map((c) => Number(c[0]))).toEqual(Array.from({ length: 500 }, (_, i) => i));
    expect(cells.map((c) => c[1])).toEqual(jsonlPredictions);
    expect((await readdir(path.join(stack.dataDir, 'out'))).sort()).toEqual([
      'predictions.csv',
      'predictions.jsonl',
    ]);
  });

  it('refuses at submit an output.uri inside the artifact store, on a directory or below a file', async () => {
    const modelJson = path.join(stack.dataDir, 'artifacts', 'runs', trained.blobs, 'model', 'model.json');
    const before = await readFile(modelJson, 'utf8');
    await writeFile(path.join(stack.dataDir, 'plain.txt'), 'a file');
    const cases: [string, RegExp][] = [
      [pathToFileURL(modelJson).href, /is inside the artifact store/],
      [`${stack.storeUri}/datasets/sha256/${'a'.repeat(64)}`, /is inside the artifact store/],
      [`${stack.storeUri}/outputs/predictions.csv`, /is inside the artifact store/],
      [pathToFileURL(stack.dataDir).href, /is an existing directory|is inside the artifact store/],
      [stack.storeUri, /is inside the artifact store/],
      [uri('out'), /is an existing directory/],
      [uri('plain.txt/x.jsonl'), /plain\.txt is a file, not a directory/],
    ];
    for (const [out, why] of cases) {
      const r = await http<{
        error: { code: string; message: string; details: { field: string; message: string }[] };
      }>(`${stack.url}/v1/jobs/batch-predict`, 'POST', {
        model: 'blobs',
        input: { format: 'csv', uri: uri('predict.csv') },
        output: { uri: out },
      });
      expect(r.status, `${out}: ${JSON.stringify(r.body)}`).toBe(400);
      expect(r.body.error.message).toMatch(/output\.uri: /);
      expect(r.body.error.details).toHaveLength(1);
      expect(r.body.error.details[0]!.field).toBe('output.uri');
      expect(r.body.error.details[0]!.message, out).toMatch(why);
    }
    expect(await readFile(modelJson, 'utf8')).toBe(before);
  });

  it('fails a job over a ragged CSV at once, naming the file and line, and writes nothing', async () => {
    const bad = await write('ragged.csv', 'x1,x2,x3,x4\n1,2,3,4\n5,6,7,8\n9,10,11\n');
    const j = await run('batch-predict', {
      model: 'blobs',
      input: { format: 'csv', uri: bad },
      output: { uri: uri('bad/out.jsonl') },
    });
    expect(j.state).toBe('failed');
    expect(j.error).toBe(`${fileURLToPath(bad)}:4: ragged row: 3 columns, the header has 4`);
    expect(j.attempts).toBe(1);
    expect(await readdir(path.join(stack.dataDir, 'bad')).catch(() => [])).toEqual([]);
  });

  it('resumes after its worker is killed mid-way: every row exactly once', async () => {
    const n = 200_000;
    const lines: string[] = [];
    const rand = mulberry32(9);
    for (let i = 0; i < n; i++)
      lines.push(`${f(rand() * 6 - 3)},${f(rand() * 6 - 3)},${f(rand() * 6 - 3)},${f(rand() * 6 - 3)}`);
    const input = await write('big.csv', `x1,x2,x3,x4\n${lines.join('\n')}\n`);
    const out = uri('out/big.jsonl');
    const id = await submit('batch-predict', {
      model: 'blobs',
      input: { format: 'csv', uri: input },
      output: { uri: out },
      chunkSize: 500,
    });

    let seen = 0;
    for (const until = Date.now() + 60_000; Date.now() < until && seen === 0;) {
      const { body } = await http<JobBody>(`${stack.url}/v1/jobs/${id}`);
      seen = (body.progress as { rows?: number } | null)?.rows ?? 0;
      if (seen === 0) await new Promise((r) => setTimeout(r, 25));
    }
    // Kill the worker and its sandbox like a machine that loses power: no chance to save anything.
    const [worker] = stack.workers;
    const children = await childPids(worker!.proc.pid!);
    worker!.kill('SIGKILL');
    killAll(children);
    await worker!.exited;
    expect(seen).toBeGreaterThan(0);
    expect(seen).toBeLessThan(n);
    await expect(readFile(fileURLToPath(out))).rejects.toThrow(/ENOENT/); // never a half-written output

    await stack.spawnWorker();
    const j = await waitForJob(stack.url, id, ['completed', 'failed'], 90_000);
    expect(j.state, JSON.stringify(j)).toBe('completed');
    const logs = (await http<{ logs: string[] }>(`${stack.url}/v1/jobs/${id}/logs`)).body.logs;
    const resumed = logs.map((l) => /resuming at row (\d+)/.exec(l)).find(Boolean);
    expect(Number(resumed?.[1]), logs.join('\n')).toBeGreaterThan(0);

    const text = await readFile(fileURLToPath(out), 'utf8');
    const outLines = text.trimEnd().split('\n');
    expect(outLines).toHaveLength(n);
    outLines.forEach((l, i) => {
      if (!l.startsWith(`{"index":${i},"prediction":"`)) throw new Error(`line ${i + 1} is ${l}`);
    });
    expect(() => outLines.forEach((l) => JSON.parse(l) as unknown)).not.toThrow();
  });

  it('refuses in the worker an output that became a directory after submit: one attempt, no part file', async () => {
    // Stop the worker so the job waits; the API sees nothing wrong with a path that does not exist yet.
    const worker = stack.workers.at(-1)!;
    const children = await childPids(worker.proc.pid!);
    worker.kill('SIGKILL');
    killAll(children);
    await worker.exited;
    const out = uri('late/out.jsonl');
    const id = await submit('batch-predict', {
      model: 'blobs',
      input: { format: 'csv', uri: uri('predict.csv') },
      output: { uri: out },
    });
    await mkdir(fileURLToPath(out), { recursive: true });
    await stack.spawnWorker();
    const j = await waitForJob(stack.url, id, ['completed', 'failed'], 90_000);
    expect(j.state, JSON.stringify(j)).toBe('failed');
    expect(j.attempts).toBe(1);
    expect(j.error).toBe(
      `output.uri: "${out}" is an existing directory: an output must name a file (e.g. …/predictions.jsonl)`,
    );
    const parts = async (dir: string) =>
      (await readdir(dir, { recursive: true })).filter((f) => f.endsWith('.part'));
    expect(await parts(stack.dataDir)).toEqual([]);
    expect((await readdir(path.dirname(stack.dataDir))).filter((f) => f.includes(id))).toEqual([]);
  });

  it('fails a write the file system refuses at once, naming the URI, with no retry and nothing left behind', async () => {
    const worker = stack.workers.at(-1)!;
    const children = await childPids(worker.proc.pid!);
    worker.kill('SIGKILL');
    killAll(children);
    await worker.exited;
    const out = uri('blocked/out.jsonl');
    const id = await submit('batch-predict', {
      model: 'blobs',
      input: { format: 'csv', uri: uri('predict.csv') },
      output: { uri: out },
    });
    // The output passes every check, but its part file's path is taken by a directory: open() fails (EISDIR).
    const part = path.join(stack.dataDir, 'blocked', `.out.jsonl.${id}.part`);
    await mkdir(part, { recursive: true });
    await stack.spawnWorker();
    const j = await waitForJob(stack.url, id, ['completed', 'failed'], 90_000);
    expect(j.state, JSON.stringify(j)).toBe('failed');
    expect(j.attempts).toBe(1);
    expect(j.error).toBe(`cannot write output.uri "${out}": its part file ${part}: it is a directory`);
    expect(await readdir(path.join(stack.dataDir, 'blocked'))).toEqual([path.basename(part)]);
  });

  it('answers model.zip of a model whose model.json is not JSON with a 409 naming it, not a 500', async () => {
    const modelJson = path.join(stack.dataDir, 'artifacts', 'runs', trained.pair, 'model', 'model.json');
    await writeFile(modelJson, '{"index":0,"prediction":"no"}\n{"index":1}\n');
    const r = await http<{ error: { code: string; message: string } }>(
      `${stack.url}/v1/jobs/${trained.pair}/artifacts/model.zip`,
    );
    expect(r.status, JSON.stringify(r.body)).toBe(409);
    expect(r.body.error.code).toBe('conflict');
    expect(r.body.error.message).toMatch(
      /the stored model .*model\.json is unreadable: its model\.json is not JSON/,
    );
    expect(r.body.error.message).not.toMatch(/\n\s+at /);
  });
});
