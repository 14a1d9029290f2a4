/**
 * /ui/models/{name}: every version with its metrics, parameters and lineage (base, dataset, job), and
 * a form that moves a label to another version after a confirmation.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { Link } from 'wouter-preact';
import type { ModelDetail, ModelVersion } from '@mlq/sdk';
import { api, errorText } from '../api.ts';
import { jobHref, num, versionHref, when } from '../format.ts';
import { LabelChips } from './models-page.tsx';

/** The parameters worth a glance in a table cell. */
function paramsSummary(v: ModelVersion): string {
  const p = v.params as Record<string, unknown>;
  const parts = [
    p.architecture ?? (p.base ? 'transfer' : undefined),
    p.epochs && `${p.epochs} ep`,
    p.batchSize && `batch ${p.batchSize}`,
    p.optimizer,
    p.learningRate !== undefined && `lr ${p.learningRate}`,
  ];
  return parts.filter(Boolean).join(' · ');
}

function datasetSummary(v: ModelVersion): string {
  const s = v.dataset?.spec as
    { format?: string; digits?: number[]; uri?: string; limit?: number } | undefined;
  if (!s) return '–';
  const what = s.digits ? `digits ${s.digits.join(',')}` : (s.uri ?? '');
  return `${s.format} ${what}${s.limit ? ` (${s.limit} rows)` : ''}`;
}

function LabelMover({ model, onMoved }: { model: ModelDetail; onMoved: () => void }) {
  const [label, setLabel] = useState(Object.keys(model.labels)[0] ?? 'production');
  const [version, setVersion] = useState(model.versions[model.versions.length - 1]!.version);
  const [error, setError] = useState<string>();
  const dialog = useRef<HTMLDialogElement>(null);
  const now = model.labels[label];
  const confirm = async () => {
    dialog.current?.close();
    try {
      await api.setLabel(model.name, label, version);
      setError(undefined);
      onMoved();
    } catch (e) {
      setError(errorText(e));
    }
  };
  return (
    <form
      class="panel inline"
      onSubmit={(e) => {
        e.preventDefault();
        dialog.current?.showModal();
      }}
    >
      <b>Move a label</b>
      <input
        list="labels"
        value={label}
        onInput={(e) => setLabel(e.currentTarget.value)}
        data-testid="label-name"
        required
      />
      <datalist id="labels">
        {Object.keys(model.labels).map((l) => (
          <option value={l} />
        ))}
      </datalist>
      to
      <select
        value={version}
        onChange={(e) => setVersion(Number(e.currentTarget.value))}
        data-testid="label-version"
      >
        {model.versions.map((v) => (
          <option value={v.version}>v{v.version}</option>
        ))}
      </select>
      <button type="submit" data-testid="label-move">
        Move…
      </button>
      {error && <span class="error">{error}</span>}
      <dialog ref={dialog} data-testid="label-confirm">
        <p>
          Point <b>{label}</b> at version <b>{version}</b>
          {now !== undefined ? ` (now version ${now})` : ' (a new label)'}? Predictions through {model.name}@
          {label} will use it at once.
        </p>
        <button type="button" onClick={() => void confirm()} data-testid="label-confirm-yes">
          Move label
        </button>{' '}
        <button type="button" class="secondary" onClick={() => dialog.current?.close()}>
          Cancel
        </button>
      </dialog>
    </form>
  );
}

export function ModelPage({ name }: { name: string }) {
  const [model, setModel] = useState<ModelDetail>();
  const [error, setError] = useState<string>();
  const [reload, setReload] = useState(0);
  useEffect(() => {
    api.getModel(name).then(setModel, (e: unknown) => setError(errorText(e)));
  }, [name, reload]);
  if (error) return <p class="error">{error}</p>;
  if (!model) return <p class="muted">Loading…</p>;
  return (
    <section>
      <h1>
        {model.name} <LabelChips labels={model.labels} />
      </h1>
      <LabelMover model={model} onMoved={() => setReload((r) => r + 1)} />
      <table class="list" data-testid="versions-table">
        <thead>
          <tr>
            <th>Version</th>
            <th>Labels</th>
            <th>loss</th>
            <th>acc</th>
            <th>val acc</th>
            <th>eval acc</th>
            <th>Parameters</th>
            <th>Base</th>
            <th>Dataset</th>
            <th>Job</th>
            <th>Created</th>
          </tr>
        </thead>
        <tbody>
          {[...model.versions].reverse().map((v) => (
            <tr data-version={v.version}>
              <td>
                <Link href={versionHref(model.name, v.version)}>v{v.version}</Link>
              </td>
              <td>
                <LabelChips labels={v.labels} />
              </td>
              <td>{num(v.metrics.loss)}</td>
              <td>{num(v.metrics.acc)}</td>
              <td>{num(v.metrics.valAcc)}</td>
              <td>{num((v.evaluation as { accuracy?: number } | undefined)?.accuracy)}</td>
              <td class="small">{paramsSummary(v)}</td>
              <td class="small">
                {v.base?.name ? (
                  <Link href={versionHref(v.base.name, v.base.version!)}>{v.base.ref}</Link>
                ) : (
                  (v.base?.ref ?? '–')
                )}
              </td>
              <td class="small">{datasetSummary(v)}</td>
              <td class="small">
                <Link href={jobHref(v.jobId)} class="mono">
                  {v.jobId.slice(0, 8)}
                </Link>
              </td>
              <td class="small">{when(v.createdAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
