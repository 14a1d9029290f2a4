/**
 * The job view's counters and times over a job's whole life, through the real API and a real worker
 * process: a retried job counts the attempts of its new run against its allowance (never "4 of 3"),
 * and a tune's `startedAt` is when it first started, not when it last resumed from waiting for its
 * trials.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TuneResult } from '@mlq/contract';
import {
  http,
  repoRoot,
  startStack,
  waitForJob,
  type JobBody,
  type Stack,
} from '../../../test/support/stack.ts';

interface View extends JobBody {
  attemptsAllowed: number;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
}

/** 40 rows, two classes a line apart: an epoch of 10 batches of 4 takes a few milliseconds. */
function csv(): string {
  const rows = ['a,b,label'];
  for (let i = 0; i < 40; i++) {
    const c = i % 2;
    rows.push(`${(c * 2 + (i % 5) * 0.1).toFixed(2)},${(1 - c + (i % 3) * 0.1).toFixed(2)},${c}`);
  }
  return `${rows.join('\n')}\n`;
}

const ms = (iso: string | undefined) => Date.parse(iso ?? 'missing');

/** Runs a command in the repository, as a user would, to its end. */
function run(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: repoRoot, env: { ...process.env, MLQ_API_KEY: '' } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('the job view over retries and resumes', () => {
  let stack: Stack;
  let server: Server;
  let site: string;
  /** While false the data server answers 503, which a worker retries as a transient failure. */
  let serving = false;

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (!serving || req.url !== '/train.csv') return void res.writeHead(503).end();
      res.writeHead(200, { 'content-type': 'text/csv' }).end(csv());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    site = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // Plain http:// to this test's server: allowed where the API checks the URI and where the worker fetches it.
    const fetchEnv = { FETCH_ALLOW_HOSTS: '127.0.0.1' };
    stack = await startStack('job-view', { apiEnv: fetchEnv, workerEnv: fetchEnv });
  });
  afterAll(async () => {
    await stack?.stop();
    await new Promise((r) => server?.close(r));
  });

  const view = async (id: string) => (await http<View>(`${stack.url}/v1/jobs/${id}`)).body;

  it("counts a retried run's attempts from 0: it gets its 3 again, and cancelled after a retry it is 1 of 3", async () => {
    const submitted = await http<View>(`${stack.url}/v1/jobs/fine-tune`, 'POST', {
      model: 'retried',
      architecture: 'mlp',
      architectureOptions: { units: [4] },
      dataset: { format: 'csv', uri: `${site}/train.csv`, label: 'label' },
      // Far more than it will get to: the last run is cancelled while it trains.
      epochs: 1000,
      batchSize: 4,
      validationSplit: 0,
    });
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
    const id = submitted.body.id;
    const retry = async () => {
      const r = await http<View>(`${stack.url}/v1/jobs/${id}/retry`, 'POST');
      expect(r.status).toBe(202);
      return r.body;
    };
    // The data server is down: every attempt fails (after 2 s, then 4 s of backoff) and the job fails 3 of 3.
    // Its times span the run: from the first attempt's start, past both backoffs, to the last one's end.
    const first = (await waitForJob(stack.url, id, ['failed'], 60_000)) as View;
    expect(first).toMatchObject({ attempts: 3, attemptsAllowed: 3 });
    expect(ms(first.finishedAt) - ms(first.startedAt)).toBeGreaterThanOrEqual(6000);
    // Retried while it is still down: the new run has its 3 attempts, each one retried as before, and
    // its own times.
    const retriedAt = Date.now();
    const queued = await retry();
    expect(queued).toMatchObject({ attempts: 0, attemptsAllowed: 3 });
    expect(queued).not.toHaveProperty('startedAt');
    expect(queued).not.toHaveProperty('finishedAt');
    const second = (await waitForJob(stack.url, id, ['failed'], 60_000)) as View;
    expect(second).toMatchObject({ attempts: 3, attemptsAllowed: 3 });
    expect(ms(second.startedAt)).toBeGreaterThanOrEqual(retriedAt);
    expect(ms(second.finishedAt) - ms(second.startedAt)).toBeGreaterThanOrEqual(6000);

    // Retried once it is back, and cancelled while it trains: one attempt of this run, of 3.
    serving = true;
    const retriedAgainAt = Date.now();
    await retry();
    const until = Date.now() + 60_000;
    while (typeof (await view(id)).progress !== 'object') {
      if (Date.now() > until)
        throw new Error(`the retried job never reported: ${JSON.stringify(await view(id))}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const del = await http<{ state: string }>(`${stack.url}/v1/jobs/${id}`, 'DELETE');
    expect(del.body.state).toBe('cancelling');
    const cancelled = await waitForJob(stack.url, id, ['cancelled', 'completed', 'failed'], 60_000);
    expect(cancelled).toMatchObject({ state: 'cancelled', attempts: 1, attemptsAllowed: 3 });
    expect(ms((cancelled as View).startedAt)).toBeGreaterThanOrEqual(retriedAgainAt);

    // The log keeps every run's failed attempts, and says where each retry started counting again.
    const { logs } = (await http<{ logs: string[] }>(`${stack.url}/v1/jobs/${id}/logs`)).body;
    const lines = logs
      .filter((l) => / attempt \d of 3 failed: | retried after /.test(l))
      .map((l) => l.slice(25));
    const down = (n: number) =>
      expect.stringMatching(
        new RegExp(
          `^attempt ${n} of 3 failed: GET \\S+ answered 503 Service Unavailable${n < 3 ? '; it will be retried' : ''}$`,
        ),
      );
    const retried = 'retried after 3 attempts: this run has 3 attempts, counted from 0';
    expect(lines).toEqual([
      ...[down(1), down(2), down(3), retried],
      ...[down(1), down(2), down(3), retried],
      'attempt 1 of 3 failed: cancelled: cancelled by user',
    ]);
  }, 120_000);

  it("reports a tune's first start, so its duration covers its trials", async () => {
    const submitted = await http<View>(`${stack.url}/v1/jobs/tune`, 'POST', {
      model: 'timed-tune',
      architecture: 'mlp',
      architectureOptions: { units: [4] },
      dataset: { format: 'mnist', digits: [0, 1], limit: 40 },
      epochs: 1,
      search: { strategy: 'grid', space: { learningRate: [0.01, 0.001] } },
    });
    expect(submitted.status).toBe(202);
    const tune = (await waitForJob(stack.url, submitted.body.id, undefined, 60_000)) as View;
    expect(tune.state, JSON.stringify(tune)).toBe('completed');
    const trials = await Promise.all((tune.result as unknown as TuneResult).trials.map((t) => view(t.jobId)));
    expect(trials.map((t) => t.state)).toEqual(['completed', 'completed']);
    // The tune ran first and added its trials; it resumed once the last of them had finished.
    const firstTrialCreated = Math.min(...trials.map((t) => ms(t.createdAt)));
    const lastTrialFinished = Math.max(...trials.map((t) => ms(t.finishedAt)));
    expect(ms(tune.startedAt)).toBeLessThanOrEqual(firstTrialCreated);
    expect(ms(tune.finishedAt)).toBeGreaterThanOrEqual(lastTrialFinished);
    const trialsSpan = lastTrialFinished - firstTrialCreated;
    expect(ms(tune.finishedAt) - ms(tune.startedAt)).toBeGreaterThanOrEqual(trialsSpan);

    // The CLI's "completed tune <id> in <s> s" is that duration too (to a tenth of a second).
    const cli = await run(process.execPath, [
      'packages/sdk/src/cli.ts',
      'watch',
      tune.id,
      '--url',
      stack.url,
    ]);
    expect(cli.code, cli.stderr).toBe(0);
    const seconds = new RegExp(`^completed tune ${tune.id} in (\\d+\\.\\d) s:`, 'm').exec(cli.stdout)?.[1];
    expect(seconds, cli.stdout).toBeDefined();
    expect(Number(seconds) * 1000).toBeGreaterThanOrEqual(trialsSpan - 50);
  }, 90_000);
});
