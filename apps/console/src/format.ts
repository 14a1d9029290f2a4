/** Small text helpers shared by the pages. */
import type { ModelVersion } from '@mlq/sdk';

export const num = (x: unknown, digits = 4): string =>
  typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '–';

export const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

/** `2026-01-01T10:00:00Z` → `10:00:00` today, else a short date and time. */
export function when(iso: string | undefined): string {
  if (!iso) return '–';
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}

/** `42` → `42 s`, `125` → `2 min 5 s`. */
export function ago(seconds: number): string {
  if (!Number.isFinite(seconds)) return '–';
  const s = Math.max(0, Math.round(seconds));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

/**
 * The names of a model's classes: its own, or for an MNIST model the digits it was trained on (class
 * index i is the i-th digit of `dataset.digits`), or the indices.
 */
export function classNamesOf(v: ModelVersion): string[] {
  if (v.classNames?.length) return v.classNames;
  const spec = v.dataset?.spec as { format?: string; digits?: number[] } | undefined;
  if (spec?.format === 'mnist') return (spec.digits ?? [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]).map(String);
  return Array.from({ length: v.numClasses }, (_, i) => String(i));
}

/** The job page of a job id. */
export const jobHref = (id: string): string => `/jobs/${encodeURIComponent(id)}`;
/** The page of a model version. */
export const versionHref = (name: string, v: number): string =>
  `/models/${encodeURIComponent(name)}/versions/${v}`;
