/**
 * Hooks into BullMQ's sandbox child (bullmq's child-processor.js): the child sends the job's result
 * to the worker over IPC (`process.send`), and only then goes idle and may be given the next job.
 */
import { ParentCommand } from 'bullmq';

/**
 * In a sandbox child: calls `then` once the failed result of the job it runs has been handed to the
 * IPC channel (the send's callback ran), that is, after the worker has its reason and before the child
 * could start another job. Exiting there is safe: the worker has the result, drops the exited child
 * from its pool and forks a fresh one for its next job.
 */
export function afterFailedResultSent(then: () => void): void {
  const send = process.send?.bind(process);
  if (!send) return;
  process.send = ((message: unknown, ...rest: unknown[]) => {
    const failed = (message as { cmd?: unknown } | null)?.cmd === ParentCommand.Failed;
    const i = rest.findIndex((a) => typeof a === 'function');
    if (!failed) return send(message, ...(rest as []));
    const callback = i >= 0 ? (rest[i] as (e: Error | null) => void) : undefined;
    const args = i >= 0 ? rest.slice(0, i) : rest;
    return send(message, ...(args as []), (e: Error | null) => {
      callback?.(e);
      then();
    });
  }) as typeof process.send;
}
