// Bootstrap over seeds: resample runs with replacement within each video length (so every replicate
// keeps every length and the same number of runs per length), refit, re-extrapolate. Seeded, so the
// same seed gives the same interval.

import { extrapolate, fitAccuracy, predict, type FitForm } from './fit.js';

/** A small, fast, seeded generator (mulberry32); returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The p-quantile (0..1) of sorted values by linear interpolation between order statistics (numpy's
 * default, "type 7"). +Infinity is allowed and sorts last.
 */
export function quantile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new Error('quantile of no values');
  if (!(p >= 0 && p <= 1)) throw new Error(`quantile: p must lie in [0, 1] (got ${p})`);
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  const w = h - lo;
  const a = sorted[lo]!;
  if (w === 0 || lo + 1 >= sorted.length) return a;
  const b = sorted[lo + 1]!;
  if (a === b) return a;
  if (!Number.isFinite(b)) return b;
  return a + w * (b - a);
}

export interface BootstrapOptions {
  /** number of replicates */
  n: number;
  seed: number;
  /** keep each replicate's resampled indices (for checking) */
  keepIndices?: boolean;
}

export interface BootstrapResult {
  n: number;
  seed: number;
  /** median and 95% interval (2.5% and 97.5% quantiles) of log10(hours to target); null = never */
  median: number | null;
  low: number | null;
  high: number | null;
  /** replicates whose fit never reaches the target */
  unreachable: number;
  /** median and 95% interval of the slope */
  slope: { median: number; low: number; high: number };
  /** per replicate: log10 hours (Infinity = never reached) */
  replicates: number[];
  indices?: number[][];
}

const finiteOrNull = (v: number): number | null => (Number.isFinite(v) ? v : null);

/** Bootstraps the hours at which `form` fitted to (hours, acc) reaches `target`. */
export function bootstrapExtrapolation(
  form: FitForm,
  hours: readonly number[],
  acc: readonly number[],
  target: number,
  options: BootstrapOptions,
): BootstrapResult {
  const { n, seed } = options;
  if (!Number.isInteger(n) || n < 1) throw new Error(`bootstrap: the number of replicates must be a positive integer (got ${n})`);
  if (hours.length !== acc.length) throw new Error(`bootstrap: ${hours.length} hours but ${acc.length} accuracies`);
  const groups = new Map<number, number[]>();
  hours.forEach((h, i) => {
    const g = groups.get(h);
    if (g) g.push(i);
    else groups.set(h, [i]);
  });
  const rand = mulberry32(seed);
  const replicates: number[] = [];
  const slopes: number[] = [];
  const kept: number[][] = [];
  for (let r = 0; r < n; r++) {
    const idx: number[] = [];
    for (const g of groups.values()) {
      for (let k = 0; k < g.length; k++) idx.push(g[Math.floor(rand() * g.length)]!);
    }
    const fit = fitAccuracy(form, idx.map((i) => hours[i]!), idx.map((i) => acc[i]!));
    const c = extrapolate(fit, target);
    replicates.push(c.log10Hours ?? Number.POSITIVE_INFINITY);
    slopes.push(fit.slope);
    if (options.keepIndices) kept.push(idx);
  }
  const sorted = [...replicates].sort((a, b) => a - b);
  const sortedSlopes = [...slopes].sort((a, b) => a - b);
  const result: BootstrapResult = {
    n,
    seed,
    median: finiteOrNull(quantile(sorted, 0.5)),
    low: finiteOrNull(quantile(sorted, 0.025)),
    high: finiteOrNull(quantile(sorted, 0.975)),
    unreachable: replicates.filter((v) => !Number.isFinite(v)).length,
    slope: { median: quantile(sortedSlopes, 0.5), low: quantile(sortedSlopes, 0.025), high: quantile(sortedSlopes, 0.975) },
    replicates,
  };
  if (options.keepIndices) result.indices = kept;
  return result;
}

/**
 * A bootstrap band around a fitted curve: the same resampling as bootstrapExtrapolation (runs with
 * replacement within each video length), refit, predict at every `xs`; the 2.5% and 97.5% quantiles
 * of the predictions at each x.
 */
export function bootstrapCurveBand(
  form: FitForm,
  hours: readonly number[],
  acc: readonly number[],
  xs: readonly number[],
  options: Omit<BootstrapOptions, 'keepIndices'>,
): { hours: number; low: number; high: number }[] {
  const { n, seed } = options;
  if (!Number.isInteger(n) || n < 1) throw new Error(`bootstrap: the number of replicates must be a positive integer (got ${n})`);
  const groups = new Map<number, number[]>();
  hours.forEach((h, i) => {
    const g = groups.get(h);
    if (g) g.push(i);
    else groups.set(h, [i]);
  });
  const rand = mulberry32(seed);
  const preds: number[][] = xs.map(() => []);
  for (let r = 0; r < n; r++) {
    const idx: number[] = [];
    for (const g of groups.values()) for (let k = 0; k < g.length; k++) idx.push(g[Math.floor(rand() * g.length)]!);
    const fit = fitAccuracy(form, idx.map((i) => hours[i]!), idx.map((i) => acc[i]!));
    xs.forEach((x, j) => preds[j]!.push(predict(fit, x)));
  }
  return xs.map((x, j) => {
    const s = preds[j]!.sort((a, b) => a - b);
    return { hours: x, low: quantile(s, 0.025), high: quantile(s, 0.975) };
  });
}
