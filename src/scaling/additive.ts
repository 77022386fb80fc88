// The saturating additive power law of `awty scaling --form additive` (the form of Hoffmann et al.
// 2022, "Chinchilla", with image size as a third term):
//   error(N, D, R) = E + A/N^α + B/D^β + C/R^γ,   error = 100 − accuracy (percent points)
// E is the irreducible error: no amount of model, video or image size brings the error below it.
// Nonlinear in its exponents, fitted by variable projection: for given exponents, E and the scales
// are the exact non-negative least-squares solution, and Levenberg-Marquardt searches the
// logarithms of the exponents (so they stay positive) from several starting points, keeping the
// best (least sum of squared errors, in percent points). A factor with one value in the data has no term.
//
// Parameterisation (for conditioning): each term is written c·(x/x0)^−α, where x0 is the geometric
// mean of the factor over the runs (A = c·x0^α), and α = exp(l) with l the fitted parameter.

import type { JointFactor } from './joint.js';

export interface LmResult {
  theta: number[];
  /** sum of squared residuals at theta */
  sse: number;
  iterations: number;
  /** stopped by a convergence test (not by the iteration limit) */
  converged: boolean;
}

export interface LmOptions {
  lower?: readonly number[];
  upper?: readonly number[];
  maxIterations?: number;
}

/** Solves the symmetric positive definite system M x = b by Cholesky; null when M is not positive definite. */
export function choleskySolve(M: readonly (readonly number[])[], b: readonly number[]): number[] | null {
  const p = b.length;
  const L: number[][] = Array.from({ length: p }, () => new Array<number>(p).fill(0));
  for (let i = 0; i < p; i++) {
    for (let j = 0; j <= i; j++) {
      let s = M[i]![j]!;
      for (let k = 0; k < j; k++) s -= L[i]![k]! * L[j]![k]!;
      if (i === j) {
        if (!(s > 0)) return null;
        L[i]![i] = Math.sqrt(s);
      } else {
        L[i]![j] = s / L[j]![j]!;
      }
    }
  }
  const y = new Array<number>(p).fill(0);
  for (let i = 0; i < p; i++) {
    let s = b[i]!;
    for (let k = 0; k < i; k++) s -= L[i]![k]! * y[k]!;
    y[i] = s / L[i]![i]!;
  }
  const x = new Array<number>(p).fill(0);
  for (let i = p - 1; i >= 0; i--) {
    let s = y[i]!;
    for (let k = i + 1; k < p; k++) s -= L[k]![i]! * x[k]!;
    x[i] = s / L[i]![i]!;
  }
  return x;
}

/** Inverse of a symmetric positive definite matrix (column by column through Cholesky); null when singular. */
export function spdInverse(M: readonly (readonly number[])[]): number[][] | null {
  const p = M.length;
  const cols: number[][] = [];
  for (let j = 0; j < p; j++) {
    const e = new Array<number>(p).fill(0);
    e[j] = 1;
    const c = choleskySolve(M, e);
    if (!c) return null;
    cols.push(c);
  }
  return Array.from({ length: p }, (_, i) => cols.map((c) => c[i]!));
}

export interface LmProblem {
  residuals: (theta: readonly number[]) => number[];
  /** rows: residuals, columns: parameters; `r` is residuals(theta) */
  jacobian: (theta: readonly number[], r: readonly number[]) => number[][];
}

/**
 * Levenberg-Marquardt (Marquardt's diagonal scaling) minimising Σ r_i(θ)². Bounds, when given, are
 * kept by projecting each step onto the box (a parameter on its bound with the gradient pushing
 * outwards is held there). Stops when the Gauss-Newton decrement falls below 1e-10 of the loss,
 * when no step lowers the loss, or at the iteration limit.
 */
export function levenbergMarquardt(problem: LmProblem, theta0: readonly number[], options: LmOptions = {}): LmResult {
  const p = theta0.length;
  const lower = options.lower ?? new Array<number>(p).fill(-Infinity);
  const upper = options.upper ?? new Array<number>(p).fill(Infinity);
  const maxIterations = options.maxIterations ?? 500;
  const clamp = (t: readonly number[]): number[] => t.map((v, j) => Math.min(upper[j]!, Math.max(lower[j]!, v)));
  let theta = clamp(theta0);
  let r = problem.residuals(theta);
  let sse = r.reduce((s, v) => s + v * v, 0);
  if (!Number.isFinite(sse)) throw new Error('Levenberg-Marquardt: the starting point gives a non-finite loss');
  const sse0 = sse;
  let lambda = -1;
  let it = 0;
  let converged = false;
  while (it < maxIterations) {
    it++;
    const J = problem.jacobian(theta, r);
    const H: number[][] = Array.from({ length: p }, () => new Array<number>(p).fill(0));
    const g = new Array<number>(p).fill(0);
    for (let i = 0; i < r.length; i++) {
      const row = J[i]!;
      for (let a = 0; a < p; a++) {
        g[a] += row[a]! * r[i]!;
        for (let b = 0; b <= a; b++) H[a]![b] += row[a]! * row[b]!;
      }
    }
    for (let a = 0; a < p; a++) for (let b = 0; b < a; b++) H[b]![a] = H[a]![b]!;
    // a parameter on its bound with the gradient pushing outwards stays there (this iteration)
    for (let j = 0; j < p; j++) {
      if ((theta[j]! <= lower[j]! && g[j]! > 0) || (theta[j]! >= upper[j]! && g[j]! < 0)) {
        g[j] = 0;
        for (let b = 0; b < p; b++) H[j]![b] = H[b]![j] = 0;
        H[j]![j] = 1;
      }
    }
    let maxDiag = 0;
    for (let j = 0; j < p; j++) maxDiag = Math.max(maxDiag, H[j]![j]!);
    if (!(maxDiag > 0) || sse <= 1e-28 * sse0) {
      converged = true;
      break;
    }
    const D = H.map((row, j) => Math.max(row[j]!, 1e-12 * maxDiag));
    // the Gauss-Newton decrement (the loss a full Gauss-Newton step would remove): small against the loss = a minimum
    const gn = choleskySolve(H.map((row, a) => row.map((v, b) => (a === b ? v + 1e-12 * D[a]! : v))), g.map((v) => -v));
    if (gn && -gn.reduce((s, v, j) => s + v * g[j]!, 0) <= 1e-10 * sse) {
      converged = true;
      break;
    }
    if (lambda < 0) lambda = 1e-3;
    let accepted = false;
    while (lambda < 1e16) {
      const M = H.map((row, a) => row.map((v, b) => (a === b ? v + lambda * D[a]! : v)));
      const step = choleskySolve(M, g.map((v) => -v));
      if (step) {
        const next = clamp(theta.map((v, j) => v + step[j]!));
        const rNext = problem.residuals(next);
        const sseNext = rNext.reduce((s, v) => s + v * v, 0);
        if (Number.isFinite(sseNext) && sseNext < sse) {
          theta = next;
          r = rNext;
          sse = sseNext;
          lambda = Math.max(lambda / 3, 1e-12);
          accepted = true;
          break;
        }
      }
      lambda *= 4;
    }
    if (!accepted) {
      // no step lowers the loss: a (local) minimum to machine precision
      converged = true;
      break;
    }
  }
  return { theta, sse, iterations: it, converged };
}

/** The fitted additive law. */
export interface AdditiveLaw {
  /** irreducible error, in the metric's points (error = 100 − accuracy) */
  E: number;
  /** the scale of each factor's term (A, B, C of A/N^α + B/D^β + C/R^γ); null for a fixed factor */
  coefficients: Record<JointFactor, number | null>;
  /** the exponents α, β, γ; null for a fixed factor */
  exponents: Record<JointFactor, number | null>;
  /** standard error of E and of each exponent (from the Jacobian at the optimum; null when it is singular or there are no residual degrees of freedom) */
  ESE: number | null;
  exponentSE: Record<JointFactor, number | null>;
  /** sum of squared residuals of the error, in squared points */
  sse: number;
  /** parameters that ended on their bound (E or a scale at 0, an exponent at 1e-4 or 20); their standard errors are null */
  atBound: string[];
  /** starting points tried, and how many of them reached the best loss (within 1e-6 of it) */
  starts: number;
  startsAtBest: number;
  converged: boolean;
}

const FACTORS: readonly JointFactor[] = ['params', 'hours', 'imageSize'];

/** The term of one factor: coefficient / value^exponent. */
function term(law: Pick<AdditiveLaw, 'coefficients' | 'exponents'>, f: JointFactor, value: number): number {
  const c = law.coefficients[f];
  const e = law.exponents[f];
  return c === null || e === null ? 0 : c * Math.exp(-e * Math.log(value));
}

/** The error the law gives at a point (the terms of fixed factors are absent). */
export function additiveError(law: Pick<AdditiveLaw, 'E' | 'coefficients' | 'exponents'>, point: Partial<Record<JointFactor, number>>, skip?: JointFactor): number {
  let e = law.E;
  for (const f of FACTORS) if (f !== skip && point[f] !== undefined) e += term(law, f, point[f]);
  return e;
}

/**
 * Non-negative least squares of y on a few columns, exactly: the unconstrained solution when all its
 * coefficients are positive, else the best of every subset of the columns whose solution is
 * (compared through the normal equations). Returns the coefficients (0 outside the subset).
 */
export function nnlsSmall(cols: readonly (readonly number[])[], y: readonly number[]): number[] {
  const m = cols.length;
  if (m > 10) throw new Error(`nnlsSmall: ${m} columns is too many to enumerate`);
  const n = y.length;
  const gram: number[][] = Array.from({ length: m }, () => new Array<number>(m).fill(0));
  const xty = new Array<number>(m).fill(0);
  for (let a = 0; a < m; a++) {
    const ca = cols[a]!;
    for (let i = 0; i < n; i++) xty[a] += ca[i]! * y[i]!;
    for (let b = 0; b <= a; b++) {
      const cb = cols[b]!;
      let s = 0;
      for (let i = 0; i < n; i++) s += ca[i]! * cb[i]!;
      gram[a]![b] = s;
      gram[b]![a] = s;
    }
  }
  const full = choleskySolve(gram, xty);
  if (full && full.every((v) => v > 0)) return full;
  // sse(c) = yᵀy − 2cᵀXᵀy + cᵀXᵀXc = yᵀy − cᵀXᵀy at a subset's least-squares solution
  let best = new Array<number>(m).fill(0);
  let bestGain = 0;
  for (let mask = 1; mask < 1 << m; mask++) {
    const S: number[] = [];
    for (let j = 0; j < m; j++) if (mask & (1 << j)) S.push(j);
    const c = choleskySolve(S.map((a) => S.map((b) => gram[a]![b]!)), S.map((a) => xty[a]!));
    if (!c || c.some((v) => !(v > 0))) continue;
    let gain = 0;
    S.forEach((j, q) => (gain += c[q]! * xty[j]!));
    if (gain > bestGain) {
      bestGain = gain;
      best = new Array<number>(m).fill(0);
      S.forEach((j, q) => (best[j] = c[q]!));
    }
  }
  return best;
}

/**
 * Fits error = E + Σ_f A_f/x_f^α_f over the rows (`x[i][k]`: the value of varying factor k in run
 * i; `error[i]`: 100 − accuracy) by variable projection: for given exponents the scales and E
 * (linear, kept ≥ 0) are the exact non-negative least-squares solution, and Levenberg-Marquardt
 * searches the log-exponents (central-difference Jacobian of the projected residuals). Starting
 * points: all exponents 0.1, 0.5 or 2, and each in turn at 2 (0.1) with the others at 0.1 (2); or
 * `start`'s exponents alone. Throws
 * when there are fewer runs than parameters or a factor has fewer than three distinct values (its
 * scale and exponent are then not both identifiable).
 */
export function fitAdditive(varying: readonly JointFactor[], x: readonly (readonly number[])[], error: readonly number[], labels: Readonly<Record<JointFactor, string>>,
  options: { start?: Pick<AdditiveLaw, 'exponents'> } = {}): AdditiveLaw {
  const n = error.length;
  const k = varying.length;
  const p = 1 + 2 * k;
  const names = ['E', ...varying.flatMap((f) => [`the ${labels[f]} scale`, `the ${labels[f]} exponent`])];
  if (n < p) throw new Error(`the additive form has ${p} parameters (${names.join(', ')}) and needs at least ${p} runs (got ${n})`);
  for (let j = 0; j < k; j++) {
    const distinct = new Set(x.map((row) => row[j]!)).size;
    if (distinct < 3) throw new Error(`the additive form needs three or more values of ${labels[varying[j]!]} to fit both the scale and the exponent of its term (got ${distinct})`);
  }
  for (const e of error) if (!Number.isFinite(e)) throw new Error(`the additive form: every error must be finite (got ${e})`);
  // ln(x / x0), x0 the geometric mean of each factor (conditioning: the scales are fitted at x0)
  const logX0 = varying.map((_, j) => x.reduce((s, row) => s + Math.log(row[j]!), 0) / n);
  const u = x.map((row) => row.map((v, j) => Math.log(v) - logX0[j]!));
  const ones = new Array<number>(n).fill(1);
  const columns = (theta: readonly number[]): number[][] => {
    const cols = [ones];
    for (let j = 0; j < k; j++) {
      const alpha = Math.exp(theta[j]!);
      const c = new Array<number>(n);
      for (let i = 0; i < n; i++) c[i] = Math.exp(-alpha * u[i]![j]!);
      cols.push(c);
    }
    return cols;
  };
  const project = (theta: readonly number[]): { coef: number[]; r: number[]; cols: number[][] } => {
    const cols = columns(theta);
    const coef = nnlsSmall(cols, error);
    const r = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      let pred = 0;
      for (let j = 0; j <= k; j++) pred += coef[j]! * cols[j]![i]!;
      r[i] = pred - error[i]!;
    }
    return { coef, r, cols };
  };
  const h = 1e-6;
  const problem: LmProblem = {
    residuals: (theta) => project(theta).r,
    jacobian: (theta) => {
      const J = Array.from({ length: n }, () => new Array<number>(k).fill(0));
      for (let j = 0; j < k; j++) {
        const up = project(theta.map((v, q) => (q === j ? v + h : v))).r;
        const down = project(theta.map((v, q) => (q === j ? v - h : v))).r;
        for (let i = 0; i < n; i++) J[i]![j] = (up[i]! - down[i]!) / (2 * h);
      }
      return J;
    },
  };
  const lower = varying.map(() => Math.log(1e-4));
  const upper = varying.map(() => Math.log(20));
  const starts: number[][] = [];
  const st = options.start;
  if (st) {
    starts.push(varying.map((f) => {
      const e = st.exponents[f];
      if (e === null) throw new Error(`the additive start has no ${labels[f]} term`);
      return Math.log(e);
    }));
  } else {
    // every exponent 0.1, 0.5 or 2; and each factor's at 2 with the others at 0.1, and at 0.1 with the others at 2
    for (const g of [0.1, 0.5, 2]) starts.push(varying.map(() => Math.log(g)));
    if (k > 1) {
      for (let j = 0; j < k; j++) {
        starts.push(varying.map((_, q) => Math.log(q === j ? 2 : 0.1)));
        starts.push(varying.map((_, q) => Math.log(q === j ? 0.1 : 2)));
      }
    }
  }
  let best: LmResult | undefined;
  const results: LmResult[] = [];
  for (const theta0 of starts) {
    const res = levenbergMarquardt(problem, theta0, { lower, upper, maxIterations: 200 });
    results.push(res);
    if (!best || res.sse < best.sse) best = res;
  }
  const b = best!;
  const { coef, cols } = project(b.theta);
  const alphas = b.theta.map(Math.exp);
  const coefficients: Record<JointFactor, number | null> = { params: null, hours: null, imageSize: null };
  const exponents: Record<JointFactor, number | null> = { params: null, hours: null, imageSize: null };
  const exponentSE: Record<JointFactor, number | null> = { params: null, hours: null, imageSize: null };
  varying.forEach((f, j) => {
    exponents[f] = alphas[j]!;
    // c·(x/x0)^−α = c·x0^α · x^−α
    coefficients[f] = coef[1 + j]! * Math.exp(alphas[j]! * logX0[j]!);
  });
  const atBound: string[] = [];
  if (!(coef[0]! > 0)) atBound.push('E (0)');
  varying.forEach((f, j) => {
    if (!(coef[1 + j]! > 0)) atBound.push(`the ${labels[f]} scale (0)`);
    if (b.theta[j]! <= lower[j]! || b.theta[j]! >= upper[j]!) atBound.push(`the ${labels[f]} exponent (${alphas[j]})`);
  });
  // standard errors: σ² (JᵀJ)⁻¹ with J the Jacobian in (E, c_1, α_1, ...) at the optimum
  let ESE: number | null = null;
  const dof = n - p;
  if (dof > 0 && atBound.length === 0) {
    const J = Array.from({ length: n }, (_, i) => [1, ...varying.flatMap((_, j) => [cols[1 + j]![i]!, -coef[1 + j]! * cols[1 + j]![i]! * u[i]![j]!])]);
    const H = Array.from({ length: p }, (_, a) => Array.from({ length: p }, (_, c) => J.reduce((s, row) => s + row[a]! * row[c]!, 0)));
    const inv = spdInverse(H);
    if (inv && inv.every((row, j) => row[j]! > 0 && Number.isFinite(row[j]!))) {
      const s2 = b.sse / dof;
      ESE = Math.sqrt(s2 * inv[0]![0]!);
      varying.forEach((f, j) => {
        exponentSE[f] = Math.sqrt(s2 * inv[2 + 2 * j]![2 + 2 * j]!);
      });
    }
  }
  const maxErr = Math.max(...error.map(Math.abs), 1e-12);
  const tol = 1e-6 * Math.max(b.sse, 1e-12 * maxErr * maxErr * n);
  return {
    E: coef[0]!, coefficients, exponents, ESE, exponentSE, sse: b.sse, atBound,
    starts: results.length, startsAtBest: results.filter((r) => r.sse - b.sse <= tol).length, converged: b.converged,
  };
}
