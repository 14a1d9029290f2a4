/**
 * A cancel or a shutdown that comes while a job waits on a download, through the real API, Redis and
 * real worker processes. The test's servers (plain http, and one that answers as S3 does) send a
 * response's headers and the start of its body, then stall (or, for one S3 HEAD, send nothing at
 * all). `DELETE /v1/jobs/{id}` ends such a job
 * `cancelled` at once, as a cancel during training does: one attempt, no retry, no further request,
 * no partial download left in WORKER_CACHE_DIR/fetch. A worker stopped with SIGTERM hands the job
 * back instead, without costing it an attempt, and another worker runs it to the end.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../../test/support/wait.ts';
import { http, startStack, waitForJob, type JobBody, type Stack } from '../../../test/support/stack.ts';

/** 40 rows, two classes a line apart: trains in a blink. */
function csv(): string {
  const rows = ['a,b,label'];
  for (let i = 0; i < 40; i++) {
    const c = i % 2;
    rows.push(`${(c * 2 + (i % 5) * 0.1).toFixed(2)},${(1 - c + (i % 3) * 0.1).toFixed(2)},${c}`);
  }
  return `${rows.join('\n')}\n`;
}

/** What a stalled response promises: more than it sends, and well under FETCH_MAX_MB. */
const PROMISED = 50_000;

/** While set (between tests), the servers answer every request 404: nothing stalls a job any longer. */
let closing = false;

/** A request one of the test's servers saw, and whether the client has closed its connection since. */
interface Seen {
  path: string;
  closed: boolean;
}

/** Starts a server on 127.0.0.1 that records each request (by path, without the query) before `answer` runs. */
async function serve(
  seen: Seen[],
  answer: (req: IncomingMessage, res: ServerResponse, p: string) => void,
): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const p = new URL(req.url!, 'http://x').pathname;
    const s: Seen = { path: p, closed: false };
    seen.push(s);
    res.on('close', () => (s.closed = true));
    if (closing) return void res.writeHead(404).end();
    answer(req, res, p);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** Sends the headers of a `PROMISED`-byte body and its first line, then nothing more. */
function stall(res: ServerResponse, headers: Record<string, string> = {}): void {
  res.writeHead(200, { 'content-length': String(PROMISED), ...headers });
  res.write('a,b,label\n');
}

describe('a cancel or shutdown while a job downloads', () => {
  let stack: Stack;
  let tmp: string;
  let site: Server;
  let s3: Server;
  let siteUrl: string;
  const seen: Seen[] = [];
  const seenS3: Seen[] = [];
  /** Requests of /once.csv answered so far: the first stalls, the later ones get the file. */
  let onceServed = 0;

  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'mlq-cancel-fetch-'));
    ({ server: site, url: siteUrl } = await serve(seen, (req, res, p) => {
      if (p === '/train.csv') return void res.writeHead(200).end(csv());
      if (p === '/stall.csv' || p === '/stall-model/model.json') return stall(res);
      if (p === '/once.csv' && onceServed++ === 0) return stall(res);
      if (p === '/once.csv') return void res.writeHead(200).end(csv());
      res.writeHead(404).end();
    }));
    // An S3 endpoint (path-style, as the SDK addresses a custom one) whose object's body stalls.
    let s3Url: string;
    ({ server: s3, url: s3Url } = await serve(seenS3, (req, res, p) => {
      // Not even the HEAD's answer comes.
      if (p === '/data/silent.csv') return;
      if (p !== '/data/stall.csv') return void res.writeHead(404).end();
      const headers = { etag: '"stall-v1"', 'last-modified': new Date(0).toUTCString() };
      if (req.method === 'HEAD')
        return void res.writeHead(200, { 'content-length': String(PROMISED), ...headers }).end();
      stall(res, headers);
    }));
    const fetchEnv = { FETCH_ALLOW_HOSTS: '127.0.0.1', FETCH_TIMEOUT_MS: '30000' };
    stack = await startStack('cancel-fetch', {
      apiEnv: fetchEnv,
      workerEnv: {
        ...fetchEnv,
        WORKER_CACHE_DIR: path.join(tmp, 'cache'),
        // The worker's S3 client finds the endpoint and a key pair the SDK's way.
        AWS_ENDPOINT_URL_S3: s3Url,
        AWS_ACCESS_KEY_ID: 'test',
        AWS_SECRET_ACCESS_KEY: 'test',
        AWS_REGION: 'us-east-1',
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    for (const server of [site, s3]) {
      server?.closeAllConnections();
      await new Promise((r) => server?.close(r));
    }
    await rm(tmp, { recursive: true, force: true });
  });

  /** The jobs a test submitted: whatever state a failing test left them in, none outlives it. */
  const submitted: string[] = [];
  afterEach(async () => {
    // Ends any stalled response, and answers any request again with a 404, so a job still waiting on
    // one fails at once (and leaves the worker to the next test).
    closing = true;
    for (const server of [site, s3]) server.closeAllConnections();
    try {
      for (const id of submitted.splice(0)) {
        const state = () => http<JobBody>(`${stack.url}/v1/jobs/${id}`).then((r) => r.body.state);
        await waitFor(`job ${id} to stop`, async () => ((await state()) === 'active' ? undefined : true));
        if (['waiting', 'delayed', 'prioritized'].includes(await state()))
          await http(`${stack.url}/v1/jobs/${id}`, 'DELETE');
      }
    } finally {
      closing = false;
    }
  });

  const fetchDir = () => path.join(tmp, 'cache', 'fetch');
  /** Partial downloads or extractions under WORKER_CACHE_DIR/fetch: temp folders and part files. */
  const leftovers = async () =>
    ((await readdir(fetchDir(), { recursive: true }).catch(() => [])) as string[]).filter((f) =>
      f.split(path.sep).some((part) => /\.(tmp|part)$/.test(part)),
    );
  /** Waits until a download is under way: some bytes of a body are in the cache's temp folder. */
  const downloading = () =>
    waitFor(
      'a partial download in WORKER_CACHE_DIR/fetch',
      async () => {
        for (const f of await leftovers()) {
          if (path.basename(f) !== 'body') continue;
          const size = await stat(path.join(fetchDir(), f)).then(
            (s) => s.size,
            () => 0,
          );
          if (size > 0) return true;
        }
        return undefined;
      },
      30_000,
    );
  const submit = async (type: string, body: object) => {
    const r = await http<JobBody>(`${stack.url}/v1/jobs/${type}`, 'POST', body);
    expect(r.status, JSON.stringify(r.body)).toBe(202);
    submitted.push(r.body.id);
    return r.body.id;
  };
  const fineTune = (model: string, uri: string, more: object = {}) => ({
    model,
    architecture: 'mlp',
    architectureOptions: { units: [4] },
    dataset: { format: 'csv', uri, label: 'label' },
    epochs: 2,
    batchSize: 8,
    ...more,
  });
  const logsOf = async (id: string) =>
    (await http<{ logs: string[] }>(`${stack.url}/v1/jobs/${id}/logs`)).body.logs;

  /**
   * Cancels job `id` while it downloads, and checks that it ends as a cancel during training does:
   * within seconds, `cancelled` after its one attempt, not retried, the download's connection closed
   * and not asked for again (`requests()`: the server's requests for what it downloads), and no
   * partial file left.
   */
  async function cancelWhileDownloading(id: string, requests: () => Seen[]): Promise<void> {
    await downloading();
    await cancelled(id, requests);
  }

  /** Cancels job `id` while its one request (of `requests()`) is open, and checks as above. */
  async function cancelled(id: string, requests: () => Seen[]): Promise<void> {
    expect(requests()).toHaveLength(1);
    const t0 = Date.now();
    const del = await http<{ state: string }>(`${stack.url}/v1/jobs/${id}`, 'DELETE');
    expect(del.status).toBe(202);
    expect(del.body.state).toBe('cancelling');
    // `delayed` is where an attempt that will be retried goes: stop there too, rather than wait it out.
    const j = await waitForJob(stack.url, id, ['cancelled', 'failed', 'completed', 'delayed'], 15_000);
    expect(j, JSON.stringify(j)).toMatchObject({
      state: 'cancelled',
      error: 'cancelled: cancelled by user',
      attempts: 1,
    });
    expect(Date.now() - t0).toBeLessThan(5000);
    // The download stopped: its connection is closed and nothing asked again.
    expect(requests()).toEqual([expect.objectContaining({ closed: true })]);
    expect(await leftovers()).toEqual([]);
    const logs = await logsOf(id);
    expect(logs.filter((l) => / attempt \d of \d failed: /.test(l)).map((l) => l.slice(25))).toEqual([
      'attempt 1 of 3 failed: cancelled: cancelled by user',
    ]);
  }

  it('cancels a job while it downloads its dataset over http', async () => {
    const id = await submit('fine-tune', fineTune('stalled-http', `${siteUrl}/stall.csv`));
    await cancelWhileDownloading(id, () => seen.filter((s) => s.path === '/stall.csv'));
  });

  it('cancels a job while it reads its dataset from s3://', async () => {
    const id = await submit('fine-tune', fineTune('stalled-s3', 's3://data/stall.csv'));
    // Its HEAD, then the GET whose body stalls.
    await cancelWhileDownloading(id, () => seenS3.filter((s) => s.path === '/data/stall.csv').slice(1));
    expect(seenS3.filter((s) => s.path === '/data/stall.csv')).toHaveLength(2);
  });

  it('cancels a job while S3 has not answered its HEAD', async () => {
    const id = await submit('fine-tune', fineTune('silent-s3', 's3://data/silent.csv'));
    const requests = () => seenS3.filter((s) => s.path === '/data/silent.csv');
    await waitFor('the HEAD request', async () => (requests().length > 0 ? true : undefined));
    await cancelled(id, requests);
  });

  it('cancels a job while it downloads its base model over http', async () => {
    const id = await submit(
      'fine-tune',
      fineTune('stalled-base', `${siteUrl}/train.csv`, {
        base: `${siteUrl}/stall-model/model.json`,
        architecture: undefined,
        architectureOptions: undefined,
      }),
    );
    await cancelWhileDownloading(id, () => seen.filter((s) => s.path === '/stall-model/model.json'));
  });

  // Last: it stops the stack's first worker.
  it('on SIGTERM during a download hands the job back, costing no attempt; another worker completes it', async () => {
    const [a] = stack.workers;
    const id = await submit('fine-tune', fineTune('handed-back', `${siteUrl}/once.csv`));
    await downloading();
    const b = await stack.spawnWorker();
    const t0 = Date.now();
    a!.kill('SIGTERM');
    expect(await a!.exited).toBe(0);
    // Not after WORKER_SHUTDOWN_TIMEOUT_MS (25 s): the download stopped at once.
    expect(Date.now() - t0).toBeLessThan(10_000);
    const j = await waitForJob(stack.url, id, ['completed', 'failed', 'cancelled', 'delayed'], 60_000);
    expect(j, `${JSON.stringify(j)}\n${b.output()}`).toMatchObject({ state: 'completed', attempts: 1 });
    // The stalled download was dropped; the other worker fetched the file anew.
    expect(seen.filter((s) => s.path === '/once.csv')).toEqual([
      expect.objectContaining({ closed: true }),
      expect.objectContaining({ path: '/once.csv' }),
    ]);
    expect((await logsOf(id)).filter((l) => / failed: /.test(l))).toEqual([]);
    expect(await leftovers()).toEqual([]);
  });
});
