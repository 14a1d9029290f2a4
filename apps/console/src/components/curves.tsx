/**
 * Training curves from a run's history: loss and accuracy within epochs (thin lines, the epoch's
 * running mean after each reported batch) and per epoch (markers), plus validation. The x axis is the
 * epoch, fractional within an epoch (epoch 2, batch 10 of 40 → 1.25).
 */
import { useMemo } from 'preact/hooks';
import type uPlot from 'uplot';
import type { EpochProgress, RunHistory } from '@mlq/sdk';
import { Chart, palette } from './chart.tsx';

type Row = { x: number; values: (number | undefined)[] };

/** Rows of one x each, merging the points within epochs and the epoch ends. */
function rows(h: RunHistory, pick: 'loss' | 'acc'): Row[] {
  const val = pick === 'loss' ? 'valLoss' : 'valAcc';
  const out: Row[] = [];
  for (const p of h.points)
    out.push({ x: p.epoch - 1 + p.batch / p.batches, values: [p[pick], undefined, undefined] });
  for (const e of h.epochs) out.push({ x: e.epoch, values: [e[pick], e[pick], e[val]] });
  return out.sort((a, b) => a.x - b.x);
}

function aligned(r: Row[]): uPlot.AlignedData {
  return [r.map((p) => p.x), ...[0, 1, 2].map((i) => r.map((p) => p.values[i] ?? null))] as uPlot.AlignedData;
}

function options(metric: string): Omit<uPlot.Options, 'width' | 'height' | 'title'> {
  return {
    scales: { x: { time: false } },
    axes: [{ label: 'epoch' }, { label: metric, size: 60 }],
    series: [
      { label: 'epoch', value: (_u, v) => (v == null ? '–' : v.toFixed(2)) },
      {
        label: `${metric} (within epochs)`,
        stroke: palette[0],
        width: 1,
        spanGaps: true,
        points: { show: false },
      },
      { label: metric, stroke: palette[0], width: 0, points: { show: true, size: 7, fill: palette[0] } },
      {
        label: `val ${metric}`,
        stroke: palette[1],
        width: 2,
        spanGaps: true,
        points: { show: true, size: 7 },
      },
    ],
  };
}

export function TrainingCurves({ history }: { history: RunHistory }) {
  const loss = useMemo(() => aligned(rows(history, 'loss')), [history]);
  const acc = useMemo(() => aligned(rows(history, 'acc')), [history]);
  if (history.points.length === 0 && history.epochs.length === 0)
    return <p class="muted">No training points yet.</p>;
  return (
    <div class="charts">
      <Chart title="Loss" options={options('loss')} data={loss} testId="loss-chart" />
      <Chart title="Accuracy" options={options('acc')} data={acc} testId="acc-chart" />
    </div>
  );
}

/** Adds a live progress report to a history (a point within an epoch, or an epoch's end). */
export function withProgress(h: RunHistory, p: EpochProgress): RunHistory {
  if (p.batch !== undefined && p.batches !== undefined) {
    if (h.points.some((q) => q.epoch === p.epoch && q.batch === p.batch)) return h;
    const point = {
      epoch: p.epoch,
      batch: p.batch,
      batches: p.batches,
      loss: p.loss,
      acc: p.acc,
      samplesPerSec: p.samplesPerSec,
    };
    return { ...h, points: [...h.points, point] };
  }
  return {
    ...h,
    epochs: [...h.epochs.filter((e) => e.epoch !== p.epoch), p].sort((a, b) => a.epoch - b.epoch),
  };
}
