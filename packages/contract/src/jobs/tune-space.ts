/**
 * The search space of a tune job: which trials it runs (a grid, or seeded random samples) and the
 * fine-tune payload of each. Every searched value is checked against the fine-tune schema, so a bad
 * value is a 400 naming `search.space.<key>` when the tune is submitted, not a failed trial later.
 */
import { describeIssues, type FieldIssue } from '../issues.ts';
import { mulberry32 } from '../rng.ts';
import { fineTunePayloadSchema, type FineTunePayload } from './fine-tune.ts';
import type { TunePayload, TuneSpaceKey } from './tune.schema.ts';

/** The most trials one tune may run (and the largest grid it accepts). */
export const MAX_TRIALS = 200;
/** The validation split of trials whose tune asked for none: the objective is a validation metric. */
export const TUNE_DEFAULT_VALIDATION_SPLIT = 0.2;

/** The searched values of one trial, by space key (`{"learningRate": 0.01, "head.units": [64]}`). */
export type TrialParams = Partial<Record<TuneSpaceKey, unknown>>;

/** One planned trial: its number (1-based) and its searched values. */
export interface TrialPlan {
  n: number;
  params: TrialParams;
}

type SpaceEntry = [TuneSpaceKey, unknown[]];

function spaceEntries(p: TunePayload): SpaceEntry[] {
  return (Object.entries(p.search.space) as [TuneSpaceKey, unknown[] | undefined][]).filter(
    (e): e is SpaceEntry => e[1] !== undefined,
  );
}

/** How many combinations the space holds (the full grid). */
export function spaceSize(p: TunePayload): number {
  return spaceEntries(p).reduce((n, [, values]) => n * values.length, 1);
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** The index-th combination of the grid, the last key varying fastest. */
function combination(entries: SpaceEntry[], index: number): TrialParams {
  const picked: unknown[] = [];
  let rest = index;
  for (let k = entries.length - 1; k >= 0; k--) {
    const values = entries[k]![1];
    picked[k] = values[rest % values.length];
    rest = Math.floor(rest / values.length);
  }
  return Object.fromEntries(entries.map(([key], k) => [key, picked[k]]));
}

/**
 * The trials of a search, always the same for the same payload: the tune's two steps, and trials
 * reporting progress, recompute the plan instead of storing it.
 */
export function planTrials(p: TunePayload): TrialPlan[] {
  const entries = spaceEntries(p);
  const total = spaceSize(p);
  const count = Math.min(p.search.trials ?? total, total, MAX_TRIALS);
  let indices: number[];
  if (p.search.strategy === 'grid') {
    // A capped grid walks the grid with a stride coprime to its size: the picks are distinct and
    // spread over every key's values (a 3×3 grid capped at 3 is its diagonal), not its first rows.
    let step = Math.max(1, Math.ceil(total / count));
    while (gcd(step, total) !== 1) step++;
    indices = Array.from({ length: count }, (_, i) => (i * step) % total).sort((a, b) => a - b);
  } else {
    // Distinct combinations drawn with the tune's seed, so a re-run draws the same ones.
    const rand = mulberry32(p.seed);
    const seen = new Set<number>();
    while (seen.size < count) seen.add(Math.floor(rand() * total));
    indices = [...seen];
  }
  return indices.map((index, i) => ({ n: i + 1, params: combination(entries, index) }));
}

/** What trials register their models as: the best is then registered again as `<model>` itself. */
export function trialModelName(model: string, n: number): string {
  return `${model}-trial-${n}`;
}

/** The validation split trials use: the tune's, or 0.2 when it gave none. */
export function trialValidationSplit(p: TunePayload): number {
  return p.validationSplit > 0 ? p.validationSplit : TUNE_DEFAULT_VALIDATION_SPLIT;
}

/** The fine-tune payload of a trial before parsing: the tune's training fields with the trial's values. */
function trialPayloadInput(p: TunePayload, params: TrialParams, n: number): Record<string, unknown> {
  const { search: _search, objective: _objective, ...training } = p;
  const out: Record<string, unknown> = {
    ...training,
    model: trialModelName(p.model, n),
    validationSplit: trialValidationSplit(p),
  };
  for (const [key, value] of Object.entries(params)) {
    if (key.startsWith('head.'))
      out.head = { ...(out.head as object | undefined), [key.slice('head.'.length)]: value };
    else out[key] = value;
  }
  return out;
}

/** The fine-tune payload of trial `n` (call tuneSpaceIssues first: a bad value throws here). */
export function trialPayload(p: TunePayload, trial: TrialPlan): FineTunePayload {
  return fineTunePayloadSchema.parse(trialPayloadInput(p, trial.params, trial.n));
}

/**
 * What the schema alone cannot see in a tune: grid size, random without a count, and each searched
 * value merged into the payload and parsed as fine-tune parses it. The API answers 400 with these;
 * the worker checks again (a payload may come from anyone who can write to Redis).
 */
export function tuneSpaceIssues(p: TunePayload): FieldIssue[] {
  const issues: FieldIssue[] = [];
  const total = spaceSize(p);
  if (p.search.strategy === 'grid' && total > MAX_TRIALS) {
    issues.push({
      field: 'search.space',
      message: `the grid has ${total} combinations, more than ${MAX_TRIALS}: give fewer values, or use "strategy": "random" with "trials"`,
    });
  }
  if (p.search.strategy === 'random' && p.search.trials === undefined) {
    issues.push({ field: 'search.trials', message: 'a random search needs the number of trials to draw' });
  }
  // The tune's own fields, as every trial gets them (e.g. a name too long once "-trial-200" is added).
  const baseline = fineTunePayloadSchema.safeParse(trialPayloadInput(p, {}, MAX_TRIALS));
  if (!baseline.success) {
    for (const i of describeIssues(baseline.error)) {
      const why =
        i.field === 'model'
          ? `trials register as "<model>-trial-<n>", so the name must leave room for it: `
          : '';
      issues.push({ field: i.field, message: `${why}${i.message}` });
    }
    return issues;
  }
  for (const [key, values] of spaceEntries(p)) {
    values.forEach((value, index) => {
      // Only this value differs from the baseline, so every issue is about it.
      const r = fineTunePayloadSchema.safeParse(trialPayloadInput(p, { [key]: value }, MAX_TRIALS));
      if (r.success) return;
      for (const i of describeIssues(r.error)) {
        issues.push({
          field: `search.space.${key}`,
          message: `value ${index + 1} (${JSON.stringify(value)})${i.field === key ? '' : ` at ${i.field}`}: ${i.message}`,
        });
      }
    });
  }
  return issues;
}
