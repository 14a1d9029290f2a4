/**
 * Both processes' /metrics, scraped over HTTP: the names (Prometheus conventions) and values that
 * move after a request, a tiny training job and a prediction.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  http,
  startStack,
  waitForJob,
  type JobBody,
  type Stack,
  type WorkerProcess,
} from '../../../test/support/stack.ts';

/** The value of one sample (`name{labels} value`) in Prometheus text; undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[4]);
  }
  return undefined;
}

/** Every metric family named by a `# TYPE` line. */
const families = (text: string) => [...text.matchAll(/^# TYPE (\S+) (\w+)$/gm)].map((m) => `${m[1]} ${m[2]}`);

describe('metrics', () => {
  let stack: Stack;
  let workerMetrics: string;
  let worker: WorkerProcess;
  beforeAll(async () => {
    stack = await startStack('metrics', { workers: 0 });
    const w = (worker = await stack.spawnWorker({ WORKER_METRICS_PORT: '0', WORKER_QUEUES: 'fine-tune' }));
    const port = /metrics on http:\/\/[^:]+:(\d+)\/metrics/.exec(w.output())?.[1];
    expect(port, w.output()).toBeDefined();
    workerMetrics = `http://127.0.0.1:${port}/metrics`;
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('the API exposes process, HTTP, predict, queue and worker metrics that move', async () => {
    const scrape = async () => (await http<string>(`${stack.url}/metrics`)).body;
    const before = await scrape();
    const names = families(before);
    for (const f of [
      'process_cpu_seconds_total counter',
      'process_resident_memory_bytes gauge',
      'nodejs_eventloop_lag_seconds gauge',
      'http_request_duration_seconds histogram',
      'mlq_predict_duration_seconds histogram',
      'mlq_predict_batch_size histogram',
      'mlq_queue_jobs gauge',
      'mlq_workers gauge',
      'mlq_rate_limited_requests_total counter',
    ])
      expect(names).toContain(f);
    const route = { method: 'GET', route: '/v1/jobs/:id', status_code: '404' };
    expect(sample(before, 'http_request_duration_seconds_count', route)).toBeUndefined();
    await http(`${stack.url}/v1/jobs/nope`);
    await http(`${stack.url}/v1/jobs/nope`);
    const after = await scrape();
    expect(sample(after, 'http_request_duration_seconds_count', route)).toBe(2);
    // Routes are patterns, never raw URLs.
    expect(after).not.toContain('/v1/jobs/nope');
    expect(sample(after, 'mlq_workers')).toBe(1);

    const submitted = await http<JobBody>(`${stack.url}/v1/jobs/fine-tune`, 'POST', {
      model: 'tiny',
      architecture: 'mlp',
      architectureOptions: { units: [8] },
      dataset: { format: 'mnist', digits: [0, 1], limit: 200 },
      epochs: 2,
    });
    expect(submitted.status).toBe(202);
    const done = await waitForJob(stack.url, submitted.body.id);
    expect(done.state, JSON.stringify(done)).toBe('completed');
    const trained = await scrape();
    expect(sample(trained, 'mlq_queue_jobs', { queue: 'fine-tune', state: 'completed' })).toBe(1);
    expect(sample(trained, 'mlq_queue_jobs', { queue: 'fine-tune', state: 'waiting' })).toBe(0);

    const predict = await http<{ predictions: number[][] }>(`${stack.url}/v1/models/tiny:predict`, 'POST', {
      instances: [new Array(784).fill(0), new Array(784).fill(0.5)],
    });
    expect(predict.status).toBe(200);
    const served = await scrape();
    expect(sample(served, 'mlq_predict_duration_seconds_count', { model: 'tiny' })).toBe(1);
    expect(sample(served, 'mlq_predict_batch_size_count')).toBe(1);
    expect(sample(served, 'mlq_predict_batch_size_sum')).toBe(2);
    expect(
      sample(served, 'http_request_duration_seconds_count', {
        route: '/v1/models/:name[/versions/:version|/labels/:label]:predict',
        status_code: '200',
      }),
    ).toBe(1);
  });

  it('the worker exposes its backend, job outcomes and training throughput on WORKER_METRICS_PORT', async () => {
    // Runs after the training job above.
    const text = await (await fetch(workerMetrics)).text();
    const names = families(text);
    for (const f of [
      'process_cpu_seconds_total counter',
      'mlq_worker_up gauge',
      'mlq_training_epoch_duration_seconds histogram',
      'mlq_training_samples_per_second gauge',
      'mlq_training_samples_total counter',
      'mlq_worker_jobs_total counter',
    ])
      expect(names).toContain(f);
    const ft = { job_type: 'fine-tune' };
    expect(sample(text, 'mlq_training_epoch_duration_seconds_count', ft)).toBe(2);
    expect(sample(text, 'mlq_training_epoch_duration_seconds_sum', ft)).toBeGreaterThan(0);
    expect(sample(text, 'mlq_training_samples_total', ft)).toBe(400); // 200 rows × 2 epochs
    expect(sample(text, 'mlq_training_samples_per_second', ft)).toBeGreaterThan(0);
    expect(sample(text, 'mlq_worker_jobs_total', { queue: 'fine-tune', outcome: 'completed' })).toBe(1);
    // The up gauge carries one backend: the one the sandbox reported once it started (wasm here).
    const up = text.split('\n').filter((l) => l.startsWith('mlq_worker_up{'));
    expect(up).toHaveLength(1);
    expect(up[0]).toMatch(/^mlq_worker_up\{backend="(wasm|cpu|tensorflow|tensorflow-gpu)"\} 1$/);
    expect((await fetch(workerMetrics.replace('/metrics', '/other'))).status).toBe(404);
  });

  it("the worker's log is JSON lines, and every line about a job carries its id and attempt", () => {
    const lines = worker
      .output()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const started = lines.find((l) => l.msg === 'job started');
    expect(started).toMatchObject({ name: 'worker', queue: 'fine-tune', attempt: 1 });
    const jobId = started!.jobId;
    // The sandbox child's lines (the job's own log lines among them) name the job too.
    const sandbox = lines.filter((l) => l.name === 'sandbox');
    expect(sandbox.some((l) => /^epoch 2\/2 loss/.test(String(l.msg)))).toBe(true);
    for (const l of sandbox) expect(l).toMatchObject({ jobId, attempt: 1, queue: 'fine-tune' });
    expect(lines.find((l) => l.msg === 'job completed')).toMatchObject({ jobId, attempt: 1 });
  });
});
