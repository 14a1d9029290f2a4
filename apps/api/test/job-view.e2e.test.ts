/**
 * The job view's counters over a job's whole life, through the real API and a real worker process: a
 * retried job counts the attempts of its new run against its allowance (never "4 of 3").
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { http, startStack, waitForJob, type JobBody, type Stack } from '../../../test/support/stack.ts';

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
    expect(await waitForJob(stack.url, id, ['failed'], 60_000)).toMatchObject({
      attempts: 3,
      attemptsAllowed: 3,
    });
    // Retried while it is still down: the new run has its 3 attempts, each one retried as before.
    expect(await retry()).toMatchObject({ attempts: 0, attemptsAllowed: 3 });
    expect(await waitForJob(stack.url, id, ['failed'], 60_000)).toMatchObject({
      attempts: 3,
      attemptsAllowed: 3,
    });

    // Retried once it is back, and cancelled while it trains: one attempt of this run, of 3.
    serving = true;
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
});
