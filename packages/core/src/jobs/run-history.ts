/**
 * A training run's history (per epoch and within epochs), kept while it trains: it decides when a
 * within-epoch progress report is due, and saves the curves to `runs/<jobId>/history.json`.
 */
import { runPrefix } from '../storage/layout.ts';
import type { BatchProgress, PartialEpoch } from '../ml/fit.ts';
import type { ArtifactStore } from '../storage/artifact-store.ts';
import { runHistorySchema, type BatchPoint, type EpochProgress, type RunHistory } from '@mlq/contract';

/** A within-epoch report goes out after at least this many batches... */
export const PROGRESS_EVERY_BATCHES = 5;
/** ...and at least this long after the previous report (whichever comes later). */
export const PROGRESS_EVERY_MS = 1000;
/** Past this many within-epoch points, every other one is dropped (the curve keeps its shape). */
export const MAX_HISTORY_POINTS = 5000;

/** The key of a run's history in the artifact store. */
export const historyKey = (jobId: string): string => `${runPrefix(jobId)}/history.json`;

/** Reads a run's history; undefined when the run never saved one (or the file is not one). */
export async function loadRunHistory(store: ArtifactStore, jobId: string): Promise<RunHistory | undefined> {
  const key = historyKey(jobId);
  if (!(await store.exists(key))) return undefined;
  const parsed = runHistorySchema.safeParse(JSON.parse((await store.get(key)).toString('utf8')));
  return parsed.success ? parsed.data : undefined;
}

export class RunHistoryRecorder {
  readonly points: BatchPoint[] = [];
  private lastAt = 0;
  private sinceReport = 0;

  private readonly epochs: number;
  private readonly now: () => number;
  constructor(epochs: number, now: () => number = () => performance.now()) {
    this.epochs = epochs;
    this.now = now;
  }

  /** Keeps the points saved before a resume that precede where training restarts. */
  resume(saved: RunHistory | undefined, epochsDone: number, partial?: PartialEpoch): void {
    for (const p of saved?.points ?? []) {
      const before = p.epoch <= epochsDone || (partial?.epoch === p.epoch && p.batch <= partial.batches);
      if (before) this.points.push(p);
    }
  }

  /**
   * Called after every batch: returns the progress report to send when one is due (at least
   * PROGRESS_EVERY_BATCHES batches and PROGRESS_EVERY_MS since the last), recording it as a point.
   * The epoch's last batch never reports: the epoch's own report follows at once.
   */
  onBatch(b: BatchProgress): EpochProgress | undefined {
    this.sinceReport++;
    const t = this.now();
    if (b.batch >= b.batches || this.sinceReport < PROGRESS_EVERY_BATCHES) return undefined;
    if (t - this.lastAt < PROGRESS_EVERY_MS) return undefined;
    this.lastAt = t;
    this.sinceReport = 0;
    const samplesPerSec = b.seconds > 0 ? b.rows / b.seconds : 0;
    const epochRows = Math.max(b.rows, Math.round((b.rows * b.batches) / b.batch));
    const rowsLeft = epochRows - b.rows + (this.epochs - b.epoch) * epochRows;
    const point: BatchPoint = {
      epoch: b.epoch,
      batch: b.batch,
      batches: b.batches,
      loss: b.loss,
      acc: b.acc,
      samplesPerSec,
    };
    this.points.push(point);
    if (this.points.length > MAX_HISTORY_POINTS) {
      const kept = this.points.filter((_, i) => i % 2 === 1);
      this.points.splice(0, this.points.length, ...kept);
    }
    return {
      ...point,
      epochs: this.epochs,
      etaSeconds: samplesPerSec > 0 ? rowsLeft / samplesPerSec : 0,
    };
  }

  /** An epoch ended: the next within-epoch report waits its full interval again. */
  onEpoch(): void {
    this.lastAt = this.now();
    this.sinceReport = 0;
  }

  /** The run's history with the given per-epoch entries. */
  history(epochs: EpochProgress[]): RunHistory {
    return { epochs: epochs.map(({ batch: _b, batches: _bs, ...e }) => e), points: [...this.points] };
  }

  async save(store: ArtifactStore, jobId: string, epochs: EpochProgress[]): Promise<RunHistory> {
    const h = this.history(epochs);
    await store.put(historyKey(jobId), JSON.stringify(h));
    return h;
  }
}
