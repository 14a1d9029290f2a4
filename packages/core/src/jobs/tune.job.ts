/**
 * The tune job: a hyper-parameter search whose trials are ordinary fine-tune jobs, children of the
 * tune on the fine-tune queue, so every worker with a fine-tune slot trains them in parallel.
 *
 * The tune holds no worker while its trials train. It runs twice: the first run adds the trials and
 * parks the job (waiting-children); when the last trial ends the queue runs it again, and it collects
 * the results, picks the best by the objective and registers that trial's model as the next version
 * of `<model>` (copied, not retrained). Which run it is comes from the queue itself (does the job have
 * children yet?), so a crash or a stall anywhere is harmless: trial ids are fixed, a re-run adds
 * nothing twice, and it parks again while any trial is pending. A retried tune (POST /v1/jobs/{id}/retry)
 * runs its failed trials again and adds back the ones removed, keeping those that completed.
 */
import {
  fineTuneResultSchema,
  isUri,
  planTrials,
  spaceSize,
  trialPayload,
  trialValidationSplit,
  tunePayloadSchema,
  tuneSpaceIssues,
  type ChildJobs,
  type ChildOutcomes,
  type NewVersion,
  type TrialPlan,
  type TunePayload,
  type TuneProgress,
  type TuneResult,
  type TuneTrial,
} from '@mlq/contract';
import type { ArtifactStore } from '../storage/artifact-store.ts';
import { runPrefix } from '../storage/layout.ts';
import { DataError, InputError } from '../util/errors.ts';
import type { JobContext } from './context.ts';

/** The context of a tune job: a JobContext plus its children on the fine-tune queue. */
export interface TuneContext extends JobContext {
  children: ChildJobs;
}

/** Trial ids are fixed by the tune's id, so a re-run of the first step adds no trial twice. */
export const trialJobId = (tuneJobId: string, n: number): string => `${tuneJobId}-trial-${n}`;

/** Trials with their outcomes, in trial order; a trial not ended yet is `pending`. */
function collectTrials(tuneJobId: string, plan: TrialPlan[], outcomes: ChildOutcomes): TuneTrial[] {
  return plan.map((t): TuneTrial => {
    const jobId = trialJobId(tuneJobId, t.n);
    const head = { trial: t.n, jobId, params: t.params };
    if (jobId in outcomes.done) {
      const r = fineTuneResultSchema.safeParse(outcomes.done[jobId]);
      if (r.success) return { ...head, state: 'completed', metrics: r.data.metrics, model: r.data.model };
      return { ...head, state: 'failed', error: 'the trial ended without a fine-tune result' };
    }
    const error = outcomes.failed[jobId];
    return error === undefined ? { ...head, state: 'pending' } : { ...head, state: 'failed', error };
  });
}

/** The best completed trial by the objective (valAcc: highest, valLoss: lowest); ties go to the earlier trial. */
export function pickBest(trials: TuneTrial[], objective: TunePayload['objective']): TuneTrial | undefined {
  const sign = objective === 'valAcc' ? 1 : -1;
  let best: TuneTrial | undefined;
  for (const t of trials) {
    const v = t.metrics?.[objective];
    if (t.state !== 'completed' || v === undefined || !Number.isFinite(v)) continue;
    if (!best || sign * v > sign * best.metrics![objective]!) best = t;
  }
  return best;
}

function progressOf(trials: TuneTrial[], objective: TunePayload['objective']): TuneProgress {
  const best = pickBest(trials, objective);
  return {
    trialsDone: trials.filter((t) => t.state !== 'pending').length,
    trials: trials.length,
    failed: trials.filter((t) => t.state === 'failed').length,
    objective,
    best: best ? { trial: best.trial, jobId: best.jobId, params: best.params, metrics: best.metrics } : null,
  };
}

/**
 * The tune's progress once trial `trialId` has ended with `result`, for the trial itself to report:
 * the tune sleeps while its trials run. Undefined when the parent is not a tune this code can read.
 * Two trials ending together may each miss the other; the tune's last run sets the exact numbers.
 */
export function progressAfterTrial(
  tuneId: string,
  tuneData: unknown,
  outcomes: ChildOutcomes,
  trialId: string,
  result: unknown,
): TuneProgress | undefined {
  const p = tunePayloadSchema.safeParse(tuneData);
  if (!p.success) return undefined;
  const trials = collectTrials(tuneId, planTrials(p.data), {
    ...outcomes,
    done: { ...outcomes.done, [trialId]: result },
  });
  return progressOf(trials, p.data.objective);
}

/** Every trial trains on the same base version: a label or "latest" could move during the search. */
async function pinnedBase(p: TunePayload, ctx: JobContext): Promise<string | undefined> {
  if (p.base === undefined || isUri(p.base)) return p.base;
  const v = await ctx.registry.resolve(p.base);
  return `${v.name}@${v.version}`;
}

/**
 * Step 1: the trials as child jobs, those of `plan` that have no job (`existing`): all of them on the
 * first run; on a retried tune's rerun, those removed while waiting. Added ones train on the base the
 * others were pinned to, where one of them is left to say which.
 */
async function addTrials(
  p: TunePayload,
  plan: TrialPlan[],
  existing: Set<string>,
  ctx: TuneContext,
): Promise<void> {
  const missing = plan.filter((t) => !existing.has(trialJobId(ctx.jobId, t.n)));
  if (!missing.length) return;
  const sibling = existing.size
    ? ((await ctx.children.dataOf(existing.values().next().value!)) as { base?: unknown } | undefined)
    : undefined;
  const base = typeof sibling?.base === 'string' ? sibling.base : await pinnedBase(p, ctx);
  const pinned = { ...p, ...(base !== undefined ? { base } : {}) };
  await ctx.children.add(
    missing.map((t) => ({ id: trialJobId(ctx.jobId, t.n), data: trialPayload(pinned, t) })),
  );
  const where = base !== p.base ? ` on ${base}` : '';
  await ctx.log(
    existing.size
      ? `added again ${missing.length} of the ${plan.length} fine-tune trials (removed before they ended)${where}`
      : `added ${plan.length} fine-tune trials (${p.search.strategy} over ${spaceSize(p)} combinations)${where}`,
  );
}

/**
 * The best trial's files are copied under the tune's own run, so the registered version does not
 * depend on the trial's run directory; a model outside the store is registered where it is.
 */
async function copyModel(store: ArtifactStore, uri: string, toPrefix: string): Promise<string> {
  const key = store.keyOf(uri);
  if (key === undefined) return uri;
  const dir = key.slice(0, key.lastIndexOf('/'));
  const target = `${toPrefix}/${key.slice(dir.length + 1)}`;
  for (const file of await store.list(`${dir}/`)) {
    if (file !== key) await store.put(`${toPrefix}/${file.slice(dir.length + 1)}`, await store.get(file));
  }
  // model.json last, as saveModel writes it: a model.json that exists has its weights beside it.
  await store.put(target, await store.get(key));
  return store.uriOf(target);
}

/** Step 2: the best trial's model becomes the next version of `<model>`, with the tune as lineage. */
async function registerBest(
  p: TunePayload,
  best: TuneTrial,
  ctx: JobContext,
): Promise<TuneResult['best']['model']> {
  const trialVersion = await ctx.registry.get(best.model!.name, best.model!.version);
  const uri = await copyModel(ctx.store, trialVersion.uri, `${runPrefix(ctx.jobId)}/model`);
  const { version: _v, createdAt: _c, labels: _l, evaluation: _e, ...lineage } = trialVersion;
  const history = await ctx.registry.history(trialVersion.name, trialVersion.version);
  const entry: NewVersion & { tune: Record<string, unknown> } = {
    ...lineage,
    ...(history ? { history } : {}),
    name: p.model,
    uri,
    jobId: ctx.jobId,
    tune: {
      jobId: ctx.jobId,
      trial: best.trial,
      trialJobId: best.jobId,
      objective: p.objective,
      searched: best.params,
    },
  };
  const version = await ctx.registry.register(entry);
  await ctx.log(`registered ${p.model}@${version.version}: trial ${best.trial} (${best.jobId}), ${uri}`);
  return { name: p.model, version: version.version, uri };
}

function notesOf(p: TunePayload, plan: TrialPlan[], skipped: TuneTrial[]): string[] {
  const notes: string[] = [];
  if (p.validationSplit === 0) {
    notes.push(
      `validationSplit was 0: trials held out ${trialValidationSplit(p)} of the data to measure ${p.objective}`,
    );
  }
  const total = spaceSize(p);
  if (plan.length < total)
    notes.push(`ran ${plan.length} of the ${total} combinations (${p.search.strategy})`);
  for (const t of skipped) notes.push(`trial ${t.trial} completed without ${p.objective}: not ranked`);
  return notes;
}

/** The tune processor (see the file comment for its two runs). */
export async function runTune(p: TunePayload, ctx: JobContext): Promise<TuneResult> {
  const children = (ctx as Partial<TuneContext>).children;
  if (!children) throw new Error('a tune job needs a worker that can add child jobs (JobContext.children)');
  const tctx: TuneContext = { ...ctx, children };
  const issues = tuneSpaceIssues(p);
  if (issues.length)
    throw new InputError(`invalid tune search: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`);
  const plan = planTrials(p);

  // The first run adds the trials. A retried tune (its failed trials were retried with it) adds
  // again those that were removed; a later run only collects, so a trial removed then stays removed.
  const rerun = await children.rerunRequested();
  const existing = await children.ids();
  if (existing.size === 0 || rerun) {
    await addTrials(p, plan, existing, tctx);
    await ctx.progress(progressOf(collectTrials(ctx.jobId, plan, await children.outcomes()), p.objective));
  }
  if (rerun) await children.rerunHandled();
  await children.waitForAll();

  const trials = collectTrials(ctx.jobId, plan, await children.outcomes()).map((t): TuneTrial =>
    t.state === 'pending' ? { ...t, state: 'failed', error: 'the trial was removed before it ended' } : t,
  );
  await ctx.progress(progressOf(trials, p.objective));
  const failed = trials.filter((t) => t.state === 'failed');
  for (const t of failed) await ctx.log(`trial ${t.trial} (${t.jobId}) failed: ${t.error}`);
  const best = pickBest(trials, p.objective);
  if (!best) {
    const why =
      failed.length === trials.length
        ? `all ${trials.length} trials failed`
        : `no trial measured ${p.objective}`;
    throw new DataError(`${why}${failed[0] ? `; trial ${failed[0].trial}: ${failed[0].error}` : ''}`);
  }
  await ctx.log(
    `best: trial ${best.trial} ${p.objective} ${best.metrics![p.objective]} with ${JSON.stringify(best.params)}`,
  );
  const model = await registerBest(p, best, ctx);
  const skipped = trials.filter((t) => t.state === 'completed' && t.metrics?.[p.objective] === undefined);
  return {
    best: { trial: best.trial, jobId: best.jobId, params: best.params, metrics: best.metrics!, model },
    objective: p.objective,
    trials,
    validationSplit: trialValidationSplit(p),
    notes: notesOf(p, plan, skipped),
  };
}
