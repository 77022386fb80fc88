// Fits of accuracy against hours of video, and their extrapolation to a target accuracy.
// Every fit form is a straight line z = a + b·x fitted by ordinary least squares, where
// x = log10(hours) and z is a transform of the accuracy (percent):
//   loglinear  z = acc                          (the paper's: accuracy linear in log-hours)
//   powerlaw   z = log10(100 − acc)             (error = c·hours^−α, so b = −α, a = log10 c)
//   logit      z = ln(p / (1 − p)), p = acc/100 (logit of accuracy linear in log-hours)

export type FitForm = 'loglinear' | 'powerlaw' | 'logit';
export const FIT_FORMS: readonly FitForm[] = ['loglinear', 'powerlaw', 'logit'];

export const FIT_DESCRIPTIONS: Readonly<Record<FitForm, string>> = {
  loglinear: 'accuracy linear in log10(hours)',
  powerlaw: 'power law in error: 100 − acc = c·hours^−α',
  logit: 'logit(accuracy) linear in log10(hours)',
};

/** Units of the slope b, per decade (tenfold) of video. */
export const SLOPE_UNITS: Readonly<Record<FitForm, string>> = {
  loglinear: 'accuracy points per decade',
  powerlaw: 'log10(error) per decade (= −α)',
  logit: 'logit units per decade',
};

export interface LineFit {
  /** z at x = 0 */
  intercept: number;
  /** change of z per unit x */
  slope: number;
  /** coefficient of determination in the fitted (z) space */
  r2: number;
  /** standard error of the slope (NaN with two points) */
  slopeSE: number;
  n: number;
}

/** Ordinary least squares of y on x (centred sums). Needs at least two distinct x. */
export function leastSquares(x: readonly number[], y: readonly number[]): LineFit {
  const n = x.length;
  if (n !== y.length) throw new Error(`leastSquares: ${n} x values but ${y.length} y values`);
  if (n < 2) throw new Error(`leastSquares: a line needs at least two points (got ${n})`);
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(x[i]!) || !Number.isFinite(y[i]!)) throw new Error(`leastSquares: point ${i} is not finite (${x[i]}, ${y[i]})`);
  }
  let xm = 0;
  let ym = 0;
  for (let i = 0; i < n; i++) {
    xm += x[i]!;
    ym += y[i]!;
  }
  xm /= n;
  ym /= n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i]! - xm;
    const dy = y[i]! - ym;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  if (!(sxx > 1e-12 * Math.max(1, xm * xm) * n)) {
    throw new Error('leastSquares: all x values are equal; a fit needs at least two different video lengths');
  }
  const slope = sxy / sxx;
  const intercept = ym - slope * xm;
  const sse = Math.max(0, syy - slope * sxy);
  const r2 = syy > 0 ? 1 - sse / syy : 1;
  const slopeSE = n > 2 ? Math.sqrt(sse / (n - 2) / sxx) : Number.NaN;
  return { intercept, slope, r2, slopeSE, n };
}

/** The accuracy transform z = g(acc) of a fit form; throws where it is undefined. */
export function toFitSpace(form: FitForm, acc: number): number {
  switch (form) {
    case 'loglinear':
      return acc;
    case 'powerlaw':
      if (!(acc < 100)) throw new Error(`powerlaw fit needs accuracies below 100% (got ${acc})`);
      return Math.log10(100 - acc);
    case 'logit': {
      if (!(acc > 0 && acc < 100)) throw new Error(`logit fit needs accuracies strictly between 0 and 100% (got ${acc})`);
      const p = acc / 100;
      return Math.log(p / (1 - p));
    }
  }
}

/** The inverse transform: accuracy (percent) from z. */
export function fromFitSpace(form: FitForm, z: number): number {
  switch (form) {
    case 'loglinear':
      return z;
    case 'powerlaw':
      return 100 - 10 ** z;
    case 'logit':
      return 100 / (1 + Math.exp(-z));
  }
}

export interface Fit extends LineFit {
  form: FitForm;
  /** R² of the fitted accuracies against the observed ones (comparable across forms) */
  r2Accuracy: number;
  /** power law only: the exponent α and the scale c of error = c·hours^−α */
  alpha?: number;
  c?: number;
}

/** Fits accuracy (percent) against hours with the given form. */
export function fitAccuracy(form: FitForm, hours: readonly number[], acc: readonly number[]): Fit {
  if (hours.length !== acc.length) throw new Error(`fit: ${hours.length} hours but ${acc.length} accuracies`);
  for (const h of hours) {
    if (!(h > 0) || !Number.isFinite(h)) throw new Error(`fit: hours must be positive and finite (got ${h})`);
  }
  if (new Set(hours).size < 2) {
    throw new Error(`fit: needs runs at two or more different video lengths (got ${hours.length === 0 ? 'none' : `only ${hours[0]} h`})`);
  }
  const x = hours.map((h) => Math.log10(h));
  const z = acc.map((a) => toFitSpace(form, a));
  const line = leastSquares(x, z);
  let ssRes = 0;
  let ssTot = 0;
  const mean = acc.reduce((s, v) => s + v, 0) / acc.length;
  for (let i = 0; i < acc.length; i++) {
    const pred = fromFitSpace(form, line.intercept + line.slope * x[i]!);
    ssRes += (acc[i]! - pred) ** 2;
    ssTot += (acc[i]! - mean) ** 2;
  }
  const fit: Fit = { ...line, form, r2Accuracy: ssTot > 0 ? 1 - ssRes / ssTot : 1 };
  if (form === 'powerlaw') {
    fit.alpha = -line.slope;
    fit.c = 10 ** line.intercept;
  }
  return fit;
}

/** Accuracy the fit predicts at `hours`. */
export function predict(fit: Pick<Fit, 'form' | 'intercept' | 'slope'>, hours: number): number {
  return fromFitSpace(fit.form, fit.intercept + fit.slope * Math.log10(hours));
}

/** Whether the fitted accuracy grows with hours (only then can a higher target be reached). */
export function accuracyIncreases(fit: Pick<Fit, 'form' | 'slope'>): boolean {
  return fit.form === 'powerlaw' ? fit.slope < 0 : fit.slope > 0;
}

export interface Crossing {
  /** log10 of the hours at which the fit reaches the target; null when it never does */
  log10Hours: number | null;
  /** why there is no number */
  reason?: string;
}

/** Where the fitted curve reaches `target` (accuracy, percent). */
export function extrapolate(fit: Pick<Fit, 'form' | 'intercept' | 'slope'>, target: number): Crossing {
  if (!(target > 0 && target < 100)) throw new Error(`target accuracy must lie strictly between 0 and 100% (got ${target})`);
  if (fit.slope === 0 || !Number.isFinite(fit.slope)) return { log10Hours: null, reason: 'the fit is flat: accuracy does not change with video' };
  const x = (toFitSpace(fit.form, target) - fit.intercept) / fit.slope;
  if (!accuracyIncreases(fit)) {
    // accuracy falls with video: only targets already below the fit are ever "reached", and going
    // back in video is not an answer to "how much more do we need"
    return { log10Hours: null, reason: 'the fit never reaches the target: accuracy does not grow with video (slope ≤ 0)' };
  }
  return { log10Hours: x };
}

export const HOURS_PER_YEAR = 24 * 365.25;

/** Years of continuous (24 h a day) video. */
export function continuousYears(hours: number): number {
  return hours / HOURS_PER_YEAR;
}

/** Years of experience at `hoursPerDay` hours of video a day. */
export function wakingYears(hours: number, hoursPerDay: number): number {
  return hours / (hoursPerDay * 365.25);
}
