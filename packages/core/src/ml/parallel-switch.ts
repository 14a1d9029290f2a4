/**
 * Data-parallel training only where it pays: the fit loop's steps go through a ParallelSwitch, which
 * times steps on one thread against steps split over the helper threads (@mlq/engine's parallel.ts) and keeps the
 * faster way.
 */
import type { DataParallelTrainer } from '@mlq/engine';

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
/**
 * The mean without the largest sample (one pause, e.g. a garbage collection, does not decide). A
 * mean, not a median: what a fit gets is the rows over the total time, and split steps on a
 * shared 2-core machine come out bimodal (measured in a worker job: 79 55 81 48 88 57 88 49 ms,
 * whose median, 79, says "no gain" while their mean, 68 against 84 on one thread, is a 1.24x gain).
 */
const trimmedMean = (a: number[]) => {
  const kept = a.length >= 4 ? [...a].sort((x, y) => x - y).slice(0, -1) : a;
  return kept.reduce((s, v) => s + v, 0) / kept.length;
};

/** Timed steps each way before deciding; they alternate, so a drift in speed hits both alike. */
const PROBE_PAIRS = 8;
/** ...and at least this much time on one thread, up to PROBE_MAX_PAIRS (a 20 ms step is noisy). */
const PROBE_MIN_MS = 500;
const PROBE_MAX_PAIRS = 24;
/**
 * Steps shorter than this on one thread are not split at all. The cached 4608->128->5 head (~20
 * ms a step) never gained: over ten recipe runs its probe kept 2 threads three times, and each of
 * those fits ran slower (3.8 s) than the single-thread ones (2.9-3.2 s).
 */
const MIN_SPLIT_STEP_MS = 60;
/** Data-parallel is kept when it takes less than this share of one thread's time per row. */
const KEEP_BELOW = 0.9;
/**
 * After this many timed pairs the probe ends early when every sample agrees: each split step took
 * under EARLY_KEEP of the fastest single step's time per row (the MNIST CNN: ~0.6), or each took
 * longer than the slowest single step. Every probe pair costs a slow step one way or the other.
 */
const EARLY_PAIRS = 3;
const EARLY_KEEP = 0.75;

/**
 * `auto` (the default): probe, and keep whichever way is faster. `always`: no probe, every step is
 * split over all the threads, the first one waiting for the helpers to boot, and helpers that cannot
 * start fail the fit instead of it falling back to one thread. For tests and benchmarks that must run
 * the data-parallel path on every step, whatever the timings.
 */
export type ParallelMode = 'auto' | 'always';

/**
 * Data-parallel training only where it pays. Helper threads boot in the background while this
 * thread trains alone; once they are ready, steps alternate between one thread and all threads
 * (timed per row; the first parallel step warms the helpers up and is not counted), and the faster
 * way is kept for the rest of the fit.
 * Measured here (2 vCPUs, wasm): the mnist-cnn trains ~1.45x faster on 2 threads, while the cached
 * 4608->128->5 head gains nothing (two matmul threads slow each other down, and the weight sync costs
 * as much as what the second core saves). Alternating matters: timed in two blocks, the cnn once
 * measured 1.18x (its first single steps ran fast) and the head once 1.13x.
 */
export class ParallelSwitch {
  private trainer: DataParallelTrainer | undefined;
  private state: 'booting' | 'probing' | 'on' | 'off';
  private readonly singleMs: number[] = [];
  private readonly parallelMs: number[] = [];
  private probeSteps = 0;
  /** Wall time of single-thread steps before the decision (not the fit's first), ms. */
  private readonly stepMs: number[] = [];
  private steps = 0;
  /** Wall time of the probe's single-thread steps, ms. */
  private probeMs = 0;

  private async timedSingle(single: () => Promise<[number, number]>): Promise<[number, number]> {
    const t0 = performance.now();
    const r = await single();
    if (this.steps++ > 0) this.stepMs.push(performance.now() - t0);
    return r;
  }
  private readonly starting: Promise<DataParallelTrainer> | undefined;
  private readonly log: ((line: string) => Promise<void>) | undefined;
  private readonly minSplitStepMs: number;
  private readonly mode: ParallelMode;
  constructor(
    starting: Promise<DataParallelTrainer> | undefined,
    log: ((line: string) => Promise<void>) | undefined,
    minSplitStepMs = MIN_SPLIT_STEP_MS,
    mode: ParallelMode = 'auto',
  ) {
    this.starting = starting;
    this.log = log;
    this.minSplitStepMs = minSplitStepMs;
    this.mode = mode;
    this.state = starting ? 'booting' : 'off';
    starting?.then(
      (t) => {
        this.trainer = t;
        if (this.state === 'booting') this.state = 'probing';
      },
      (e: unknown) => {
        this.state = 'off';
        // Forced: the step that awaits `starting` fails the fit with this error instead.
        if (mode === 'always') return;
        void this.log?.(
          `data-parallel training unavailable, training on one thread: ${e instanceof Error ? e.message : String(e)}`,
        );
      },
    );
  }

  /** One training step over a batch of `rows` rows, on this thread or split (see the class comment). */
  async step(
    rows: number,
    single: () => Promise<[number, number]>,
    parallel: (t: DataParallelTrainer) => Promise<[number, number]>,
  ): Promise<[number, number]> {
    if (this.mode === 'always' && this.starting && this.state !== 'on' && !this.disposed) {
      // Forced: wait for the helpers (a failed start rejects here and fails the fit).
      this.trainer = await this.starting;
      this.state = 'on';
    }
    if (this.state === 'on') return parallel(this.trainer!);
    if (this.state === 'booting') return this.timedSingle(single);
    if (this.state !== 'probing') return single();
    if (this.stepMs.length >= 3 && median(this.stepMs) < this.minSplitStepMs) {
      this.state = 'off';
      const ms = median(this.stepMs).toFixed(0);
      await this.log?.(
        `data-parallel training skipped: a step takes ${ms} ms on one thread, too short to split`,
      );
      await this.dispose();
      return single();
    }
    const onAll = this.probeSteps++ % 2 === 1;
    const t0 = performance.now();
    const r = onAll ? await parallel(this.trainer!) : await this.timedSingle(single);
    const ms = performance.now() - t0;
    (onAll ? this.parallelMs : this.singleMs).push(ms / rows);
    if (!onAll) this.probeMs += ms;
    // Fast steps (a small head: ~20 ms) are noisy: go on pairing until the sample is long enough.
    const pairs = this.parallelMs.length - 1;
    if (pairs >= PROBE_PAIRS && (this.probeMs >= PROBE_MIN_MS || pairs >= PROBE_MAX_PAIRS))
      await this.decide();
    else if (pairs >= EARLY_PAIRS && this.singleMs.length >= EARLY_PAIRS && this.clearCut())
      await this.decide();
    return r;
  }

  /** Whether the timed pairs so far all point the same way, by a wide margin (see EARLY_KEEP). */
  private clearCut(): boolean {
    const split = this.parallelMs.slice(1);
    const fastest = Math.min(...this.singleMs);
    const slowest = Math.max(...this.singleMs);
    return split.every((ms) => ms < fastest * EARLY_KEEP) || split.every((ms) => ms > slowest);
  }

  /** The fit ended mid-probe: say what the pairs timed so far show. */
  async conclude(): Promise<void> {
    if (this.state === 'probing' && this.parallelMs.length > 1) await this.decide();
  }

  private async decide(): Promise<void> {
    const one = trimmedMean(this.singleMs);
    const all = trimmedMean(this.parallelMs.slice(1));
    const threads = this.trainer!.threads;
    const rate = (ms: number) => Math.round(1000 / ms);
    const line = `data-parallel training on ${threads} threads: ${rate(all)} samples/s against ${rate(one)} on one`;
    // The gain it takes, in the line: "765 against 695" alone reads like a reason to keep threads.
    const gain = `${(one / all).toFixed(2)}x, ${all < one * KEEP_BELOW ? 'at least' : 'under'} the ${(1 / KEEP_BELOW).toFixed(2)}x it takes`;
    if (all < one * KEEP_BELOW) {
      this.state = 'on';
      await this.log?.(`${line} (${gain}); keeping it`);
    } else {
      this.state = 'off';
      await this.log?.(`${line} (${gain}); back to one thread`);
      await this.dispose();
    }
  }

  private disposed = false;

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    if (this.state === 'booting') this.state = 'off';
    const t = this.trainer ?? (await this.starting?.catch(() => undefined));
    this.trainer = undefined;
    await t?.dispose();
  }
}
