/** /ui/models: every model with its latest version and labels. */
import { useEffect, useState } from 'preact/hooks';
import { Link } from 'wouter-preact';
import type { ModelSummary } from '@mlq/sdk';
import { api, errorText } from '../api.ts';
import { when } from '../format.ts';

export function LabelChips({ labels }: { labels: Record<string, number> | string[] | undefined }) {
  const list = Array.isArray(labels)
    ? labels.map((l) => [l, undefined] as const)
    : Object.entries(labels ?? {});
  return (
    <span class="chips">
      {list.map(([l, v]) => (
        <span class="chip" data-label={l}>
          {l}
          {v !== undefined && <b>→ v{v}</b>}
        </span>
      ))}
    </span>
  );
}

export function ModelsPage() {
  const [models, setModels] = useState<ModelSummary[]>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    api.listModels().then(setModels, (e: unknown) => setError(errorText(e)));
  }, []);
  if (error) return <p class="error">{error}</p>;
  if (!models) return <p class="muted">Loading…</p>;
  return (
    <section>
      <h1>Models</h1>
      {models.length === 0 ? (
        <p class="muted">No models yet: a fine-tune or tune job registers one.</p>
      ) : (
        <table class="list" data-testid="models-table">
          <thead>
            <tr>
              <th>Name</th>
              <th>Latest version</th>
              <th>Labels</th>
              <th>Updated</th>
            </tr>
          </thead>
          <tbody>
            {models.map((m) => (
              <tr>
                <td>
                  <Link href={`/models/${encodeURIComponent(m.name)}`}>{m.name}</Link>
                </td>
                <td>v{m.latestVersion}</td>
                <td>
                  <LabelChips labels={m.labels} />
                </td>
                <td>{when(m.updatedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
