/** /ui/workers: live worker processes, refreshed every 5 s (a worker refreshes its own entry as often). */
import { useEffect, useState } from 'preact/hooks';
import { Link } from 'wouter-preact';
import type { WorkerInfo } from '@mlq/sdk';
import { api, errorText } from '../api.ts';
import { ago, jobHref, when } from '../format.ts';

export function WorkersPage() {
  const [workers, setWorkers] = useState<WorkerInfo[]>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    const load = () =>
      api.workers().then(
        (w) => (setWorkers(w), setError(undefined)),
        (e: unknown) => setError(errorText(e)),
      );
    void load();
    const t = setInterval(() => void load(), 5000);
    return () => clearInterval(t);
  }, []);
  if (error) return <p class="error">{error}</p>;
  if (!workers) return <p class="muted">Loading…</p>;
  return (
    <section>
      <h1>Workers</h1>
      {workers.length === 0 ? (
        <p class="muted">No live workers: start one with pnpm start:worker.</p>
      ) : (
        <table class="list" data-testid="workers-table">
          <thead>
            <tr>
              <th>Host</th>
              <th>PID</th>
              <th>Queues</th>
              <th>Backend</th>
              <th>Current jobs</th>
              <th>Heartbeat</th>
              <th>Started</th>
            </tr>
          </thead>
          <tbody>
            {workers.map((w) => (
              <tr>
                <td title={w.id}>{w.host}</td>
                <td>{w.pid}</td>
                <td>
                  {w.queues.join(', ')} ×{w.concurrency}
                </td>
                <td>{w.backend}</td>
                <td>
                  {w.currentJobs.length === 0
                    ? 'idle'
                    : w.currentJobs.map((j) => (
                        <div>
                          <Link href={jobHref(j.id)} class="mono">
                            {j.id.slice(0, 8)}
                          </Link>{' '}
                          <span class="muted">{j.queue}</span>
                        </div>
                      ))}
                </td>
                <td>{w.heartbeatAt ? `${ago((Date.now() - Date.parse(w.heartbeatAt)) / 1000)} ago` : '–'}</td>
                <td>{when(w.startedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
