/** Following a job: the events stream as an async iterator, and `waitForJob` on top of it. */
import { JobFailedError, MlqApiError, WaitTimeoutError } from './errors.ts';
import { parseSse, type SseMessage } from './sse.ts';
import { seg, type Transport } from './transport.ts';
import {
  isFinalState,
  type AnyJob,
  type Job,
  type JobEvent,
  type JobName,
  type JobsEvent,
  type JobProgress,
  type JobState,
} from './types.ts';

/** What waiting needs of a client (an `MlqClient` is one): its transport, and one job's view. */
export interface JobSource {
  readonly transport: Transport;
  getJob(id: string, opts?: { signal?: AbortSignal | undefined }): Promise<AnyJob>;
}

/** Options of `waitForJob`. */
export interface WaitOptions<N extends JobName = JobName> {
  /** Give up (reject with `WaitTimeoutError`) after this long; no limit by default. */
  timeoutMs?: number | undefined;
  /** Called with each new progress report (e.g. once per epoch); numeric progress is not reported. */
  onProgress?: ((progress: Exclude<JobProgress<N>, number>) => void) | undefined;
  /** Called on each state change the stream or the polls show (`waiting`, `active`...). */
  onState?: ((state: JobState) => void) | undefined;
  /** Stops waiting: rejects with the signal's reason. */
  signal?: AbortSignal | undefined;
  /** How often to poll once the events stream has dropped; default 1000 ms. */
  pollIntervalMs?: number | undefined;
}

/** Links `signal` to a new controller, so the SDK can abort its own work without touching the caller's. */
function linkedController(signal: AbortSignal | undefined): { ctl: AbortController; unlink: () => void } {
  const ctl = new AbortController();
  if (!signal) return { ctl, unlink: () => undefined };
  const onAbort = () => ctl.abort(signal.reason);
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  return { ctl, unlink: () => signal.removeEventListener('abort', onAbort) };
}

function toJobEvent(m: SseMessage): JobEvent | undefined {
  let data: unknown;
  try {
    data = JSON.parse(m.data);
  } catch {
    return undefined;
  }
  if (m.event === 'progress') return { type: 'progress', progress: data as JobProgress };
  if (m.event === 'state' && typeof data === 'object' && data !== null) {
    const d = data as { state?: unknown; id?: unknown };
    if (typeof d.state !== 'string') return undefined;
    return typeof d.id === 'string'
      ? { type: 'state', state: d.state as JobState, job: data as AnyJob }
      : { type: 'state', state: d.state as JobState };
  }
  return undefined;
}

/** The events of `GET /v1/jobs/{id}/events`; see `MlqClient.events`. */
export async function* jobEvents(
  client: JobSource,
  id: string,
  opts: { signal?: AbortSignal | undefined } = {},
): AsyncGenerator<JobEvent, void, undefined> {
  const { ctl, unlink } = linkedController(opts.signal);
  try {
    let res: Response;
    try {
      res = await client.transport.send('GET', `/v1/jobs/${seg(id)}/events`, {
        signal: ctl.signal,
        accept: 'text/event-stream',
      });
    } catch (e) {
      if (ctl.signal.aborted) return;
      throw e;
    }
    if (!res.body) throw new MlqApiError(res.status, 'invalid_response', 'the events answer has no body');
    try {
      for await (const m of parseSse(res.body)) {
        const ev = toJobEvent(m);
        if (!ev) continue;
        // Events already read in the same chunk are not handed out after an abort.
        if (ctl.signal.aborted) return;
        yield ev;
        if (ev.type === 'state' && ev.job && isFinalState(ev.job.state)) return;
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
      throw e;
    }
  } finally {
    ctl.abort(); // closes the connection if the consumer stopped early
    unlink();
  }
}

function toJobsEvent(m: SseMessage): JobsEvent | undefined {
  let d: { id?: unknown; type?: unknown; state?: unknown; progress?: unknown };
  try {
    d = JSON.parse(m.data) as typeof d;
  } catch {
    return undefined;
  }
  if (typeof d.id !== 'string' || typeof d.type !== 'string') return undefined;
  const jobType = d.type as JobName;
  if (m.event === 'progress')
    return { type: 'progress', id: d.id, jobType, progress: d.progress as JobProgress };
  if (m.event === 'state' && typeof d.state === 'string')
    return { type: 'state', id: d.id, jobType, state: d.state as JobState };
  return undefined;
}

/**
 * The events of `GET /v1/events`: every job's progress and state changes (of one type, if given),
 * until `signal` aborts (then it ends without an error) or the server closes the stream.
 */
export async function* allJobEvents(
  client: JobSource,
  opts: { type?: JobName | undefined; signal?: AbortSignal | undefined } = {},
): AsyncGenerator<JobsEvent, void, undefined> {
  const { ctl, unlink } = linkedController(opts.signal);
  try {
    const res = await client.transport
      .send('GET', '/v1/events', {
        signal: ctl.signal,
        accept: 'text/event-stream',
        query: { type: opts.type },
      })
      .catch((e: unknown) => {
        if (ctl.signal.aborted) return undefined;
        throw e;
      });
    if (!res) return;
    if (!res.body) throw new MlqApiError(res.status, 'invalid_response', 'the events answer has no body');
    try {
      for await (const m of parseSse(res.body)) {
        const ev = toJobsEvent(m);
        if (ev) yield ev;
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
      throw e;
    }
  } finally {
    ctl.abort();
    unlink();
  }
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/** Errors worth polling through: no answer, or a gateway/restart answer. */
const isTransient = (e: unknown) => e instanceof MlqApiError && [0, 502, 503, 504].includes(e.status);

/** See `MlqClient.waitForJob`. */
export async function waitForJob<N extends JobName = JobName>(
  client: JobSource,
  id: string,
  opts: WaitOptions<N> = {},
): Promise<Job<N>> {
  const { ctl, unlink } = linkedController(opts.signal);
  const timeoutMs = opts.timeoutMs;
  let timedOut = false;
  const timer =
    timeoutMs !== undefined && Number.isFinite(timeoutMs)
      ? setTimeout(() => {
          timedOut = true;
          ctl.abort();
        }, timeoutMs)
      : undefined;
  let last: AnyJob | undefined;
  let lastProgress = '';
  let lastState = '';
  const progress = (p: unknown) => {
    if (typeof p !== 'object' || p === null) return;
    const key = JSON.stringify(p);
    if (key === lastProgress) return;
    lastProgress = key;
    opts.onProgress?.(p as Exclude<JobProgress<N>, number>);
  };
  const state = (s: JobState) => {
    if (s !== lastState) opts.onState?.(s);
    lastState = s;
  };
  /** Reports a job as seen; returns it if it has ended. */
  const seen = (job: AnyJob): AnyJob | undefined => {
    last = job;
    // The state first: `mlq watch` says `state active` before that state's first epoch line.
    state(job.state);
    progress(job.progress);
    return isFinalState(job.state) ? job : undefined;
  };
  const settle = (job: AnyJob): Job<N> => {
    if (job.state === 'completed') return job as Job<N>;
    throw new JobFailedError(job);
  };
  const stopped = () => (timedOut ? new WaitTimeoutError(id, timeoutMs ?? 0, last) : ctl.signal.reason);

  try {
    const events = jobEvents(client, id, { signal: ctl.signal });
    try {
      for (;;) {
        let next: IteratorResult<JobEvent>;
        try {
          next = await events.next();
        } catch (e) {
          // A refusal (404, 401...) is final; a dropped stream is not: poll instead.
          if (e instanceof MlqApiError && !isTransient(e)) throw e;
          break;
        }
        if (next.done) break;
        const ev = next.value;
        if (ev.type === 'progress') progress(ev.progress);
        else if (!ev.job) state(ev.state);
        else {
          const done = seen(ev.job);
          if (done) return settle(done);
        }
      }
    } finally {
      await events.return();
    }
    // The stream ended without a final state (aborted, cut by a proxy, the API restarted...): poll.
    for (;;) {
      if (ctl.signal.aborted) throw stopped();
      try {
        const done = seen(await client.getJob(id, { signal: ctl.signal }));
        if (done) return settle(done);
      } catch (e) {
        if (ctl.signal.aborted) throw stopped();
        if (!isTransient(e)) throw e;
      }
      await sleep(opts.pollIntervalMs ?? 1000, ctl.signal);
    }
  } finally {
    clearTimeout(timer);
    unlink();
  }
}
