import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelDetailSchema, readinessSchema } from '@mlq/contract';
import { apiEnvSchema, startApi } from '../../../apps/api/src/index.ts';
import { startStack, type Stack } from '../../../test/support/stack.ts';
import {
  JobFailedError,
  MlqApiError,
  MlqClient,
  WaitTimeoutError,
  type EpochProgress,
  type FetchLike,
  type Job,
  type JobEvent,
  type JobInputOf,
} from '../src/index.ts';

/** A tiny job: an mlp on 200 digits (0 and 1) trains an epoch in well under a second. */
const tiny = (model: string, epochs = 3): JobInputOf<'fine-tune'> => ({
  model,
  architecture: 'mlp',
  dataset: { format: 'mnist', digits: [0, 1], limit: 200 },
  epochs,
  batchSize: 32,
  validationSplit: 0.2,
});

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => expect.fail('expected a rejection'),
    (e: unknown) => e,
  );
}

describe('MlqClient against a real API and worker', () => {
  let stack: Stack;
  let mlq: MlqClient;
  let trained: Job<'fine-tune'>;

  beforeAll(async () => {
    stack = await startStack('sdk');
    mlq = new MlqClient({ baseUrl: stack.url });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  describe('jobs', () => {
    it('submits a fine-tune and waits for it, reporting each epoch', async () => {
      const job = await mlq.fineTune(tiny('sdk-digits'));
      expect(job).toMatchObject({ type: 'fine-tune', links: { self: `/v1/jobs/${job.id}` } });
      const progress: EpochProgress[] = [];
      const states: string[] = [];
      trained = await mlq.waitForJob(job, {
        timeoutMs: 120_000,
        onProgress: (p) => progress.push(p),
        onState: (s) => states.push(s),
      });
      expect(trained.state).toBe('completed');
      expect(trained.result?.model).toMatchObject({ name: 'sdk-digits', version: 1 });
      expect(trained.result?.metrics.acc).toBeGreaterThan(0.8);
      // Every report is an epoch of 3, in order, ending with the last one.
      expect(progress.length).toBeGreaterThan(0);
      expect(progress.every((p) => p.epochs === 3 && typeof p.loss === 'number')).toBe(true);
      const epochs = progress.map((p) => p.epoch);
      expect(epochs).toEqual([...new Set(epochs)].sort((a, b) => a - b));
      expect(epochs.at(-1)).toBe(3);
      expect(states.at(-1)).toBe('completed');
    });

    it('events() yields the job, its progress per epoch, then the final state', async () => {
      const job = await mlq.fineTune(tiny('sdk-events'));
      const events: JobEvent[] = [];
      for await (const ev of mlq.events(job.id)) events.push(ev);
      expect(events[0]).toMatchObject({ type: 'state', job: { id: job.id } });
      const progress = events.filter((e) => e.type === 'progress').map((e) => e.progress as EpochProgress);
      expect(progress.length).toBeGreaterThan(0);
      expect(progress.at(-1)).toMatchObject({ epoch: 3, epochs: 3 });
      const last = events.at(-1)!;
      expect(last).toMatchObject({
        type: 'state',
        state: 'completed',
        job: { result: { model: { name: 'sdk-events' } } },
      });
      expect(events.findIndex((e) => e.type === 'progress')).toBeLessThan(events.length - 1);

      // A finished job: one event, the final state.
      const again: JobEvent[] = [];
      for await (const ev of mlq.events(job.id)) again.push(ev);
      expect(again).toHaveLength(1);
      expect(again[0]).toMatchObject({ type: 'state', state: 'completed' });
    });

    it('lists jobs by type and state, and reads a job and its logs', async () => {
      const page = await mlq.listJobs({ type: 'fine-tune', state: 'completed', limit: 10 });
      expect(page.jobs.map((j) => j.id)).toContain(trained.id);
      expect(page.jobs.every((j) => j.type === 'fine-tune' && j.state === 'completed')).toBe(true);
      expect((await mlq.listJobs({ state: 'failed' })).jobs.map((j) => j.id)).not.toContain(trained.id);
      const job = await mlq.getJob(trained.id);
      expect(job).toMatchObject({
        id: trained.id,
        type: 'fine-tune',
        state: 'completed',
        params: { epochs: 3 },
      });
      expect(await mlq.jobLogs(trained.id)).toEqual(
        expect.arrayContaining([expect.stringMatching(/epoch 3\/3 loss/)]),
      );
    });

    it('falls back to polling when the events stream drops', async () => {
      const urls: string[] = [];
      // A proxy that cuts every events stream after its first chunk (the job's initial state).
      const cutting: FetchLike = async (url, init) => {
        urls.push(url);
        const res = await fetch(url, init);
        if (!url.endsWith('/events') || !res.body) return res;
        const reader = res.body.getReader();
        const first = await reader.read();
        await reader.cancel();
        const body = new ReadableStream<Uint8Array>({
          start(c) {
            if (first.value) c.enqueue(first.value);
            c.error(new TypeError('terminated'));
          },
        });
        return new Response(body, { status: res.status, headers: res.headers });
      };
      const client = new MlqClient({ baseUrl: stack.url, fetch: cutting });
      const job = await client.fineTune(tiny('sdk-poll'));
      const done = await client.waitForJob(job, { pollIntervalMs: 100, timeoutMs: 120_000 });
      expect(done.state).toBe('completed');
      expect(urls.filter((u) => u.endsWith('/events'))).toHaveLength(1);
      expect(urls.filter((u) => u.endsWith(`/v1/jobs/${job.id}`)).length).toBeGreaterThan(0);
    });

    // Failed once in a full fresh-clone run (14:43, 191 ms, cause not yet found) and passes alone:
    // retried rather than hidden, until the ordering it depends on is found.
    it('times out, stops an events loop on abort, and cancels a running job', async () => {
      const job = await mlq.fineTune(tiny('sdk-long', 500));
      const ctl = new AbortController();
      let progressEvents = 0;
      for await (const ev of mlq.events(job.id, { signal: ctl.signal })) {
        if (ev.type === 'progress') progressEvents++;
        if (progressEvents === 1) ctl.abort(); // ends the loop quietly
      }
      expect(progressEvents).toBe(1);

      const timeout = await rejection(mlq.waitForJob(job, { timeoutMs: 300 }));
      expect(timeout).toBeInstanceOf(WaitTimeoutError);
      expect(timeout).toMatchObject({ code: 'timeout', jobId: job.id, lastSeen: { state: 'active' } });

      expect(await mlq.cancelJob(job.id)).toEqual({ id: job.id, state: 'cancelling' });
      const failed = await rejection(mlq.waitForJob(job, { timeoutMs: 60_000 }));
      expect(failed).toBeInstanceOf(JobFailedError);
      expect(failed).toMatchObject({ code: 'job_cancelled', state: 'cancelled', job: { id: job.id } });
    });

    it('rejects waitForJob with JobFailedError when the job fails, and refuses to retry a completed job', async () => {
      const job = await mlq.fineTune({
        ...tiny('sdk-bad'),
        architecture: undefined,
        base: 'sdk-digits',
        trainableLayers: 99,
      });
      const e = await rejection(mlq.waitForJob(job, { timeoutMs: 60_000 }));
      expect(e).toBeInstanceOf(JobFailedError);
      expect(e).toMatchObject({ code: 'job_failed', state: 'failed' });
      expect((e as JobFailedError).message).toMatch(/trainableLayers is 99/);

      const retry = await rejection(mlq.retryJob(trained.id));
      expect(retry).toMatchObject({ status: 409, code: 'conflict' });
    });

    it('returns the first job for a repeated Idempotency-Key, and 422 for the key on another request', async () => {
      const key = `sdk-${Date.now()}`;
      const a = await mlq.fineTune(tiny('sdk-idem', 1), { idempotencyKey: key });
      const b = await mlq.fineTune(tiny('sdk-idem', 1), { idempotencyKey: key });
      expect(b.id).toBe(a.id);
      const other = await rejection(
        mlq.evaluate(
          { model: 'sdk-digits', dataset: { format: 'mnist', digits: [0, 1] } },
          { idempotencyKey: key },
        ),
      );
      expect(other).toMatchObject({ status: 422, code: 'idempotency_key_reused' });
      const otherBody = await rejection(mlq.fineTune(tiny('sdk-idem', 2), { idempotencyKey: key }));
      expect(otherBody).toMatchObject({ status: 422, code: 'idempotency_key_reused' });
      await mlq.waitForJob(a, { timeoutMs: 60_000 });
    });
  });

  describe('errors', () => {
    it('throws MlqApiError with a 400 naming each bad field', async () => {
      const bad = {
        model: 'x',
        architecture: 'mlp',
        dataset: { format: 'mnist', digits: [1, 1] },
        epochs: 0,
        batchSize: 'big',
      };
      const e = await rejection(mlq.submitJob('fine-tune', bad as never));
      expect(e).toBeInstanceOf(MlqApiError);
      const err = e as MlqApiError;
      expect(err).toMatchObject({ status: 400, code: 'invalid_request' });
      expect(err.fields.map((f) => f.field).sort()).toEqual(['batchSize', 'dataset.digits', 'epochs']);
    });

    it('throws 404s for unknown jobs, models, versions and labels', async () => {
      expect(await rejection(mlq.getJob('00000000-0000-0000-0000-000000000000'))).toMatchObject({
        status: 404,
        code: 'not_found',
      });
      expect(await rejection(mlq.waitForJob('no-such-job'))).toMatchObject({ status: 404 });
      expect(await rejection(mlq.getModel('no-such-model'))).toMatchObject({ status: 404 });
      expect(await rejection(mlq.setLabel('sdk-digits', 'production', 99))).toMatchObject({ status: 404 });
      expect(await rejection(mlq.deleteLabel('sdk-digits', 'never-set'))).toMatchObject({ status: 404 });
    });

    it('reports an unreachable API as a network_error with status 0', async () => {
      const e = await rejection(new MlqClient({ baseUrl: 'http://127.0.0.1:9' }).health());
      expect(e).toMatchObject({ status: 0, code: 'network_error' });
    });

    it('sends the API key: 401 without it, answers with it', async () => {
      const env = apiEnvSchema.parse({ ...stack.env, PORT: '0', HOST: '127.0.0.1', API_KEYS: 'k1,k2' });
      const api = await startApi(env);
      try {
        const anon = new MlqClient({ baseUrl: api.url });
        expect(await anon.health()).toEqual({ status: 'ok' });
        expect(await rejection(anon.listModels())).toMatchObject({ status: 401, code: 'unauthorized' });
        const keyed = new MlqClient({ baseUrl: api.url, apiKey: 'k2' });
        expect((await keyed.listModels()).map((m) => m.name)).toContain('sdk-digits');
      } finally {
        await api.stop();
      }
    });
  });

  describe('models and operations', () => {
    it('lists models and shows a version with metrics, params and its job', async () => {
      expect(await mlq.listModels()).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ name: 'sdk-digits', latestVersion: 1, labels: {} }),
        ]),
      );
      const m = await mlq.getModel('sdk-digits');
      // The answer is the contract's ModelDetail (the SDK's own copy had TF Serving's status optional).
      expect(modelDetailSchema.safeParse(m).error).toBeUndefined();
      expect(m.model_version_status).toEqual([
        { version: '1', state: 'AVAILABLE', status: { error_code: 'OK', error_message: '' } },
      ]);
      expect(m.versions).toHaveLength(1);
      expect(m.versions[0]).toMatchObject({
        version: 1,
        jobId: trained.id,
        params: { epochs: 3 },
        inputShape: [28, 28, 1],
      });
      expect(m.versions[0]!.metrics.acc).toBeGreaterThan(0.8);
      expect(await mlq.getModelVersion('sdk-digits', 1)).toMatchObject({ name: 'sdk-digits', version: 1 });
    });

    it('sets, moves and deletes labels', async () => {
      expect(await mlq.setLabel('sdk-digits', 'staging', 1)).toEqual({
        name: 'sdk-digits',
        label: 'staging',
        version: 1,
      });
      expect((await mlq.getModel('sdk-digits')).labels).toEqual({ staging: 1 });
      expect((await mlq.getModelVersion('sdk-digits', 1)).labels).toEqual(['staging']);
      await mlq.deleteLabel('sdk-digits', 'staging');
      expect((await mlq.getModel('sdk-digits')).labels).toEqual({});
    });

    it('answers health, readiness, workers, metrics and the OpenAPI document', async () => {
      expect(await mlq.health()).toEqual({ status: 'ok' });
      const ready = await mlq.ready();
      expect(ready).toEqual({ status: 'ready', redis: 'ok' });
      expect(readinessSchema.safeParse(ready).error).toBeUndefined();
      const workers = await mlq.workers();
      expect(workers[0]).toMatchObject({
        pid: stack.workers[0]!.proc.pid,
        queues: expect.arrayContaining(['fine-tune']),
      });
      expect(await mlq.metrics()).toMatch(/mlq_workers 1/);
      expect(await mlq.openapi()).toHaveProperty('paths');
    });
  });
});
