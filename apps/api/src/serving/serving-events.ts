/**
 * What the serving layer reports as it works, for metrics and logs: `PredictService.events` emits
 * these. Listeners run synchronously on the event loop; keep them cheap (observe a histogram, no I/O).
 */
import { EventEmitter } from 'node:events';

/** A batch ran on a predict thread (`ok: false`: the model failed or its thread died). */
export interface BatchEvent {
  /** `name@version`. */
  model: string;
  rows: number;
  /** Requests merged into the batch. */
  requests: number;
  /** From the batch's first request joining it to the batch leaving for a thread, in seconds. */
  queueSeconds: number;
  /** On the thread, including the transfer both ways, in seconds. */
  runSeconds: number;
  ok: boolean;
}

/** A request refused because its model's queue was full (answered 503 with Retry-After). */
export interface RejectedEvent {
  model: string;
  rows: number;
  queuedRows: number;
  queuedRequests: number;
  retryAfterSeconds: number;
}

/** A predict (TF Serving) or infer (Open Inference Protocol) request finished. */
export interface RequestEvent {
  protocol: 'tf-serving' | 'open-inference';
  /** `name@version` once resolved; the name alone when resolving failed. */
  model: string;
  /** Instances (TF Serving) or the batch dimension (Open Inference Protocol); 0 when the body was refused. */
  rows: number;
  /** From the body being read to the answer being ready, in seconds (HTTP parsing not included). */
  seconds: number;
  /** The HTTP status answered. */
  status: number;
}

export interface ServingEventMap {
  batch: [BatchEvent];
  rejected: [RejectedEvent];
  request: [RequestEvent];
}

export class ServingEvents extends EventEmitter<ServingEventMap> {
  /** Emits without letting a listener's exception reach the serving code. */
  report<K extends keyof ServingEventMap>(name: K, ...args: ServingEventMap[K]): void {
    try {
      (this.emit as (n: K, ...a: ServingEventMap[K]) => boolean)(name, ...args);
    } catch {
      /* a broken listener must not break predict */
    }
  }
}
