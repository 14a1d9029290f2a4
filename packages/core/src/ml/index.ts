/** `@mlq/core/ml`: the transfer-learning domain on tfjs — architectures, transfer models, fit, checkpoints, metrics. */
export * from './architectures.ts';
export * from './checkpoint.ts';
export * from './fit.ts';
export * from './metrics.ts';
export * from './model-io.ts';
export * from './resolve.ts';
export * from './transfer.ts';
