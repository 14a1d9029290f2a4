/** "New job": a job type and its JSON payload (a small working example per type to start from). */
import { useState } from 'preact/hooks';
import { jobTypes, type JobName } from '@mlq/sdk';
import { api, errorText } from '../api.ts';

const examples: Record<JobName, object> = {
  'fine-tune': {
    model: 'digits',
    architecture: 'mnist-cnn',
    dataset: { format: 'mnist', digits: [0, 1, 2, 3, 4], limit: 1000 },
    epochs: 3,
    batchSize: 32,
    validationSplit: 0.2,
  },
  evaluate: { model: 'digits', dataset: { format: 'mnist', digits: [0, 1, 2, 3, 4], split: 'test' } },
  'batch-predict': {
    model: 'digits',
    input: { format: 'mnist', digits: [0, 1, 2, 3, 4], split: 'test', limit: 500 },
    output: { uri: 'file:///path/inside/DATA_ROOTS/predictions.jsonl', format: 'jsonl' },
  },
  tune: {
    model: 'digits-tuned',
    architecture: 'mlp',
    dataset: { format: 'mnist', digits: [0, 1, 2, 3, 4], limit: 1000 },
    epochs: 3,
    search: { space: { learningRate: [0.001, 0.003, 0.01] } },
  },
};

export function SubmitForm({ onSubmitted }: { onSubmitted: (id: string) => void }) {
  const [type, setType] = useState<JobName>('fine-tune');
  const [text, setText] = useState(JSON.stringify(examples['fine-tune'], null, 2));
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  const pick = (t: JobName) => {
    setType(t);
    setText(JSON.stringify(examples[t], null, 2));
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    let payload: unknown;
    try {
      payload = JSON.parse(text);
    } catch (err) {
      return setError(`not valid JSON: ${(err as Error).message}`);
    }
    setBusy(true);
    try {
      const job = await api.submitJob(type, payload as never);
      onSubmitted(job.id);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <details class="panel submit">
      <summary data-testid="new-job">New job</summary>
      <form onSubmit={submit}>
        <label>
          Type{' '}
          <select
            value={type}
            onChange={(e) => pick(e.currentTarget.value as JobName)}
            data-testid="submit-type"
          >
            {jobTypes.map((t) => (
              <option value={t}>{t}</option>
            ))}
          </select>
        </label>
        <textarea
          rows={12}
          spellcheck={false}
          value={text}
          onInput={(e) => setText(e.currentTarget.value)}
          data-testid="submit-payload"
        />
        <div>
          <button type="submit" disabled={busy} data-testid="submit-job">
            Submit
          </button>
          {error && <span class="error">{error}</span>}
        </div>
      </form>
    </details>
  );
}
