/**
 * `@mlq/engine`: tfjs training on CPUs, fast. Backend selection (tfjs-node-gpu → tfjs-node → wasm with
 * our SIMD training kernels → cpu), data-parallel helper threads, inference helpers, a Keras-exact
 * Adadelta and a SIMD feature dropout. See README.md beside this package.
 */
export { describeBackend, initBackend, type BackendPreference } from './backend.ts';
export { batchTensors, type TrainData } from './batches.ts';
export { installKerasBatchNormRule } from './batch-norm.ts';
export { disposeModels, predictBatched, predictRows } from './inference.ts';
export { compileInference, type InferencePlan } from './inference-plan.ts';
export { ADADELTA_KERNEL, KerasAdadelta } from './adadelta.ts';
export { DROPOUT_KERNEL, FeatureDropout, trailingDropoutRate } from './dropout.ts';
export { DataParallelTrainer, predictParallel, readyHelpers, stopHelpers } from './parallel.ts';
export {
  kernelVariant,
  relaxedSimdSupported,
  selectKernelVariant,
  type KernelVariant,
} from './simd-kernels.ts';
export { registerWasmTrainingKernels } from './wasm-kernels.ts';
export { spawnTsThread } from './ts-thread.ts';
