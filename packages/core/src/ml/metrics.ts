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
 * The ROC curve: false and true positive rates as the threshold falls through every distinct score
 * (scores ≥ threshold count as positive), from (0, 0) to (1, 1), thinned to at most `maxPoints`
 * (the two ends are kept). Thresholds are the scores; the first is +Infinity-like (1 + the top score).
 */
export function rocCurve(
  scores: ArrayLike<number>,
  positive: ArrayLike<boolean | number>,
  maxPoints = 200,
): { fpr: number[]; tpr: number[]; thresholds: number[] } | undefined {
  const n = scores.length;
  const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]!);
  let nPos = 0;
  for (let i = 0; i < n; i++) if (positive[i]) nPos++;
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) return undefined;
  const fpr = [0];
  const tpr = [0];
  const thresholds = [(scores[idx[0]!] ?? 0) + 1];
  let tp = 0;
  let fp = 0;
  for (let i = 0; i < n; i++) {
    if (positive[idx[i]!]) tp++;
    else fp++;
    // One point per distinct score: ties move together.
    if (i + 1 < n && scores[idx[i + 1]!] === scores[idx[i]!]) continue;
    fpr.push(fp / nNeg);
    tpr.push(tp / nPos);
    thresholds.push(scores[idx[i]!]!);
  }
  if (fpr.length <= maxPoints) return { fpr, tpr, thresholds };
  const keep = (k: number) => Math.round((k * (fpr.length - 1)) / (maxPoints - 1));
  const pick = (a: number[]) => Array.from({ length: maxPoints }, (_, k) => a[keep(k)]!);
  return { fpr: pick(fpr), tpr: pick(tpr), thresholds: pick(thresholds) };
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
    const scores = Array.from({ length: n }, (_, i) => probs[i * 2 + 1]!);
    const positive = Array.from(labels, (l) => l === 1);
    const auc = rocAuc(scores, positive);
    if (!Number.isNaN(auc)) metrics.rocAuc = auc;
    const roc = rocCurve(scores, positive);
    if (roc) metrics.roc = roc;
  }
  return metrics;
}
