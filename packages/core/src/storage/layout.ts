/** Where things live inside the artifact store: one place for every key layout. */

/** A job's own area: checkpoints, its saved model, batch-predict's part file. */
export const runPrefix = (jobId: string): string => `runs/${jobId}`;
