/**
 * A tune: its trials (each a fine-tune job `<tuneId>-trial-<n>`) in a table sortable by the objective,
 * and every trial's objective per epoch in one chart, the best trial drawn thick.
 */
import { useEffect, useMemo, useState } from 'preact/hooks';
import { Link } from 'wouter-preact';
import type uPlot from 'uplot';
import type { AnyJob, Job, RunHistory } from '@mlq/sdk';
import { api } from '../api.ts';
import { Chart, palette } from './chart.tsx';
import { StateBadge } from './progress.tsx';
import { jobHref, num, versionHref } from '../format.ts';

interface Trial {
  n: number;
  job?: AnyJob;
  history?: RunHistory;
}

function useTrials(tune: Job<'tune'>): Trial[] {
  const count =
    tune.result?.trials.length ??
    (typeof tune.progress === 'object' && 'trials' in tune.progress ? Number(tune.progress.trials) : 0);
  const done =
    typeof tune.progress === 'object' && 'trialsDone' in tune.progress ? tune.progress.trialsDone : 0;
  const [trials, setTrials] = useState<Trial[]>([]);
  useEffect(() => {
    const ctl = new AbortController();
    const load = async () => {
      const ns = Array.from({ length: count }, (_, i) => i + 1);
      const out = await Promise.all(
        ns.map(async (n): Promise<Trial> => {
          const id = `${tune.id}-trial-${n}`;
          const [job, history] = await Promise.all([
            api.getJob(id, { signal: ctl.signal }).catch(() => undefined),
            api.jobHistory(id, { signal: ctl.signal }).catch(() => undefined),
          ]);
          return { n, job, history };
        }),
      );
      if (!ctl.signal.aborted) setTrials(out);
    };
    void load();
    // Trials train while the tune sleeps: refresh their curves now and then until the tune ends.
    const t = tune.result ? undefined : setInterval(() => void load(), 5000);
    return () => (ctl.abort(), clearInterval(t));
  }, [tune.id, count, String(done), tune.state]);
  return trials;
}

/** The searched values of a trial still running: its fine-tune params at the tune's search keys. */
function searchedOf(tune: Job<'tune'>, trial: AnyJob | undefined): Record<string, unknown> | undefined {
  if (!trial) return undefined;
  const params = trial.params as Record<string, unknown>;
  const get = (key: string) =>
    key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], params);
  return Object.fromEntries(Object.keys(tune.params.search.space).map((k) => [k, get(k)]));
}

export function TuneView({ job }: { job: Job<'tune'> }) {
  const objective = job.params.objective ?? 'valAcc';
  const trials = useTrials(job);
  const [desc, setDesc] = useState(objective === 'valAcc');
  const best = job.result?.best.trial ?? (job.progress as { best?: { trial: number } | null }).best?.trial;
  const score = (t: Trial) => {
    const r = t.job?.type === 'fine-tune' ? t.job.result : undefined;
    return r?.metrics[objective];
  };
  const sorted = [...trials].sort((a, b) => {
    const [x, y] = [score(a), score(b)];
    if (x === undefined) return 1;
    if (y === undefined) return -1;
    return desc ? y - x : x - y;
  });
  const chart = useMemo(() => {
    const epochs = Math.max(0, ...trials.map((t) => t.history?.epochs.length ?? 0));
    const xs = Array.from({ length: epochs }, (_, i) => i + 1);
    const data: uPlot.AlignedData = [
      xs,
      ...trials.map((t) => xs.map((e) => t.history?.epochs.find((h) => h.epoch === e)?.[objective] ?? null)),
    ];
    const series: uPlot.Series[] = [
      { label: 'epoch' },
      ...trials.map((t, i) => ({
        label: `trial ${t.n}${t.n === best ? ' (best)' : ''}`,
        stroke: t.n === best ? '#d9480f' : palette[i % palette.length],
        width: t.n === best ? 4 : 1.5,
        alpha: t.n === best ? 1 : 0.6,
        spanGaps: true,
      })),
    ];
    return { data, series };
  }, [trials, best, objective]);

  return (
    <div class="tune">
      {trials.length > 0 && (
        <Chart
          title={`${objective} per epoch, every trial`}
          testId="tune-chart"
          options={{
            scales: { x: { time: false } },
            axes: [{ label: 'epoch' }, { label: objective }],
            series: chart.series,
          }}
          data={chart.data}
        />
      )}
      <table class="list" data-testid="trials">
        <thead>
          <tr>
            <th>trial</th>
            <th>state</th>
            <th>searched</th>
            <th class="sortable" onClick={() => setDesc(!desc)} data-testid="sort-objective">
              {objective} {desc ? '▼' : '▲'}
            </th>
            <th>model</th>
          </tr>
        </thead>
        <tbody>
          {sorted.map((t) => {
            const r = t.job?.type === 'fine-tune' ? t.job.result : undefined;
            const searched =
              job.result?.trials.find((x) => x.trial === t.n)?.params ?? searchedOf(job, t.job);
            return (
              <tr class={t.n === best ? 'best' : ''}>
                <td>
                  <Link href={jobHref(`${job.id}-trial-${t.n}`)}>#{t.n}</Link>
                </td>
                <td>{t.job ? <StateBadge state={t.job.state} /> : '–'}</td>
                <td class="mono small">{searched ? JSON.stringify(searched) : '…'}</td>
                <td>{num(score(t))}</td>
                <td>
                  {r ? (
                    <Link href={versionHref(r.model.name, r.model.version)}>
                      {r.model.name}@{r.model.version}
                    </Link>
                  ) : (
                    '–'
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
