// The native boundary: the addon exports exactly the typed functions of src/torch/native.ts (each
// registered where it is defined in native/src/*.cc), and its ownership rules: every op and module
// result is a new reference the caller may dispose (in-place and identity ones included), and
// `.grad` hands out one Tensor per gradient rather than a new handle per access.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../src/torch/index.js';
import * as nn from '../src/nn/index.js';
import * as optim from '../src/optim/index.js';
import { NATIVE_FUNCTIONS, native } from '../src/torch/native.js';

/** Reads `.grad` through a call, so that assertions on one read do not narrow the next. */
const gradOf = (t: torch.Tensor): torch.Tensor | undefined => t.grad;

test('the addon exports exactly the functions NativeFunctions types (and the handle class)', () => {
  const exported = Object.keys(native).filter((k) => k !== 'TensorHandle').sort();
  assert.deepEqual(exported, [...NATIVE_FUNCTIONS].sort());
  for (const k of NATIVE_FUNCTIONS) assert.equal(typeof native[k], 'function', k);
  assert.equal(typeof native.TensorHandle, 'function');
  // exports nothing in src/, test/ or bench/ called: gone from the addon
  for (const dead of ['rsub', 'erf', 'foreachZero_', 'useCount', 'storageUseCount', 'imageApply', 'imageOps', 'hasNCCL', 'storeSetTimeout']) {
    assert.equal(dead in native, false, dead);
  }
});

test('.grad: the same Tensor while the gradient is the same; set, cleared and disposed references handled', () => {
  const w = torch.tensor([1, 2, 3], { dtype: 'float32', requiresGrad: true }).keep();
  assert.equal(gradOf(w), undefined);
  w.mul(w).sum().backward();
  const g = gradOf(w)!;
  assert.equal(gradOf(w), g, 'no new handle per access');
  assert.deepEqual(g.tolist(), [2, 4, 6]);
  // a second backward accumulates into the same gradient tensor: still the same object, new values
  w.mul(3).sum().backward();
  assert.equal(gradOf(w), g);
  assert.deepEqual(g.tolist(), [5, 7, 9]);
  // a scope does not take the gradient away
  const inScope = torch.tidy(() => gradOf(w)!.sum().item());
  assert.equal(inScope, 21);
  assert.equal(g.isDisposed, false);
  assert.equal(gradOf(w), g);
  // the caller may dispose what it got: the next access hands out a live one for the same gradient
  g.dispose();
  const g2 = gradOf(w)!;
  assert.notEqual(g2, g);
  assert.deepEqual(g2.tolist(), [5, 7, 9]);
  assert.equal(gradOf(w), g2);
  // setting a gradient: a reference to the given tensor, which stays the caller's
  const mine = torch.tensor([7, 8, 9], { dtype: 'float32' });
  w.grad = mine;
  assert.equal(g2.isDisposed, true, 'the old gradient reference is released');
  mine.dispose();
  assert.deepEqual(gradOf(w)!.tolist(), [7, 8, 9]);
  w.grad = undefined;
  assert.equal(gradOf(w), undefined);
  w.dispose();
});

test('optimizer.zeroGrad(false) zeroes the gradient the parameter keeps handing out', () => {
  const w = torch.tensor([1, 2], { dtype: 'float32', requiresGrad: true }).keep();
  const opt = new optim.SGD([w], { lr: 0.1 });
  w.mul(w).sum().backward();
  const g = gradOf(w)!;
  opt.zeroGrad(false);
  assert.equal(gradOf(w), g);
  assert.equal(g.isDisposed, false);
  assert.deepEqual(g.tolist(), [0, 0]);
  opt.zeroGrad();
  assert.equal(gradOf(w), undefined);
  assert.equal(g.isDisposed, true);
  w.dispose();
});

test('in-place relu and identity layers return new references: disposing them keeps the input', () => {
  const x = torch.tensor([-1, 2, -3, 4], { dtype: 'float32' });
  const r = torch.relu(x, true);
  assert.notEqual(r, x);
  r.dispose();
  assert.deepEqual(x.tolist(), [0, 2, 0, 4], 'relu_ wrote the input');
  for (const m of [new nn.ReLU(true), new nn.Identity(), new nn.Sequential(), new nn.Sequential(new nn.ReLU(true), new nn.Identity())]) {
    const y = m.forward(x);
    assert.notEqual(y, x, m.constructor.name);
    assert.ok(y.sharesStorageWith(x));
    y.dispose();
    assert.equal(x.isDisposed, false, m.constructor.name);
    assert.deepEqual(x.tolist(), [0, 2, 0, 4]);
  }
  // chain frees every intermediate: only the result and the input stay alive
  const made: torch.Tensor[] = [];
  const spy = new (class extends nn.Module {
    forward(t: torch.Tensor): torch.Tensor {
      const y = t.add(1);
      made.push(y);
      return y;
    }
  })();
  const out = nn.chain(x, [spy, new nn.ReLU(true), spy, new nn.Identity()]);
  assert.deepEqual(out.tolist(), [2, 4, 2, 6]);
  assert.deepEqual(made.map((t) => t.isDisposed), [true, true]);
  out.dispose();
  x.dispose();
});

