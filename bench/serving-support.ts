/**
 * What the serving benchmarks share (bench/predict.ts, bench/infer.ts): the API as its own process,
 * keep-alive HTTP clients, percentiles, and the mnist transfer model they serve.
 */
import { spawn, type ChildProcess } from 'node:child_process';
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
