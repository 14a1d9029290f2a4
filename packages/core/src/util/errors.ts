/**
 * Errors that carry a message meant for a person. A failure that retrying cannot fix is classified
 * once, where it is raised, by throwing a `PermanentError`: the worker fails such a job at once
 * (BullMQ's UnrecoverableError) instead of retrying it; anything else is treated as transient.
 * Messages show invisible characters escaped (`\uFEFF`, `\t`, see util/text.ts): a message quoting
 * a file's text must not hide what is wrong with it; and a URI's credentials redacted
 * (`http://***@host/`): a message quoting a URI must not repeat its password.
 */
import { forMessage } from './text.ts';

export { capMessage, clip, forMessage, MAX_MESSAGE, redactUserinfo } from './text.ts';

/** A failure that retrying cannot fix: the job fails at once with this message. */
export class PermanentError extends Error {
  override name = 'PermanentError';
  constructor(message: string) {
    super(forMessage(message));
  }
}

/** The job's data cannot be used: a missing file, a ragged row, an unknown label, a number beyond float32... */
export class DataError extends PermanentError {
  override name = 'DataError';
}

/** The job's parameters cannot work together (e.g. a head on a model with no such input shape). */
export class InputError extends PermanentError {
  override name = 'InputError';
}

/** A referenced thing does not exist (a model, a version, a label, an artifact). */
export class NotFoundError extends PermanentError {
  override name = 'NotFoundError';
}

/** The request conflicts with the current state (e.g. deleting a dataset version a waiting job uses): HTTP 409. */
export class ConflictError extends Error {
  override name = 'ConflictError';
}

/** An upload is larger than the configured limit: HTTP 413. */
export class TooLargeError extends Error {
  override name = 'TooLargeError';
}

/**
 * A model cannot be loaded: its URL answers an error status, or its model.json is not a tfjs
 * LayersModel this platform can read (a graph model, not JSON, a layer or weights tfjs cannot build,
 * weights that are NaN or infinite). The message says what was found and what is supported.
 */
export class ModelFormatError extends PermanentError {
  override name = 'ModelFormatError';
}

/** Training diverged: the loss (or a weight) became NaN or infinite; the same data and seed would again. */
export class TrainingDivergedError extends PermanentError {
  override name = 'TrainingDivergedError';
}

/** The job was cancelled by a user. */
export class CancelledError extends PermanentError {
  override name = 'CancelledError';
  constructor(message = 'cancelled') {
    super(message);
  }
}

/**
 * The worker is shutting down: the job saved where it was and must be handed back to the queue so
 * another worker continues it (not a failure, costs no attempt).
 */
export class ReleasedError extends Error {
  override name = 'ReleasedError';
  constructor(message = 'released: the worker is shutting down') {
    super(message);
  }
}

/** The abort reason a worker uses when it shuts down (anything else means a user cancelled). */
export const SHUTDOWN_REASON = 'shutdown';

/**
 * What a job stopped by its abort signal throws: ReleasedError when the reason is SHUTDOWN_REASON (the
 * worker is shutting down: the job goes back to the queue, costing no attempt), else a CancelledError
 * whose message is the reason (`cancelled by user`: the job fails at once, not retried).
 */
export function abortError(signal: AbortSignal): CancelledError | ReleasedError {
  const reason = String(signal.reason ?? 'cancelled');
  return reason === SHUTDOWN_REASON ? new ReleasedError() : new CancelledError(reason);
}

/** Throws `abortError(signal)` once `signal` has aborted; nothing without a signal. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

/** True for errors that retrying cannot fix. */
export function isPermanentError(e: unknown): e is PermanentError {
  return e instanceof PermanentError;
}
