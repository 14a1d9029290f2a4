/**
 * The batcher's bounded queues, driven by a runner that holds each batch until the test lets it go
 * (the thread pool's part, so that what is queued at each moment is exact).
 */
import { describe, expect, it } from 'vitest';
import { Batcher, QueueFullError, type BatchRunner } from '../src/serving/batcher.ts';
import { ServingEvents, type BatchEvent, type RejectedEvent } from '../src/serving/serving-events.ts';

/** One "thread" that holds up to `depth` batches; `release()` finishes the oldest, doubling each value. */
class HeldRunner implements BatchRunner {
  readonly held: { rows: number; data: Float32Array; done: (out: Float32Array) => void }[] = [];
  private readonly depth: number;
  constructor(depth: number) {
    this.depth = depth;
  }
  hasCapacity(): boolean {
    return this.held.length < this.depth;
  }
  predict(_key: string, _uri: string, rows: number, data: Float32Array): Promise<Float32Array> {
    return new Promise((done) => this.held.push({ rows, data, done }));
  }
  release(batcher: Batcher): void {
    const b = this.held.shift()!;
    b.done(b.data.map((v) => v * 2));
    batcher.pump();
  }
}

const rows = (n: number, v: number) => new Float32Array(n).fill(v);
const settle = () => new Promise((r) => setTimeout(r, 0));

describe('Batcher back-pressure', () => {
  it('refuses requests past the bound in requests, with a Retry-After, and takes them again once it drains', async () => {
    const runner = new HeldRunner(1);
    const events = new ServingEvents();
    const rejected: RejectedEvent[] = [];
    const batches: BatchEvent[] = [];
    events.on('rejected', (e) => rejected.push(e));
    events.on('batch', (e) => batches.push(e));
    const opts = { enabled: true, maxBatch: 4, maxWaitMs: 0, maxQueuedRows: 100, maxQueuedRequests: 3 };
    const batcher = new Batcher(runner, opts, events);
    const submit = (v: number) => batcher.submit('m@1', 'uri', 1, rows(1, v), 1);

    const first = submit(1); // straight to the thread
    const queued = [submit(2), submit(3), submit(4)]; // wait, merged into one batch
    expect(batcher.queued('m@1')).toEqual({ rows: 3, requests: 3 });
    const refused = submit(5);
    await expect(refused).rejects.toBeInstanceOf(QueueFullError);
    await expect(refused).rejects.toMatchObject({ retryAfterSeconds: 1 });
    await expect(refused).rejects.toThrow(/queue of m@1 is full \(3 requests, 3 rows waiting/);
    expect(rejected).toEqual([
      { model: 'm@1', rows: 1, queuedRows: 3, queuedRequests: 3, retryAfterSeconds: 1 },
    ]);
    // Another model's queue is its own.
    const other = batcher.submit('n@1', 'uri', 1, rows(1, 9), 1);
    expect(batcher.queued('n@1')).toEqual({ rows: 1, requests: 1 });

    runner.release(batcher); // m@1's first batch ends; its queued batch goes to the thread
    expect(Array.from(await first)).toEqual([2]);
    expect(batcher.queued('m@1')).toEqual({ rows: 0, requests: 0 });
    const again = submit(6); // room again
    runner.release(batcher);
    expect((await Promise.all(queued)).map((o) => Array.from(o))).toEqual([[4], [6], [8]]);
    runner.release(batcher);
    runner.release(batcher);
    expect(Array.from(await other)).toEqual([18]);
    expect(Array.from(await again)).toEqual([12]);
    expect(batches.map((b) => [b.model, b.rows, b.requests, b.ok])).toEqual([
      ['m@1', 1, 1, true],
      ['m@1', 3, 3, true],
      ['n@1', 1, 1, true],
      ['m@1', 1, 1, true],
    ]);
  });

  it('bounds rows too, yet always takes a request that finds its queue empty', async () => {
    const runner = new HeldRunner(1);
    const opts = { enabled: true, maxBatch: 64, maxWaitMs: 0, maxQueuedRows: 10, maxQueuedRequests: 100 };
    const batcher = new Batcher(runner, opts);
    const submit = (n: number) => batcher.submit('m@1', 'uri', n, rows(n, 1), 1);
    const running = submit(8);
    const big = submit(30); // larger than the bound, but the queue is empty: taken
    expect(batcher.queued('m@1')).toEqual({ rows: 30, requests: 1 });
    await expect(submit(1)).rejects.toBeInstanceOf(QueueFullError);
    runner.release(batcher);
    await running;
    const small = [submit(6), submit(4)]; // 10 rows: at the bound, not past it
    await expect(submit(1)).rejects.toBeInstanceOf(QueueFullError);
    expect(batcher.queued('m@1')).toEqual({ rows: 10, requests: 2 });
    runner.release(batcher);
    expect((await big).length).toBe(30);
    runner.release(batcher);
    expect((await Promise.all(small)).map((o) => o.length)).toEqual([6, 4]);
    await settle();
    expect(batcher.queued('m@1')).toEqual({ rows: 0, requests: 0 });
  });

  it('asks for longer waits when the queue ahead is slow to drain', async () => {
    const runner = new HeldRunner(1);
    const opts = { enabled: false, maxBatch: 64, maxWaitMs: 0, maxQueuedRows: 4, maxQueuedRequests: 100 };
    const batcher = new Batcher(runner, opts);
    const submit = (n: number) => batcher.submit('m@1', 'uri', n, rows(n, 1), 1);
    const first = submit(2);
    await new Promise((r) => setTimeout(r, 1200)); // a batch of 2 rows that takes ~1.2 s: 0.6 s a row
    runner.release(batcher);
    await first;
    const running = submit(1);
    const waiting = submit(4);
    const refused = submit(1);
    // 4 rows queued at >= 0.6 s a row: at least 2.4 s, rounded up (more if timers ran late).
    const e = (await refused.catch((x: unknown) => x)) as QueueFullError;
    expect(e).toBeInstanceOf(QueueFullError);
    expect(e.retryAfterSeconds).toBeGreaterThanOrEqual(3);
    runner.release(batcher);
    runner.release(batcher);
    await Promise.all([running, waiting]);
  });
});
