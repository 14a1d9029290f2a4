import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import type { TuneProgress, TuneResult } from '@mlq/contract';
import { loadAll, mnistSource } from '@mlq/core/data';
import { loadModel } from '@mlq/core/ml';
import { FileArtifactStore } from '@mlq/core/storage';
import { initBackend } from '@mlq/engine';
import { http, startStack, waitForJob, type JobBody, type Stack } from '../../../test/support/stack.ts';

interface JobView extends JobBody {
  type: string;
  params: Record<string, unknown>;
}
interface VersionView {
  version: number;
  jobId: string;
  uri: string;
  metrics: Record<string, number>;
  params: Record<string, unknown>;
  base?: { name?: string; version?: number };
  tune?: { jobId: string; trial: number; trialJobId: string };
}

const mnist01 = { format: 'mnist', digits: [0, 1], limit: 200 };

/** 40 rows, two classes a line apart: an epoch of 10 batches of 4 takes a few milliseconds. */
function csv(): string {
  const rows = ['a,b,label'];
  for (let i = 0; i < 40; i++) {
    const c = i % 2;
    rows.push(`${(c * 2 + (i % 5) * 0.1).toFixed(2)},${(1 - c + (i % 3) * 0.1).toFixed(2)},${c}`);
  }
  return `${rows.join('\n')}\n`;
}

/** Reads a job's server-sent events until the server ends the stream (the job ended). */
async function readEvents(url: string): Promise<{ event: string; data: unknown }[]> {
  const res = await fetch(url);
  const text = await res.text();
  return text
    .split('\n\n')
    .map((block) => ({ event: /^event: (.*)$/m.exec(block)?.[1], data: /^data: (.*)$/m.exec(block)?.[1] }))
    .filter((e): e is { event: string; data: string } => e.event !== undefined && e.data !== undefined)
    .map((e) => ({ event: e.event, data: JSON.parse(e.data) as unknown }));
}

describe('tune over HTTP', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack('tune', { workers: 2 });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const submit = (body: object) =>
    http<JobBody & { error?: { details: { field: string; message: string }[] } }>(
      `${stack.url}/v1/jobs/tune`,
      'POST',
      body,
    );
  const logsOf = async (id: string) =>
    (await http<{ logs: string[] }>(`${stack.url}/v1/jobs/${id}/logs`)).body.logs;

  it('runs a 2×2 grid as fine-tune children on both workers, and registers the best trial by valAcc', async () => {
    const r = await submit({
      model: 'digits-tuned',
      architecture: 'mlp',
      dataset: mnist01,
      epochs: 2,
      search: { strategy: 'grid', space: { learningRate: [0.01, 0.001], 'head.units': [[16], [32]] } },
      objective: 'valAcc',
    });
    expect(r.status).toBe(202);
    const events = readEvents(`${stack.url}/v1/jobs/${r.body.id}/events`);
    const tune = await waitForJob(stack.url, r.body.id);
    expect(tune.state, JSON.stringify(tune)).toBe('completed');
    const result = tune.result as unknown as TuneResult;

    // The tune sleeps while its trials train; each trial reports to it as it ends.
    const progress = (await events).filter((e) => e.event === 'progress').map((e) => e.data as TuneProgress);
    expect(progress.some((p) => p.trialsDone > 0 && p.trialsDone < 4 && p.best !== null)).toBe(true);
    expect(progress.at(-1)).toMatchObject({ trialsDone: 4, trials: 4 });

    expect(result.trials.map((t) => [t.trial, t.state, t.params])).toEqual([
      [1, 'completed', { learningRate: 0.01, 'head.units': [16] }],
      [2, 'completed', { learningRate: 0.01, 'head.units': [32] }],
      [3, 'completed', { learningRate: 0.001, 'head.units': [16] }],
      [4, 'completed', { learningRate: 0.001, 'head.units': [32] }],
    ]);
    const accs = result.trials.map((t) => t.metrics!.valAcc!);
    expect(accs.every((a) => a >= 0 && a <= 1)).toBe(true);
    expect(result.best.metrics.valAcc).toBe(Math.max(...accs));
    expect(result.best.trial).toBe(accs.indexOf(Math.max(...accs)) + 1);
    expect(result.validationSplit).toBe(0.2);
    expect(result.notes.join('\n')).toMatch(/validationSplit was 0: trials held out 0.2/);
    expect(tune.progress as TuneProgress).toMatchObject({
      trialsDone: 4,
      trials: 4,
      failed: 0,
      best: { trial: result.best.trial },
    });

    // Every trial is a fine-tune job of its own: listed, found by id, registered under <model>-trial-<n>.
    const trialIds = result.trials.map((t) => t.jobId);
    const listed = await http<{ jobs: JobView[] }>(`${stack.url}/v1/jobs?type=fine-tune`);
    expect(listed.body.jobs.map((j) => j.id).sort()).toEqual([...trialIds].sort());
    for (const t of result.trials) {
      const j = (await http<JobView>(`${stack.url}/v1/jobs/${t.jobId}`)).body;
      expect(j).toMatchObject({
        type: 'fine-tune',
        state: 'completed',
        params: { model: `digits-tuned-trial-${t.trial}`, validationSplit: 0.2 },
      });
      expect(t.model).toMatchObject({ name: `digits-tuned-trial-${t.trial}`, version: 1 });
    }
    // In parallel across workers: each worker process trained at least one trial.
    for (const w of stack.workers)
      expect(w.output()).toMatch(
        /"queue":"fine-tune","jobId":"\S+-trial-\d+","attempt":1,"msg":"job started"/,
      );

    // The best trial's model is the next version of the tune's model, copied under the tune's run.
    expect(result.best.model).toMatchObject({ name: 'digits-tuned', version: 1 });
    expect(result.best.model.uri).toMatch(new RegExp(`/runs/${tune.id}/model/model\\.json$`));
    const versions = (await http<{ versions: VersionView[] }>(`${stack.url}/v1/models/digits-tuned`)).body
      .versions;
    expect(versions).toHaveLength(1);
    expect(versions[0]).toMatchObject({
      version: 1,
      jobId: tune.id,
      uri: result.best.model.uri,
      metrics: result.best.metrics,
      params: {
        learningRate: result.best.params.learningRate,
        head: { units: result.best.params['head.units'] },
      },
      tune: { jobId: tune.id, trial: result.best.trial, trialJobId: result.best.jobId },
    });

    await initBackend('auto');
    const { model, meta } = await loadModel(result.best.model.uri, new FileArtifactStore(stack.storeUri));
    expect(meta).toMatchObject({ inputShape: [28, 28, 1], numClasses: 2 });
    const test = await loadAll(mnistSource({ format: 'mnist', digits: [0, 1], split: 'test', limit: 200 }));
    const acc = tf.tidy(() => {
      const pred = (model.predict(tf.tensor(test.x, [test.y.length, 28, 28, 1])) as tf.Tensor).argMax(-1);
      return pred.equal(tf.tensor1d(test.y, 'int32')).mean().dataSync()[0]!;
    });
    expect(acc).toBeGreaterThan(0.9); // 0 vs 1: chance is 0.5
    model.dispose();
  });

  it('shares the embedding cache between trials on a frozen base, and reports failed trials without failing', async () => {
    const base = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', {
      model: 'tune-base',
      architecture: 'mlp',
      architectureOptions: { units: [32] },
      dataset: { format: 'mnist', digits: [0, 1, 2], limit: 300 },
      epochs: 1,
    });
    expect((await waitForJob(stack.url, base.body.id)).state).toBe('completed');

    const r = await submit({
      model: 'digits-frozen',
      base: 'tune-base',
      dataset: { format: 'mnist', digits: [3, 4], limit: 200 },
      head: { units: [8], dropout: 0.1 },
      epochs: 1,
      // trainableLayers 5 passes the schema but the base has 1 layer with weights: those trials fail.
      search: { space: { trainableLayers: [0, 5], learningRate: [0.03, 0.01, 0.003] } },
      objective: 'valLoss',
    });
    expect(r.status).toBe(202);
    const tune = await waitForJob(stack.url, r.body.id);
    expect(tune.state, JSON.stringify(tune)).toBe('completed');
    const result = tune.result as unknown as TuneResult;

    expect(result.trials.map((t) => t.state)).toEqual([
      'completed',
      'completed',
      'completed',
      'failed',
      'failed',
      'failed',
    ]);
    for (const t of result.trials.slice(3))
      expect(t.error).toMatch(/trainableLayers is 5 but the base has only 1 layers/);
    const losses = result.trials.slice(0, 3).map((t) => t.metrics!.valLoss!);
    expect(result.best.metrics.valLoss).toBe(Math.min(...losses));
    expect(tune.progress as TuneProgress).toMatchObject({ trialsDone: 6, trials: 6, failed: 3 });

    // Two workers: the first two trials may both embed the data; every later one finds the cache.
    const logs = await Promise.all(result.trials.slice(0, 3).map((t) => logsOf(t.jobId)));
    const hits = logs.filter((l) => l.some((line) => line.includes('embedding cache hit')));
    const misses = logs.filter((l) => l.some((line) => /embedded \d+ rows with the frozen base/.test(line)));
    expect(hits.length + misses.length).toBe(3);
    expect(misses.length).toBeLessThanOrEqual(2);
    expect(logs[2]!.some((line) => line.includes('embedding cache hit'))).toBe(true);

    // Every trial trained on the same base version, and the registered best says so.
    const trial1 = (await http<JobView>(`${stack.url}/v1/jobs/${result.trials[0]!.jobId}`)).body;
    expect(trial1.params.base).toBe('tune-base@1');
    const versions = (await http<{ versions: VersionView[] }>(`${stack.url}/v1/models/digits-frozen`)).body
      .versions;
    expect(versions[0]).toMatchObject({
      version: 1,
      base: { name: 'tune-base', version: 1 },
      tune: { jobId: tune.id },
    });
  });

  it('fails a tune whose every trial fails, with the reason, without retrying', async () => {
    const r = await submit({
      model: 'never',
      base: 'tune-base@1',
      dataset: { format: 'mnist', digits: [3, 4], limit: 50 },
      epochs: 1,
      search: { space: { trainableLayers: [5, 6] } },
    });
    expect(r.status).toBe(202);
    const tune = await waitForJob(stack.url, r.body.id);
    expect(tune.state).toBe('failed');
    expect(tune.error).toMatch(/all 2 trials failed; trial 1: trainableLayers is 5/);
    expect(tune.attempts).toBe(1);
    expect((await http(`${stack.url}/v1/models/never`)).status).toBe(404);
  });

  it('rejects a bad search space with 400 naming search.space.<key>, before any trial runs', async () => {
    const body = { model: 'x', architecture: 'mlp', dataset: mnist01, epochs: 1 };
    const bad = await submit({
      ...body,
      search: { space: { learningRate: [0.01, 'fast'], 'head.units': [64], optimizer: ['adam'] } },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error!.details.map((d) => d.field).sort()).toEqual([
      'search.space.head.units',
      'search.space.learningRate',
    ]);
    expect(bad.body.error!.details.find((d) => d.field === 'search.space.learningRate')!.message).toMatch(
      /value 2 \("fast"\)/,
    );

    const values = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
    const big = await submit({ ...body, search: { space: { batchSize: values(15), epochs: values(15) } } });
    expect(big.status).toBe(400);
    expect(big.body.error!.details).toEqual([
      { field: 'search.space', message: expect.stringMatching(/225 combinations/) },
    ]);

    const unknown = await submit({ ...body, search: { space: { momentum: [0.9] } } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error!.details[0]).toMatchObject({ field: 'search.space' });

    const random = await submit({
      ...body,
      search: { strategy: 'random', space: { learningRate: [0.1, 0.01] } },
    });
    expect(random.status).toBe(400);
    expect(random.body.error!.details).toEqual([{ field: 'search.trials', message: expect.any(String) }]);

    const listed = await http<{ jobs: JobView[] }>(`${stack.url}/v1/jobs?type=tune`);
    expect(listed.body.jobs.filter((j) => (j.params as { model: string }).model === 'x')).toEqual([]);
  });
  it('cancels a tune that waits for its trials: its trials stop and the tune ends cancelled', async () => {
    const r = await submit({
      model: 'tune-cancelled',
      architecture: 'mlp',
      architectureOptions: { units: [256, 128] },
      dataset: { format: 'mnist', digits: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] },
      epochs: 30,
      batchSize: 16,
      search: { strategy: 'grid', space: { learningRate: [0.001, 0.002, 0.003] } },
    });
    expect(r.status).toBe(202);
    const until = Date.now() + 60_000;
    let trialIds: string[];
    for (;;) {
      const jobs = (await http<{ jobs: JobView[] }>(`${stack.url}/v1/jobs?type=fine-tune&state=active`)).body
        .jobs;
      trialIds = jobs.filter((j) => j.id.startsWith(`${r.body.id}-trial-`)).map((j) => j.id);
      if (trialIds.length > 0) break;
      if (Date.now() > until) throw new Error('no trial became active');
      await new Promise((res) => setTimeout(res, 200));
    }
    const del = await http<{ state: string }>(`${stack.url}/v1/jobs/${r.body.id}`, 'DELETE');
    expect(del.status).toBe(202);
    expect(del.body.state).toBe('cancelling');
    const tune = await waitForJob(stack.url, r.body.id, ['completed', 'failed', 'cancelled'], 60_000);
    expect(tune.state).toBe('cancelled');
    for (const id of trialIds) {
      const t = await http<JobBody>(`${stack.url}/v1/jobs/${id}`);
      expect(t.body.state).toBe('cancelled');
    }
  });

  it('runs a cancelled tune again on retry: its cancelled trials are retried, its removed ones added back', async () => {
    const file = path.join(stack.dataDir, 'retry.csv');
    await writeFile(file, csv());
    const r = await submit({
      model: 'tune-retried',
      architecture: 'mlp',
      architectureOptions: { units: [8] },
      dataset: { format: 'csv', uri: `file://${file}`, label: 'label' },
      // A few seconds a trial: long enough to cancel the tune while one trains.
      epochs: 120,
      batchSize: 4,
      search: { strategy: 'grid', space: { learningRate: [0.01, 0.02, 0.03] } },
    });
    expect(r.status).toBe(202);
    const id = r.body.id;
    const until = Date.now() + 60_000;
    for (;;) {
      const jobs = (await http<{ jobs: JobView[] }>(`${stack.url}/v1/jobs?type=fine-tune&state=active`)).body
        .jobs;
      if (jobs.some((j) => j.id.startsWith(`${id}-trial-`))) break;
      if (Date.now() > until) throw new Error('no trial became active');
      await new Promise((res) => setTimeout(res, 100));
    }
    expect((await http(`${stack.url}/v1/jobs/${id}`, 'DELETE')).status).toBe(202);
    const cancelled = await waitForJob(stack.url, id, ['completed', 'failed', 'cancelled'], 60_000);
    expect(cancelled.state).toBe('cancelled');
    // Cancelled while training, or removed while waiting (with two workers, one or two train at once).
    const before = await Promise.all(
      [1, 2, 3].map(async (n) => (await http<JobBody>(`${stack.url}/v1/jobs/${id}-trial-${n}`)).body.state),
    );
    expect(before).toContain('cancelled');
    expect(before.some((s) => s === 'cancelled' || s === undefined)).toBe(true);

    const retry = await http<JobBody>(`${stack.url}/v1/jobs/${id}/retry`, 'POST');
    expect(retry.status).toBe(202);
    const tune = await waitForJob(stack.url, id, ['completed', 'failed', 'cancelled'], 120_000);
    expect(tune.state, JSON.stringify(tune)).toBe('completed');
    const result = tune.result as unknown as TuneResult;
    expect(result.trials.map((t) => t.state)).toEqual(['completed', 'completed', 'completed']);
    for (const t of result.trials) {
      const j = (await http<JobBody>(`${stack.url}/v1/jobs/${t.jobId}`)).body;
      expect(j.state).toBe('completed');
    }
    expect(
      (await http<{ versions: VersionView[] }>(`${stack.url}/v1/models/tune-retried`)).body.versions,
    ).toHaveLength(1);
    const logs = (await logsOf(id)).join('\n');
    expect(logs).toMatch(/retried \d+ failed trials?/);
    if (before.includes(undefined as never))
      expect(logs).toMatch(/added again \d+ of the 3 fine-tune trials/);
  });
});
