/**
 * `@mlq/contract`: what the API, the worker, the queues, the SDK and core agree on — zod schemas and
 * types of every job type, the shared vocabulary, views, error codes and every Redis key. It imports
 * nothing of the platform, and runs in Node and browsers (the Node-only env fragment is `@mlq/contract/env`).
 */
export * from './augment.ts';
export * from './catalog.ts';
export * from './datasets.ts';
export * from './dataset-versions.ts';
export * from './errors.ts';
export * from './issues.ts';
export * from './job-type.ts';
export * from './keys.ts';
export * from './model-refs.ts';
export * from './registry.ts';
export * from './rng.ts';
export * from './training.ts';
export * from './views.ts';
export * from './http.ts';
export * from './jobs/batch-predict.ts';
export * from './jobs/evaluate.ts';
export * from './jobs/fine-tune.ts';
export * from './jobs/tune.ts';
