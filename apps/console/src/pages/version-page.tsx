/** /ui/models/{name}/versions/{v}: one version's curves (kept on the version), evaluation and playground. */
import { useEffect, useState } from 'preact/hooks';
import { Link } from 'wouter-preact';
import type { ModelVersion, ResultOf, RunHistory } from '@mlq/sdk';
import { api, errorText } from '../api.ts';
import { TrainingCurves } from '../components/curves.tsx';
import { EvaluationView } from '../components/evaluation.tsx';
import { Playground } from '../components/playground.tsx';
import { jobHref, num, versionHref, when } from '../format.ts';
import { LabelChips } from './models-page.tsx';

export function VersionPage({ name, v }: { name: string; v: number }) {
  const [version, setVersion] = useState<ModelVersion>();
  const [history, setHistory] = useState<RunHistory>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    api.getModelVersion(name, v).then(setVersion, (e: unknown) => setError(errorText(e)));
    api.getModelVersionHistory(name, v).then(setHistory, () => setHistory({ epochs: [], points: [] }));
  }, [name, v]);
  if (error) return <p class="error">{error}</p>;
  if (!version) return <p class="muted">Loading…</p>;
  const evaluation = version.evaluation as (ResultOf<'evaluate'>['metrics'] & { jobId?: string }) | undefined;
  return (
    <section>
      <h1>
        <Link href={`/models/${encodeURIComponent(name)}`}>{name}</Link> v{version.version}{' '}
        <LabelChips labels={version.labels} />
      </h1>
      <dl class="stats">
        <dt>metrics</dt>
        <dd>
          {Object.entries(version.metrics)
            .map(([k, x]) => `${k} ${num(x)}`)
            .join(' · ')}
        </dd>
        <dt>input / classes</dt>
        <dd>
          [{version.inputShape.join(', ')}] → {version.numClasses}
        </dd>
        <dt>trained by</dt>
        <dd>
          <Link href={jobHref(version.jobId)} class="mono">
            {version.jobId}
          </Link>{' '}
          · {when(version.createdAt)}
        </dd>
        {version.base && (
          <>
            <dt>base</dt>
            <dd>
              {version.base.name ? (
                <Link href={versionHref(version.base.name, version.base.version!)}>{version.base.ref}</Link>
              ) : (
                version.base.ref
              )}
            </dd>
          </>
        )}
      </dl>
      <h2>Try it</h2>
      <Playground version={version} />
      <h2>Training curves</h2>
      {history ? <TrainingCurves history={history} /> : <p class="muted">Loading…</p>}
      <h2>Evaluation</h2>
      {evaluation?.confusionMatrix ? (
        <>
          {evaluation.jobId && (
            <p class="muted">
              from job <Link href={jobHref(evaluation.jobId)}>{evaluation.jobId}</Link>
            </p>
          )}
          <EvaluationView metrics={evaluation} />
        </>
      ) : (
        <p class="muted">
          Not evaluated yet: submit an evaluate job for {name}@{version.version}.
        </p>
      )}
      <h2>Parameters</h2>
      <pre class="json">{JSON.stringify(version.params, null, 2)}</pre>
    </section>
  );
}
