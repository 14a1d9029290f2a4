/**
 * The predict playground of a model version: draw a digit (28×28×1 models), upload an image (other
 * image models), or type a row of numbers (tabular models); the scores come back as bars with the
 * class names. It calls `POST /v1/models/{name}/versions/{v}:predict` (TF Serving's row format).
 */
import { useState } from 'preact/hooks';
import type { ModelVersion } from '@mlq/sdk';
import { api, errorText } from '../api.ts';
import { classNamesOf, pct } from '../format.ts';
import { DigitCanvas } from './digit-canvas.tsx';

function ScoreBars({ scores, names }: { scores: number[]; names: string[] }) {
  const top = scores.indexOf(Math.max(...scores));
  return (
    <div class="scores">
      <p class="prediction" data-testid="prediction">
        Prediction: <b data-testid="prediction-class">{names[top] ?? String(top)}</b> ({pct(scores[top] ?? 0)}
        )
      </p>
      {scores.map((s, i) => (
        <div class={`score ${i === top ? 'top' : ''}`} data-testid="score">
          <span class="name">{names[i] ?? String(i)}</span>
          <span class="track">
            <span class="fill" style={{ width: `${(Math.max(0, Math.min(1, s)) * 100).toFixed(1)}%` }} />
          </span>
          <span class="value">{pct(s)}</span>
        </div>
      ))}
    </div>
  );
}

/** An uploaded image scaled to the model's [h, w] and channels (1: grey, 3: RGB), 0..1. */
async function imagePixels(file: File, [h, w, c]: number[]): Promise<number[]> {
  const bitmap = await createImageBitmap(file);
  const canvas = document.createElement('canvas');
  [canvas.width, canvas.height] = [w!, h!];
  const ctx = canvas.getContext('2d')!;
  ctx.drawImage(bitmap, 0, 0, w!, h!);
  const { data } = ctx.getImageData(0, 0, w!, h!);
  const out: number[] = [];
  for (let i = 0; i < w! * h!; i++) {
    const [r, g, b] = [data[i * 4]!, data[i * 4 + 1]!, data[i * 4 + 2]!];
    if (c === 1) out.push((r + g + b) / 3 / 255);
    else out.push(r / 255, g / 255, b / 255);
  }
  return out;
}

export function Playground({ version }: { version: ModelVersion }) {
  const shape = version.inputShape;
  const names = classNamesOf(version);
  const width = shape.reduce((a, b) => a * b, 1);
  const [scores, setScores] = useState<number[]>();
  const [error, setError] = useState<string>();
  const [row, setRow] = useState('');
  const [preview, setPreview] = useState<string>();

  const predict = async (instance: number[]) => {
    setError(undefined);
    try {
      const r = await api.predict({ name: version.name, version: version.version }, [instance]);
      // The console's models are classifiers: a prediction is a vector of class scores.
      setScores(r.predictions[0] as number[] | undefined);
    } catch (e) {
      setError(errorText(e));
    }
  };
  let input;
  if (shape.join() === '28,28,1') {
    input = <DigitCanvas onDrawn={(p) => void predict(p)} />;
  } else if (shape.length === 3) {
    input = (
      <div>
        <input
          type="file"
          accept="image/*"
          data-testid="image-input"
          onChange={async (e) => {
            const f = e.currentTarget.files?.[0];
            if (!f) return;
            setPreview(URL.createObjectURL(f));
            await predict(await imagePixels(f, shape));
          }}
        />
        {preview && <img class="preview" src={preview} alt="the uploaded image" />}
      </div>
    );
  } else {
    const submit = (e: Event) => {
      e.preventDefault();
      const xs = row
        .split(/[\s,;]+/)
        .filter(Boolean)
        .map(Number);
      if (xs.length !== width || xs.some((x) => !Number.isFinite(x)))
        return setError(
          `give ${width} numbers (the model's input is [${shape.join(', ')}]); got ${xs.length}`,
        );
      void predict(xs);
    };
    input = (
      <form onSubmit={submit} class="inline">
        <input
          class="wide"
          value={row}
          placeholder={`${width} numbers, separated by commas`}
          onInput={(e) => setRow(e.currentTarget.value)}
          data-testid="row-input"
        />
        <button type="submit">Predict</button>
      </form>
    );
  }
  return (
    <div class="playground two">
      <div>
        <p class="muted">
          Input [{shape.join(', ')}]{shape.join() === '28,28,1' ? ': draw a digit, white on black' : ''}
        </p>
        {input}
      </div>
      <div>
        {error && <p class="error">{error}</p>}
        {scores ? <ScoreBars scores={scores} names={names} /> : <p class="muted">The scores show here.</p>}
      </div>
    </div>
  );
}
