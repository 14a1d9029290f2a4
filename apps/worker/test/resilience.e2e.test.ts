/**
 * Crashes, cancels, shutdowns and scale-out, with real worker processes: kill -9 (and the job-log
 * lines that explain the wait for a takeover), SIGTERM, DELETE over HTTP, and three workers draining
 * 300 jobs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { QueueEvents } from '@mlq/queues';
import { waitFor } from '../../../test/support/wait.ts';
import type { WorkerInfo } from '@mlq/contract';
import {
  http,
  REDIS_URL,
  startStack,
  waitForJob,
  type JobBody,
  type Stack,
  type WorkerProcess,
} from '../../../test/support/stack.ts';

// Short locks so a killed worker's job is taken over in seconds, not the production 45 s.
const fastLocks = { WORKER_LOCK_DURATION_MS: '3000', WORKER_STALLED_INTERVAL_MS: '1000' };

/** An mlp on 8,000 digits: a few seconds per epoch, long enough to interrupt mid-epoch. */
const longJob = (model: string, epochs = 4) => ({
  model,
  architecture: 'mlp',
  architectureOptions: { units: [256, 128] },
  dataset: { format: 'mnist', digits: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] },
  epochs,
  batchSize: 16,
  optimizer: 'adam',
});

interface Progress {
  epoch: number;
  epochs: number;
  /** Present in reports within an epoch: `epoch` is then the epoch under way. */
  batch?: number;
}

/** Epochs finished (and checkpointed) by the time of a progress report. */
const epochsDone = (p: Progress): number => (p.epoch ?? 0) - (p.batch === undefined ? 0 : 1);

const getJob = async (stack: Stack, id: string) => (await http<JobBody>(`${stack.url}/v1/jobs/${id}`)).body;
const logsOf = async (stack: Stack, id: string) =>
  (await http<{ logs: string[] }>(`${stack.url}/v1/jobs/${id}/logs`)).body.logs;
const epochLines = (logs: string[]) => logs.filter((l) => / epoch \d+\/\d+ loss /.test(l));

/** The id of the worker holding job `id`, from its heartbeat (GET /v1/workers). */
const holderOf = (stack: Stack, id: string) =>
  waitFor('the holding worker', async () => {
    const { workers } = (await http<{ workers: WorkerInfo[] }>(`${stack.url}/v1/workers`)).body;
    return workers.find((w) => w.currentJobs.some((j) => j.id === id))?.id;
  });

/** The id a worker process printed when it started serving. */
const idOf = (w: WorkerProcess) => /worker (\S+) serving /.exec(w.output())![1]!;

/** `s` with the characters a RegExp gives meaning to escaped. */
const literal = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The two lines a job's log gets when worker `lost` stops answering (3 s locks) and `taker` finds it
 * stalled and takes the job over, the second ending in how it resumes (`resume`, a RegExp source).
 */
const stallLines = (lost: string, taker: string, resume: string) => ({
  stalled: new RegExp(
    `^\\S+Z ${literal(`worker ${lost} stopped answering: its lock on this job expired (not renewed for 3 s: the worker was killed, hung or cut off from Redis), and the stalled-job check of worker ${taker} put the job back in the queue for the next free worker (stall 1 of the 5 allowed)`)}$`,
  ),
  takeover: new RegExp(
    `^\\S+Z ${literal(`worker ${lost} stopped answering (its lock on this job expired after 3 s without renewal: killed, hung or cut off from Redis), so worker ${taker} takes the job over: it `)}${resume}${literal(' (stall 1 of the 5 allowed)')}$`,
  ),
});

describe('jobs survive crashes, cancels and shutdowns', () => {
  let stack: Stack;
  beforeAll(async () => {
    // These workers serve only fine-tune, so an evaluate job stays waiting.
    stack = await startStack('resilience', {
      workers: 0,
      workerEnv: { ...fastLocks, WORKER_QUEUES: 'fine-tune' },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  // Training on 2 shared cores can take minutes when the machine is loaded: a generous limit.
  it('resumes a fine-tune from its last epoch checkpoint after kill -9 of its worker', async () => {
    const a = await stack.spawnWorker();
    const { body } = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', longJob('crash'));
    await waitFor(
      'epoch 1',
      async () => epochsDone((await getJob(stack, body.id)).progress as Progress) >= 1 || undefined,
    );
    const lost = await holderOf(stack, body.id);
    expect(lost).toBe(idOf(a));
    // kill -9 the worker; its sandbox child sees the IPC channel close and exits too.
    const killedAt = Date.now();
    a.kill('SIGKILL');
    await a.exited;
    const taker = idOf(await stack.spawnWorker());
    const resumedLine = await waitFor('resume', async () =>
      (await logsOf(stack, body.id)).find((l) => l.includes('resuming from')),
    );
    const resumeSeconds = (Date.parse(resumedLine.slice(0, 24)) - killedAt) / 1000;
    console.log(`kill -9 → training resumed in ${resumeSeconds.toFixed(1)} s (lockDuration 3 s)`);
    // The log says why nothing happened meanwhile, and from where the new worker resumes, before the
    // job's own line.
    const expected = stallLines(lost, taker, 'resumes from the checkpoint at the end of epoch (\\d+)');
    const logs = await logsOf(stack, body.id);
    const stalled = logs.findIndex((l) => expected.stalled.test(l));
    const takeover = logs.findIndex((l) => expected.takeover.test(l));
    expect(stalled, logs.join('\n')).toBeGreaterThanOrEqual(0);
    expect(takeover, logs.join('\n')).toBeGreaterThan(stalled);
    expect(logs.indexOf(resumedLine)).toBeGreaterThan(takeover);
    const epoch = expected.takeover.exec(logs[takeover]!)![1];
    expect(resumedLine).toContain(`resuming from the checkpoint at the end of epoch ${epoch} `);

    const done = await waitForJob(stack.url, body.id, undefined, 180_000);
    expect(done.state).toBe('completed');
    const result = done.result as { epochs: number; history: Progress[] };
    expect(result.epochs).toBe(4);
    expect(result.history.map((h) => h.epoch)).toEqual([1, 2, 3, 4]);
    // At most the interrupted epoch is redone: 4 epochs, at most 5 epoch runs in all.
    expect(epochLines(await logsOf(stack, body.id)).length).toBeLessThanOrEqual(5);
  }, 300_000);

  it('says a job taken over after kill -9 before its first checkpoint starts over', async () => {
    for (const w of stack.workers.splice(0)) {
      w.kill('SIGKILL');
      await w.exited;
    }
    const a = await stack.spawnWorker();
    // Batches of 4: epoch 1 takes long enough to be interrupted well before its end.
    const { body } = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', {
      ...longJob('no-checkpoint', 1),
      batchSize: 4,
    });
    await waitFor('a report within epoch 1', async () => {
      const p = (await getJob(stack, body.id)).progress as Progress;
      return p.epoch === 1 && p.batch !== undefined ? p : undefined;
    });
    const lost = await holderOf(stack, body.id);
    a.kill('SIGKILL');
    await a.exited;
    const taker = idOf(await stack.spawnWorker());
    const expected = stallLines(lost, taker, literal('starts over, as no checkpoint was saved'));
    const logs = await waitFor('the takeover line', async () => {
      const l = await logsOf(stack, body.id);
      return l.some((x) => expected.takeover.test(x)) ? l : undefined;
    });
    expect(logs.some((l) => expected.stalled.test(l))).toBe(true);
    await http(`${stack.url}/v1/jobs/${body.id}`, 'DELETE');
    await waitForJob(stack.url, body.id, ['cancelled', 'failed', 'completed'], 60_000);
  }, 180_000);

  it('cancels a running job within 10 s and keeps its checkpoint', async () => {
    const { body } = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', longJob('cancel', 20));
    await waitFor(
      'epoch 1',
      async () => epochsDone((await getJob(stack, body.id)).progress as Progress) >= 1 || undefined,
    );
    const t0 = Date.now();
    const del = await http<{ state: string }>(`${stack.url}/v1/jobs/${body.id}`, 'DELETE');
    expect(del.status).toBe(202);
    expect(del.body.state).toBe('cancelling');
    const j = await waitForJob(stack.url, body.id, ['cancelled', 'failed', 'completed'], 30_000);
    const seconds = (Date.now() - t0) / 1000;
    console.log(`DELETE → job stopped in ${seconds.toFixed(2)} s`);
    expect(j.state).toBe('cancelled');
    expect(j.error).toMatch(/cancelled/);
    expect(seconds).toBeLessThan(10);
    const storeDir = fileURLToPath(stack.storeUri);
    expect(existsSync(path.join(storeDir, 'runs', body.id, 'checkpoint.json'))).toBe(true);
  });

  it('removes a waiting job on DELETE', async () => {
    const { body } = await http<JobBody>(`${stack.url}/v1/jobs/evaluate`, 'POST', {
      model: 'crash',
      dataset: { format: 'mnist', digits: [0, 1], split: 'test' },
    });
    expect((await getJob(stack, body.id)).state).toBe('waiting');
    const del = await http<{ state: string }>(`${stack.url}/v1/jobs/${body.id}`, 'DELETE');
    expect(del.body.state).toBe('removed');
    expect((await http(`${stack.url}/v1/jobs/${body.id}`)).status).toBe(404);
  });

  it('on SIGTERM checkpoints the running job and hands it to another worker', async () => {
    for (const w of stack.workers.splice(0)) {
      w.kill('SIGKILL');
      await w.exited;
    }
    const a = await stack.spawnWorker();
    const { body } = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', longJob('handover', 3));
    await waitFor(
      'epoch 1',
      async () => epochsDone((await getJob(stack, body.id)).progress as Progress) >= 1 || undefined,
    );
    await stack.spawnWorker();
    const t0 = Date.now();
    a.kill('SIGTERM');
    expect(await a.exited).toBe(0);
    const exitSeconds = (Date.now() - t0) / 1000;
    expect(exitSeconds).toBeLessThan(30);
    const done = await waitForJob(stack.url, body.id, undefined, 180_000);
    expect(done.state).toBe('completed');
    const logs = await logsOf(stack, body.id);
    expect(logs.some((l) => l.includes('shutdown: saved a checkpoint'))).toBe(true);
    expect(logs.some((l) => /resuming from the checkpoint at epoch \d+, batch \d+/.test(l))).toBe(true);
    // Handed back, not lost: nothing about a worker that stopped answering.
    expect(logs.filter((l) => l.includes('stopped answering'))).toEqual([]);
    expect((done.result as { history: Progress[] }).history.map((h) => h.epoch)).toEqual([1, 2, 3]);
    expect(done.attempts).toBe(1);
  }, 300_000);

  it('returns the first job for a repeated Idempotency-Key', async () => {
    const payload = { ...longJob('idem'), epochs: 1 };
    const a = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', payload, {
      'Idempotency-Key': `k-${stack.prefix}`,
    });
    const b = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', payload, {
      'Idempotency-Key': `k-${stack.prefix}`,
    });
    expect(a.status).toBe(202);
    expect(b.status).toBe(200);
    expect(b.body.id).toBe(a.body.id);
    await http(`${stack.url}/v1/jobs/${a.body.id}`, 'DELETE');
  });
});

describe('scale-out', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack('scale', {
      workers: 3,
      workerEnv: { WORKER_QUEUES: 'evaluate,fine-tune', WORKER_CONCURRENCY: '2' },
    });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('3 workers drain 300 jobs: none lost, none completed twice', async () => {
    const m = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', {
      model: 'tiny',
      architecture: 'mlp',
      architectureOptions: { units: [8] },
      dataset: { format: 'mnist', digits: [0, 1], limit: 50 },
      epochs: 1,
    });
    expect((await waitForJob(stack.url, m.body.id)).state).toBe('completed');

    const events = new QueueEvents('evaluate', { connection: { url: REDIS_URL }, prefix: stack.prefix });
    await events.waitUntilReady();
    const completions = new Map<string, number>();
    events.on('completed', ({ jobId }) => completions.set(jobId, (completions.get(jobId) ?? 0) + 1));
    const ids: string[] = [];
    for (let i = 0; i < 300; i++) {
      const r = await http<JobBody>(`${stack.url}/v1/jobs/evaluate`, 'POST', {
        model: 'tiny',
        dataset: { format: 'mnist', digits: [0, 1], split: 'test', limit: 10 },
      });
      ids.push(r.body.id);
    }
    await waitFor('300 completions', async () => (completions.size >= 300 ? true : undefined), 240_000);
    await events.close();
    expect(new Set(ids).size).toBe(300);
    for (const id of ids) expect(completions.get(id)).toBe(1);
    // Every worker ran jobs, so within a heartbeat (5 s) each reports the backend its jobs ran on.
    const workers = await waitFor(
      'backends in /v1/workers',
      async () => {
        const ws = (await http<{ workers: { id: string; backend: string }[] }>(`${stack.url}/v1/workers`))
          .body.workers;
        return ws.length === 3 && ws.every((w) => w.backend !== 'auto') ? ws : undefined;
      },
      15_000,
    );
    for (const w of workers) expect(['wasm', 'cpu', 'tensorflow', 'tensorflow-gpu']).toContain(w.backend);
    const states = await Promise.all(ids.slice(0, 20).map((id) => getJob(stack, id)));
    for (const s of states) expect(s).toMatchObject({ state: 'completed', attempts: 1 });
  });
});

describe('global concurrency', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack('global', { workers: 2, apiEnv: { QUEUE_GLOBAL_CONCURRENCY: 'fine-tune=1' } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('runs at most QUEUE_GLOBAL_CONCURRENCY jobs of a queue at once across workers', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', {
        model: `g${i}`,
        architecture: 'mlp',
        dataset: { format: 'mnist', digits: [0, 1], limit: 600 },
        epochs: 3,
      });
      ids.push(r.body.id);
    }
    let maxActive = 0;
    let done = 0;
    while (done < 3) {
      const states = await Promise.all(ids.map(async (id) => (await getJob(stack, id)).state));
      maxActive = Math.max(maxActive, states.filter((s) => s === 'active').length);
      done = states.filter((s) => s === 'completed').length;
      expect(states).not.toContain('failed');
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(maxActive).toBe(1);
  });
});
