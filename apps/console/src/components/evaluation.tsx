/** An evaluation: accuracy and loss, the confusion matrix as a heatmap, per-class P/R/F1, the ROC curve. */
import { useMemo } from 'preact/hooks';
import type { ResultOf } from '@mlq/sdk';
import { Chart, palette } from './chart.tsx';
import { num, pct } from '../format.ts';

type Metrics = ResultOf<'evaluate'>['metrics'];

/** Cells shaded by their share of the true class's row (recall per cell). */
function ConfusionMatrix({ m }: { m: Metrics }) {
  const labels = m.perClass.map((c) => String(c.label));
  return (
    <table class="confusion" data-testid="confusion">
      <caption>Confusion matrix (rows: true class, columns: predicted)</caption>
      <thead>
        <tr>
          <th />
          {labels.map((l) => (
            <th>{l}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {m.confusionMatrix.map((row, i) => {
          const total = row.reduce((a, b) => a + b, 0) || 1;
          return (
            <tr>
              <th>{labels[i]}</th>
              {row.map((n, j) => {
                const share = n / total;
                const hue = i === j ? 215 : 12;
                return (
                  <td
                    title={`true ${labels[i]}, predicted ${labels[j]}: ${n} (${pct(share)})`}
                    style={{
                      background: `hsla(${hue}, 80%, 45%, ${share.toFixed(3)})`,
                      color: share > 0.5 ? '#fff' : undefined,
                    }}
                  >
                    {n}
                  </td>
                );
              })}
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function PerClass({ m }: { m: Metrics }) {
  return (
    <table class="list compact" data-testid="per-class">
      <thead>
        <tr>
          <th>class</th>
          <th>precision</th>
          <th>recall</th>
          <th>F1</th>
          <th>support</th>
        </tr>
      </thead>
      <tbody>
        {m.perClass.map((c) => (
          <tr>
            <td>{String(c.label)}</td>
            <td>{num(c.precision, 3)}</td>
            <td>{num(c.recall, 3)}</td>
            <td>{num(c.f1, 3)}</td>
            <td>{c.support}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Roc({ roc, auc }: { roc: NonNullable<Metrics['roc']>; auc: number | undefined }) {
  const data = useMemo(() => [roc.fpr, roc.tpr, roc.fpr] as [number[], number[], number[]], [roc]);
  return (
    <Chart
      title={`ROC curve${auc !== undefined ? ` (AUC ${num(auc, 3)})` : ''}`}
      testId="roc-chart"
      height={300}
      options={{
        scales: { x: { time: false, range: [0, 1] }, y: { range: [0, 1] } },
        axes: [{ label: 'false positive rate' }, { label: 'true positive rate' }],
        series: [
          { label: 'FPR' },
          { label: 'TPR', stroke: palette[0], width: 2 },
          { label: 'chance', stroke: '#999', dash: [4, 4], width: 1, points: { show: false } },
        ],
      }}
      data={data}
    />
  );
}

export function EvaluationView({ metrics: m }: { metrics: Metrics }) {
  return (
    <div class="evaluation">
      <p>
        accuracy <b data-testid="eval-accuracy">{pct(m.accuracy)}</b> · loss {num(m.loss)}
        {m.samples !== undefined && <> · {m.samples} rows</>}
        {m.rocAuc !== undefined && <> · ROC AUC {num(m.rocAuc, 3)}</>}
      </p>
      <div class="two">
        <ConfusionMatrix m={m} />
        <PerClass m={m} />
      </div>
      {m.roc && <Roc roc={m.roc} auc={m.rocAuc} />}
    </div>
  );
}
