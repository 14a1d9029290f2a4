/**
 * `@mlq/core/datasets`: datasets uploaded over HTTP — streaming ingest and validation, safe archive
 * walking, the dataset registry, and the worker's `dataset://` locator.
 */
export * from './archive.ts';
export * from './ingest.ts';
export * from './locate.ts';
export * from '../registry/dataset-registry.ts';
