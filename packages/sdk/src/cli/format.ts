/** Text the CLI prints: progress lines and bars, a job's final line, tables. Pure functions. */
import { isEpochProgress, type AnyJob, type EpochProgress } from '../types.ts';

const num = (x: number | undefined, digits = 4) => (x === undefined ? '-' : x.toFixed(digits));

/** `42` → `0:42`, `3725` → `1:02:05`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const [h, m, r] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  const mm = h > 0 ? String(m).padStart(2, '0') : String(m);
  return `${h > 0 ? `${h}:` : ''}${mm}:${String(r).padStart(2, '0')}`;
}

/** The metrics of one epoch report, without the epoch counter. */
function metrics(p: EpochProgress): string {
  const parts = [`loss ${num(p.loss)}`, `acc ${num(p.acc)}`];
  if (p.valLoss !== undefined) parts.push(`val loss ${num(p.valLoss)}`);
  if (p.valAcc !== undefined) parts.push(`val acc ${num(p.valAcc)}`);
  parts.push(`${Math.round(p.samplesPerSec)} samples/s`, `ETA ${formatDuration(p.etaSeconds)}`);
  return parts.join('  ');
}

/** One plain line per progress report (for logs and pipes). */
export function formatProgressLine(p: unknown): string {
  if (isEpochProgress(p)) return `epoch ${p.epoch}/${p.epochs}  ${metrics(p as EpochProgress)}`;
  return `progress ${JSON.stringify(p)}`;
}

/** A progress bar that fits in `columns`: `epoch 3/10 [██████░░░░░░] 30%  loss … ETA 0:42`. */
export function formatProgressBar(p: unknown, columns = 100): string {
  if (!isEpochProgress(p)) return formatProgressLine(p).slice(0, columns - 1);
  const frac = p.epochs > 0 ? Math.min(1, Math.max(0, p.epoch / p.epochs)) : 0;
  const head = `epoch ${p.epoch}/${p.epochs}`;
  const tail = `${String(Math.round(frac * 100)).padStart(3)}%  ${metrics(p as EpochProgress)}`;
  const width = Math.max(10, Math.min(30, columns - head.length - tail.length - 5));
  const full = Math.round(frac * width);
  const line = `${head} [${'█'.repeat(full)}${'░'.repeat(width - full)}] ${tail}`;
  return line.length < columns ? line : `${line.slice(0, Math.max(0, columns - 2))}…`;
}

function elapsed(job: AnyJob): string {
  if (!job.startedAt || !job.finishedAt) return '';
  const s = (Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000;
  return Number.isFinite(s) ? ` in ${s.toFixed(1)} s` : '';
}

/** What a completed job produced, in a few words. */
function outcome(job: AnyJob): string {
  if (!job.result) return '';
  switch (job.type) {
    case 'fine-tune': {
      const { model, metrics: m, epochs } = job.result;
      const val = m.valAcc !== undefined ? `  val acc ${num(m.valAcc)}` : '';
      return `model ${model.name}@${model.version}  loss ${num(m.loss)}  acc ${num(m.acc)}${val}  (${epochs} epochs)`;
    }
    case 'evaluate':
      return `accuracy ${num(job.result.metrics.accuracy)}  loss ${num(job.result.metrics.loss)}`;
    case 'batch-predict':
      return `${job.result.rows} rows → ${job.result.outputUri}`;
    case 'tune': {
      const { best, trials } = job.result;
      const ms = Object.entries(best.metrics).map(([k, v]) => `${k} ${num(v)}`);
      return `best model ${best.model.name}@${best.model.version}  ${ms.join('  ')}  (${trials.length} trials)`;
    }
  }
}

/** The last line of `watch` and `submit --wait`: `completed fine-tune <id> in 3.2 s: model digits@1 …`. */
export function formatFinalLine(job: AnyJob): string {
  const head = `${job.state} ${job.type} ${job.id}${elapsed(job)}`;
  if (job.state === 'completed') {
    const o = outcome(job);
    return o ? `${head}: ${o}` : head;
  }
  return `${head}: ${job.error ?? 'no reason given'}`;
}

/** A short progress summary for job lists. */
export function formatProgressCell(p: unknown): string {
  if (isEpochProgress(p)) return `epoch ${p.epoch}/${p.epochs}`;
  return typeof p === 'number' ? (p === 0 ? '-' : `${p}%`) : '…';
}

/** Left-aligned columns under a header row. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** `{production: 2, staging: 3}` → `production=2 staging=3`. */
export function formatLabels(labels: Record<string, number> | string[] | undefined): string {
  if (!labels) return '';
  if (Array.isArray(labels)) return labels.join(' ');
  return Object.entries(labels)
    .map(([l, v]) => `${l}=${v}`)
    .join(' ');
}
