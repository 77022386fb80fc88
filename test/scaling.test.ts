// Scaling analysis: least squares, fit forms, extrapolation and bootstrap checked against independent
// computations (the normal equations with raw sums, and numpy through Debian's python when present),
// on the paper's embedded data and on generated data with known slope and noise.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import {
  accuracyIncreases,
  analyze,
  bootstrapExtrapolation,
  continuousYears,
  extrapolate,
  FIT_FORMS,
  fitAccuracy,
  formatYears,
  leastSquares,
  mulberry32,
  PAPER_CONDITIONS,
  paperRuns,
  predict,
  quantile,
  toFitSpace,
  wakingYears,
  type RunResult,
} from '../src/scaling/index.js';


const PYTHON = '/usr/bin/python3';

let numpyChecked: boolean | undefined;
function hasNumpy(): boolean {
  if (numpyChecked === undefined) {
    numpyChecked = existsSync(PYTHON) && spawnSync(PYTHON, ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;
  }
  return numpyChecked;
}

/** Runs a python script that reads JSON from stdin (as `data`) and prints JSON. */
function numpy<T>(script: string, data: unknown): T {
  const prog = `import json, sys\nimport numpy as np\ndata = json.load(sys.stdin)\n${script}\n`;
  const r = spawnSync(PYTHON, ['-c', prog], { input: JSON.stringify(data), encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`python failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/**
 * Least squares by the normal equations [[n, Σx], [Σx, Σx²]]·[a, b] = [Σy, Σxy], solved by Cramer's
 * rule with raw (uncentred) sums: a different computation from the library's centred one.
 */
function normalEquations(x: readonly number[], y: readonly number[]): { a: number; b: number; r2: number } {
  let n = 0, sx = 0, sxx = 0, sy = 0, sxy = 0, syy = 0;
  for (let i = 0; i < x.length; i++) {
    n += 1;
    sx += x[i]!;
    sxx += x[i]! * x[i]!;
    sy += y[i]!;
    sxy += x[i]! * y[i]!;
    syy += y[i]! * y[i]!;
  }
  const det = n * sxx - sx * sx;
  const a = (sy * sxx - sx * sxy) / det;
  const b = (n * sxy - sx * sy) / det;
  let sse = 0;
  for (let i = 0; i < x.length; i++) sse += (y[i]! - a - b * x[i]!) ** 2;
  const sst = syy - (sy * sy) / n;
  return { a, b, r2: 1 - sse / sst };
}

/** A seeded normal generator for test data (an LCG and Box-Muller; separate from the library's). */
function gaussian(seed: number): () => number {
  let s = BigInt(seed) & 0xffffffffffffn;
  const next = (): number => {
    s = (s * 0x5deece66dn + 0xbn) & 0xffffffffffffn;
    return (Number(s >> 16n) + 0.5) / 2 ** 32;
  };
  return () => Math.sqrt(-2 * Math.log(next())) * Math.cos(2 * Math.PI * next());
}

function close(actual: number, expected: number, tol: number, what = ''): void {
  if (!(Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)))) {
    throw new Error(`${what} expected ${expected}, got ${actual} (tolerance ${tol})`);
  }
}

const runsOf = (condition: string): RunResult[] => paperRuns().filter((r) => r.condition === condition);
const log10 = (v: number) => Math.log10(v);

test('embedded data: every published point is a run, seeds numbered within each video length', () => {
  const runs = paperRuns();
  let total = 0;
  for (const [condition, c] of Object.entries(PAPER_CONDITIONS)) {
    const rs = runsOf(condition);
    assert.equal(rs.length, c.hours.length);
    total += rs.length;
    rs.forEach((r, i) => {
      assert.equal(r.hours, c.hours[i]);
      assert.equal(r.top1, c.top1[i]);
      assert.equal(r.top5, c.top5[i]);
    });
    const keys = new Set(rs.map((r) => `${r.hours}/${r.seed}`));
    assert.equal(keys.size, rs.length, `${condition}: (hours, seed) pairs must be unique`);
  }
  assert.equal(runs.length, total);
});

test('least squares equals the normal equations on the embedded data, every condition and metric', () => {
  for (const condition of Object.keys(PAPER_CONDITIONS)) {
    const rs = runsOf(condition);
    for (const metric of ['top1', 'top5'] as const) {
      const x = rs.map((r) => log10(r.hours));
      const y = rs.map((r) => r[metric]);
      const mine = leastSquares(x, y);
      const ref = normalEquations(x, y);
      close(mine.slope, ref.b, 1e-10, `${condition} ${metric} slope`);
      close(mine.intercept, ref.a, 1e-10, `${condition} ${metric} intercept`);
      close(mine.r2, ref.r2, 1e-10, `${condition} ${metric} R²`);
      const fit = fitAccuracy('loglinear', rs.map((r) => r.hours), y);
      close(fit.slope, ref.b, 1e-10, 'fitAccuracy loglinear slope');
    }
  }
});

test('least squares recovers a known line exactly without noise, and within its standard error with noise', () => {
  const hours = [0.5, 3, 20, 150, 900, 4000, 25000];
  const x = hours.map(log10);
  const exact = leastSquares(x, x.map((v) => 12.5 + 3.25 * v));
  close(exact.slope, 3.25, 1e-12, 'slope');
  close(exact.intercept, 12.5, 1e-12, 'intercept');
  close(exact.r2, 1, 1e-12, 'R²');

  // 7 lengths × 30 seeds, noise σ = 2 points: the slope lands within 4 standard errors of the truth,
  // and the reported standard error matches σ/sqrt(Sxx) to 25%
  const g = gaussian(7);
  const xs: number[] = [];
  const ys: number[] = [];
  for (const v of x) for (let s = 0; s < 30; s++) {
    xs.push(v);
    ys.push(10 + 6 * v + 2 * g());
  }
  const fit = leastSquares(xs, ys);
  const ref = normalEquations(xs, ys);
  close(fit.slope, ref.b, 1e-10, 'noisy slope vs normal equations');
  const xm = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sxx = xs.reduce((a, b) => a + (b - xm) ** 2, 0);
  const trueSE = 2 / Math.sqrt(sxx);
  assert.ok(Math.abs(fit.slope - 6) < 4 * trueSE, `slope ${fit.slope} too far from 6 (SE ${trueSE})`);
  assert.ok(Math.abs(fit.slopeSE / trueSE - 1) < 0.25, `slope SE ${fit.slopeSE} vs ${trueSE}`);
});

test('numpy agrees on fits of every form, R², and the extrapolated hours (embedded data)', { skip: !hasNumpy() && 'no numpy at /usr/bin/python3' }, () => {
  const cases: { hours: number[]; acc: number[]; form: string; target: number }[] = [];
  for (const condition of Object.keys(PAPER_CONDITIONS)) {
    const rs = runsOf(condition);
    for (const metric of ['top1', 'top5'] as const) {
      for (const form of FIT_FORMS) cases.push({ hours: rs.map((r) => r.hours), acc: rs.map((r) => r[metric]), form, target: metric === 'top5' ? 94.9 : 80 });
    }
  }
  const ref = numpy<{ slope: number; intercept: number; r2: number; x: number }[]>(
    `out = []
for c in data:
    x = np.log10(np.array(c['hours']))
    a = np.array(c['acc'])
    T = c['target']
    if c['form'] == 'loglinear':
        z, zt = a, T
    elif c['form'] == 'powerlaw':
        z, zt = np.log10(100 - a), np.log10(100 - T)
    else:
        p = a / 100
        z, zt = np.log(p / (1 - p)), np.log(T / 100 / (1 - T / 100))
    b, i = np.polyfit(x, z, 1)
    r2 = 1 - np.sum((z - (i + b * x)) ** 2) / np.sum((z - z.mean()) ** 2)
    out.append({'slope': b, 'intercept': i, 'r2': r2, 'x': (zt - i) / b})
print(json.dumps(out))`,
    cases,
  );
  cases.forEach((c, k) => {
    const fit = fitAccuracy(c.form as (typeof FIT_FORMS)[number], c.hours, c.acc);
    close(fit.slope, ref[k]!.slope, 1e-9, `${c.form} slope`);
    close(fit.intercept, ref[k]!.intercept, 1e-9, `${c.form} intercept`);
    close(fit.r2, ref[k]!.r2, 1e-9, `${c.form} R²`);
    const e = extrapolate(fit, c.target);
    assert.ok(accuracyIncreases(fit), 'every published trend grows with video');
    close(e.log10Hours!, ref[k]!.x, 1e-9, `${c.form} log10 hours`);
  });
});

test('extrapolation: the fitted curve passes through the target at the reported hours, for every form', () => {
  const rs = runsOf('few-shot-2pct');
  for (const form of FIT_FORMS) {
    for (const target of [50, 80, 94.9]) {
      const fit = fitAccuracy(form, rs.map((r) => r.hours), rs.map((r) => r.top5));
      const e = extrapolate(fit, target);
      assert.notEqual(e.log10Hours, null);
      close(predict(fit, 10 ** e.log10Hours!), target, 1e-9, `${form} at ${target}`);
      // and the closed form of the loglinear crossing
      if (form === 'loglinear') {
        const ref = normalEquations(rs.map((r) => log10(r.hours)), rs.map((r) => r.top5));
        close(e.log10Hours!, (target - ref.a) / ref.b, 1e-9, 'loglinear crossing');
      }
    }
  }
  // power law parameters describe the error: 100 − acc = c·h^−α
  const pl = fitAccuracy('powerlaw', rs.map((r) => r.hours), rs.map((r) => r.top5));
  assert.ok(pl.alpha! > 0);
  close(100 - predict(pl, 1000), pl.c! * 1000 ** -pl.alpha!, 1e-9, 'power law form');
});

test('few-shot ~1% top-5 reaches 94.9% after millions of years of continuous video (embedded data)', () => {
  const rs = runsOf('few-shot-1pct');
  const ref = normalEquations(rs.map((r) => log10(r.hours)), rs.map((r) => r.top5));
  const expectedLog10Hours = (94.9 - ref.a) / ref.b;
  const a = analyze(paperRuns(), { bootstrap: 0 });
  const e = a.conditions.find((c) => c.condition === 'few-shot-1pct')!.metrics.find((m) => m.metric === 'top5')!.estimates[0]!;
  close(e.log10Hours!, expectedLog10Hours, 1e-10, 'log10 hours');
  const years = 10 ** expectedLog10Hours / (24 * 365.25);
  close(e.continuousYears!, years, 1e-9, 'continuous years');
  // "on the order of a million years": between 10^6 and 10^7
  assert.equal(Math.floor(Math.log10(e.continuousYears!)), 6, `got ${e.continuousYears} years`);
  close(e.wakingYears!, (10 ** expectedLog10Hours) / (12 * 365.25), 1e-9, 'waking years at 12 h a day');
  close(wakingYears(8766, 24), continuousYears(8766), 1e-12, '24 h a day is continuous');
});

test('a fit that does not grow never reaches the target: no number, a reason', () => {
  const hours = [1, 10, 100, 1000];
  for (const acc of [[40, 35, 30, 25], [30, 30, 30, 30]]) {
    for (const form of FIT_FORMS) {
      const fit = fitAccuracy(form, hours, acc);
      const e = extrapolate(fit, 94.9);
      assert.equal(e.log10Hours, null, `${form} ${acc}`);
      assert.match(e.reason!, /never|flat/);
    }
  }
  const runs: RunResult[] = hours.flatMap((h, i) => [
    { condition: 'flat', hours: h, seed: 1, top1: 10, top5: 50 - i },
    { condition: 'flat', hours: h, seed: 2, top1: 11, top5: 50.5 - i },
  ]);
  const a = analyze(runs, { bootstrap: 50 });
  const est = a.conditions[0]!.metrics.find((m) => m.metric === 'top5')!.estimates[0]!;
  assert.equal(est.log10Hours, null);
  assert.equal(est.hours, null);
  assert.equal(est.continuousYears, null);
  assert.equal(est.bootstrap!.unreachable, 50);
  assert.equal(est.bootstrap!.median, null);
  assert.equal(formatYears(est.continuousYears), 'never');
});

test('quantile matches numpy.percentile (linear interpolation)', { skip: !hasNumpy() && 'no numpy at /usr/bin/python3' }, () => {
  const r = mulberry32(3);
  const arrays = [1, 2, 7, 40, 1001].map((n) => Array.from({ length: n }, () => r() * 10 - 3).sort((a, b) => a - b));
  const ps = [0, 0.025, 0.5, 0.975, 1];
  const ref = numpy<number[][]>('print(json.dumps([[float(np.percentile(a, 100 * p)) for p in ' + JSON.stringify(ps) + '] for a in data]))', arrays);
  arrays.forEach((a, i) => ps.forEach((p, j) => close(quantile(a, p), ref[i]![j]!, 1e-12, `n=${a.length} p=${p}`)));
  assert.equal(quantile([1, 2, Infinity], 0.9), Infinity);
  assert.equal(quantile([1, 2, Infinity], 0.5), 2);
});

test('bootstrap resamples within each video length, and its interval equals numpy refitting the same resamples', () => {
  const rs = runsOf('few-shot-1pct');
  const hours = rs.map((r) => r.hours);
  const acc = rs.map((r) => r.top5);
  const b = bootstrapExtrapolation('loglinear', hours, acc, 94.9, { n: 400, seed: 11, keepIndices: true });
  assert.equal(b.replicates.length, 400);
  assert.equal(b.indices!.length, 400);
  const counts = (idx: number[]) => {
    const m = new Map<number, number>();
    for (const i of idx) m.set(hours[i]!, (m.get(hours[i]!) ?? 0) + 1);
    return [...m.entries()].sort((p, q) => p[0] - q[0]);
  };
  const want = counts(hours.map((_, i) => i));
  let differs = 0;
  for (const idx of b.indices!) {
    assert.deepEqual(counts(idx), want, 'every replicate keeps the runs per length');
    if (idx.some((v, k) => v !== k)) differs++;
  }
  assert.ok(differs > 350, 'replicates are actual resamples');
  // independent refit of the same resamples by the normal equations
  const mine = b.indices!.map((idx) => {
    const ref = normalEquations(idx.map((i) => log10(hours[i]!)), idx.map((i) => acc[i]!));
    return (94.9 - ref.a) / ref.b;
  });
  mine.forEach((v, k) => close(b.replicates[k]!, v, 1e-9, `replicate ${k}`));
  const sorted = [...mine].sort((p, q) => p - q);
  const q = (p: number) => {
    const h = (sorted.length - 1) * p;
    const lo = Math.floor(h);
    return sorted[lo]! + (h - lo) * ((sorted[lo + 1] ?? sorted[lo]!) - sorted[lo]!);
  };
  close(b.median!, q(0.5), 1e-9, 'median');
  close(b.low!, q(0.025), 1e-9, 'low');
  close(b.high!, q(0.975), 1e-9, 'high');
  assert.ok(b.low! < b.median! && b.median! < b.high!);
  if (hasNumpy()) {
    const ref = numpy<number[]>(
      `h = np.array(data['hours']); a = np.array(data['acc']); xs = []
for idx in data['indices']:
    s, i = np.polyfit(np.log10(h[idx]), a[idx], 1)
    xs.append((94.9 - i) / s)
print(json.dumps([float(np.percentile(xs, p)) for p in (50, 2.5, 97.5)]))`,
      { hours, acc, indices: b.indices },
    );
    close(b.median!, ref[0]!, 1e-9, 'numpy median');
    close(b.low!, ref[1]!, 1e-9, 'numpy 2.5%');
    close(b.high!, ref[2]!, 1e-9, 'numpy 97.5%');
  }
});

test('bootstrap is seeded, collapses on identical seeds, and its spread matches the analytic standard error', () => {
  const rs = runsOf('linear-probe');
  const h = rs.map((r) => r.hours);
  const a = rs.map((r) => r.top5);
  const b1 = bootstrapExtrapolation('loglinear', h, a, 94.9, { n: 200, seed: 5 });
  const b2 = bootstrapExtrapolation('loglinear', h, a, 94.9, { n: 200, seed: 5 });
  const b3 = bootstrapExtrapolation('loglinear', h, a, 94.9, { n: 200, seed: 6 });
  assert.deepEqual(b1.replicates, b2.replicates);
  assert.notDeepEqual(b1.replicates, b3.replicates);

  // every seed gave the same accuracy: the interval is the point estimate
  const same = bootstrapExtrapolation('loglinear', [1, 1, 10, 10, 100, 100], [20, 20, 30, 30, 40, 40], 90, { n: 100, seed: 1 });
  close(same.low!, 7, 1e-9, 'low'); // 20 + 10·x = 90 at x = 7
  close(same.high!, 7, 1e-9, 'high');

  // generated data, 5 lengths × 40 seeds, noise σ = 3: the bootstrap slope interval is about
  // ±1.96 analytic standard errors, and covers the true slope
  const g = gaussian(99);
  const hours: number[] = [];
  const acc: number[] = [];
  for (const len of [1, 10, 100, 1000, 10000]) for (let s = 0; s < 40; s++) {
    hours.push(len);
    acc.push(15 + 5 * log10(len) + 3 * g());
  }
  const fit = fitAccuracy('loglinear', hours, acc);
  const b = bootstrapExtrapolation('loglinear', hours, acc, 94.9, { n: 2000, seed: 2 });
  const halfWidth = (b.slope.high - b.slope.low) / 2;
  const analytic = 1.96 * 3 / Math.sqrt(hours.reduce((s, v) => s + (log10(v) - 2) ** 2, 0));
  assert.ok(Math.abs(halfWidth / analytic - 1) < 0.2, `bootstrap half-width ${halfWidth} vs analytic ${analytic}`);
  assert.ok(b.slope.low < 5 && 5 < b.slope.high, `[${b.slope.low}, ${b.slope.high}] should cover 5`);
  close(b.slope.median, fit.slope, 0.05, 'bootstrap median slope near the fit');
});

test('analyze: sensitivity table spans forms, targets and conditions, and the spread is its range', () => {
  const a = analyze(paperRuns(), { bootstrap: 0, targets: [{ metric: 'top5', value: 94.9, source: 's' }, { metric: 'top1', value: 80, source: 'mine' }] });
  const s = a.sensitivity;
  // top-5 94.9 and 88.0, top-1 80: three targets × three conditions
  assert.equal(s.rows.length, 9);
  const cells = s.rows.flatMap((r) => FIT_FORMS.map((f) => r.byForm[f].log10Hours)).filter((v): v is number => v !== null);
  close(s.spreadDecades!, Math.max(...cells) - Math.min(...cells), 1e-12, 'spread');
  for (const r of s.rows) {
    const rs = runsOf(r.condition);
    for (const f of FIT_FORMS) {
      const ref = extrapolate(fitAccuracy(f, rs.map((x) => x.hours), rs.map((x) => x[r.metric])), r.target.value);
      assert.equal(r.byForm[f].log10Hours, ref.log10Hours);
    }
  }
  // a top-1 estimate exists only because a top-1 target was given
  const top1 = a.conditions[0]!.metrics.find((m) => m.metric === 'top1')!;
  assert.equal(top1.estimates.length, 1);
  assert.equal(analyze(paperRuns(), { bootstrap: 0 }).conditions[0]!.metrics.find((m) => m.metric === 'top1')!.estimates.length, 0);
  // a form that cannot apply (accuracy 100%) is a reasoned empty cell, not a crash
  const perfect: RunResult[] = [1, 10, 100].map((h, i) => ({ condition: 'c', hours: h, seed: 1, top1: 50 + i, top5: i === 2 ? 100 : 90 + i }));
  const p = analyze(perfect, { bootstrap: 0 });
  const row = p.sensitivity.rows.find((r) => r.metric === 'top5' && r.target.value === 94.9)!;
  assert.equal(row.byForm.powerlaw.log10Hours, null);
  assert.match(row.byForm.powerlaw.reason!, /below 100/);
  assert.notEqual(row.byForm.loglinear.log10Hours, null);
});

test('bad numbers: a single video length, non-positive hours, bad targets and options are clear errors', () => {
  assert.throws(() => fitAccuracy('loglinear', [10, 10, 10], [1, 2, 3]), /two or more different video lengths/);
  assert.throws(() => leastSquares([1, 1], [2, 3]), /at least two different video lengths/);
  assert.throws(() => leastSquares([1], [2]), /at least two points/);
  assert.throws(() => leastSquares([1, 2], [2]), /2 x values but 1 y values/);
  assert.throws(() => fitAccuracy('loglinear', [0, 10], [1, 2]), /hours must be positive/);
  assert.throws(() => fitAccuracy('loglinear', [-1, 10], [1, 2]), /hours must be positive/);
  assert.throws(() => toFitSpace('logit', 0), /strictly between 0 and 100/);
  const one: RunResult[] = [
    { condition: 'few-shot-1pct', hours: 13.01, seed: 1, top1: 10, top5: 30 },
    { condition: 'few-shot-1pct', hours: 13.01, seed: 2, top1: 11, top5: 31 },
  ];
  assert.throws(() => analyze(one), /condition "few-shot-1pct" has runs at only one video length \(13\.01 h\); a fit needs two or more/);
  assert.throws(() => analyze([...paperRuns(), ...one.map((r) => ({ ...r, condition: 'x' }))]), /condition "x" has runs at only one/);
  // leaving that condition out works
  assert.equal(analyze([...paperRuns(), ...one.map((r) => ({ ...r, condition: 'x' }))], { bootstrap: 0, conditions: ['linear-probe'] }).conditions.length, 1);
  assert.throws(() => analyze(paperRuns(), { conditions: ['nope'] }), /no runs for condition\(s\) nope/);
  assert.throws(() => analyze([{ condition: 'a', hours: 0, seed: 1, top1: 1, top5: 2 }, { condition: 'a', hours: 10, seed: 1, top1: 1, top5: 2 }]), /"hours" must be positive/);
  assert.throws(() => analyze([{ condition: 'a', hours: -3, seed: 1, top1: 1, top5: 2 }]), /"hours" must be positive/);
  assert.throws(() => analyze([]), /no runs/);
  assert.throws(() => analyze(paperRuns(), { targets: [{ metric: 'top5', value: 100, source: '' }] }), /strictly between 0 and 100/);
  assert.throws(() => analyze(paperRuns(), { hoursPerDay: 0 }), /hours per day/);
  assert.throws(() => analyze(paperRuns(), { hoursPerDay: 25 }), /hours per day/);
  assert.throws(() => analyze(paperRuns(), { bootstrap: 1.5 }), /bootstrap/);
  assert.throws(() => extrapolate(fitAccuracy('loglinear', [1, 10], [1, 2]), 0), /strictly between/);
});


test('years read as words and plain numbers, never in exponent form', () => {
  assert.equal(formatYears(140e6), '140 million years');
  assert.equal(formatYears(4.34e6), '4.3 million years');
  assert.equal(formatYears(29188.4), '29,188 years');
  assert.equal(formatYears(99.7), '100 years');
  assert.equal(formatYears(8.545), '8.5 years');
  assert.equal(formatYears(null), 'never');
  for (let e = -4; e < 15; e += 0.37) assert.doesNotMatch(formatYears(10 ** e), /e[+-]/, `10^${e}`);
});
