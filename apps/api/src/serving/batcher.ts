/**
 * Adaptive batching. Requests for the same model version join one open batch; a batch goes to a
 * thread when
 *   - it holds `maxBatch` rows (a request never splits: one that would overflow starts a new batch), or
 *   - a thread has room and nothing else for this model is in flight: a lone request never waits, so
 *     one client sees no batching delay, or
 *   - a thread has room and the batch has waited `maxWaitMs` while others for its model are in flight.
 * While every thread is busy, batches just grow: under load they fill up by themselves, sized by how
 * long a predict takes. `enabled: false` sends each request alone (the benchmark's baseline).
 *
 * Back-pressure: the requests waiting for a thread are bounded per model version, in rows
 * (`maxQueuedRows`) and in requests (`maxQueuedRequests`). A request past either bound is refused at
 * once with a QueueFullError (the API answers 503 with Retry-After) instead of growing memory; a
 * request that finds its model's queue empty is always taken, whatever its size.
 */
import { ServingEvents } from './serving-events.ts';

export interface BatchRunner {
  /** True when a thread can take another batch now. */
  hasCapacity(): boolean;
  predict(key: string, uri: string, rows: number, data: Float32Array): Promise<Float32Array>;
}

export interface BatcherOptions {
  enabled: boolean;
  maxBatch: number;
  maxWaitMs: number;
  /** Most rows of one model version waiting for a thread. */
  maxQueuedRows: number;
  /** Most requests of one model version waiting for a thread. */
  maxQueuedRequests: number;
}

/** A model version's queue is full: try again after `retryAfterSeconds`. */
export class QueueFullError extends Error {
  override name = 'QueueFullError';
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds: number) {
    super(message);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

interface Part {
  rows: number;
  data: Float32Array;
  resolve(out: Float32Array): void;
  reject(e: unknown): void;
}

interface Batch {
  key: string;
  uri: string;
  outputSize: number;
  rows: number;
  parts: Part[];
  openedAt: number;
  /** A closed batch takes no more requests; it waits only for a thread. */
  closed: boolean;
}

export interface BatcherStats {
  batches: number;
  rows: number;
}

/** Forms batches per model version and feeds them to a BatchRunner (the thread pool). */
export class Batcher {
  /** Batches not yet sent, oldest first; at most one open batch per key, the last of its key. */
  private readonly queue: Batch[] = [];
  private readonly open = new Map<string, Batch>();
  private readonly inflight = new Map<string, number>();
  /** Rows and requests of each key in `queue` (waiting for a thread). */
  private readonly waiting = new Map<string, { rows: number; requests: number }>();
  /** Recent seconds per row of each key on a thread (for Retry-After). */
  private readonly secondsPerRow = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  readonly stats: BatcherStats = { batches: 0, rows: 0 };

  private readonly runner: BatchRunner;
  private readonly opts: BatcherOptions;
  private readonly events: ServingEvents;
  constructor(runner: BatchRunner, opts: BatcherOptions, events: ServingEvents = new ServingEvents()) {
    this.runner = runner;
    this.opts = opts;
    this.events = events;
  }

  /** Rows and requests of model `key` waiting for a thread now. */
  queued(key: string): { rows: number; requests: number } {
    return { ...(this.waiting.get(key) ?? { rows: 0, requests: 0 }) };
  }

  /** Throws QueueFullError when `rows` more would take `key`'s queue past a bound. */
  private admit(key: string, rows: number): void {
    const q = this.waiting.get(key);
    if (!q || q.requests === 0) return;
    const { maxQueuedRows, maxQueuedRequests } = this.opts;
    if (q.rows + rows <= maxQueuedRows && q.requests < maxQueuedRequests) return;
    // The time the queue ahead needs on one thread, from recent batches; at least 1 s.
    const drain = q.rows * (this.secondsPerRow.get(key) ?? 0);
    const retryAfterSeconds = Math.min(60, Math.max(1, Math.ceil(drain)));
    this.events.report('rejected', {
      model: key,
      rows,
      queuedRows: q.rows,
      queuedRequests: q.requests,
      retryAfterSeconds,
    });
    throw new QueueFullError(
      `the queue of ${key} is full (${q.requests} requests, ${q.rows} rows waiting; at most ` +
        `${maxQueuedRequests} requests and ${maxQueuedRows} rows): retry after ${retryAfterSeconds} s`,
      retryAfterSeconds,
    );
  }

  private count(key: string, rows: number, requests: number): void {
    const q = this.waiting.get(key) ?? { rows: 0, requests: 0 };
    q.rows += rows;
    q.requests += requests;
    if (q.requests > 0) this.waiting.set(key, q);
    else this.waiting.delete(key);
  }

  /**
   * Queues `rows` packed instances for model `key` (loaded from `uri`); resolves with their outputs,
   * `outputSize` numbers per row. Rejects with QueueFullError when the model's queue is full.
   */
  submit(
    key: string,
    uri: string,
    rows: number,
    data: Float32Array,
    outputSize: number,
  ): Promise<Float32Array> {
    return new Promise<Float32Array>((resolve, reject) => {
      this.admit(key, rows);
      this.count(key, rows, 1);
      let b = this.open.get(key);
      if (b && b.rows + rows > this.opts.maxBatch) {
        this.close(b);
        b = undefined;
      }
      if (!b) {
        b = { key, uri, outputSize, rows: 0, parts: [], openedAt: performance.now(), closed: false };
        this.queue.push(b);
        if (this.opts.enabled) this.open.set(key, b);
      }
      b.parts.push({ rows, data, resolve, reject });
      b.rows += rows;
      if (!this.opts.enabled || b.rows >= this.opts.maxBatch) this.close(b);
      this.pump();
    });
  }

  private close(b: Batch): void {
    b.closed = true;
    if (this.open.get(b.key) === b) this.open.delete(b.key);
  }

  /** Sends queued batches, oldest first, while threads have room. Called on submit and when a thread frees. */
  pump(): void {
    const now = performance.now();
    let wakeAt = Infinity;
    for (let i = 0; i < this.queue.length && this.runner.hasCapacity();) {
      const b = this.queue[i]!;
      const lingerUntil = b.openedAt + this.opts.maxWaitMs;
      if (!b.closed && (this.inflight.get(b.key) ?? 0) > 0 && now < lingerUntil) {
        wakeAt = Math.min(wakeAt, lingerUntil);
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      this.run(b);
    }
    if (wakeAt < Infinity && !this.timer) {
      this.timer = setTimeout(
        () => {
          this.timer = undefined;
          this.pump();
        },
        Math.max(0, wakeAt - now),
      );
    }
  }

  private run(b: Batch): void {
    this.close(b);
    this.count(b.key, -b.rows, -b.parts.length);
    this.inflight.set(b.key, (this.inflight.get(b.key) ?? 0) + 1);
    this.stats.batches++;
    this.stats.rows += b.rows;
    const start = performance.now();
    const report = (ok: boolean) => {
      const runSeconds = (performance.now() - start) / 1000;
      if (ok) {
        const last = this.secondsPerRow.get(b.key);
        const now = runSeconds / b.rows;
        this.secondsPerRow.set(b.key, last === undefined ? now : 0.8 * last + 0.2 * now);
      }
      this.events.report('batch', {
        model: b.key,
        rows: b.rows,
        requests: b.parts.length,
        queueSeconds: (start - b.openedAt) / 1000,
        runSeconds,
        ok,
      });
    };
    this.runner
      .predict(b.key, b.uri, b.rows, concat(b))
      .then((out) => {
        report(true);
        let row = 0;
        for (const p of b.parts) {
          p.resolve(out.subarray(row * b.outputSize, (row + p.rows) * b.outputSize));
          row += p.rows;
        }
      })
      .catch((e: unknown) => {
        report(false);
        for (const p of b.parts) p.reject(e);
      })
      .finally(() => {
        const n = (this.inflight.get(b.key) ?? 1) - 1;
        if (n === 0) this.inflight.delete(b.key);
        else this.inflight.set(b.key, n);
        this.pump();
      });
  }

  /** Fails every request not yet sent (shutdown). */
  drain(e: Error): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const b of this.queue.splice(0)) for (const p of b.parts) p.reject(e);
    this.open.clear();
    this.waiting.clear();
  }
}

function concat(b: Batch): Float32Array {
  if (b.parts.length === 1) return b.parts[0]!.data;
  const size = b.parts[0]!.data.length / b.parts[0]!.rows;
  const data = new Float32Array(b.rows * size);
  let offset = 0;
  for (const p of b.parts) {
    data.set(p.data, offset);
    offset += p.data.length;
  }
  return data;
}
