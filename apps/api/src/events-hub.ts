/**
 * `GET /v1/events`: one server-sent events stream of every job's state changes and progress, for
 * pages that show many jobs at once (the console's job list).
 *
 * It costs the API little however many pages are open: the hub listens once to each queue's
 * QueueEvents (already open for the per-job streams), turns each event into its SSE text once, and
 * writes that same string to every subscriber. A subscriber that is not reading (its socket buffer is
 * full) skips progress events, which the next one supersedes; state events always go out.
 */
import type { Response } from 'express';
import type { JobName } from '@mlq/contract';
import type { QueueEvents } from '@mlq/queues';
import type { JobsService } from './jobs.service.ts';

interface Subscriber {
  res: Response;
  type: JobName | undefined;
}

/** The QueueEvents events the hub relays, and the state each one means. */
const STATE_EVENTS = {
  waiting: 'waiting',
  active: 'active',
  delayed: 'delayed',
  completed: 'completed',
  removed: 'removed',
  'waiting-children': 'waiting-children',
} as const;

export class EventsHub {
  private readonly subscribers = new Set<Subscriber>();
  private ping: NodeJS.Timeout | undefined;
  private readonly detach: (() => void)[] = [];

  private readonly events: Record<JobName, QueueEvents>;
  private readonly jobs: JobsService;
  constructor(events: Record<JobName, QueueEvents>, jobs: JobsService) {
    this.events = events;
    this.jobs = jobs;
  }

  /** Streams every job event (of one type, if given) to `res` until the client goes away. */
  subscribe(res: Response, type: JobName | undefined): void {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.write(': connected\n\n');
    const sub: Subscriber = { res, type };
    this.subscribers.add(sub);
    if (this.subscribers.size === 1) this.start();
    res.on('close', () => {
      this.subscribers.delete(sub);
      if (this.subscribers.size === 0) this.stop();
    });
  }

  get size(): number {
    return this.subscribers.size;
  }

  private send(type: JobName, event: 'state' | 'progress', data: object): void {
    const text = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const s of this.subscribers) {
      if (s.type !== undefined && s.type !== type) continue;
      if (event === 'progress' && s.res.writableNeedDrain) continue;
      s.res.write(text);
    }
  }

  private start(): void {
    for (const [name, qe] of Object.entries(this.events) as [JobName, QueueEvents][]) {
      const on = (event: string, fn: (a: never) => void) => {
        qe.on(event as never, fn as never);
        this.detach.push(() => qe.off(event as never, fn as never));
      };
      on('progress', (a: { jobId: string; data: unknown }) =>
        this.send(name, 'progress', { id: a.jobId, type: name, progress: a.data }),
      );
      for (const [event, state] of Object.entries(STATE_EVENTS)) {
        on(event, (a: { jobId: string }) => this.send(name, 'state', { id: a.jobId, type: name, state }));
      }
      // A failed attempt may be retried: say the state the job is really in (once, for everyone).
      on('failed', (a: { jobId: string }) => void this.failed(name, a.jobId));
    }
    this.ping = setInterval(() => {
      for (const s of this.subscribers) s.res.write(': ping\n\n');
    }, 15_000);
  }

  private async failed(type: JobName, id: string): Promise<void> {
    const job = await this.jobs.get(id).catch(() => undefined);
    if (!job) return;
    const view = await this.jobs.view(job, type).catch(() => undefined);
    if (view) this.send(type, 'state', { id, type, state: view.state });
  }

  private stop(): void {
    for (const d of this.detach.splice(0)) d();
    clearInterval(this.ping);
    this.ping = undefined;
  }

  /** Ends every stream (the server is stopping). */
  close(): void {
    for (const s of this.subscribers) s.res.end();
    this.subscribers.clear();
    this.stop();
  }
}
