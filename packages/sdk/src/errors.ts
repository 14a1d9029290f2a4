/** The SDK's errors: all are `MlqError`s with a `code`, a message for a person and optional details. */
import type { AnyJob, FieldIssue } from './types.ts';

/** Base class of every error the SDK throws on purpose. */
export class MlqError extends Error {
  override name = 'MlqError';
  /** A short machine-readable code: the API's (`invalid_request`, `not_found`...) or the SDK's own. */
  readonly code: string;
  /** For a 400: one entry per bad field. */
  readonly details: FieldIssue[] | Record<string, unknown> | undefined;
  constructor(
    code: string,
    message: string,
    details?: FieldIssue[] | Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.code = code;
    this.details = details;
  }

  /** The bad fields of a validation error, or `[]`. */
  get fields(): FieldIssue[] {
    return Array.isArray(this.details) ? this.details : [];
  }
}

/**
 * An error answer of the API (`{"error": {"code", "message", "details"?}}`), or a failure to reach it
 * (`status` 0, code `network_error`).
 */
export class MlqApiError extends MlqError {
  override name = 'MlqApiError';
  /** The HTTP status; 0 when no answer came. */
  readonly status: number;
  constructor(
    status: number,
    code: string,
    message: string,
    details?: FieldIssue[] | Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(code, message, details, options);
    this.status = status;
  }
}

/** A job that `waitForJob` saw end as `failed` or `cancelled`. */
export class JobFailedError extends MlqError {
  override name = 'JobFailedError';
  /** The job in its final state; `job.error` says why. */
  readonly job: AnyJob;
  constructor(job: AnyJob) {
    const cancelled = job.state === 'cancelled';
    super(
      cancelled ? 'job_cancelled' : 'job_failed',
      `job ${job.id} (${job.type}) ${cancelled ? 'was cancelled' : 'failed'}: ${job.error ?? 'no reason given'}`,
    );
    this.job = job;
  }

  /** `failed` or `cancelled`. */
  get state(): string {
    return this.job.state;
  }
}

/** `waitForJob` gave up: the job had not ended within `timeoutMs`. */
export class WaitTimeoutError extends MlqError {
  override name = 'WaitTimeoutError';
  readonly jobId: string;
  readonly timeoutMs: number;
  /** The job as last seen, if it was seen. */
  readonly lastSeen: AnyJob | undefined;
  constructor(jobId: string, timeoutMs: number, lastSeen?: AnyJob) {
    super(
      'timeout',
      `job ${jobId} did not end within ${timeoutMs} ms (last state: ${lastSeen?.state ?? 'unknown'})`,
    );
    this.jobId = jobId;
    this.timeoutMs = timeoutMs;
    this.lastSeen = lastSeen;
  }
}

/** Builds the error for a non-2xx answer from its body (JSON error shape or anything else). */
export function errorFromResponse(status: number, statusText: string, bodyText: string): MlqApiError {
  let body: unknown;
  try {
    body = bodyText ? JSON.parse(bodyText) : undefined;
  } catch {
    body = undefined;
  }
  const e = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
  if (e && typeof e.code === 'string' && typeof e.message === 'string') {
    return new MlqApiError(
      status,
      e.code,
      e.message,
      e.details as FieldIssue[] | Record<string, unknown> | undefined,
    );
  }
  // The Open Inference Protocol's shape (the /v2 routes): `{"error": "<message>"}`.
  const message = (body as { error?: unknown } | undefined)?.error;
  if (typeof message === 'string') {
    const codes: Record<number, string> = {
      400: 'invalid_request',
      404: 'not_found',
      413: 'too_many_instances',
      422: 'unservable_model',
      503: 'unavailable',
    };
    return new MlqApiError(status, codes[status] ?? `http_${status}`, message);
  }
  // Not the API's shape (e.g. /readyz's 503, or a proxy's page): keep what there is.
  const details = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : undefined;
  const text = bodyText.trim().slice(0, 300);
  return new MlqApiError(
    status,
    `http_${status}`,
    `HTTP ${status} ${statusText}${text ? `: ${text}` : ''}`,
    details,
  );
}
