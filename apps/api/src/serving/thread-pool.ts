/**
 * The event loop's side of the predict threads: starts them (lazily, on the first predict), places
 * models on them and sends them batches. A model loads on the thread a batch goes to and stays there
 * (in that thread's LRU); batches prefer a thread that already holds their model, but an idle thread
 * beats a busy one, so a hot model spreads to every thread while cold ones stay on one.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'node:worker_threads';
// The thread helper alone: the engine's entry loads tfjs, which the API's main thread never runs.
import { spawnTsThread } from '@mlq/engine/ts-thread';
import type { FromThread, ModelInfo, ThreadConfig, ThreadError, ToThread } from './protocol.ts';

/**
 * Batches a thread may hold at once: one running and one waiting, so a thread never idles while its
 * next batch crosses the event loop, and batches still grow while the thread is busy.
 */
export const THREAD_DEPTH = 2;

/** A predict thread failed (crashed, or its backend could not start): the server's fault, not the request's. */
export class ServingUnavailableError extends Error {
  override name = 'ServingUnavailableError';
}

/** An error a thread reported for one request, with the original error's name (e.g. NotFoundError). */
export class ThreadReportedError extends Error {
  readonly remote: ThreadError;
  constructor(remote: ThreadError) {
    super(remote.message);
    this.remote = remote;
    this.name = 'ThreadReportedError';
  }
}

const workerFile = path.join(path.dirname(fileURLToPath(import.meta.url)), 'predict.worker.ts');

function spawn(config: ThreadConfig): Worker {
  return spawnTsThread(workerFile, config);
}

interface Pending {
  resolve(m: Extract<FromThread, { type: 'reply' }>): void;
  reject(e: Error): void;
}

class PredictThread {
  readonly worker: Worker;
  readonly ready: Promise<void>;
  /** Models this thread holds (kept in step with its LRU through `evicted` in every reply). */
  readonly models = new Set<string>();
  readonly pending = new Map<number, Pending>();
  inflight = 0;
  dead = false;
  /** Rejects `ready` when the thread dies before it is (set in the constructor). */
  fail: (e: Error) => void = () => undefined;

  constructor(config: ThreadConfig, onGone: (t: PredictThread, e: Error) => void) {
    this.worker = spawn(config);
    this.worker.unref();
    this.ready = new Promise<void>((resolve, reject) => {
      this.worker.on('message', (m: FromThread) => {
        if (m.type === 'ready') return resolve();
        if (m.type === 'fatal')
          return onGone(
            this,
            new ServingUnavailableError(`predict thread could not start: ${m.error.message}`),
          );
        for (const k of m.evicted) this.models.delete(k);
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        p?.resolve(m);
      });
      this.worker.on('error', (e) =>
        onGone(this, new ServingUnavailableError(`predict thread failed: ${e.message}`)),
      );
      this.worker.on('exit', (code) =>
        onGone(this, new ServingUnavailableError(`predict thread exited (${code})`)),
      );
      // Settled by onGone when the thread dies before it is ready.
      this.fail = reject;
    });
    this.ready.catch(() => undefined);
  }

  async send(msg: ToThread, transfer: ArrayBuffer[] = []): Promise<Extract<FromThread, { type: 'reply' }>> {
    this.inflight++;
    try {
      await this.ready;
      return await new Promise((resolve, reject) => {
        this.pending.set(msg.id, { resolve, reject });
        this.worker.postMessage(msg, transfer);
      });
    } finally {
      this.inflight--;
    }
  }
}

/** A fixed number of predict threads, started on first use and replaced when one dies. */
export class ThreadPool {
  private readonly threads: PredictThread[] = [];
  private nextId = 1;
  private closed = false;

  private readonly size: number;
  private readonly config: ThreadConfig;
  private readonly onFree: () => void;
  /** @param onFree called whenever a thread finishes a batch (the batcher then sends the next). */
  constructor(size: number, config: ThreadConfig, onFree: () => void = () => undefined) {
    this.size = size;
    this.config = config;
    this.onFree = onFree;
  }

  private fill(): void {
    if (this.closed) throw new ServingUnavailableError('the server is shutting down');
    while (this.threads.length < this.size) {
      this.threads.push(new PredictThread(this.config, (t, e) => this.gone(t, e)));
    }
  }

  /** A dead thread fails what it held and leaves the pool; the next request starts a new one. */
  private gone(t: PredictThread, e: Error): void {
    if (t.dead) return;
    t.dead = true;
    const i = this.threads.indexOf(t);
    if (i >= 0) this.threads.splice(i, 1);
    t.fail(e);
    for (const p of t.pending.values()) p.reject(e);
    t.pending.clear();
    void t.worker.terminate();
    this.onFree();
  }

  /** The thread a batch for `key` should go to now, or undefined when every thread is full. */
  private pick(key: string): PredictThread | undefined {
    this.fill();
    const by = (pred: (t: PredictThread) => boolean) =>
      this.threads.filter(pred).sort((a, b) => a.inflight - b.inflight)[0];
    return (
      by((t) => t.models.has(key) && t.inflight === 0) ??
      by((t) => t.inflight === 0) ??
      by((t) => t.models.has(key) && t.inflight < THREAD_DEPTH) ??
      by((t) => t.inflight < THREAD_DEPTH)
    );
  }

  /** True when some thread can take another batch now. */
  hasCapacity(): boolean {
    if (this.threads.length < this.size) return !this.closed;
    return this.threads.some((t) => t.inflight < THREAD_DEPTH);
  }

  /** Sends `msg` to the best thread for model `key` (undefined: a message about no model, e.g. a decode). */
  private async call(key: string | undefined, msg: ToThread, transfer: ArrayBuffer[] = []) {
    // Every thread full (a describe or a decode can get here then): queue on the least busy one.
    const t = this.pick(key ?? '') ?? [...this.threads].sort((a, b) => a.inflight - b.inflight)[0]!;
    if (key !== undefined) t.models.add(key);
    try {
      const reply = await t.send(msg, transfer);
      if (reply.error) {
        if (key !== undefined) t.models.delete(key);
        throw new ThreadReportedError(reply.error);
      }
      return reply;
    } finally {
      this.onFree();
    }
  }

  /** Loads a model on a thread (unless one holds it) and describes it. */
  async describe(key: string, uri: string): Promise<ModelInfo> {
    const reply = await this.call(key, { type: 'load', id: this.nextId++, key, uri });
    return reply.info!;
  }

  /** Runs one batch: `rows` instances packed in `data`; returns the outputs, packed the same way. */
  async predict(key: string, uri: string, rows: number, data: Float32Array): Promise<Float32Array> {
    const msg: ToThread = { type: 'predict', id: this.nextId++, key, uri, rows, data };
    const reply = await this.call(key, msg, [data.buffer as ArrayBuffer]);
    return reply.data!;
  }

  /**
   * Decodes PNG/JPEG images on a thread (never on the event loop: a large JPEG takes a while) into
   * `height` × `width` × `channels` floats in 0..1 each, one image after the other.
   * A file that is no readable PNG or JPEG rejects with a ThreadReportedError named DataError.
   * Each image's whole ArrayBuffer is transferred to the thread: give each one a buffer of its own.
   */
  async decode(images: Uint8Array[], names: string[], height: number, width: number, channels: 1 | 3) {
    const msg: ToThread = { type: 'decode', id: this.nextId++, images, names, height, width, channels };
    const reply = await this.call(
      undefined,
      msg,
      images.map((i) => i.buffer as ArrayBuffer),
    );
    return reply.data!;
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = this.threads.splice(0);
    for (const t of all) t.dead = true;
    await Promise.all(all.map((t) => t.worker.terminate()));
  }
}
