/** What a job's code gets from the worker: identity, cancel signal, reporting, storage. */
import type { ArtifactStore } from '../storage/artifact-store.ts';
import type { ModelRegistry } from '../registry/registry.ts';
import type { UriLocator } from '../data/dataset.ts';
import type { EpochProgress } from '@mlq/contract';

export interface JobContext {
  jobId: string;
  /** Which attempt this is (1 = first run). */
  attempt: number;
  signal?: AbortSignal | undefined;
  progress(p: EpochProgress | Record<string, unknown>): Promise<void>;
  log(line: string): Promise<void>;
  store: ArtifactStore;
  registry: ModelRegistry;
  dataRoots: readonly string[];
  /**
   * Turns any dataset or model URI (file://, dataset://, s3://, http(s)://) into a local path
   * (remote/resolve-uri.ts); datasets are opened and models loaded through it.
   */
  locate?: UriLocator | undefined;
  /**
   * Most pixels (width × height) an image of an image-folder dataset may have (IMAGE_MAX_PIXELS;
   * default DEFAULT_IMAGE_MAX_PIXELS of packages/contract/src/env.ts): a larger one fails the job at
   * once, naming the file, before anything is decoded.
   */
  imageMaxPixels?: number | undefined;
  /** The tfjs backend this process runs on. */
  backend: string;
  /** Threads a training job may split its batches over (data-parallel, CPU backends); default 1. */
  trainThreads?: number | undefined;
  /**
   * Memory this job may use, in MB (the worker's WORKER_MEMORY_MB or cgroup limit over its
   * concurrency): bounds the input pipeline's buffers. Default: the machine's memory.
   */
  memoryBudgetMb?: number | undefined;
  /**
   * `in-memory`: the fine-tune input path before streaming (every row in one array), kept as
   * bench/stream.ts's baseline. Default `stream`.
   */
  inputPipeline?: 'stream' | 'in-memory' | undefined;
}
