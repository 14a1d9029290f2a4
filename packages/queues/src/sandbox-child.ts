/**
 * Hooks into BullMQ's sandbox children (bullmq's child-processor.js and child-pool.js): the child sends
 * the job's result to the worker over IPC (`process.send`), and the worker then puts the child back in
 * its pool's free list, from which the next job may take it at once.
 */
import { ChildPool, ParentCommand } from 'bullmq';

/** The message a child sends its worker before the result of its last job: do not reuse me. */
const RETIRE = 'mlq:retire';
const retiring = Symbol('mlq:retiring');
const watched = Symbol('mlq:watched');

/**
 * In a sandbox child: tells the worker that this child exits after the job it runs now, so that the
 * worker never hands it another job (see `retireAnnouncedChildren`). Sent before the job's result,
 * over the same channel, so the worker reads it first.
 */
export function announceRetirement(): void {
  process.send?.({ cmd: RETIRE });
}

type PoolChild = {
  on(event: 'message', listener: (m: unknown) => void): unknown;
  [retiring]?: boolean;
  [watched]?: boolean;
};

let installed = false;

/**
 * In the worker (once, before its first job): a pool child that sent `announceRetirement` is dropped
 * from the pool when its job ends instead of joining the free list. BullMQ releases a child whose
 * process has not exited yet when the result arrives; a child that exits right after its result was
 * otherwise sometimes handed the next job first, which then failed an attempt with "Unexpected exit
 * code: 0". Patches `ChildPool.prototype.retain` and `release` (bullmq's child-pool.js).
 */
export function retireAnnouncedChildren(): void {
  if (installed) return;
  installed = true;
  interface Pool {
    retain(this: Pool, file: string): Promise<PoolChild>;
    release(this: Pool, child: PoolChild): void;
    remove(this: Pool, child: PoolChild): void;
  }
  const proto = ChildPool.prototype as unknown as Pool;
  const { retain, release } = proto;
  proto.retain = async function (file) {
    const child = await retain.call(this, file);
    if (!child[watched]) {
      child[watched] = true;
      child.on('message', (m) => {
        if ((m as { cmd?: unknown } | null)?.cmd === RETIRE) child[retiring] = true;
      });
    }
    return child;
  };
  proto.release = function (child) {
    // Out of the pool: its own exit (right after the result it sent) ends the process.
    if (child[retiring]) this.remove(child);
    else release.call(this, child);
  };
}

/**
 * In a sandbox child: calls `then` once the result of the job it runs (completed, or with
 * `failedOnly` failed) has been handed to the IPC channel (the send's callback ran), that is, after
 * the worker has it and before the child could start another job. Exiting there is safe: the worker
 * has the result, drops the exited child from its pool (see `announceRetirement`) and forks a fresh
 * one for its next job.
 */
export function afterResultSent(then: () => void, opts: { failedOnly?: boolean } = {}): void {
  const send = process.send?.bind(process);
  if (!send) return;
  const results: unknown[] = opts.failedOnly
    ? [ParentCommand.Failed]
    : [ParentCommand.Failed, ParentCommand.Completed];
  process.send = ((message: unknown, ...rest: unknown[]) => {
    const result = results.includes((message as { cmd?: unknown } | null)?.cmd);
    const i = rest.findIndex((a) => typeof a === 'function');
    if (!result) return send(message, ...(rest as []));
    const callback = i >= 0 ? (rest[i] as (e: Error | null) => void) : undefined;
    const args = i >= 0 ? rest.slice(0, i) : rest;
    return send(message, ...(args as []), (e: Error | null) => {
      callback?.(e);
      then();
    });
  }) as typeof process.send;
}

/** `afterResultSent` for a failed result only. */
export const afterFailedResultSent = (then: () => void): void => afterResultSent(then, { failedOnly: true });
