// optim: parity with PyTorch 1.13 (Debian's python3-torch, run as /usr/bin/python3) for Adam, AdamW,
// SGD, their state dicts and the lr schedulers; bad input; flat memory over many steps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as torch from '../src/torch/index.js';
import { Tensor } from '../src/torch/index.js';
import * as optim from '../src/optim/index.js';
import * as nn from '../src/nn/index.js';
import { oracleEnv, PYTHON } from './helpers/oracle.js';

const hasTorch = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
const skipPy = hasTorch ? false : `${PYTHON} with torch is not installed (apt-get install python3-torch)`;

/** A tensor as it travels through JSON: shape plus float32 values (exact as JSON doubles). */
interface JTensor {
  __tensor__: true;
  shape: number[];
  data: number[];
}
function isJTensor(x: unknown): x is JTensor {
  return x !== null && typeof x === 'object' && (x as JTensor).__tensor__ === true;
}

const PRELUDE = `
import json, os, sys, torch
torch.set_num_threads(int(os.environ['AWTY_ORACLE_THREADS']))
inp = json.load(open(sys.argv[1]))
def T(j): return torch.tensor(j['data'], dtype=torch.float32).reshape(j['shape'])
def J(x):
    if torch.is_tensor(x): return {'__tensor__': True, 'shape': list(x.shape), 'data': x.detach().reshape(-1).tolist()}
    if isinstance(x, dict): return {str(k): J(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)): return [J(v) for v in x]
    return x
def back(x):
    if isinstance(x, dict) and x.get('__tensor__'): return T(x)
    if isinstance(x, dict): return {(int(k) if k.isdigit() else k): back(v) for k, v in x.items()}
    if isinstance(x, list): return [back(v) for v in x]
    return x
`;

/** Runs a Python snippet (after PRELUDE, with `inp` = input) and returns what it printed as JSON. */
function py(script: string, input: unknown): unknown {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'awty-optim-'));
  try {
    const file = path.join(dir, 'in.json');
    writeFileSync(file, JSON.stringify(input));
    const r = spawnSync(PYTHON, ['-c', PRELUDE + script, file], { encoding: 'utf8', maxBuffer: 256 << 20, env: oracleEnv() });
    if (r.status !== 0) throw new Error(`python failed (${r.status}):\n${r.stderr}`);
    return JSON.parse(r.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Deterministic float32 values in [-1, 1) (a small LCG, so both sides see the same numbers). */
function randomValues(n: number, seed: number): number[] {
  let s = seed >>> 0 || 1;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(Math.fround(s / 2 ** 31 - 1));
  }
  return out;
}

const SHAPES = [[4, 5], [7], [3, 2, 2]];
const numel = (s: number[]): number => s.reduce((a, b) => a * b, 1);
const jt = (shape: number[], data: number[]): JTensor => ({ __tensor__: true, shape, data });
const INIT = SHAPES.map((s, i) => jt(s, randomValues(numel(s), 100 + i)));
const STEPS = 6;
const GRADS = Array.from({ length: STEPS }, (_, k) => SHAPES.map((s, i) => jt(s, randomValues(numel(s), 1000 * (k + 1) + i))));

function toTensor(j: JTensor): Tensor {
  return torch.fromTypedArray(Float32Array.from(j.data), j.shape);
}
function toJ(t: Tensor): JTensor {
  return jt(t.shape, Array.from(t.toTypedArray() as Float32Array));
}
/** Our JSON-ish form of anything holding tensors (to compare with Python's). */
function jsonify(x: unknown): unknown {
  if (x instanceof Tensor) return toJ(x);
  if (Array.isArray(x)) return x.map(jsonify);
  if (x !== null && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, jsonify(v)]));
  return x;
}
/** Python's JSON back to values with Tensors in place of tensor records. */
function tensorize(x: unknown): unknown {
  if (isJTensor(x)) return toTensor(x);
  if (Array.isArray(x)) return x.map(tensorize);
  if (x !== null && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, tensorize(v)]));
  return x;
}

function relErr(a: number[], b: number[]): number {
  assert.equal(a.length, b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}
function assertClose(ours: JTensor, theirs: JTensor, tol: number, what: string): void {
  assert.deepEqual(ours.shape, theirs.shape, `${what}: shape`);
  const e = relErr(ours.data, theirs.data);
  assert.ok(e <= tol, `${what}: relative error ${e} > ${tol}`);
}
/** Deep comparison of two JSON values where tensors may differ by `tol` (relative). */
function assertSameTree(ours: unknown, theirs: unknown, tol: number, where = 'root'): void {
  if (isJTensor(theirs)) {
    assert.ok(isJTensor(ours), `${where}: expected a tensor, got ${JSON.stringify(ours)}`);
    assertClose(ours, theirs, tol, where);
    return;
  }
  if (Array.isArray(theirs)) {
    assert.ok(Array.isArray(ours), `${where}: expected an array`);
    assert.equal(ours.length, theirs.length, `${where}: length`);
    theirs.forEach((v, i) => assertSameTree((ours as unknown[])[i], v, tol, `${where}[${i}]`));
    return;
  }
  if (theirs !== null && typeof theirs === 'object') {
    assert.ok(ours !== null && typeof ours === 'object' && !Array.isArray(ours), `${where}: expected an object`);
    assert.deepEqual(Object.keys(ours).sort(), Object.keys(theirs).sort(), `${where}: keys`);
    for (const [k, v] of Object.entries(theirs)) assertSameTree((ours as Record<string, unknown>)[k], v, tol, `${where}.${k}`);
    return;
  }
  assert.equal(ours, theirs, `${where}: value`);
}

interface Case {
  name: string;
  opt: 'Adam' | 'AdamW' | 'SGD';
  /** PyTorch keyword arguments (snake_case). */
  kw: Record<string, unknown>;
  /** Parameter groups as index lists plus PyTorch per-group overrides; absent: one group. */
  groups?: { idx: number[]; kw: Record<string, unknown> }[];
}

const CASES: Case[] = [
  { name: 'Adam', opt: 'Adam', kw: { lr: 0.01 } },
  { name: 'Adam weight decay', opt: 'Adam', kw: { lr: 0.01, weight_decay: 0.05 } },
  { name: 'Adam amsgrad + weight decay', opt: 'Adam', kw: { lr: 0.02, betas: [0.8, 0.99], eps: 1e-6, weight_decay: 0.01, amsgrad: true } },
  { name: 'Adam maximize', opt: 'Adam', kw: { lr: 0.01, maximize: true } },
  {
    name: 'Adam two groups',
    opt: 'Adam',
    kw: { lr: 0.001 },
    groups: [
      { idx: [0, 2], kw: { lr: 0.03 } },
      { idx: [1], kw: { weight_decay: 0.1, amsgrad: true } },
    ],
  },
  { name: 'AdamW', opt: 'AdamW', kw: { lr: 0.01, weight_decay: 0.1 } },
  { name: 'AdamW amsgrad', opt: 'AdamW', kw: { lr: 0.01, amsgrad: true } },
  { name: 'SGD plain', opt: 'SGD', kw: { lr: 0.1 } },
  { name: 'SGD momentum + weight decay', opt: 'SGD', kw: { lr: 0.1, momentum: 0.9, weight_decay: 1e-4 } },
  { name: 'SGD nesterov', opt: 'SGD', kw: { lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 0.01 } },
  { name: 'SGD dampening', opt: 'SGD', kw: { lr: 0.05, momentum: 0.5, dampening: 0.3 } },
];

const camel = (kw: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(kw).map(([k, v]) => [optim.toCamelCase(k), v]));

function makeOptimizer(c: Case, params: Tensor[]): optim.Optimizer<optim.BaseGroupOptions> {
  const spec = c.groups ? c.groups.map((g) => ({ params: g.idx.map((i) => params[i]!), ...camel(g.kw) })) : params;
  const o = camel(c.kw);
  if (c.opt === 'Adam') return new optim.Adam(spec as optim.Params<optim.AdamGroupOptions>, o) as unknown as optim.Optimizer<optim.BaseGroupOptions>;
  if (c.opt === 'AdamW') return new optim.AdamW(spec as optim.Params<optim.AdamWGroupOptions>, o) as unknown as optim.Optimizer<optim.BaseGroupOptions>;
  return new optim.SGD(spec as optim.Params<optim.SGDGroupOptions>, o) as unknown as optim.Optimizer<optim.BaseGroupOptions>;
}

function makeParams(init: JTensor[]): Tensor[] {
  return init.map((j) => toTensor(j).requiresGrad_(true).keep());
}

function setGrads(params: Tensor[], grads: JTensor[]): void {
  params.forEach((p, i) => {
    const g = toTensor(grads[i]!);
    p.grad = g;
    g.dispose();
  });
}

/**
 * Python: builds the optimizer, runs `steps` steps with GRADS, and after `at` steps records the
 * parameters and the state dict; at the end records the parameters and the state dict again.
 */
const PY_RUN = `
def run(inp):
    params = [torch.nn.Parameter(T(j)) for j in inp['init']]
    O = getattr(torch.optim, inp['opt'])
    spec = [dict(params=[params[i] for i in g['idx']], **g['kw']) for g in inp['groups']] if inp['groups'] else params
    opt = O(spec, **inp['kw'])
    out = {}
    for k, grads in enumerate(inp['grads']):
        for p, g in zip(params, grads): p.grad = T(g)
        opt.step()
        if k + 1 == inp['at']:
            out['mid'] = {'params': J(list(params)), 'sd': J(opt.state_dict())}
    out['end'] = {'params': J(list(params)), 'sd': J(opt.state_dict())}
    return out
print(json.dumps([run(c) for c in inp]))
`;

interface PyRun {
  mid: { params: JTensor[]; sd: unknown };
  end: { params: JTensor[]; sd: unknown };
}

/** Every case's PyTorch run, done in one Python process on first use (importing torch takes seconds). */
const MID = STEPS - 2;
let pyRuns: PyRun[] | undefined;
function runPy(c: Case): PyRun {
  pyRuns ??= py(PY_RUN, CASES.map((k) => ({ init: INIT, opt: k.opt, kw: k.kw, groups: k.groups ?? null, grads: GRADS, at: MID }))) as PyRun[];
  return pyRuns[CASES.indexOf(c)]!;
}

for (const c of CASES) {
  test(`${c.name}: ${STEPS} steps match PyTorch (parameters and state dict)`, { skip: skipPy }, () => {
    const ref = runPy(c);
    const params = makeParams(INIT);
    const opt = makeOptimizer(c, params);
    for (const grads of GRADS) {
      setGrads(params, grads);
      opt.step();
    }
    params.forEach((p, i) => assertClose(toJ(p), ref.end.params[i]!, 1e-6, `${c.name} param ${i}`));
    assertSameTree(jsonify(opt.stateDict()), ref.end.sd, 1e-6, `${c.name} stateDict`);
    opt.dispose();
    for (const p of params) p.dispose();
  });

  test(`${c.name}: loadStateDict of PyTorch's mid-run state, then the remaining steps, matches PyTorch`, { skip: skipPy }, () => {
    const at = MID;
    const ref = runPy(c);
    const params = makeParams(ref.mid.params);
    const opt = makeOptimizer(c, params);
    // Different hyperparameters on our side: loading must bring back PyTorch's.
    for (const g of opt.paramGroups) g.lr = 123;
    const sd = tensorize(ref.mid.sd) as optim.OptimizerStateDict;
    opt.loadStateDict(sd);
    for (const grads of GRADS.slice(at)) {
      setGrads(params, grads);
      opt.step();
    }
    params.forEach((p, i) => assertClose(toJ(p), ref.end.params[i]!, 1e-6, `${c.name} param ${i} after load`));
    assertSameTree(jsonify(opt.stateDict()), ref.end.sd, 1e-6, `${c.name} stateDict after load`);
    opt.dispose();
    for (const p of params) p.dispose();
  });
}

test('our own stateDict round-trips through loadStateDict into a fresh optimizer', () => {
  const c = CASES[2]!;
  const a = makeParams(INIT);
  const b = makeParams(INIT);
  const oa = makeOptimizer(c, a);
  for (const grads of GRADS.slice(0, 3)) {
    setGrads(a, grads);
    oa.step();
  }
  torch.noGrad(() => b.forEach((p, i) => p.copy_(a[i]!)));
  const ob = makeOptimizer(c, b);
  ob.loadStateDict(oa.stateDict());
  for (const grads of GRADS.slice(3)) {
    setGrads(a, grads);
    oa.step();
    setGrads(b, grads);
    ob.step();
  }
  a.forEach((p, i) => assert.ok(p.equal(b[i]!), `param ${i}`));
  // Loaded state is a copy: the two optimizers share no tensors.
  const sa = oa.state.get(a[0]!)!;
  const sb = ob.state.get(b[0]!)!;
  assert.ok(!sa.exp_avg!.sharesStorageWith(sb.exp_avg!));
  oa.dispose();
  ob.dispose();
});

test('step(): parameters without a gradient are skipped and get no state', () => {
  const params = makeParams(INIT);
  const opt = new optim.Adam(params, { lr: 0.1 });
  const before = toJ(params[1]!);
  const g = toTensor(GRADS[0]![0]!);
  params[0]!.grad = g;
  g.dispose();
  opt.step();
  assert.deepEqual(toJ(params[1]!), before);
  assert.equal(opt.state.size, 1);
  assert.deepEqual(Object.keys(opt.stateDict().state), ['0']);
  opt.dispose();
});

test('step(closure) evaluates the closure with gradients on and returns its loss', () => {
  const w = torch.tensor([1, 2, 3], { dtype: 'float32', requiresGrad: true }).keep();
  const opt = new optim.SGD([w], { lr: 0.5 });
  const loss = torch.noGrad(() =>
    opt.step(() => {
      opt.zeroGrad();
      const l = w.mul(w).sum();
      l.backward();
      return l.item();
    }),
  );
  assert.equal(loss, 14);
  assert.deepEqual(Array.from(w.toTypedArray() as Float32Array), [0, 0, 0]);
});

test('zeroGrad: set to none by default, zeroed in place with false', () => {
  const [p] = makeParams([INIT[0]!]);
  const opt = new optim.SGD([p!], { lr: 0.1 });
  setGrads([p!], [GRADS[0]![0]!]);
  opt.zeroGrad(false);
  const g = p!.grad!;
  assert.equal(g.abs().sum().item(), 0);
  opt.zeroGrad();
  assert.equal(p!.grad, undefined);
  opt.zeroGrad(); // no gradient: nothing to do
});

test('parameter groups: defaults merged per group, lr readable and settable per group', () => {
  const params = makeParams(INIT);
  const opt = new optim.Adam([{ params: [params[0]!], lr: 0.5 }, { params: params.slice(1), weightDecay: 0.2 }], { lr: 0.01, betas: [0.85, 0.95] });
  assert.equal(opt.paramGroups.length, 2);
  assert.equal(opt.paramGroups[0]!.lr, 0.5);
  assert.equal(opt.paramGroups[0]!.weightDecay, 0);
  assert.equal(opt.paramGroups[1]!.lr, 0.01);
  assert.equal(opt.paramGroups[1]!.weightDecay, 0.2);
  assert.deepEqual(opt.paramGroups[1]!.betas, [0.85, 0.95]);
  opt.paramGroups[1]!.lr = 0.07;
  const sd = opt.stateDict();
  assert.deepEqual(sd.param_groups[0]!.params, [0]);
  assert.deepEqual(sd.param_groups[1]!.params, [1, 2]);
  assert.equal(sd.param_groups[1]!.lr, 0.07);
  assert.equal(sd.param_groups[1]!.weight_decay, 0.2);
  // A group's betas are its own array, not the defaults'.
  assert.notEqual(opt.paramGroups[0]!.betas, opt.paramGroups[1]!.betas);
  const extra = makeParams([INIT[0]!]);
  opt.addParamGroup({ params: extra[0]!, lr: 0.3 });
  assert.equal(opt.paramGroups[2]!.params.length, 1);
  assert.equal(opt.paramGroups[2]!.eps, 1e-8);
});

test('state tensors survive enclosing memory scopes', () => {
  const params = makeParams(INIT);
  const opt = new optim.Adam(params, { lr: 0.01 });
  torch.tidy(() => {
    setGrads(params, GRADS[0]!);
    opt.step();
  });
  for (const s of opt.state.values()) for (const t of Object.values(s)) assert.ok(t && !t.isDisposed);
  torch.tidy(() => {
    setGrads(params, GRADS[1]!);
    opt.step();
  });
  assert.equal(opt.state.get(params[0]!)!.step!.item(), 2);
  opt.dispose();
  assert.equal(opt.state.size, 0);
});

// ---- bad input ----

test('bad hyperparameters throw clear errors', () => {
  const params = makeParams(INIT);
  assert.throws(() => new optim.Adam(params, { lr: -1 }), /Adam: parameter group 0: invalid lr -1/);
  assert.throws(() => new optim.AdamW(params, { betas: [0.9, 1.0] }), /invalid beta parameter at index 1 1/);
  assert.throws(() => new optim.Adam(params, { eps: -1e-8 }), /invalid eps/);
  assert.throws(() => new optim.Adam(params, { weightDecay: -0.1 }), /invalid weight_decay/);
  assert.throws(() => new optim.Adam([{ params: [params[0]!], lr: -0.5 }]), /parameter group 0: invalid lr -0.5/);
  assert.throws(() => new optim.SGD(params, {}), /SGD: parameter group 0 has no lr/);
  assert.throws(() => new optim.SGD(params, { lr: 0.1, momentum: -0.9 }), /invalid momentum/);
  assert.throws(() => new optim.SGD(params, { lr: 0.1, nesterov: true }), /Nesterov momentum requires a momentum and zero dampening/);
  assert.throws(() => new optim.Adam(params, { fused: true }), /fused=true is not supported/);
  assert.throws(() => new optim.Adam([]), /empty parameter list/);
  assert.throws(() => new optim.Adam([params[0]!, params[0]!]), /same parameter more than once/);
  assert.throws(() => new optim.Adam([{ params: [params[0]!] }, { params: [params[0]!, params[1]!] }]), /more than one parameter group/);
  const nonLeaf = params[0]!.mul(2);
  assert.throws(() => new optim.Adam([nonLeaf]), /not a leaf tensor/);
  const dead = torch.zeros([2]);
  dead.dispose();
  assert.throws(() => new optim.Adam([dead]), /disposed tensor/);
});

test('loadStateDict rejects state dicts that do not fit, and changes nothing', () => {
  const params = makeParams(INIT);
  const opt = new optim.Adam(params, { lr: 0.01 });
  setGrads(params, GRADS[0]!);
  opt.step();
  const good = opt.stateDict();
  const other = new optim.Adam(params.slice(0, 2), { lr: 0.01 });
  const twoGroups = new optim.Adam([{ params: [params[0]!] }, { params: params.slice(1) }], { lr: 0.01 });

  assert.throws(() => twoGroups.loadStateDict(good), /the state dict has 1 parameter group\(s\), the optimizer has 2/);
  assert.throws(() => other.loadStateDict(good), /param_groups\[0\] has 3 parameter\(s\), the optimizer's group 0 has 2/);
  const wrongShape: optim.OptimizerStateDict = { ...good, state: { ...good.state, 1: { ...good.state[1]!, exp_avg: torch.zeros([8]) } } };
  assert.throws(() => opt.loadStateDict(wrongShape), /state\[1\]\.exp_avg has shape \[8\], its parameter has shape \[7\]/);
  const missing: optim.OptimizerStateDict = { ...good, state: { ...good.state, 0: { step: good.state[0]!.step!, exp_avg: good.state[0]!.exp_avg! } } };
  assert.throws(() => opt.loadStateDict(missing), /state\[0\] lacks 'exp_avg_sq'/);
  const unknownIndex: optim.OptimizerStateDict = { ...good, state: { ...good.state, 9: good.state[0]! } };
  assert.throws(() => opt.loadStateDict(unknownIndex), /no parameter group lists parameter index 9/);
  const badLr: optim.OptimizerStateDict = { ...good, param_groups: [{ ...good.param_groups[0]!, lr: -3 }] };
  assert.throws(() => opt.loadStateDict(badLr), /param_groups\[0\]: invalid lr -3/);
  assert.throws(() => opt.loadStateDict({} as optim.OptimizerStateDict), /expected \{ state/);
  const sgd = new optim.SGD(params, { lr: 0.1, momentum: 0.9 });
  assert.throws(() => sgd.loadStateDict(good), /unknown key 'step'/);
  // Nothing changed after the failures: same tensors, same lr.
  assert.equal(opt.paramGroups[0]!.lr, 0.01);
  assert.ok(opt.state.get(params[0]!)!.exp_avg === good.state[0]!.exp_avg);
  assert.ok(!good.state[0]!.exp_avg!.isDisposed);
});

// ---- schedulers ----

const PY_SCHED = `
import warnings
warnings.simplefilter('ignore')
def run(inp):
    p = [torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))]
    opt = torch.optim.SGD([{'params': [p[0]], 'lr': 0.1}, {'params': [p[1]], 'lr': 0.03}], lr=0.1, momentum=0.9)
    S = getattr(torch.optim.lr_scheduler, inp['name'])
    s = S(opt, **inp['kw'])
    lrs = [s.get_last_lr()]
    sds = {}
    for e in range(inp['epochs']):
        opt.step()
        s.step()
        lrs.append(s.get_last_lr())
        if e + 1 == inp['at']: sds = {'sched': J(s.state_dict()), 'opt': J(opt.state_dict())}
    return {'lrs': lrs, **sds}
print(json.dumps([run(c) for c in inp]))
`;

function schedOptimizer(): optim.SGD {
  const p = [torch.zeros([2]).requiresGrad_(true).keep(), torch.zeros([2]).requiresGrad_(true).keep()];
  return new optim.SGD([{ params: [p[0]!], lr: 0.1 }, { params: [p[1]!], lr: 0.03 }], { lr: 0.1, momentum: 0.9 });
}

const SCHEDS: { name: string; kw: Record<string, unknown>; make: (o: optim.SGD) => optim.LRScheduler; tol: number }[] = [
  { name: 'MultiStepLR', kw: { milestones: [25, 45], gamma: 0.2 }, make: (o) => new optim.MultiStepLR(o, [25, 45], 0.2), tol: 0 },
  { name: 'MultiStepLR', kw: { milestones: [10, 10, 30], gamma: 0.5 }, make: (o) => new optim.MultiStepLR(o, [10, 10, 30], 0.5), tol: 0 },
  // cos differs from C's in the last bit at most; the recursion keeps that tiny.
  { name: 'CosineAnnealingLR', kw: { T_max: 20, eta_min: 0.001 }, make: (o) => new optim.CosineAnnealingLR(o, 20, 0.001), tol: 1e-12 },
  { name: 'CosineAnnealingLR', kw: { T_max: 60 }, make: (o) => new optim.CosineAnnealingLR(o, 60), tol: 1e-12 },
];

function assertLrs(ours: number[][], theirs: number[][], tol: number, what: string): void {
  assert.equal(ours.length, theirs.length);
  ours.forEach((row, e) =>
    row.forEach((v, i) => {
      const t = theirs[e]![i]!;
      if (tol === 0) assert.equal(v, t, `${what}: epoch ${e} group ${i}`);
      else assert.ok(Math.abs(v - t) <= tol * Math.abs(t) + 1e-300, `${what}: epoch ${e} group ${i}: ${v} vs ${t}`);
    }),
  );
}

interface SchedRun {
  lrs: number[][];
  sched: Record<string, unknown>;
  opt: unknown;
}
let schedRuns: SchedRun[] | undefined;

for (const sc of SCHEDS) {
  test(`${sc.name} ${JSON.stringify(sc.kw)}: 60 epochs of lr and the state dict match PyTorch`, { skip: skipPy }, () => {
    schedRuns ??= py(PY_SCHED, SCHEDS.map((k) => ({ name: k.name, kw: k.kw, epochs: 60, at: 30 }))) as SchedRun[];
    const ref = schedRuns[SCHEDS.indexOf(sc)]!;
    const opt = schedOptimizer();
    const s = sc.make(opt);
    const lrs = [s.getLastLr()];
    let sd: optim.SchedulerStateDict | undefined;
    let osd: unknown;
    for (let e = 0; e < 60; e++) {
      s.step();
      lrs.push(s.getLastLr());
      if (e + 1 === 30) {
        sd = s.stateDict();
        osd = jsonify(opt.stateDict());
      }
    }
    assertLrs(lrs, ref.lrs, sc.tol, sc.name);
    // The state dict: same keys; numbers equal (within tol for lrs).
    assert.deepEqual(Object.keys(sd!).sort(), Object.keys(ref.sched).sort());
    for (const [k, v] of Object.entries(ref.sched)) {
      if (k === '_last_lr') assertLrs([sd![k]], [v as number[]], sc.tol, '_last_lr');
      else assert.deepEqual(sd![k], v, k);
    }
    // The optimizer's groups carry initial_lr like PyTorch's.
    const pg = (osd as { param_groups: Record<string, unknown>[] }).param_groups;
    const rpg = (ref.opt as { param_groups: Record<string, unknown>[] }).param_groups;
    pg.forEach((g, i) => {
      assert.deepEqual(Object.keys(g).sort(), Object.keys(rpg[i]!).sort());
      assert.equal(g.initial_lr, rpg[i]!.initial_lr);
    });

    // Resume from PyTorch's state at epoch 30: the rest of the sequence matches.
    const opt2 = schedOptimizer();
    opt2.loadStateDict(tensorize(ref.opt) as optim.OptimizerStateDict);
    const s2 = sc.make(opt2);
    s2.loadStateDict(ref.sched as optim.SchedulerStateDict);
    // Construction steps to epoch 0, which keeps the loaded lr; the loaded state then sets epoch 30.
    const rest = [s2.getLastLr()];
    for (let e = 30; e < 60; e++) {
      s2.step();
      rest.push(s2.getLastLr());
    }
    assertLrs(rest, ref.lrs.slice(30), sc.tol, `${sc.name} resumed`);
  });
}

test('MultiStepLR: the paper schedule (--schedule 25 45, x0.2) in closed form', () => {
  const opt = new optim.Adam([torch.zeros([1]).requiresGrad_(true).keep()], { lr: 0.0005 });
  const s = new optim.MultiStepLR(opt, [25, 45], 0.2);
  const seen: number[] = [];
  for (let e = 0; e < 60; e++) {
    seen.push(opt.paramGroups[0]!.lr);
    s.step();
  }
  for (let e = 0; e < 60; e++) {
    const expect = 0.0005 * (e < 25 ? 1 : e < 45 ? 0.2 : 0.2 * 0.2);
    assert.ok(Math.abs(seen[e]! - expect) <= 1e-15, `epoch ${e}`);
  }
  assert.deepEqual(s.stateDict().milestones, { 25: 1, 45: 1 });
});

test('schedulers: bad input throws clear errors', () => {
  const opt = schedOptimizer();
  assert.throws(() => new optim.MultiStepLR(opt, [25, -1], 0.2), /milestone -1 is not a non-negative integer/);
  assert.throws(() => new optim.CosineAnnealingLR(opt, 0), /tMax must be a positive number/);
  assert.throws(() => new optim.MultiStepLR(schedOptimizer(), [5], 0.1, 10), /param 'initial_lr' is not specified in paramGroups\[0\]/);
  const s = new optim.CosineAnnealingLR(opt, 10);
  assert.throws(() => s.loadStateDict({ ...s.stateDict(), base_lrs: [0.1] }), /'base_lrs' has 1 entries, the optimizer has 2 parameter group/);
  assert.throws(() => s.loadStateDict({ ...s.stateDict(), T_max: 'x' }), /'T_max' must be a positive number/);
});

// ---- memory ----

// The loop runs in a child process whose malloc serves these 256 KiB blocks with mmap
// (MALLOC_MMAP_THRESHOLD_), so resident memory goes down as soon as a tensor is freed: a leaked
// temporary shows as growth, and glibc's heap fragmentation (which can keep freed blocks resident)
// does not blur the measurement.
const MEMORY_CHILD = `
const torch = await import(process.env.AWTY_TORCH_URL);
const optim = await import(process.env.AWTY_OPTIM_URL);
const params = [0, 1, 2].map(() => torch.randn([256, 256]).requiresGrad_(true).keep());
const grads = params.map((p) => torch.randnLike(p).keep());
const opt = new optim.Adam(params, { lr: 1e-3, weightDecay: 1e-4, amsgrad: true });
const stepOnce = () => {
  params.forEach((p, i) => (p.grad = grads[i]));
  opt.step();
  opt.zeroGrad();
};
// Warm up (JIT, allocator pools), then measure 500 steps.
for (let i = 0; i < 200; i++) stepOnce();
const before = [...opt.state.values()].flatMap((s) => Object.values(s));
globalThis.gc();
const rssStart = process.memoryUsage().rss;
for (let i = 0; i < 500; i++) stepOnce();
globalThis.gc();
const rssEnd = process.memoryUsage().rss;
const after = [...opt.state.values()].flatMap((s) => Object.values(s));
const sameState = after.length === before.length && after.every((t, i) => t === before[i] && !t.isDisposed);
console.log(JSON.stringify({ rssStart, rssEnd, sameState, stateCount: after.length, step: opt.state.get(params[0]).step.item() }));
`;

test('500 Adam steps run at flat memory (temporaries freed, state reused)', () => {
  const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', MEMORY_CHILD], {
    encoding: 'utf8',
    env: {
      ...process.env,
      AWTY_TORCH_URL: new URL('../src/torch/index.js', import.meta.url).href,
      AWTY_OPTIM_URL: new URL('../src/optim/index.js', import.meta.url).href,
      AWTY_NUM_THREADS: '1',
      MALLOC_MMAP_THRESHOLD_: '65536',
    },
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { rssStart: number; rssEnd: number; sameState: boolean; stateCount: number; step: number };
  // One leaked 256x256 float32 tensor per step would add 500 * 256 KiB = 125 MiB.
  const growth = (out.rssEnd - out.rssStart) / 2 ** 20;
  assert.ok(growth < 8, `resident memory grew by ${growth.toFixed(1)} MiB over 500 steps`);
  // The same state tensors (step, exp_avg, exp_avg_sq, max_exp_avg_sq per parameter), alive, updated in place.
  assert.equal(out.stateCount, 12);
  assert.ok(out.sameState);
  assert.equal(out.step, 700);
});

test('Module.to() keeps parameter identity: an optimizer built before it still trains the model', () => {
  const model = new nn.Linear(3, 2);
  const before = model.parameters();
  const opt = new optim.SGD(before, { lr: 0.1 });
  const w0 = Array.from(model.weight.toTypedArray() as Float32Array);
  model.to('float64');
  const after = model.parameters();
  assert.equal(after.length, 2);
  after.forEach((p, i) => {
    assert.equal(p, before[i]);
    assert.equal(p.dtype, 'float64');
    assert.ok(p.requiresGrad && p.isLeaf);
  });
  torch.tidy(() => {
    opt.zeroGrad();
    model.forward(torch.ones([4, 3], { dtype: 'float64' })).sum().backward();
    opt.step();
  });
  // d(sum)/dW = 4 for every weight (four rows of ones): each moved by -0.1 * 4
  const w1 = Array.from(model.weight.toTypedArray() as Float64Array);
  w1.forEach((v, i) => assert.ok(Math.abs(v - (w0[i]! - 0.4)) < 1e-6, `weight ${i}: ${v} vs ${w0[i]! - 0.4}`));
  model.dispose();
});
