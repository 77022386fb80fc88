// The joint scaling analysis: accuracy as a function of model size, hours of video and image size
// together, fitted over every run; the human-level frontier (which combinations reach a target);
// the hours a fixed model and image size need; a bootstrap over seeds for all of it.
//
// Every form is linear in the logarithms of the three factors after a transform of the accuracy
// (the transforms of fit.ts), fitted by ordinary least squares:
//   z = g(acc) = a + bN·log10(params) + bD·log10(hours) + bR·log10(imageSize)
//   loglinear  g(acc) = acc: accuracy additive in the log of each factor (the 2021 paper's form, with
//              model size and image size as two more terms)
//   powerlaw   g(acc) = log10(100 − acc): error = c·params^bN·hours^bD·imageSize^bR, a power law in
//              each factor, multiplicative
//   logit      g(acc) = logit(acc/100): logit of accuracy additive in the log of each factor
//   additive   100 − acc = E + A/N^α + B/D^β + C/R^γ: the saturating additive power law (Chinchilla's
//              form), E the irreducible error; nonlinear, fitted by Levenberg-Marquardt (additive.ts)
// A factor that takes one value in the data has no term (its slope is not identifiable); the fit
// then answers only at that value.

import { additiveError, fitAdditive, type AdditiveLaw } from './additive.js';
import { FIT_FORMS, fromFitSpace, toFitSpace, type FitForm } from './fit.js';
import { mulberry32, quantile } from './bootstrap.js';
import type { Metric, RunResult } from './results.js';

/** The forms of the joint fit: the three linear ones of fit.ts and the additive power law. */
export type JointForm = FitForm | 'additive';
export const JOINT_FORMS: readonly JointForm[] = [...FIT_FORMS, 'additive'];

/** The joint forms, in words. */
export const JOINT_FORM_DESCRIPTIONS: Readonly<Record<JointForm, string>> = {
  loglinear: 'acc = a + bN·log10 N + bD·log10 D + bR·log10 R',
  powerlaw: '100 − acc = 10^a · N^bN · D^bD · R^bR',
  logit: 'logit(acc/100) = a + bN·log10 N + bD·log10 D + bR·log10 R',
  additive: '100 − acc = E + A/N^α + B/D^β + C/R^γ (E: irreducible error)',
};

export type JointFactor = 'params' | 'hours' | 'imageSize';
export const JOINT_FACTORS: readonly JointFactor[] = ['params', 'hours', 'imageSize'];

export const FACTOR_LABELS: Readonly<Record<JointFactor, string>> = {
  params: 'model parameters',
  hours: 'hours of video',
  imageSize: 'image size (px)',
};

/** One run with the three factors. */
export interface JointRun {
  params: number;
  hours: number;
  imageSize: number;
  seed: number;
  top1: number;
  top5: number;
}

/** A point in factor space. */
export type JointPoint = Record<JointFactor, number>;

export interface JointFit {
  form: JointForm;
  /** z at params = hours = imageSize = 1; additive: the irreducible error E */
  intercept: number;
  /** change of z per decade of each factor (0 for a fixed factor); additive: the exponents α, β, γ */
  slopes: Record<JointFactor, number>;
  /** standard errors of the slopes (null for a fixed factor, or with no residual degrees of freedom) */
  slopeSE: Record<JointFactor, number | null>;
  /** the additive form's law (its parameters, loss and starting points) */
  additive?: AdditiveLaw;
  /** factors that take a single value in the data, with that value */
  fixed: Partial<Record<JointFactor, number>>;
  /** R² in the fitted (z) space and of the predicted accuracies */
  r2: number;
  r2Accuracy: number;
  n: number;
  /** smallest and largest value of each factor in the data */
  ranges: Record<JointFactor, [number, number]>;
}

/** Converts results (which must carry modelParams and imageSize) to joint runs; throws naming what is missing. */
export function jointRuns(runs: readonly RunResult[]): JointRun[] {
  return runs.map((r) => {
    const where = r.source ?? `${r.condition}, ${r.hours} h, seed ${r.seed}`;
    if (r.modelParams === undefined) throw new Error(`${where}: no "modelParams" (the trunk's parameter count); the joint analysis needs model size beside hours (results written by awty finetune and awty knn carry it)`);
    if (r.imageSize === undefined) throw new Error(`${where}: no "imageSize"; the joint analysis needs the image size beside hours (results written by awty finetune and awty knn carry it)`);
    return { params: r.modelParams, hours: r.hours, imageSize: r.imageSize, seed: r.seed, top1: r.top1, top5: r.top5 };
  });
}

/**
 * Least squares of y on the columns of X (n rows, p columns, the first all ones) by Householder QR.
 * Returns the coefficients and (XᵀX)⁻¹'s diagonal; throws when the columns are (nearly) dependent,
 * naming them through `names`.
 */
export function multipleLeastSquares(X: readonly (readonly number[])[], y: readonly number[], names: readonly string[]): { beta: number[]; xtxInvDiag: number[]; sse: number } {
  const n = X.length;
  const p = names.length;
  if (n !== y.length) throw new Error(`least squares: ${n} rows but ${y.length} values`);
  if (n < p) throw new Error(`least squares: ${p} coefficients need at least ${p} runs (got ${n})`);
  const A = X.map((row) => [...row]);
  const b = [...y];
  const colNorm = (j: number): number => Math.sqrt(X.reduce((s, row) => s + row[j]! ** 2, 0));
  const scale = names.map((_, j) => colNorm(j));
  for (let k = 0; k < p; k++) {
    let norm = 0;
    for (let i = k; i < n; i++) norm += A[i]![k]! ** 2;
    norm = Math.sqrt(norm);
    if (!(norm > 1e-9 * Math.max(1, scale[k]!))) {
      throw new Error(`the ${names[k]} term cannot be told apart from the ${names.slice(0, k).join(' and ')} term(s) in these runs (they vary together): add runs that vary it on its own`);
    }
    const alpha = A[k]![k]! > 0 ? -norm : norm;
    const v = new Array<number>(n).fill(0);
    v[k] = A[k]![k]! - alpha;
    for (let i = k + 1; i < n; i++) v[i] = A[i]![k]!;
    const vv = v.reduce((s, x) => s + x * x, 0);
    if (vv > 0) {
      for (let j = k; j < p; j++) {
        let d = 0;
        for (let i = k; i < n; i++) d += v[i]! * A[i]![j]!;
        const f = (2 * d) / vv;
        for (let i = k; i < n; i++) A[i]![j] = A[i]![j]! - f * v[i]!;
      }
      let d = 0;
      for (let i = k; i < n; i++) d += v[i]! * b[i]!;
      const f = (2 * d) / vv;
      for (let i = k; i < n; i++) b[i] = b[i]! - f * v[i]!;
    }
  }
  // back-substitution R β = Qᵀy
  const beta = new Array<number>(p).fill(0);
  for (let k = p - 1; k >= 0; k--) {
    let s = b[k]!;
    for (let j = k + 1; j < p; j++) s -= A[k]![j]! * beta[j]!;
    beta[k] = s / A[k]![k]!;
  }
  let sse = 0;
  for (let i = p; i < n; i++) sse += b[i]! ** 2;
  // (XᵀX)⁻¹ = R⁻¹R⁻ᵀ: its diagonal is the squared row norms of R⁻¹
  const Rinv: number[][] = Array.from({ length: p }, () => new Array<number>(p).fill(0));
  for (let j = 0; j < p; j++) {
    Rinv[j]![j] = 1 / A[j]![j]!;
    for (let i = j - 1; i >= 0; i--) {
      let s = 0;
      for (let k = i + 1; k <= j; k++) s += A[i]![k]! * Rinv[k]![j]!;
      Rinv[i]![j] = -s / A[i]![i]!;
    }
  }
  const xtxInvDiag = Rinv.map((row) => row.reduce((s, v) => s + v * v, 0));
  return { beta, xtxInvDiag, sse };
}

function rangesOf(runs: readonly JointRun[]): Record<JointFactor, [number, number]> {
  const out = {} as Record<JointFactor, [number, number]>;
  for (const f of JOINT_FACTORS) {
    const v = runs.map((r) => r[f]);
    out[f] = [Math.min(...v), Math.max(...v)];
  }
  return out;
}

/** Fits `form` jointly to every run's `metric`. */
export function fitJoint(form: JointForm, runs: readonly JointRun[], metric: Metric, options: { additiveStart?: AdditiveLaw } = {}): JointFit {
  if (runs.length === 0) throw new Error('joint fit: no runs');
  for (const r of runs) {
    for (const f of JOINT_FACTORS) {
      if (!(r[f] > 0) || !Number.isFinite(r[f])) throw new Error(`joint fit: ${FACTOR_LABELS[f]} must be positive and finite (got ${r[f]})`);
    }
  }
  const ranges = rangesOf(runs);
  const varying = JOINT_FACTORS.filter((f) => ranges[f][0] !== ranges[f][1]);
  if (!varying.includes('hours')) throw new Error(`joint fit: every run has ${ranges.hours[0]} h of video; the fit needs two or more video lengths`);
  const fixed: Partial<Record<JointFactor, number>> = {};
  for (const f of JOINT_FACTORS) if (!varying.includes(f)) fixed[f] = ranges[f][0];
  if (form === 'additive') return fitJointAdditive(runs, metric, varying, fixed, ranges, options.additiveStart);
  const X = runs.map((r) => [1, ...varying.map((f) => Math.log10(r[f]))]);
  const z = runs.map((r) => toFitSpace(form, r[metric]));
  const { beta, xtxInvDiag, sse } = multipleLeastSquares(X, z, ['intercept', ...varying.map((f) => `log10(${FACTOR_LABELS[f]})`)]);
  const n = runs.length;
  const dof = n - beta.length;
  const slopes: Record<JointFactor, number> = { params: 0, hours: 0, imageSize: 0 };
  const slopeSE: Record<JointFactor, number | null> = { params: null, hours: null, imageSize: null };
  varying.forEach((f, i) => {
    slopes[f] = beta[i + 1]!;
    slopeSE[f] = dof > 0 ? Math.sqrt((sse / dof) * xtxInvDiag[i + 1]!) : null;
  });
  const zm = z.reduce((s, v) => s + v, 0) / n;
  const syy = z.reduce((s, v) => s + (v - zm) ** 2, 0);
  const accs = runs.map((r) => r[metric]);
  const am = accs.reduce((s, v) => s + v, 0) / n;
  let ssRes = 0;
  let ssTot = 0;
  runs.forEach((r, i) => {
    const pred = fromFitSpace(form, X[i]!.reduce((s, x, j) => s + x * beta[j]!, 0));
    ssRes += (r[metric] - pred) ** 2;
    ssTot += (r[metric] - am) ** 2;
  });
  return {
    form, intercept: beta[0]!, slopes, slopeSE, fixed,
    r2: syy > 0 ? 1 - sse / syy : 1, r2Accuracy: ssTot > 0 ? 1 - ssRes / ssTot : 1, n, ranges,
  };
}

function fitJointAdditive(runs: readonly JointRun[], metric: Metric, varying: readonly JointFactor[], fixed: Partial<Record<JointFactor, number>>,
  ranges: Record<JointFactor, [number, number]>, start: AdditiveLaw | undefined): JointFit {
  const error = runs.map((r) => 100 - r[metric]);
  const law = fitAdditive(varying, runs.map((r) => varying.map((f) => r[f])), error, FACTOR_LABELS, start ? { start } : {});
  const n = runs.length;
  const mean = error.reduce((s, v) => s + v, 0) / n;
  const sst = error.reduce((s, v) => s + (v - mean) ** 2, 0);
  const r2 = sst > 0 ? 1 - law.sse / sst : 1;
  const slopes: Record<JointFactor, number> = { params: 0, hours: 0, imageSize: 0 };
  for (const f of varying) slopes[f] = law.exponents[f]!;
  return { form: 'additive', intercept: law.E, slopes, slopeSE: { ...law.exponentSE }, additive: law, fixed, r2, r2Accuracy: r2, n, ranges };
}

type FitLike = Pick<JointFit, 'form' | 'intercept' | 'slopes' | 'fixed'> & { additive?: AdditiveLaw | undefined };

function additiveLaw(fit: FitLike): AdditiveLaw {
  if (!fit.additive) throw new Error('an additive fit without its law (fit it with fitJoint)');
  return fit.additive;
}

/** Throws when `point` asks about a value of a factor the data held fixed at another value. */
function checkFixed(fit: Pick<JointFit, 'fixed'>, point: Partial<JointPoint>): void {
  for (const f of JOINT_FACTORS) {
    const v = fit.fixed[f];
    const p = point[f];
    if (v !== undefined && p !== undefined && Math.abs(Math.log10(p / v)) > 1e-9) {
      throw new Error(`the runs all have ${FACTOR_LABELS[f]} ${v}: the fit says nothing about ${p} (add runs at other values)`);
    }
  }
}

function linear(fit: Pick<JointFit, 'intercept' | 'slopes'>, point: Partial<JointPoint>, skip?: JointFactor): number {
  let z = fit.intercept;
  for (const f of JOINT_FACTORS) if (f !== skip && fit.slopes[f] !== 0) z += fit.slopes[f] * Math.log10(point[f]!);
  return z;
}

/** The accuracy (percent) the fit predicts at `point`. */
export function predictJoint(fit: FitLike, point: JointPoint): number {
  checkFixed(fit, point);
  if (fit.form === 'additive') return 100 - additiveError(additiveLaw(fit), point);
  return fromFitSpace(fit.form, linear(fit, point));
}

/** Whether accuracy grows with a factor under the fit. */
export function grows(fit: Pick<JointFit, 'form' | 'slopes'>, f: JointFactor): boolean {
  const b = fit.slopes[f];
  return fit.form === 'powerlaw' ? b < 0 : b > 0;
}

/**
 * Why the fit gives no hours to `target` at this model and image size (undefined when it does):
 * accuracy not growing with video, or (additive) a target error below the irreducible error E or
 * below what the model's and image size's terms alone leave.
 */
export function noHoursReason(fit: FitLike, params: number, imageSize: number, target: number): string | undefined {
  if (fit.form === 'additive') {
    const law = additiveLaw(fit);
    const want = 100 - target;
    if (!(law.coefficients.hours! > 0)) return 'accuracy does not grow with video under the fit (its video term B is 0)';
    if (!(want > law.E)) return `unreachable: the target error ${fmt(want)} is not above the irreducible error E = ${fmt(law.E)}`;
    const rest = additiveError(law, { params, imageSize }, 'hours');
    if (!(want > rest)) return `unreachable at this model and image size: E and their terms alone leave an error of ${fmt(rest)}, above the target error ${fmt(want)}`;
    return undefined;
  }
  return grows(fit, 'hours') ? undefined : 'accuracy does not grow with video under the fit';
}

function fmt(v: number): string {
  return Number(v.toPrecision(3)).toString();
}

/**
 * log10 of the hours at which a model of `params` parameters at `imageSize` px reaches `target`
 * (percent); null when accuracy does not grow with video under the fit (never).
 */
export function log10HoursToTarget(fit: FitLike, params: number, imageSize: number, target: number): number | null {
  if (!(target > 0 && target < 100)) throw new Error(`target accuracy must lie strictly between 0 and 100% (got ${target})`);
  checkFixed(fit, { params, imageSize });
  if (noHoursReason(fit, params, imageSize, target) !== undefined) return null;
  if (fit.form === 'additive') {
    // B/D^β = target error − E − (the other terms)  =>  log10 D = (log10 B − log10(that)) / β
    const law = additiveLaw(fit);
    const left = 100 - target - additiveError(law, { params, imageSize }, 'hours');
    return (Math.log10(law.coefficients.hours!) - Math.log10(left)) / law.exponents.hours!;
  }
  const rest = linear(fit, { params, imageSize }, 'hours');
  return (toFitSpace(fit.form, target) - rest) / fit.slopes.hours;
}

/**
 * The frontier in log space: the plane bN·log10(params) + bD·log10(hours) + bR·log10(imageSize) = g(target) − a
 * on which the fit reaches the target, written as how many decades of video one decade of each
 * other factor is worth (bFactor / bD) and the log10 hours at params = imageSize = 1.
 */
export function frontierPlane(fit: JointFit, target: number): { log10HoursAtUnit: number | null; decadesOfVideoPerDecade: Record<'params' | 'imageSize', number | null> } {
  // the additive form's frontier is curved (no exchange rate holds everywhere): the grid gives it
  if (fit.form === 'additive' || !grows(fit, 'hours')) return { log10HoursAtUnit: null, decadesOfVideoPerDecade: { params: null, imageSize: null } };
  const b = fit.slopes.hours;
  return {
    log10HoursAtUnit: (toFitSpace(fit.form, target) - fit.intercept) / b,
    decadesOfVideoPerDecade: {
      params: fit.fixed.params !== undefined ? null : fit.slopes.params / b,
      imageSize: fit.fixed.imageSize !== undefined ? null : fit.slopes.imageSize / b,
    },
  };
}

/** Indices of the runs grouped by cell (params, image size, hours): the bootstrap resamples within each. */
export function cellsOf(runs: readonly JointRun[]): number[][] {
  const cells = new Map<string, number[]>();
  runs.forEach((r, i) => {
    const k = `${r.params}\u0000${r.imageSize}\u0000${r.hours}`;
    const c = cells.get(k);
    if (c) c.push(i);
    else cells.set(k, [i]);
  });
  return [...cells.values()];
}

export interface JointBootstrapOptions {
  n: number;
  seed: number;
  /** additive: the fit to every run, whose optimum starts each replicate's fit (fitted here when absent) */
  full?: JointFit;
}

/**
 * Bootstrap over seeds: runs resampled with replacement within each cell (model size, image size,
 * hours; every replicate keeps every cell and its number of runs), refitted; `measure` is applied to
 * each replicate's fit. Returns, per measured value, every replicate's value (NaN where measure gave null).
 */
export function bootstrapJoint(form: JointForm, runs: readonly JointRun[], metric: Metric, options: JointBootstrapOptions,
  measure: (fit: JointFit) => readonly (number | null)[]): number[][] {
  const { n, seed } = options;
  if (!Number.isInteger(n) || n < 1) throw new Error(`bootstrap: the number of replicates must be a positive integer (got ${n})`);
  const cells = cellsOf(runs);
  const rand = mulberry32(seed);
  // the additive form's replicates start from the optimum on every run (one start instead of the grid)
  const start = form === 'additive' ? (options.full ?? fitJoint(form, runs, metric)).additive : undefined;
  let out: number[][] | undefined;
  for (let r = 0; r < n; r++) {
    const sample: JointRun[] = [];
    for (const c of cells) for (let k = 0; k < c.length; k++) sample.push(runs[c[Math.floor(rand() * c.length)]!]!);
    const values = measure(fitJoint(form, sample, metric, start ? { additiveStart: start } : {}));
    out ??= values.map(() => []);
    values.forEach((v, j) => out![j]!.push(v ?? Number.NaN));
  }
  return out ?? [];
}

export interface Interval {
  median: number | null;
  low: number | null;
  high: number | null;
  /** replicates with no value (e.g. the target never reached) */
  missing: number;
}

/**
 * Median and 95% interval of replicate values, where a missing value (NaN: never reached) counts as
 * +Infinity: a bound that falls on a missing value is null (open).
 */
export function summarize(values: readonly number[]): Interval {
  const sorted = values.map((v) => (Number.isNaN(v) ? Number.POSITIVE_INFINITY : v)).sort((a, b) => a - b);
  const fin = (v: number): number | null => (Number.isFinite(v) ? v : null);
  return {
    median: fin(quantile(sorted, 0.5)),
    low: fin(quantile(sorted, 0.025)),
    high: fin(quantile(sorted, 0.975)),
    missing: values.filter((v) => Number.isNaN(v)).length,
  };
}
