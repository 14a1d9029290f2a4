/** `@mlq/core/jobs`: the processors of every job type, and the context the worker gives them. */
export * from './context.ts';
export * from './fine-tune.job.ts';
export * from './run-history.ts';
export * from './evaluate.job.ts';
export * from './batch-predict.job.ts';
export * from './tune.job.ts';
export * from './resume-note.ts';
