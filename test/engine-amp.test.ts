// Autocast (torch.autocast) and gradient scaling (GradScaler): the thread's autocast state, a resnet's
// bfloat16 autocast forward and backward against torch.autocast's on the same weights, and
// GradScaler's bookkeeping against PyTorch's class. CUDA checks run where CUDA is available.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as torch from '../src/torch/index.js';
import * as models from '../src/models/index.js';
import * as nn from '../src/nn/index.js';
import * as optim from '../src/optim/index.js';
import { hasOracle, readDump, relErr, runPython, tmpdir, writeDump } from './helpers/oracle.js';

const oracle = hasOracle();
const cuda = torch.cuda.isAvailable();

test('autocast sets the thread\'s CPU autocast state for the callback only, also when it throws, and nests', () => {
  const off = torch.autocastState();
  assert.equal(off.cpuEnabled, false);
  const inside = torch.autocast('cpu', { dtype: 'bfloat16' }, () => torch.autocastState());
  assert.equal(inside.cpuEnabled, true);
  assert.equal(inside.cpuDtype, 'bfloat16');
  assert.equal(torch.isAutocastCpuEnabled(), false);
  assert.throws(() => torch.autocast('cpu', {}, () => { throw new Error('boom'); }), /boom/);
  assert.deepEqual(torch.autocastState(), off);
  // a nested enabled: false region runs in float32
  const dtypes = torch.tidy(() => {
    const x = torch.randn(2, 8);
    const w = torch.randn(4, 8);
    return torch.autocast('cpu', {}, () => [torch.linear(x, w).dtype, torch.autocast('cpu', { enabled: false }, () => torch.linear(x, w).dtype), torch.linear(x, w).dtype]);
  });
  assert.deepEqual(dtypes, ['bfloat16', 'float32', 'bfloat16']);
  assert.equal(torch.tidy(() => torch.linear(torch.randn(2, 8), torch.randn(4, 8)).dtype), 'float32', 'off again afterwards');
  assert.throws(() => torch.autocast('cpu', { dtype: 'float16' }, () => 0), /CPU autocast supports only bfloat16/);
  assert.throws(() => torch.autocast('tpu' as 'cpu', {}, () => 0), /deviceType must be 'cpu' or 'cuda'/);
  assert.throws(() => torch.autocast('cpu', {}, (async () => 0) as () => unknown), /Promise/);
});

const AUTOCAST = `
import torchvision
import torch.nn.functional as F
torch.manual_seed(0)
m = torchvision.models.resnet18(num_classes=10)
x = torch.randn(4, 3, 64, 64)
y = torch.randint(0, 10, (4,))
dump(m.state_dict(), 'init')
dump({'x': x, 'y': y}, 'input')
m.train()
with torch.autocast('cpu', dtype=torch.bfloat16):
    feat = m.conv1(x)
    out = m(x)
    loss = F.cross_entropy(out, y)
loss.backward()
dump({'train': out.float(), 'loss': loss.float().reshape(1)}, 'outputs')
dump({k: p.grad for k, p in m.named_parameters()}, 'grads')
dump(dict(m.named_buffers()), 'buffers')
json.dump({'feat': str(feat.dtype), 'out': str(out.dtype), 'loss': str(loss.dtype), 'grad': str(m.conv1.weight.grad.dtype)}, open(os.path.join(OUT, 'dtypes.json'), 'w'))
`;

test('bfloat16 autocast resnet18: output dtypes, logits, loss, gradients and running stats match torch.autocast', { skip: !oracle && 'Debian python3-torch not installed' }, () => {
  const dir = tmpdir();
  runPython(AUTOCAST, dir);
  const init = readDump(dir, 'init');
  const input = readDump(dir, 'input');
  const outputs = readDump(dir, 'outputs');
  const grads = readDump(dir, 'grads');
  const buffers = readDump(dir, 'buffers');
  const dtypes = JSON.parse(readFileSync(path.join(dir, 'dtypes.json'), 'utf8')) as Record<string, string>;
  const model = models.create('resnet18', { numClasses: 10 });
  model.loadStateDict(init);
  const fp32 = models.create('resnet18', { numClasses: 10 });
  fp32.loadStateDict(init);
  model.train();
  fp32.train();
  const x = input.x!;
  const y = input.y!;
  const [feat, out, loss] = torch.autocast('cpu', { dtype: 'bfloat16' }, () => {
    const f = model.getModule('conv1')!.forward(x);
    const o = model.forward(x);
    return [f, o, torch.crossEntropy(o, y)] as const;
  });
  const py = (s: string): string => s.replace('torch.', '');
  assert.equal(feat.dtype, py(dtypes.feat!));
  assert.equal(feat.dtype, 'bfloat16');
  assert.equal(out.dtype, py(dtypes.out!));
  assert.equal(loss.dtype, py(dtypes.loss!));
  loss.backward();
  const ref = fp32.forward(x);
  // The same libtorch kernels run on both sides in bfloat16 (8 significant bits, unit roundoff
  // 2^-9 = 2e-3); at equal thread counts the results came out bit-identical (rel err 0 at 1 and 2
  // threads). Summation order can differ with the split of work, and bfloat16 rounding turns that
  // into one-ulp flips of intermediates: 1e-2 (about 5 ulps, norm-wise) allows for it, while
  // autocast against float32 differs by 2.8e-2 here (checked > 1e-3, so the region is not a no-op).
  const e = relErr(out.float(), outputs.train!);
  assert.ok(e < 1e-2, `autocast logits rel err ${e}`);
  assert.ok(relErr(out.float(), ref) > 1e-3, `autocast logits equal float32 ones (rel err ${relErr(out.float(), ref)}): autocast did nothing`);
  assert.ok(Math.abs(loss.item() - outputs.loss!.item()) < 1e-2 * Math.abs(outputs.loss!.item()));
  let checked = 0;
  for (const [k, p] of model.namedParameters()) {
    assert.equal(p.grad!.dtype, py(dtypes.grad!), `grad of ${k} is float32 (parameters stay float32)`);
    // gradients pass back through ~20 bfloat16 layers; 3e-2 is ~15 ulps of bfloat16
    const g = relErr(p.grad!, grads[k]!);
    assert.ok(g < 3e-2, `grad of ${k} rel err ${g}`);
    checked++;
  }
  assert.equal(checked, Object.keys(grads).length);
  for (const [k, b] of model.namedBuffers()) if (b.dtype === 'float32') assert.ok(relErr(b, buffers[k]!) < 1e-2, `buffer ${k} rel err ${relErr(b, buffers[k]!)}`);
  model.dispose();
  fp32.dispose();
});

// PyTorch 1.13's GradScaler refuses CPU tensors and its two kernels exist for CUDA only. The oracle
// below runs PyTorch's GradScaler class itself (scale bookkeeping, unscale_, skipped steps, update,
// state_dict) on CPU, with the two kernels written out in Python as ATen's AmpKernels.cu computes them.
const SCALER = `
import torch.cuda.amp.grad_scaler as gs
class Rep(object):
    def __init__(self, master): self.master = master; self._per_device_tensors = {}
    def get(self, device):
        r = self._per_device_tensors.get(device)
        if r is None: r = self.master.to(device=device, copy=True); self._per_device_tensors[device] = r
        return r
gs._MultiDeviceReplicator = Rep
gs.amp_definitely_not_available = lambda: False
def unscale(grads, found_inf, inv_scale):
    for g in grads:
        if not torch.isfinite(g).all(): found_inf.fill_(1.0)
        g.mul_(inv_scale.item())
def update_scale(scale, tracker, found_inf, growth, backoff, interval):
    if found_inf.item():
        scale.fill_(float(torch.tensor(scale.item() * backoff, dtype=torch.float32)))
        tracker.fill_(0)
    else:
        s = tracker.item() + 1
        if s == interval:
            ns = torch.tensor(scale.item() * growth, dtype=torch.float32)
            if torch.isfinite(ns): scale.fill_(float(ns))
            tracker.fill_(0)
        else:
            tracker.fill_(s)
    return scale
torch._amp_foreach_non_finite_check_and_unscale_ = unscale
torch._amp_update_scale_ = update_scale
inp = load('input')
lin = torch.nn.Linear(4, 3)
with torch.no_grad():
    lin.weight.copy_(inp['w']); lin.bias.copy_(inp['b'])
opt = torch.optim.SGD(lin.parameters(), lr=0.1, momentum=0.9)
scaler = torch.cuda.amp.GradScaler(init_scale=2.0**10, growth_factor=4.0, backoff_factor=0.25, growth_interval=3)
scaler._lazy_init_scale_growth_tracker(torch.device('cpu'))
bad = [2, 5, 6]
scales, trackers, steps = [], [], []
for i in range(10):
    opt.zero_grad()
    loss = lin(inp['x']).pow(2).mean() * (float('inf') if i in bad else 1.0)
    (loss * scaler._scale).backward()
    if i == 4:
        scaler.unscale_(opt)
    before = lin.weight.detach().clone()
    scaler.step(opt)
    steps.append(0 if torch.equal(before, lin.weight) else 1)
    scaler.update()
    scales.append(scaler.get_scale()); trackers.append(scaler._get_growth_tracker())
dump({'w': lin.weight, 'b': lin.bias}, 'after')
json.dump({'scales': scales, 'trackers': trackers, 'steps': steps, 'state': scaler.state_dict()}, open(os.path.join(OUT, 'scaler.json'), 'w'))
`;

test('GradScaler: scale, unscale_, skipped steps, growth and backoff, state dict match PyTorch\'s GradScaler (CPU)', { skip: !oracle && 'Debian python3-torch not installed' }, () => {
  const dir = tmpdir();
  const x = torch.randn(5, 4).keep();
  const lin = new nn.Linear(4, 3);
  writeDump(dir, 'input', { x, w: lin.weight, b: lin.bias! });
  runPython(SCALER, dir);
  const want = JSON.parse(readFileSync(path.join(dir, 'scaler.json'), 'utf8')) as { scales: number[]; trackers: number[]; steps: number[]; state: Record<string, number> };
  const after = readDump(dir, 'after');
  const opt = new optim.SGD(lin.parameters(), { lr: 0.1, momentum: 0.9 });
  const scaler = new optim.GradScaler({ initScale: 2 ** 10, growthFactor: 4, backoffFactor: 0.25, growthInterval: 3 });
  const scales: number[] = [];
  const trackers: number[] = [];
  const steps: number[] = [];
  for (let i = 0; i < 10; i++) {
    torch.tidy(() => {
      opt.zeroGrad();
      const loss = lin.forward(x).pow(2).mean().mul([2, 5, 6].includes(i) ? Infinity : 1);
      scaler.scale(loss).backward();
      if (i === 4) scaler.unscale_(opt);
      steps.push(scaler.step(opt) ? 1 : 0);
      scaler.update();
    });
    scales.push(scaler.getScale());
    trackers.push(scaler.getGrowthTracker());
  }
  assert.deepEqual(steps, want.steps);
  assert.deepEqual(steps, [1, 1, 0, 1, 1, 0, 0, 1, 1, 1]);
  assert.deepEqual(scales, want.scales);
  assert.deepEqual(trackers, want.trackers);
  assert.deepEqual(scaler.stateDict(), want.state);
  // unscaled gradients drive the same SGD steps (float32 arithmetic on both sides)
  assert.ok(relErr(lin.weight, after.w!) < 1e-6, `weights rel err ${relErr(lin.weight, after.w!)}`);
  assert.ok(relErr(lin.bias!, after.b!) < 1e-6);

  // a second scaler continues from the state dict
  const other = new optim.GradScaler();
  other.loadStateDict(JSON.parse(JSON.stringify(scaler.stateDict())) as Record<string, unknown>);
  assert.deepEqual(other.stateDict(), scaler.stateDict());
  assert.throws(() => other.loadStateDict({}), /empty/);
  assert.throws(() => other.loadStateDict({ scale: 'big' }), /'scale' must be a finite number/);
  // wrong order of calls, as PyTorch
  assert.throws(() => new optim.GradScaler().step(opt), /scale is not set/);
  torch.tidy(() => {
    opt.zeroGrad();
    scaler.scale(lin.forward(x).sum()).backward();
    scaler.unscale_(opt);
    assert.throws(() => scaler.unscale_(opt), /already been called/);
    scaler.step(opt);
    assert.throws(() => scaler.step(opt), /already been called since the last update/);
    scaler.update(8);
  });
  assert.equal(scaler.getScale(), 8);
  assert.deepEqual(new optim.GradScaler({ enabled: false }).stateDict(), {});
  assert.throws(() => new optim.GradScaler({ growthFactor: 1 }), /growth factor must be > 1/);
  scaler.dispose();
  other.dispose();
  opt.dispose();
  lin.dispose();
  x.dispose();
});

test('updateScale: the scale stops growing at float32\'s range (as _amp_update_scale_), backs off, counts', () => {
  assert.deepEqual(optim.updateScale(2 ** 127, 1, 0, 2, 0.5, 2), [2 ** 127, 0]);
  assert.deepEqual(optim.updateScale(1024, 1, 0, 2, 0.5, 2), [2048, 0]);
  assert.deepEqual(optim.updateScale(1024, 0, 0, 2, 0.5, 2), [1024, 1]);
  assert.deepEqual(optim.updateScale(1024, 1, 1, 2, 0.5, 2), [512, 0]);
  assert.deepEqual(optim.updateScale(1, 0, 1, 2, 0.1, 2), [Math.fround(0.1), 0]);
});

test('CUDA: float16 autocast and GradScaler\'s kernels agree with the CPU arithmetic', { skip: !cuda && 'CUDA is not available' }, () => {
  torch.tidy(() => {
    const x = torch.randn(4, 8).cuda();
    const w = torch.randn(3, 8).cuda();
    assert.equal(torch.autocast('cuda', {}, () => torch.linear(x, w)).dtype, 'float16');
    assert.equal(torch.autocast('cuda', { dtype: 'bfloat16' }, () => torch.linear(x, w)).dtype, 'bfloat16');
    for (const dev of ['cpu', 'cuda'] as const) {
      const lin = new nn.Linear(8, 3);
      if (dev === 'cuda') lin.to('cuda');
      const opt = new optim.SGD(lin.parameters(), { lr: 0.1 });
      const scaler = new optim.GradScaler({ initScale: 2 ** 8, growthInterval: 2 });
      const seen: number[] = [];
      for (let i = 0; i < 5; i++) {
        opt.zeroGrad();
        const loss = lin.forward(x.to(dev)).sum().mul(i === 1 ? Infinity : 1);
        scaler.scale(loss).backward();
        scaler.step(opt);
        scaler.update();
        seen.push(scaler.getScale(), scaler.getGrowthTracker());
      }
      assert.deepEqual(seen, [256, 1, 128, 0, 128, 1, 256, 0, 256, 1], dev);
      scaler.dispose();
    }
  });
});
