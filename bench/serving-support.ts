/**
 * What the serving benchmarks share (bench/predict.ts, bench/infer.ts): the API as its own process,
 * keep-alive HTTP clients, percentiles, and the mnist transfer model they serve.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { Client } from 'undici';
import { http as request, repoRoot, waitForJob, type JobBody } from '../test/support/stack.ts';

export interface ApiProcess {
  proc: ChildProcess;
  url: string;
  stop(): Promise<void>;
}

/** `node apps/api/src/main.ts` (as the image runs it) on an ephemeral port; resolves once it listens. */
export async function startApiProcess(env: Record<string, string>): Promise<ApiProcess> {
  const proc = spawn(process.execPath, [path.join(repoRoot, 'apps/api/src/main.ts')], {
    cwd: repoRoot,
    env: { ...process.env, ...env, PORT: '0', HOST: '127.0.0.1', RATE_LIMIT_PER_MINUTE: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let listening = false;
  // Kept until the API listens (for the error below); later lines are read and dropped.
  proc.stderr!.on('data', (d: Buffer) => void (listening || (out += d.toString())));
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      if (listening) return;
      out += d.toString();
      const m = /api listening on (http:\/\/[\d.:]+)/.exec(out);
      if (m) {
        listening = true;
        resolve(m[1]!);
      }
    });
    void exited.then(() => reject(new Error(`api exited before listening:\n${out}`)));
  });
  return { proc, url, stop: () => (proc.kill('SIGTERM'), exited) };
}

/**
 * One keep-alive HTTP connection per simulated user, one request at a time on it, like a real
 * client library holds; undici's Client, which costs the load generator (on the server's cores
 * here) about a third of the CPU per request of node:http's. The answer is read in full.
 */
export function poster(url: string): (body: string) => Promise<number> {
  const u = new URL(url);
  const client = new Client(u.origin, { pipelining: 1 });
  const headers = { 'content-type': 'application/json' };
  return async (body) => {
    const res = await client.request({ path: u.pathname, method: 'POST', headers, body });
    await res.body.arrayBuffer();
    if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
    return res.statusCode;
  };
}

/**
 * The cheapest load generator: one keep-alive HTTP/1.1 connection per simulated user, one request at
 * a time on it, over a bare `net.Socket`, each distinct body's request bytes built once. It reads the
 * status line and `Content-Length`, waits for the whole body and checks nothing else, as wrk does; an
 * answer it cannot read (chunked, a closed connection, bytes past the body) rejects, as does any
 * status but 200. About a third of undici's CPU per request (0.03 against 0.09–0.10 ms, measured on
 * 2 cores under the predict bench's load); on a machine where the load generator shares the server's
 * cores, that is CPU left to the server.
 */
export function rawPoster(url: string): (body: string) => Promise<number> {
  const u = new URL(url);
  const socket = net.connect(Number(u.port), u.hostname);
  socket.setNoDelay(true);
  let buf: Buffer | undefined;
  let pending: { resolve(status: number): void; reject(e: Error): void } | undefined;
  const settle = (e: Error | undefined, status = 0) => {
    const p = pending;
    pending = undefined;
    buf = undefined;
    if (e) p?.reject(e);
    else p?.resolve(status);
  };
  socket.on('data', (chunk: Buffer) => {
    buf = buf ? Buffer.concat([buf, chunk]) : chunk;
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = buf.toString('latin1', 0, end);
    const length = /\r\ncontent-length: *(\d+)/i.exec(head)?.[1];
    if (length === undefined) return settle(new Error(`an answer without Content-Length: ${head}`));
    const total = end + 4 + Number(length);
    if (buf.length < total) return;
    if (buf.length > total || !pending) return settle(new Error('bytes past the answer'));
    const status = Number(head.slice(9, 12));
    settle(status === 200 ? undefined : new Error(`HTTP ${status}`), status);
  });
  socket.on('error', (e) => settle(e));
  socket.on('close', () => settle(new Error('the server closed the connection')));
  const prefix = `POST ${u.pathname} HTTP/1.1\r\nhost: ${u.host}\r\ncontent-type: application/json\r\ncontent-length: `;
  const requests = new Map<string, Buffer>();
  return (body) =>
    new Promise<number>((resolve, reject) => {
      if (pending) return reject(new Error('one request at a time per connection'));
      pending = { resolve, reject };
      let bytes = requests.get(body);
      if (!bytes) {
        bytes = Buffer.from(`${prefix}${Buffer.byteLength(body)}\r\n\r\n${body}`);
        requests.set(body, bytes);
      }
      socket.write(bytes);
    });
}

/** The p-th percentile of sorted values (nearest rank). */
export const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Trains the served model the cheap way (latency depends on the architecture, not the accuracy):
 * an mnist-cnn base on 300 digits 0-4 for one epoch, then a frozen-base transfer head on 5-9.
 * Registers `bench-base@1` and `bench-transfer@1`.
 */
export async function trainTransferModel(url: string): Promise<void> {
  const job = async (payload: object) => {
    const r = await request<JobBody>(`${url}/v1/jobs/fine-tune`, 'POST', payload);
    if (r.status !== 202) throw new Error(`submit failed: ${JSON.stringify(r.body)}`);
    const j = await waitForJob(url, r.body.id, undefined, 600_000);
    if (j.state !== 'completed') throw new Error(`training failed: ${j.error}`);
  };
  const dataset = (digits: number[]) => ({ format: 'mnist', digits, limit: 300 });
  await job({ model: 'bench-base', architecture: 'mnist-cnn', dataset: dataset([0, 1, 2, 3, 4]), epochs: 1 });
  await job({ model: 'bench-transfer', base: 'bench-base@1', dataset: dataset([5, 6, 7, 8, 9]), epochs: 1 });
}
