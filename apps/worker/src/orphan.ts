/**
 * A sandbox child whose worker is gone (kill -9) stops at once. Its job is abandoned: the job's lock
 * expires and another worker resumes it from its checkpoint; an orphan still training would race that
 * attempt for the same checkpoint, and nothing would read what it reports.
 *
 * The exit must not wait on anything either: the child's logger writes synchronously (logger.ts's
 * `sync`), because an exit that flushes buffered lines to the pipe of a dead worker never ends.
 */
export function exitWhenOrphaned(): void {
  // Not forked (no IPC channel): there is no worker to lose.
  if (process.connected === undefined) return;
  const orphaned = () => process.exit(1);
  process.on('disconnect', orphaned);
  // The worker may have died before this ran (while the sandbox module loaded): no event then.
  if (!process.connected) orphaned();
  // BullMQ's own SIGTERM handler (in its child runner) waits for the running job to end: right while
  // the worker is there to take the result, pointless without it.
  process.on('SIGTERM', () => {
    if (!process.connected) orphaned();
  });
}
