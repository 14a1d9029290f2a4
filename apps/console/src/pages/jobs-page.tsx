/**
 * /ui/jobs: every job, filtered by type and state (kept in the address), with live state and
 * progress from one `GET /v1/events` stream, cancel and retry buttons, and a form to submit a job.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { Link, useSearch, useLocation } from 'wouter-preact';
import { jobTypes, type AnyJob, type JobName } from '@mlq/sdk';
import { api, errorText } from '../api.ts';
import { ProgressBar, StateBadge } from '../components/progress.tsx';
import { SubmitForm } from '../components/submit-form.tsx';
import { jobHref, when } from '../format.ts';

const states = [
  'waiting',
  'active',
  'completed',
  'failed',
  'cancelled',
  'delayed',
  'prioritized',
  'waiting-children',
];

export function JobActions({ job, onDone }: { job: AnyJob; onDone?: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const act = (f: () => Promise<unknown>) => async () => {
    setBusy(true);
    setError(undefined);
    try {
      await f();
      onDone?.();
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  };
  const cancellable = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children'].includes(job.state);
  const retryable = job.state === 'failed' || job.state === 'cancelled';
  return (
    <span class="actions">
      {cancellable && (
        <button type="button" class="small danger" disabled={busy} onClick={act(() => api.cancelJob(job.id))}>
          Cancel
        </button>
      )}
      {retryable && (
        <button type="button" class="small" disabled={busy} onClick={act(() => api.retryJob(job.id))}>
          Retry
        </button>
      )}
      {error && <span class="error">{error}</span>}
    </span>
  );
}

export function JobsPage() {
  const search = new URLSearchParams(useSearch());
  const [, navigate] = useLocation();
  const type = (search.get('type') || undefined) as JobName | undefined;
  const state = search.get('state') || undefined;
  const [jobs, setJobs] = useState<AnyJob[]>();
  const [error, setError] = useState<string>();
  const reloadTimer = useRef<ReturnType<typeof setTimeout>>();
  const shown = useRef(new Set<string>());
  shown.current = new Set(jobs?.map((j) => j.id));

  const load = () =>
    api
      .listJobs({ ...(type ? { type } : {}), ...(state ? { state: state as never } : {}), limit: 100 })
      .then((p) => (setJobs(p.jobs), setError(undefined)))
      .catch((e: unknown) => setError(errorText(e)));
  /** Many events may call for a reload at once (a tune adding trials): one reload for them all. */
  const reloadSoon = () => {
    clearTimeout(reloadTimer.current);
    reloadTimer.current = setTimeout(() => void load(), 400);
  };

  useEffect(() => {
    void load();
    const ctl = new AbortController();
    void (async () => {
      for await (const ev of api.allEvents({ type, signal: ctl.signal })) {
        if (ev.type === 'progress') {
          setJobs((js) => js?.map((j) => (j.id === ev.id ? ({ ...j, progress: ev.progress } as AnyJob) : j)));
        } else {
          const known = shown.current.has(ev.id);
          if (ev.state !== 'removed')
            setJobs((js) => js?.map((j) => (j.id === ev.id ? ({ ...j, state: ev.state } as AnyJob) : j)));
          // New jobs, removed ones, a state filter the job left or entered, a finished job's times.
          if (
            !known ||
            state ||
            ev.state === 'removed' ||
            ['completed', 'failed', 'cancelled'].includes(ev.state)
          )
            reloadSoon();
        }
      }
    })().catch((e: unknown) => !ctl.signal.aborted && setError(`live updates stopped: ${errorText(e)}`));
    return () => {
      ctl.abort();
      clearTimeout(reloadTimer.current);
    };
  }, [type, state]);

  const setFilter = (k: string, v: string) => {
    const next = new URLSearchParams(search);
    if (v) next.set(k, v);
    else next.delete(k);
    const qs = next.toString();
    navigate(`/jobs${qs ? `?${qs}` : ''}`);
  };

  return (
    <section>
      <h1>Jobs</h1>
      <SubmitForm onSubmitted={(id) => navigate(jobHref(id))} />
      <div class="filters">
        <label>
          Type{' '}
          <select
            value={type ?? ''}
            onChange={(e) => setFilter('type', e.currentTarget.value)}
            data-testid="filter-type"
          >
            <option value="">all</option>
            {jobTypes.map((t) => (
              <option value={t}>{t}</option>
            ))}
          </select>
        </label>
        <label>
          State{' '}
          <select
            value={state ?? ''}
            onChange={(e) => setFilter('state', e.currentTarget.value)}
            data-testid="filter-state"
          >
            <option value="">all</option>
            {states.map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
      </div>
      {error && <p class="error">{error}</p>}
      {jobs === undefined ? (
        <p class="muted">Loading…</p>
      ) : jobs.length === 0 ? (
        <p class="muted">No jobs.</p>
      ) : (
        <table class="list" data-testid="jobs-table">
          <thead>
            <tr>
              <th>Job</th>
              <th>Type</th>
              <th>State</th>
              <th class="wide">Progress</th>
              <th>Created</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {jobs.map((j) => (
              <tr key={j.id} data-job={j.id}>
                <td>
                  <Link href={jobHref(j.id)} class="mono">
                    {j.id.length > 20 ? `${j.id.slice(0, 8)}…${j.id.slice(-10)}` : j.id}
                  </Link>
                  <div class="muted small">{'model' in j.params ? String(j.params.model) : ''}</div>
                </td>
                <td>{j.type}</td>
                <td>
                  <StateBadge state={j.state} />
                </td>
                <td>
                  <ProgressBar progress={j.progress} state={j.state} />
                </td>
                <td>{when(j.createdAt)}</td>
                <td>
                  <JobActions job={j} onDone={reloadSoon} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
