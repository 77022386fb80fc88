// The additive joint form of `awty scaling` (src/scaling/additive.ts, joint.ts): error = E + A/N^α +
// B/D^β + C/R^γ fitted by variable projection and Levenberg-Marquardt. Exact recovery of known
// parameters from noise-free data; the loss against scipy.optimize.curve_fit (or, without scipy,
// a hand-written NumPy Levenberg-Marquardt) on the same data; the estimate solved by hand and
// "unreachable" below the irreducible error; too few runs refused; the embedded 2023 runs; the
// bootstrap; awty scaling --form additive.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { levenbergMarquardt, nnlsSmall } from '../src/scaling/additive.js';
import { bootstrapJoint, fitJoint, jointRuns, log10HoursToTarget, noHoursReason, predictJoint, summarize, type JointFit, type JointRun } from '../src/scaling/joint.js';
import { analyzeJoint } from '../src/scaling/joint-analysis.js';
import { formatJointReport } from '../src/scaling/joint-outputs.js';
import { PAPER2023_HEADLINE, paper2023Runs } from '../src/scaling/paper2023-data.js';
import { tmpdir } from './helpers/oracle.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = path.join(repo, 'dist', 'src', 'cli', 'main.js');
const tmp = tmpdir('awty-scaling-additive-');
after(() => rmSync(tmp, { recursive: true, force: true }));

const TRUE = { E: 8, params: { c: 2e3, e: 0.35 }, hours: { c: 30, e: 0.4 }, imageSize: { c: 200, e: 0.6 } };
const trueError = (p: number, h: number, r: number): number =>
  TRUE.E + TRUE.params.c * p ** -TRUE.params.e + TRUE.hours.c * h ** -TRUE.hours.e + TRUE.imageSize.c * r ** -TRUE.imageSize.e;

function lcg(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return (s >>> 8) / 2 ** 24 - 0.5;
  };
}

/** 4 model sizes x 4 image sizes x 4 amounts of video, accuracy = 100 − the true law's error (+ noise of ± amp/2). */
function grid(amp = 0, seeds = 1, seed = 7): JointRun[] {
  const noise = lcg(seed);
  const out: JointRun[] = [];
  for (const params of [1e6, 1e7, 1e8, 1e9]) {
    for (const imageSize of [32, 64, 128, 256]) {
      for (const hours of [1, 10, 100, 1000]) {
        for (let s = 1; s <= seeds; s++) {
          const acc = 100 - trueError(params, hours, imageSize) + amp * noise();
          out.push({ params, hours, imageSize, seed: s, top1: acc, top5: acc });
        }
      }
    }
  }
  return out;
}

const rel = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);

test('nnlsSmall and levenbergMarquardt on problems with known answers', () => {
  // y = 2·a − 0.5·b: b would take a negative coefficient, so it is dropped and a refitted alone (aᵀy / aᵀa = 61/30)
  const a = [1, 2, 3, 4];
  const b = [1, -1, 1, -1];
  const y = a.map((v, i) => 2 * v - 0.5 * b[i]!);
  const ab = nnlsSmall([a, b], y);
  assert.ok(Math.abs(ab[0]! - 61 / 30) < 1e-12 && ab[1] === 0, `${ab}`);
  const c = nnlsSmall([a, b.map((v) => -v)], y);
  assert.ok(Math.abs(c[0]! - 2) < 1e-12 && Math.abs(c[1]! - 0.5) < 1e-12, `${c}`);
  // Rosenbrock as least squares: r = (10(θ1 − θ0²), 1 − θ0), minimum (1, 1)
  const res = levenbergMarquardt({
    residuals: (t) => [10 * (t[1]! - t[0]! ** 2), 1 - t[0]!],
    jacobian: (t) => [[-20 * t[0]!, 10], [-1, 0]],
  }, [-1.2, 1], { maxIterations: 500 });
  assert.ok(res.converged && Math.abs(res.theta[0]! - 1) < 1e-8 && Math.abs(res.theta[1]! - 1) < 1e-8, JSON.stringify(res));
  // a bound holds: minimum of (θ − 3)² on θ ≤ 2 is at 2
  const b2 = levenbergMarquardt({ residuals: (t) => [t[0]! - 3], jacobian: () => [[1]] }, [0], { upper: [2] });
  assert.equal(b2.theta[0], 2);
});

test('additive: noise-free data from known parameters give them back (1e-7 relative), and a factor with one value has no term', () => {
  const fit = fitJoint('additive', grid(), 'top1');
  const law = fit.additive!;
  assert.ok(rel(law.E, TRUE.E) < 1e-7, `E ${law.E}`);
  for (const f of ['params', 'hours', 'imageSize'] as const) {
    assert.ok(rel(law.coefficients[f]!, TRUE[f].c) < 1e-7, `${f} scale ${law.coefficients[f]}`);
    assert.ok(rel(law.exponents[f]!, TRUE[f].e) < 1e-7, `${f} exponent ${law.exponents[f]}`);
    assert.equal(fit.slopes[f], law.exponents[f]);
  }
  assert.equal(fit.intercept, law.E);
  assert.ok(law.sse < 1e-12, `sse ${law.sse}`);
  assert.ok(fit.r2Accuracy > 1 - 1e-12);
  assert.deepEqual(law.atBound, []);
  assert.ok(law.startsAtBest >= 1 && law.starts === 9);
  assert.ok(Math.abs(predictJoint(fit, { params: 3e7, hours: 42, imageSize: 100 }) - (100 - trueError(3e7, 42, 100))) < 1e-8);
  // image size held at 64: its term is a constant, absorbed into E
  const one = fitJoint('additive', grid().filter((r) => r.imageSize === 64), 'top1');
  assert.deepEqual(one.fixed, { imageSize: 64 });
  assert.equal(one.additive!.coefficients.imageSize, null);
  assert.equal(one.additive!.starts, 7);
  assert.ok(rel(one.additive!.E, TRUE.E + TRUE.imageSize.c * 64 ** -TRUE.imageSize.e) < 1e-7, `E ${one.additive!.E}`);
  assert.ok(rel(one.additive!.exponents.hours!, TRUE.hours.e) < 1e-7);
  assert.throws(() => predictJoint(one, { params: 1e7, hours: 10, imageSize: 128 }), /runs all have image size \(px\) 64/);
});

test('additive: the hours to a target solved by hand; "unreachable" when the target error is not above E, or above what the model and image size leave', () => {
  const fit = fitJoint('additive', grid(), 'top1');
  // at N = 1e8, R = 128: 30/D^0.4 = target error − E − A/N^α − C/R^γ
  const p = 1e8;
  const r = 128;
  const target = 70;
  const left = 100 - target - TRUE.E - TRUE.params.c * p ** -TRUE.params.e - TRUE.imageSize.c * r ** -TRUE.imageSize.e;
  const want = Math.log10((TRUE.hours.c / left) ** (1 / TRUE.hours.e));
  const got = log10HoursToTarget(fit, p, r, target)!;
  assert.ok(Math.abs(got - want) < 1e-6, `${got} vs ${want}`);
  assert.ok(Math.abs(predictJoint(fit, { params: p, hours: 10 ** got, imageSize: r }) - target) < 1e-9);
  // human level (error 5.1) is below E = 8: unreachable at any size
  assert.equal(log10HoursToTarget(fit, 1e12, 1e4, 94.9), null);
  assert.match(noHoursReason(fit, 1e12, 1e4, 94.9)!, /^unreachable: the target error 5\.1 is not above the irreducible error E = 8$/);
  // 80% (error 20) at a tiny model: E + A/N^α + C/R^γ = 8 + 2000/10^0.35 + 200/32^0.6 > 20
  assert.equal(log10HoursToTarget(fit, 10, 32, 80), null);
  assert.match(noHoursReason(fit, 10, 32, 80)!, /^unreachable at this model and image size: .* above the target error 20$/);
  const a = analyzeJoint(grid().map((x) => ({ condition: 'c', hours: x.hours, seed: x.seed, top1: x.top1, top5: x.top5, modelParams: x.params, imageSize: x.imageSize })), {
    form: 'additive', targets: [{ metric: 'top1', value: 94.9, source: 'test' }], bootstrap: 0, frontierParams: [1e6, 1e9], frontierImageSizes: [128],
  });
  const m = a.groups[0]!.metrics[0]!;
  assert.equal(m.estimate.log10Hours, null);
  assert.match(m.estimate.reason!, /^unreachable: the target error 5\.1/);
  assert.deepEqual(m.frontier.rows.map((x) => x.log10Hours), [null, null]);
  assert.deepEqual(m.frontier.plane, { log10HoursAtUnit: null, decadesOfVideoPerDecade: { params: null, imageSize: null } });
  assert.match(formatJointReport(a), /at 1B, 256 px: unreachable: the target error 5\.1 is not above the irreducible error E = 8/);
});

test('additive: too few runs for the parameters, or too few values of a factor, are refused by name', () => {
  const runs = grid().filter((r) => r.imageSize === 64 && r.hours <= 100 && (r.params === 1e6 || r.params === 1e9));
  // 2 model sizes: 1 + 2·2 parameters but model size has two values
  assert.throws(() => fitJoint('additive', runs, 'top1'), /the additive form needs three or more values of model parameters to fit both the scale and the exponent of its term \(got 2\)/);
  const few = grid().filter((r) => r.imageSize === 64 && r.params === r.hours * 1e6);
  assert.equal(few.length, 4);
  assert.throws(() => fitJoint('additive', few, 'top1'),
    /the additive form has 5 parameters \(E, the model parameters scale, the model parameters exponent, the hours of video scale, the hours of video exponent\) and needs at least 5 runs \(got 4\)/);
  // in the analysis: skipped with its reason when another form leads, an error naming the group when it is the main form
  const results = runs.map((x) => ({ condition: 'c', hours: x.hours, seed: x.seed, top1: x.top1, top5: x.top5, modelParams: x.params, imageSize: x.imageSize }));
  const a = analyzeJoint(results, { bootstrap: 0, targets: [{ metric: 'top1', value: 60, source: 'test' }] });
  assert.match(a.groups[0]!.metrics[0]!.skipped.additive!, /three or more values of model parameters/);
  assert.throws(() => analyzeJoint(results, { form: 'additive', bootstrap: 0 }), /^Error: c, top5: the additive form needs three or more values of model parameters/);
});

/** The first interpreter that imports `module`. */
function python(module: string): string | undefined {
  for (const py of ['/usr/bin/python3', 'python3']) {
    if (spawnSync(py, ['-c', `import ${module}`], { encoding: 'utf8' }).status === 0) return py;
  }
  return undefined;
}
const scipyPython = python('scipy.optimize');
const numpyPython = python('numpy');
const reference = process.env.AWTY_ADDITIVE_REFERENCE === 'numpy' ? 'numpy' : scipyPython ? 'scipy' : 'numpy';

// The reference fit in natural parameters (E, c_j, α_j ≥ 0, terms c_j·(x/x0)^−α_j with x0 the
// geometric mean), from six starting points: scipy.optimize.curve_fit (method 'trf', bounds ≥ 0,
// tolerances 1e-15) or a hand-written Levenberg-Marquardt projected onto p ≥ 0.
const REFERENCE_PY = String.raw`
import json, sys
import numpy as np
D = json.load(open(sys.argv[1])); mode = sys.argv[2]
X = np.array(D['x'], dtype=float); y = np.array(D['error'], dtype=float)
n, k = X.shape
g = np.exp(np.log(X).mean(axis=0)); U = X / g
def model(p):
    e = np.full(n, p[0])
    for j in range(k): e = e + p[1 + 2 * j] * U[:, j] ** (-p[2 + 2 * j])
    return e
def jac(p):
    J = np.zeros((n, 1 + 2 * k)); J[:, 0] = 1
    for j in range(k):
        t = U[:, j] ** (-p[2 + 2 * j]); J[:, 1 + 2 * j] = t; J[:, 2 + 2 * j] = -p[1 + 2 * j] * t * np.log(U[:, j])
    return J
def lm(p):
    p = np.array(p, float); lam = 1e-3; r = model(p) - y; s = r @ r
    for _ in range(5000):
        J = jac(p); H = J.T @ J; gr = J.T @ r; ok = False
        while lam < 1e16:
            q = np.maximum(p + np.linalg.solve(H + lam * np.diag(np.maximum(np.diag(H), 1e-12 * np.diag(H).max())), -gr), 0)
            rq = model(q) - y; sq = rq @ rq
            if sq < s:
                ok = True; dec = s - sq; p, r, s = q, rq, sq; lam = max(lam / 3, 1e-12); break
            lam *= 4
        if not ok or dec <= 1e-15 * s: break
    return p, float(s)
best = None
for ef in (0.2, 0.6):
    for ex in (0.1, 0.5, 2.0):
        E0 = ef * y.min(); p0 = [E0] + [max((y.mean() - E0) / k, 1e-3), ex] * k
        if mode == 'scipy':
            from scipy.optimize import curve_fit
            try:
                p, _ = curve_fit(lambda _x, *q: model(np.array(q)), None, y, p0=p0, jac=lambda _x, *q: jac(np.array(q)), bounds=(0, np.inf), method='trf', ftol=1e-15, xtol=1e-15, gtol=1e-15, max_nfev=20000)
            except RuntimeError:
                continue
            r = model(p) - y; s = float(r @ r)
        else:
            p, s = lm(p0)
        if best is None or s < best[1]: best = (p, s)
p, s = best
print(json.dumps({'sse': s, 'E': float(p[0]), 'coef': [float(p[1 + 2 * j] * g[j] ** p[2 + 2 * j]) for j in range(k)], 'exp': [float(p[2 + 2 * j]) for j in range(k)]}))
`;

function referenceFit(runs: readonly JointRun[], metric: 'top1' | 'top5', name: string): { sse: number; E: number; coef: number[]; exp: number[] } {
  const data = path.join(tmp, `${name}.json`);
  writeFileSync(data, JSON.stringify({ x: runs.map((r) => [r.params, r.hours, r.imageSize]), error: runs.map((r) => 100 - r[metric]) }));
  const script = path.join(tmp, 'reference.py');
  writeFileSync(script, REFERENCE_PY);
  const py = reference === 'scipy' ? scipyPython! : numpyPython!;
  const r = spawnSync(py, [script, data, reference], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { sse: number; E: number; coef: number[]; exp: number[] };
}

// scipy: the two losses agree within 1e-6 relative (measured: 2e-16 to 7e-12). The NumPy fallback
// is a weaker optimiser (its projection holds E at 0): there ours must be at most 1e-9 above it.
test(`additive: the loss equals the reference's (${reference === 'scipy' ? 'scipy.optimize.curve_fit, within 1e-6 relative' : 'hand-written NumPy Levenberg-Marquardt: ours at most 1e-9 above it'}) on noisy synthetic data and the embedded 2023 runs`,
  { skip: (reference === 'scipy' ? !scipyPython : !numpyPython) && 'python3 with scipy or numpy not found' }, () => {
    const cases: [string, JointRun[], 'top1' | 'top5'][] = [
      ['synthetic', grid(2), 'top1'],
      ['paper2023-final-top5', jointRuns(paper2023Runs('final')), 'top5'],
      ['paper2023-final-top1', jointRuns(paper2023Runs('final')), 'top1'],
    ];
    for (const [name, runs, metric] of cases) {
      const law = fitJoint('additive', runs, metric).additive!;
      const ref = referenceFit(runs, metric, name);
      const d = (law.sse - ref.sse) / ref.sse;
      console.log(`${name} ${metric}: SSE ours ${law.sse.toPrecision(12)}, ${reference} ${ref.sse.toPrecision(12)} (relative ${d.toExponential(2)})`);
      if (reference === 'scipy') assert.ok(Math.abs(d) < 1e-6, `${name}: ${law.sse} vs ${ref.sse}`);
      else assert.ok(d < 1e-9, `${name}: ${law.sse} vs ${ref.sse}`);
      if (name === 'synthetic') {
        // well determined: the parameters agree too
        assert.ok(rel(law.E, ref.E) < 1e-5, `E ${law.E} vs ${ref.E}`);
        (['params', 'hours', 'imageSize'] as const).forEach((f, j) => {
          assert.ok(rel(law.exponents[f]!, ref.exp[j]!) < 1e-5, `${f} exponent ${law.exponents[f]} vs ${ref.exp[j]}`);
          assert.ok(rel(law.coefficients[f]!, ref.coef[j]!) < 1e-4, `${f} scale ${law.coefficients[f]} vs ${ref.coef[j]}`);
        });
      }
    }
  });

test('additive on the embedded runs of Orhan (2023): every metric fits and gives a finite number of hours or "unreachable"', () => {
  for (const accuracy of ['final', 'best'] as const) {
    const a = analyzeJoint(paper2023Runs(accuracy), {
      form: 'additive', bootstrap: 0,
      targets: [{ metric: 'top5', value: 94.9, source: 'A1' }, { metric: 'top5', value: 88, source: 'A2' }, { metric: 'top1', value: 80, source: 'assumed' }],
      at: { params: PAPER2023_HEADLINE.modelParams, imageSize: PAPER2023_HEADLINE.imageSize },
      predict: [{ params: PAPER2023_HEADLINE.modelParams, hours: PAPER2023_HEADLINE.hours, imageSize: PAPER2023_HEADLINE.imageSize }],
    });
    for (const m of a.groups[0]!.metrics) {
      const fit = m.fits.additive!;
      const law = fit.additive!;
      assert.ok(Number.isFinite(law.sse) && law.sse > 0 && fit.r2Accuracy > 0.8, `R² ${fit.r2Accuracy}`);
      assert.ok(law.E >= 0 && law.E < 100 - Math.max(...paper2023Runs(accuracy).map((r) => r[m.target.metric])) + 1e-9);
      for (const f of ['params', 'hours', 'imageSize'] as const) assert.ok(law.exponents[f]! > 0 && law.coefficients[f]! >= 0);
      const e = m.estimate;
      if (e.log10Hours === null) assert.match(e.reason!, /^unreachable/);
      else {
        assert.ok(Number.isFinite(e.log10Hours));
        assert.ok(Math.abs(predictJoint(fit, { params: e.params, hours: e.hours!, imageSize: e.imageSize }) - m.target.value) < 1e-6);
      }
      const acc = m.predictions[0]!.accuracy.additive!;
      assert.ok(acc > 0 && acc < 100 - law.E + 1e-9);
      console.log(`${accuracy} ${m.target.metric} ${m.target.value}%: E = ${law.E.toPrecision(4)}, α = ${law.exponents.params!.toPrecision(4)}, β = ${law.exponents.hours!.toPrecision(4)}, ` +
        `γ = ${law.exponents.imageSize!.toPrecision(4)}, R² ${fit.r2Accuracy.toFixed(3)}; at 2.5B, 952 px: ${e.log10Hours === null ? e.reason : `10^${e.log10Hours.toFixed(2)} h`}; ` +
        `predicted at 20,000 h ${acc.toFixed(1)}%`);
    }
  }
});

test('additive bootstrap: replicates start from the full fit, are seeded, and the band holds the true exponent', () => {
  const runs = grid(4, 3, 11);
  const full = fitJoint('additive', runs, 'top1');
  const measure = (fit: JointFit): number[] => [fit.slopes.hours, fit.intercept];
  const b1 = bootstrapJoint('additive', runs, 'top1', { n: 40, seed: 5, full }, measure);
  const b2 = bootstrapJoint('additive', runs, 'top1', { n: 40, seed: 5 }, measure);
  assert.deepEqual(b1, b2);
  const beta = summarize(b1[0]!);
  assert.ok(beta.low! < TRUE.hours.e && TRUE.hours.e < beta.high!, `β band [${beta.low}, ${beta.high}]`);
  assert.ok(beta.high! - beta.low! > 1e-3);
  const E = summarize(b1[1]!);
  assert.ok(E.low! < TRUE.E && TRUE.E < E.high!, `E band [${E.low}, ${E.high}]`);
});

test('awty scaling --form additive: the report, scaling.json and the figure', () => {
  const out = path.join(tmp, 'cli');
  const r = spawnSync(process.execPath, [cli, 'scaling', '--form', 'additive', '--bootstrap', '10', '--out', out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /main form: additive: 100 − acc = E \+ A\/N\^α \+ B\/D\^β \+ C\/R\^γ/);
  assert.match(r.stdout, /additive: E = .* \(irreducible error, points\); A\/N\^α: A = .*; bootstrap E /);
  assert.match(r.stdout, /at 633M, 476 px: (10\^\d+\.\d\d h|unreachable)/);
  assert.match(r.stdout, /predicted top5 at 2\.5B, 952 px, 20000 h: loglinear \d+\.\d%, powerlaw \d+\.\d%, logit \d+\.\d%, additive \d+\.\d%; additive bootstrap/);
  const a = JSON.parse(readFileSync(path.join(out, 'scaling.json'), 'utf8')) as ReturnType<typeof analyzeJoint> & { figure: { vegaLite: unknown } };
  assert.equal(a.assumptions.form, 'additive');
  const m = a.groups[0]!.metrics[0]!;
  assert.equal(m.fits.additive!.form, 'additive');
  assert.ok(typeof m.fits.additive!.additive!.E === 'number');
  assert.ok(m.irreducibleErrorBootstrap !== undefined);
  assert.ok(JSON.stringify(a.figure.vegaLite).includes('ceiling 100 − E'));
  assert.equal(readFileSync(path.join(out, 'scaling.png')).subarray(1, 4).toString(), 'PNG');
  const bad = spawnSync(process.execPath, [cli, 'scaling', '--form', 'chinchilla', '--out', path.join(tmp, 'cli2')], { encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /additive/);
});
