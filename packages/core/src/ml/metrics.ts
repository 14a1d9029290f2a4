/** Classification metrics computed from predicted probabilities and true class indices. */
import type { EvaluationMetrics } from '@mlq/contract';

/** Area under the ROC curve (Mann-Whitney U with ties averaged), for two classes. */
export function rocAuc(scores: Float32Array | number[], positive: (boolean | number)[] | Int32Array): number {
  const n = scores.length;
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  const ranks = new Float64Array(n);
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && scores[idx[j + 1]!] === scores[idx[i]!]) j++;
    for (let k = i; k <= j; k++) ranks[idx[k]!] = (i + j) / 2 + 1;
    i = j + 1;
  }
  let nPos = 0;
  let rankSum = 0;
  for (let i = 0; i < n; i++) {
    if (positive[i]) {
      nPos++;
      rankSum += ranks[i]!;
    }
  }
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) return Number.NaN;
  return (rankSum - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

/**
 * @param probs  `n * k` class probabilities, row-major
 * @param labels true class index per row
 * @param names  optional class names (reported as `label` in perClass)
 */
export function classificationMetrics(
  probs: Float32Array,
  labels: Int32Array,
  k: number,
  names?: string[],
): EvaluationMetrics {
  const n = labels.length;
  const cm = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  let loss = 0;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const row = probs.subarray(i * k, (i + 1) * k);
    let best = 0;
    for (let c = 1; c < k; c++) if (row[c]! > row[best]!) best = c;
    const t = labels[i]!;
    cm[t]![best]!++;
    if (best === t) correct++;
    loss -= Math.log(Math.max(row[t]!, 1e-7));
  }
  const perClass = cm.map((row, c) => {
    const tp = row[c]!;
    const support = row.reduce((a, b) => a + b, 0);
    const predicted = cm.reduce((a, r) => a + r[c]!, 0);
    const precision = predicted ? tp / predicted : 0;
    const recall = support ? tp / support : 0;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    return { label: names?.[c] ?? c, precision, recall, f1, support };
  });
  const metrics: EvaluationMetrics = {
    loss: n ? loss / n : 0,
    accuracy: n ? correct / n : 0,
    perClass,
    confusionMatrix: cm,
    samples: n,
  };
  if (k === 2) {
    const auc = rocAuc(
      Array.from({ length: n }, (_, i) => probs[i * 2 + 1]!),
      Array.from(labels, (l) => l === 1),
    );
    if (!Number.isNaN(auc)) metrics.rocAuc = auc;
  }
  return metrics;
}
