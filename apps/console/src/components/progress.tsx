/** A progress bar for any job's progress report (epochs and batches, rows, trials). */
import { isEpochProgress, progressFraction, type JobState } from '@mlq/sdk';

export function progressText(p: unknown): string {
  if (isEpochProgress(p)) {
    const within = p.batch !== undefined ? ` · batch ${p.batch}/${p.batches}` : '';
    return `epoch ${p.epoch}/${p.epochs}${within}`;
  }
  const o = (typeof p === 'object' && p !== null ? p : {}) as Record<string, number>;
  if (o.total !== undefined) return `${o.rows} / ${o.total} rows`;
  if (o.trials !== undefined) return `${o.trialsDone} / ${o.trials} trials`;
  return '';
}

export function ProgressBar({ progress, state }: { progress: unknown; state: JobState | string }) {
  const frac = state === 'completed' ? 1 : progressFraction(progress);
  if (frac === undefined) return <span class="muted">–</span>;
  return (
    <div class="progress" title={progressText(progress)} data-testid="progress">
      <div class={`bar ${state}`} style={{ width: `${(frac * 100).toFixed(1)}%` }} />
      <span>{progressText(progress) || `${Math.round(frac * 100)}%`}</span>
    </div>
  );
}

export function StateBadge({ state }: { state: string }) {
  return <span class={`badge ${state}`}>{state}</span>;
}
