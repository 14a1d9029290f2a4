/**
 * /ui/jobs/{id}: one job, live. The per-job events stream moves its state and progress; a fine-tune's
 * curves start from `GET /v1/jobs/{id}/history` and gain each reported point as it comes.
 */
import { useEffect, useState } from 'preact/hooks';
import { Link } from 'wouter-preact';
import { isEpochProgress, isFinalState, type AnyJob, type ArtifactView, type RunHistory } from '@mlq/sdk';
import { api, errorText } from '../api.ts';
import { TrainingCurves, withProgress } from '../components/curves.tsx';
import { EvaluationView } from '../components/evaluation.tsx';
import { ProgressBar, StateBadge } from '../components/progress.tsx';
import { TuneView } from '../components/tune-view.tsx';
import { ago, num, versionHref, when } from '../format.ts';
import { JobActions } from './jobs-page.tsx';

const empty: RunHistory = { epochs: [], points: [] };

/** The job, its history (fine-tune) and a counter that moves when its logs are worth re-reading. */
function useLiveJob(id: string, reload: number) {
  const [job, setJob] = useState<AnyJob>();
  const [history, setHistory] = useState<RunHistory>(empty);
  const [logsTick, setLogsTick] = useState(0);
  const [error, setError] = useState<string>();
  useEffect(() => {
    const ctl = new AbortController();
    const { signal } = ctl;
    setHistory(empty);
    void (async () => {
      let first = true;
      for await (const ev of api.events(id, { signal })) {
        if (ev.type === 'progress') {
          setJob((j) => j && ({ ...j, progress: ev.progress } as AnyJob));
          const p = ev.progress;
          if (isEpochProgress(p)) {
            setHistory((h) => withProgress(h, p));
            if (p.batch === undefined) setLogsTick((t) => t + 1);
          } else setLogsTick((t) => t + 1);
          continue;
        }
        if (!ev.job) {
          setJob((j) => j && ({ ...j, state: ev.state } as AnyJob));
          setLogsTick((t) => t + 1);
          continue;
        }
        setJob(ev.job);
        setLogsTick((t) => t + 1);
        // Events that come while the history loads wait in the stream: none is lost.
        if (ev.job.type === 'fine-tune' && (first || isFinalState(ev.job.state))) {
          const h = await api.jobHistory(id, { signal });
          setHistory((live) =>
            [...live.points, ...live.epochs].reduce((acc, p) => withProgress(acc, p as never), h),
          );
        }
        first = false;
      }
    })().catch((e: unknown) => !signal.aborted && setError(errorText(e)));
    return () => ctl.abort();
  }, [id, reload]);
  return { job, history, logsTick, error };
}

function Logs({ id, tick }: { id: string; tick: number }) {
  const [lines, setLines] = useState<string[]>([]);
  useEffect(() => {
    const ctl = new AbortController();
    api
      .jobLogs(id, { signal: ctl.signal })
      .then((l) => setLines(l.slice(-60)))
      .catch(() => undefined);
    return () => ctl.abort();
  }, [id, tick]);
  return (
    <pre class="logs" data-testid="logs">
      {lines.length ? lines.join('\n') : 'no log lines yet'}
    </pre>
  );
}

/** A completed job's outputs to download (`GET /v1/jobs/{id}/artifacts`): a model as model.zip, predictions. */
function Artifacts({ id }: { id: string }) {
  const [list, setList] = useState<ArtifactView[]>([]);
  useEffect(() => {
    const ctl = new AbortController();
    api.listArtifacts(id, { signal: ctl.signal }).then(setList, () => undefined);
    return () => ctl.abort();
  }, [id]);
  const links = list.filter((a) => a.href);
  if (links.length === 0) return null;
  return (
    <p data-testid="artifacts">
      Download:{' '}
      {links.map((a) => (
        <a href={a.href} download class="artifact">
          {a.name}
          {a.bytes !== undefined ? ` (${(a.bytes / 1024).toFixed(0)} kB)` : ''}
        </a>
      ))}
    </p>
  );
}

function TrainingStats({ job }: { job: AnyJob }) {
  const p = job.progress;
  const r = job.type === 'fine-tune' ? job.result : undefined;
  return (
    <dl class="stats">
      {isEpochProgress(p) && (
        <>
          <dt>loss / acc</dt>
          <dd>
            {num(p.loss)} / {num(p.acc)}
          </dd>
          {p.valAcc !== undefined && (
            <>
              <dt>val loss / val acc</dt>
              <dd>
                {num(p.valLoss)} / {num(p.valAcc)}
              </dd>
            </>
          )}
          <dt>samples/s</dt>
          <dd data-testid="samples-per-sec">{Math.round(p.samplesPerSec)}</dd>
          {!isFinalState(job.state) && (
            <>
              <dt>time left</dt>
              <dd>{ago(p.etaSeconds)}</dd>
            </>
          )}
        </>
      )}
      {r && (
        <>
          <dt>model</dt>
          <dd>
            <Link href={versionHref(r.model.name, r.model.version)} data-testid="model-link">
              {r.model.name}@{r.model.version}
            </Link>
          </dd>
          <dt>backend</dt>
          <dd>{r.backend}</dd>
        </>
      )}
    </dl>
  );
}

export function JobPage({ id }: { id: string }) {
  const [reload, setReload] = useState(0);
  const { job, history, logsTick, error } = useLiveJob(id, reload);
  if (error) return <p class="error">{error}</p>;
  if (!job) return <p class="muted">Loading…</p>;
  return (
    <section>
      <h1>
        {job.type} <span class="mono">{job.id}</span> <StateBadge state={job.state} />
      </h1>
      <div class="row">
        <ProgressBar progress={job.progress} state={job.state} />
        <JobActions job={job} onDone={() => setReload((r) => r + 1)} />
      </div>
      <p class="muted">
        attempts {job.attempts}/{job.attemptsAllowed} · created {when(job.createdAt)} · started{' '}
        {when(job.startedAt)} · finished {when(job.finishedAt)}
      </p>
      {job.error && <p class="error">{job.error}</p>}
      {job.type === 'fine-tune' && (
        <>
          <TrainingStats job={job} />
          <TrainingCurves history={history} />
        </>
      )}
      {job.type === 'evaluate' && job.result && <EvaluationView metrics={job.result.metrics} />}
      {job.type === 'batch-predict' && job.result && (
        <p>
          {job.result.rows} rows written to <span class="mono">{job.result.outputUri}</span>
        </p>
      )}
      {job.state === 'completed' && <Artifacts id={job.id} />}
      {job.type === 'tune' && <TuneView job={job} />}
      <div class="two">
        <div>
          <h2>Parameters</h2>
          <pre class="json">{JSON.stringify(job.params, null, 2)}</pre>
        </div>
        <div>
          <h2>Log (last lines)</h2>
          <Logs id={job.id} tick={logsTick} />
        </div>
      </div>
    </section>
  );
}
