/**
 * What the serving benchmarks share (bench/predict.ts, bench/infer.ts): the API as its own process,
 * keep-alive HTTP clients, percentiles, and the mnist transfer model they serve.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
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
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /api listening on (http:\/\/[\d.:]+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    void exited.then(() => reject(new Error(`api exited before listening:\n${out}`)));
  });
  return { proc, url, stop: () => (proc.kill('SIGTERM'), exited) };
}

/** One keep-alive HTTP client per simulated user, like a real client library would hold. */
export function poster(url: string): (body: string) => Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const u = new URL(url);
  return (body) =>
    new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: u.hostname,
          port: u.port,
          path: u.pathname,
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json' },
        },
        (res) => {
          res.resume();
          res.on('end', () =>
            res.statusCode === 200 ? resolve(res.statusCode) : reject(new Error(`HTTP ${res.statusCode}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
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
