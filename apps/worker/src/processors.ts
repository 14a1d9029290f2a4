/**
 * Every job type's processor, in one table: the type makes a missing or extra entry a compile error,
 * and `checkProcessors` makes it a start-up error too.
 */
import { jobNames, type JobName, type JobOf, type ResultOf } from '@mlq/contract';
import { runBatchPredict, runEvaluate, runFineTune, runTune, type JobContext } from '@mlq/core/jobs';

type Processors = { [N in JobName]: (payload: JobOf<N>, ctx: JobContext) => Promise<ResultOf<N>> };

export const processors: Processors = {
  'fine-tune': runFineTune,
  evaluate: runEvaluate,
  'batch-predict': runBatchPredict,
  tune: runTune,
};

export function checkProcessors(): void {
  const missing = jobNames.filter((n) => typeof processors[n] !== 'function');
  const extra = Object.keys(processors).filter((n) => !(jobNames as string[]).includes(n));
  if (missing.length || extra.length) {
    throw new Error(
      `processor table out of step with the catalog: missing ${missing.join(', ')}; extra ${extra.join(', ')}`,
    );
  }
}
