/**
 * What a job's next run will start from, in words for its log: the worker that takes a job over after
 * its previous worker stopped answering says so when it starts (apps/worker/src/takeover.ts), before
 * the job's own lines (a fine-tune's `resuming from the checkpoint …`) come, which may take a while.
 */
import type { JobName } from '@mlq/contract';
import { findCheckpoint } from '../ml/checkpoint.ts';
import type { ArtifactStore } from '../storage/artifact-store.ts';
import { recordedBatchState } from './batch-predict.job.ts';

/**
 * How the next run of job `jobId` of type `name` starts, from what earlier runs left in `store`: a
 * phrase to follow "it " (`resumes from the checkpoint at the end of epoch 2`, `starts over, as …`).
 * Reads the store; its errors are thrown.
 */
export async function resumeNote(name: JobName, jobId: string, store: ArtifactStore): Promise<string> {
  switch (name) {
    case 'fine-tune': {
      const cp = await findCheckpoint(jobId, store);
      if (!cp) return 'starts over, as no checkpoint was saved';
      return cp.partial
        ? `resumes from the checkpoint at epoch ${cp.partial.epoch}, batch ${cp.partial.batches}`
        : `resumes from the checkpoint at the end of epoch ${cp.epoch}`;
    }
    case 'batch-predict': {
      const state = await recordedBatchState(jobId, store);
      if (state?.done) return 'finds its output complete';
      if (!state || state.rows === 0) return 'starts over, as no rows were recorded';
      return `continues after the ${state.rows} rows its last run recorded, where their part file is still there (else it starts over)`;
    }
    case 'tune':
      return 'runs again: trials already added are not added twice';
    case 'evaluate':
      return 'starts over';
  }
}
