/**
 * The worker's Prometheus metrics (prom-client), served by a small HTTP server at
 * `GET http://<WORKER_METRICS_HOST>:<WORKER_METRICS_PORT>/metrics` (text exposition format 0.0.4).
 * Training metrics come from the progress each job reports after every epoch (fit.ts's
 * EpochProgress: `epoch`, `samplesPerSec`, `epochSeconds`), which BullMQ relays from the sandbox
 * child to this process as Worker `progress` events. The full list is in docs/api.md ("Metrics").
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** What a job reports at the end of an epoch (the fields metrics use). */
interface EpochReport {
  epoch: number;
  samplesPerSec: number;
  epochSeconds: number;
}

function isEpochReport(p: unknown): p is EpochReport {
  const r = p as Partial<EpochReport> | null;
  return (
    typeof r === 'object' &&
    r !== null &&
    typeof r.epoch === 'number' &&
    typeof r.samplesPerSec === 'number' &&
    typeof r.epochSeconds === 'number'
  );
}

export class WorkerMetrics {
  readonly registry = new Registry();
  private readonly up: Gauge<'backend'>;
  private readonly epochDuration: Histogram<'job_type'>;
  private readonly samplesPerSecond: Gauge<'job_type'>;
  private readonly samples: Counter<'job_type'>;
  private readonly jobs: Counter<'queue' | 'outcome'>;
  /** Last epoch counted per job, so a repeated report is counted once. */
  private readonly lastEpoch = new Map<string, number>();
  private backend: string | undefined;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.up = new Gauge({
      name: 'mlq_worker_up',
      help: '1 while this worker process runs, labelled with the tfjs backend its jobs run on.',
      labelNames: ['backend'],
      registers,
    });
    this.epochDuration = new Histogram({
      name: 'mlq_training_epoch_duration_seconds',
      help: 'Training time of each epoch (validation excluded), by job type.',
      labelNames: ['job_type'],
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    });
    this.samplesPerSecond = new Gauge({
      name: 'mlq_training_samples_per_second',
      help: 'Training throughput of the last epoch that ended on this worker, by job type.',
      labelNames: ['job_type'],
      registers,
    });
    this.samples = new Counter({
      name: 'mlq_training_samples_total',
      help: 'Training samples processed (one per row per epoch), by job type; rate() gives samples per second.',
      labelNames: ['job_type'],
      registers,
    });
    this.jobs = new Counter({
      name: 'mlq_worker_jobs_total',
      help: 'Job attempts this worker finished, by queue and outcome (completed, failed).',
      labelNames: ['queue', 'outcome'],
      registers,
    });
  }

  /** The backend this worker's jobs run on (learned from its sandbox); the up gauge moves to it. */
  setBackend(backend: string): void {
    if (backend === this.backend) return;
    if (this.backend !== undefined) this.up.remove({ backend: this.backend });
    this.backend = backend;
    this.up.set({ backend }, 1);
  }

  /** A job's progress report; counts end-of-epoch reports once per (job, epoch). */
  progress(jobType: string, jobId: string, progress: unknown): void {
    if (!isEpochReport(progress)) return;
    if ((this.lastEpoch.get(jobId) ?? 0) >= progress.epoch) return;
    this.lastEpoch.set(jobId, progress.epoch);
    this.epochDuration.observe({ job_type: jobType }, progress.epochSeconds);
    this.samplesPerSecond.set({ job_type: jobType }, progress.samplesPerSec);
    this.samples.inc({ job_type: jobType }, Math.round(progress.samplesPerSec * progress.epochSeconds));
  }

  finished(queue: string, jobId: string, outcome: 'completed' | 'failed'): void {
    this.lastEpoch.delete(jobId);
    this.jobs.inc({ queue, outcome });
  }

  /** Serves `GET /metrics` on `port` (0: any free port); resolves with the server and its port. */
  async listen(port: number, host: string): Promise<{ server: Server; port: number }> {
    const server = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (e: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${e.message}\n`),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return { server, port: (server.address() as AddressInfo).port };
  }
}
