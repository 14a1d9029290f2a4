/** Text the CLI prints: progress lines and bars, a job's final line, tables. Pure functions. */
import { isEpochProgress, progressFraction, type AnyJob, type EpochProgress } from '../types.ts';

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

/** What a non-epoch report counts: `rows 3000/10000` (evaluate, batch-predict), `trials 2/6` (tune). */
function counted(p: unknown): string | undefined {
  const o = (typeof p === 'object' && p !== null ? p : {}) as Record<string, unknown>;
  if (typeof o.rows === 'number' && typeof o.total === 'number') return `rows ${o.rows}/${o.total}`;
  if (typeof o.trialsDone === 'number' && typeof o.trials === 'number') {
    const failed = typeof o.failed === 'number' && o.failed > 0 ? `, ${o.failed} failed` : '';
    return `trials ${o.trialsDone}/${o.trials}${failed}`;
  }
  return undefined;
}

/** `epoch 2/5`, or `epoch 2/5 batch 12/40` within an epoch. */
function epochHead(p: EpochProgress): string {
  const within = p.batch !== undefined && p.batches !== undefined ? ` batch ${p.batch}/${p.batches}` : '';
  return `epoch ${p.epoch}/${p.epochs}${within}`;
}

/** One plain line per progress report (for logs and pipes). */
export function formatProgressLine(p: unknown): string {
  if (isEpochProgress(p)) return `${epochHead(p as EpochProgress)}  ${metrics(p as EpochProgress)}`;
  return counted(p) ?? `progress ${JSON.stringify(p)}`;
}

/**
 * The progress lines a pipe or a log file gets (a terminal gets the bar): one per epoch (reports within
 * an epoch are skipped), and for anything else (rows of evaluate and batch-predict, trials of a tune)
 * one per tenth of the total or per `everyMs`, whichever comes first, and the last one (100%). A
 * batch-predict of 8,000 single-row chunks then prints about a dozen lines instead of 8,000.
 */
export class PlainProgressLines {
  private lastAt = Number.NEGATIVE_INFINITY;
  private lastTenth = -1;
  private readonly everyMs: number;
  private readonly now: () => number;

  /** `everyMs`: the longest silence while a job moves; `now`: a clock in ms (tests give their own). */
  constructor(everyMs = 5000, now: () => number = () => performance.now()) {
    this.everyMs = everyMs;
    this.now = now;
  }

  /** The line to print for report `p`, or undefined to print nothing for it. */
  line(p: unknown): string | undefined {
    if (isEpochProgress(p)) return p.batch === undefined ? formatProgressLine(p) : undefined;
    const frac = progressFraction(p);
    const tenth = frac === undefined ? -1 : Math.floor(frac * 10);
    const t = this.now();
    if (frac !== 1 && tenth <= this.lastTenth && t - this.lastAt < this.everyMs) return undefined;
    this.lastAt = t;
    this.lastTenth = Math.max(this.lastTenth, tenth);
    return formatProgressLine(p);
  }
}

/**
 * A progress bar that fits in `columns`: `epoch 3/10 [██████░░░░░░] 30%  loss … ETA 0:42`. It moves
 * within an epoch (`epoch 3/10 batch 12/40`), and over rows (evaluate, batch-predict) and trials (tune).
 */
export function formatProgressBar(p: unknown, columns = 100): string {
  const frac = progressFraction(p);
  const epoch = isEpochProgress(p) ? (p as EpochProgress) : undefined;
  const head = epoch ? epochHead(epoch) : counted(p);
  if (frac === undefined || head === undefined) return formatProgressLine(p).slice(0, columns - 1);
  const tail = `${String(Math.round(frac * 100)).padStart(3)}%${epoch ? `  ${metrics(epoch)}` : ''}`;
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
  if (isEpochProgress(p)) return epochHead(p as EpochProgress);
  const c = counted(p);
  if (c) return c;
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
