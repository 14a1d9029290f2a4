/**
 * Starts a worker thread on a TypeScript module. Node (>= 22.18) runs TypeScript itself by stripping
 * its types, in threads too, and every package here is erasable syntax (tsconfig.base.json's
 * `erasableSyntaxOnly`): the thread needs no loader.
 */
import { Worker } from 'node:worker_threads';

/** A thread running `file` (an absolute path to a .ts module), with `workerData`. */
export function spawnTsThread(file: string, workerData: unknown): Worker {
  // execArgv []: the parent's flags (a test runner's, a loader's) mean nothing to the thread.
  return new Worker(file, { workerData, execArgv: [] });
}
