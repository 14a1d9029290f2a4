/**
 * A job whose lock expired while Redis was away (an outage longer than WORKER_LOCK_DURATION_MS) is no
 * longer this worker's: the queue's stalled-job check puts it back in the wait list, and whichever
 * worker takes it next resumes it from its checkpoint. Training on here would race that run for the
 * same checkpoint and model files, so the local run is interrupted as on shutdown: it saves a
 * mid-epoch checkpoint first, so no work is lost.
 */
import { SHUTDOWN_REASON } from '@mlq/core/errors';
import type { Worker } from '@mlq/queues';

/**
 * Watches worker `w` (of `queue`) for lost locks. BullMQ reports one on every renewal tick, and the
 * interrupted run's hand-back as "Missing lock" errors: the returned filter swallows those (true) so
 * that each lost job gets one log line.
 */
export function watchLockLoss(
  w: Worker,
  queue: string,
  log: (line: string) => void,
  onLost: (jobId: string) => void,
): (err: Error) => boolean {
  const lost = new Set<string>();
  w.on('lockRenewalFailed', (ids: string[]) => {
    for (const id of ids) {
      if (lost.has(id)) continue;
      lost.add(id);
      onLost(id);
      log(
        `[${queue}] job ${id} lost its lock while Redis was away: checkpointing it here and leaving it ` +
          'to the queue, which resumes it from that checkpoint',
      );
      w.cancelJob(id, SHUTDOWN_REASON);
    }
  });
  // Taken again (by this worker): its lock is fresh.
  w.on('active', (job) => void lost.delete(job.id!));
  return (err) => {
    const m = /^(?:could not renew lock for job|Missing lock for job) ([^\s.]+)/.exec(err.message);
    return m !== null && lost.has(m[1]!);
  };
}
