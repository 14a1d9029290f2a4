/**
 * The API's Prometheus metrics (prom-client), served at `GET /metrics` in the text exposition format
 * 0.0.4. Names follow Prometheus' conventions: base units (`_seconds`), `_total` for counters, an
 * application prefix (`mlq_`, or `http_` as in Prometheus' own naming examples). The full list is in
 * docs/api.md ("Metrics").
 *
 * Each app instance has its own Registry, so several in one process (tests) do not collide.
 */
import type { Request, RequestHandler, Response } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { jobNames, type RedisKeys } from '@mlq/contract';
import type { Queues, RedisClient } from '@mlq/queues';
import { liveWorkers } from './routes/ops.routes.ts';
import { PREDICT_PATH } from './serving/predict.routes.ts';

/** BullMQ job states counted on each scrape (Queue.getJobCounts). */
const queueStates = [
  'waiting',
  'active',
  'completed',
  'failed',
  'delayed',
  'prioritized',
  'waiting-children',
] as const;

/** Seconds: 1 ms .. 60 s (predict and ordinary routes; SSE streams land in +Inf). */
const latencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * The route label: express's route pattern (`/v1/jobs/:id`), never the raw URL, so the label's values
 * stay few. `unmatched` when no route answered (401, 403, 429 before routing; 404).
 */
export function routeLabel(req: Request): string {
  const route = (req as Request & { route?: { path: unknown } }).route;
  if (!route) return 'unmatched';
  if (route.path === PREDICT_PATH) return '/v1/models/:name[/versions/:version|/labels/:label]:predict';
  const path = route.path instanceof RegExp ? route.path.source : String(route.path);
  return `${req.baseUrl}${path}`;
}

export class ApiMetrics {
  readonly registry = new Registry();
  readonly httpDuration: Histogram<'method' | 'route' | 'status_code'>;
  readonly predictDuration: Histogram<'model'>;
  readonly predictBatchSize: Histogram;
  readonly rateLimited: Counter;

  constructor(queues: Queues, redis: RedisClient, keys: RedisKeys) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.httpDuration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP requests by method, route pattern and status code: time from arrival to the last byte sent.',
      labelNames: ['method', 'route', 'status_code'],
      buckets: latencyBuckets,
      registers,
    });
    this.predictDuration = new Histogram({
      name: 'mlq_predict_duration_seconds',
      help: 'Successful online predictions (TF Serving and Open Inference Protocol routes) by model name: resolving the model, waiting for a batch, running it.',
      labelNames: ['model'],
      buckets: latencyBuckets,
      registers,
    });
    this.predictBatchSize = new Histogram({
      name: 'mlq_predict_batch_size',
      help: 'Rows (instances) in each batch sent to a predict thread.',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096],
      registers,
    });
    this.rateLimited = new Counter({
      name: 'mlq_rate_limited_requests_total',
      help: 'Requests refused with 429 by the rate limit.',
      registers,
    });
    new Gauge({
      name: 'mlq_queue_jobs',
      help: 'Jobs per queue and BullMQ state, read from Redis at each scrape.',
      labelNames: ['queue', 'state'],
      registers,
      async collect() {
        const all = await Promise.all(jobNames.map((n) => queues[n].getJobCounts(...queueStates)));
        jobNames.forEach((queue, i) => {
          for (const state of queueStates) this.set({ queue, state }, all[i]![state] ?? 0);
        });
      },
    });
    new Gauge({
      name: 'mlq_workers',
      help: 'Live worker processes (heartbeat within the last 15 s).',
      registers,
      async collect() {
        this.set((await liveWorkers(redis, keys)).length);
      },
    });
  }

  /** Times every request, until its response is finished or its connection closes (SSE). */
  httpMiddleware(): RequestHandler {
    return (req, res, next) => {
      const end = this.httpDuration.startTimer();
      res.once('close', () =>
        end({ method: req.method, route: routeLabel(req), status_code: String(res.statusCode) }),
      );
      next();
    };
  }

  /** `GET /metrics`. */
  async send(_req: Request, res: Response): Promise<void> {
    const text = await this.registry.metrics();
    res.type(this.registry.contentType).send(text);
  }
}
