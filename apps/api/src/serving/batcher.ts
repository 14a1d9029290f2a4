/**
 * Adaptive batching. Requests for the same model version join one open batch; a batch goes to a
 * thread when
 *   - it holds `maxBatch` rows (a request never splits: one that would overflow starts a new batch), or
 *   - a thread has room and nothing else for this model is in flight: a lone request never waits, so
 *     one client sees no batching delay, or
 *   - a thread has room and the batch has waited `maxWaitMs` while others for its model are in flight.
 * While every thread is busy, batches just grow: under load they fill up by themselves, sized by how
 * long a predict takes. `enabled: false` sends each request alone (the benchmark's baseline).
 */

export interface BatchRunner {
  /** True when a thread can take another batch now. */
  hasCapacity(): boolean;
  predict(key: string, uri: string, rows: number, data: Float32Array): Promise<Float32Array>;
}

export interface BatcherOptions {
  enabled: boolean;
  maxBatch: number;
  maxWaitMs: number;
  /** Told the rows of each batch sent to a thread (metrics). */
  onBatch?: (rows: number) => void;
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
  private timer: NodeJS.Timeout | undefined;
  readonly stats: BatcherStats = { batches: 0, rows: 0 };

  constructor(
    private readonly runner: BatchRunner,
    private readonly opts: BatcherOptions,
  ) {}

  /**
   * Queues `rows` packed instances for model `key` (loaded from `uri`); resolves with their outputs,
   * `outputSize` numbers per row.
   */
  submit(
    key: string,
    uri: string,
    rows: number,
    data: Float32Array,
    outputSize: number,
  ): Promise<Float32Array> {
    return new Promise<Float32Array>((resolve, reject) => {
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
    this.inflight.set(b.key, (this.inflight.get(b.key) ?? 0) + 1);
    this.stats.batches++;
    this.stats.rows += b.rows;
    this.opts.onBatch?.(b.rows);
    this.runner
      .predict(b.key, b.uri, b.rows, concat(b))
      .then((out) => {
        let row = 0;
        for (const p of b.parts) {
          p.resolve(out.subarray(row * b.outputSize, (row + p.rows) * b.outputSize));
          row += p.rows;
        }
      })
      .catch((e: unknown) => {
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
