// Memory formats: channels_last layouts, the *Like creators preserving strides as PyTorch's
// preserve_format, Module.to({ memoryFormat }), and a channels_last resnet's forward, backward and
// Adam step against PyTorch's on the same weights and inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as torch from '../src/torch/index.js';
import * as models from '../src/models/index.js';
import * as optim from '../src/optim/index.js';
import type { Module } from '../src/nn/index.js';
import { hasOracle, readDump, relErr, runPython, tmpdir } from './helpers/oracle.js';

const oracle = hasOracle();

test('contiguous(channelsLast), isContiguous, suggestMemoryFormat and to({ memoryFormat }) lay out NHWC as PyTorch', () => {
  torch.tidy(() => {
    const x = torch.randn(2, 3, 4, 5);
    assert.deepEqual(x.stride(), [60, 20, 5, 1]);
    assert.equal(x.suggestMemoryFormat(), 'contiguousFormat');
    const y = x.contiguous(torch.channelsLast);
    // PyTorch: torch.randn(2,3,4,5).contiguous(memory_format=torch.channels_last).stride() == (60, 1, 15, 3)
    assert.deepEqual(y.stride(), [60, 1, 15, 3]);
    assert.equal(y.isContiguous(), false);
    assert.equal(y.isContiguous('channelsLast'), true);
    assert.equal(y.suggestMemoryFormat(), 'channelsLast');
    assert.ok(y.equal(x), 'same values in another layout');
    const z = y.contiguous(torch.contiguousFormat);
    assert.deepEqual(z.stride(), [60, 20, 5, 1]);
    const t = x.to({ memoryFormat: 'channelsLast' });
    assert.deepEqual(t.stride(), [60, 1, 15, 3]);
    const d = x.to({ dtype: 'float64', memoryFormat: 'channelsLast' });
    assert.equal(d.dtype, 'float64');
    assert.deepEqual(d.stride(), [60, 1, 15, 3]);
    assert.throws(() => x.contiguous('nhwc' as torch.MemoryFormat), /memory format must be one of/);
    assert.throws(() => x.contiguous('preserveFormat'), /preserve_format/);
    // channels_last needs 4 dimensions, as in libtorch
    assert.throws(() => torch.randn(3, 4).contiguous('channelsLast'), /contiguousAs.*\[3, 4\]/s);
  });
});

test('zerosLike, emptyLike, onesLike, fullLike keep a channels_last input\'s strides (preserve_format) unless told', () => {
  torch.tidy(() => {
    const y = torch.randn(2, 3, 4, 5).contiguous('channelsLast');
    for (const t of [torch.zerosLike(y), torch.emptyLike(y), torch.onesLike(y), torch.fullLike(y, 7)]) assert.deepEqual(t.stride(), [60, 1, 15, 3]);
    assert.equal(torch.zerosLike(y).sum().item(), 0);
    assert.equal(torch.onesLike(y).sum().item(), 120);
    assert.equal(torch.fullLike(y, 7).mean().item(), 7);
    assert.deepEqual(torch.zerosLike(y, { memoryFormat: 'contiguousFormat' }).stride(), [60, 20, 5, 1]);
    assert.deepEqual(torch.zerosLike(torch.randn(2, 3, 4, 5), { memoryFormat: 'channelsLast' }).stride(), [60, 1, 15, 3]);
    const d = torch.zerosLike(y, { dtype: 'float64', requiresGrad: true });
    assert.equal(d.dtype, 'float64');
    assert.equal(d.requiresGrad, true);
    // a permuted (non-dense-in-any-format) view still gets the same permutation of strides, as PyTorch's preserve_format
    const p = torch.randn(4, 5, 6).permute(2, 0, 1);
    assert.deepEqual(torch.zerosLike(p).stride(), p.stride());
  });
});

test('Module.to({ memoryFormat }) converts 4-d weights only, in place (an optimizer built before still holds them)', () => {
  const m = models.create('resnet18', { numClasses: 4 });
  const convW = m.getModule('conv1')!.getParameter('weight')!;
  const fcW = m.getModule('fc')!.getParameter('weight')!;
  const before = convW.detach().clone().keep();
  const opt = new optim.SGD(m.parameters(), { lr: 0.1 });
  m.to({ memoryFormat: torch.channelsLast });
  assert.equal(m.getModule('conv1')!.getParameter('weight'), convW, 'same parameter object');
  assert.equal(convW.isContiguous('channelsLast'), true);
  assert.equal(convW.isContiguous(), false);
  assert.ok(convW.equal(before));
  assert.equal(fcW.isContiguous(), true, '2-d weights unchanged');
  assert.equal(opt.paramGroups[0]!.params.includes(convW), true);
  assert.throws(() => m.to({ memoryFormat: 'nchw' as torch.MemoryFormat }), /memoryFormat must be one of/);
  m.to({ memoryFormat: 'contiguousFormat' });
  assert.equal(convW.isContiguous(), true);
  m.dispose();
  before.dispose();
});

const PARITY = `
import torchvision
import torch.nn.functional as F
torch.manual_seed(0)
m = torchvision.models.resnet18(num_classes=10)
for mod in m.modules():
    if isinstance(mod, torch.nn.BatchNorm2d):
        mod.running_mean.uniform_(-0.1, 0.1); mod.running_var.uniform_(0.5, 1.5)
        mod.weight.data.uniform_(0.5, 1.5); mod.bias.data.uniform_(-0.1, 0.1)
x = torch.randn(4, 3, 64, 64)
y = torch.randint(0, 10, (4,))
dump(m.state_dict(), 'init')
dump({'x': x, 'y': y}, 'input')
m = m.to(memory_format=torch.channels_last)
xc = x.contiguous(memory_format=torch.channels_last)
m.eval()
with torch.no_grad():
    ev = m(xc)
    feat = m.layer1(m.maxpool(m.relu(m.bn1(m.conv1(xc)))))
m.train()
out = m(xc)
loss = F.cross_entropy(out, y)
loss.backward()
dump({'eval': ev, 'train': out, 'loss': loss.reshape(1)}, 'outputs')
dump(dict(m.named_buffers()), 'buffers')
dump({k: p.grad for k, p in m.named_parameters()}, 'grads')
opt = torch.optim.Adam(m.parameters(), lr=1e-3, weight_decay=1e-4)
opt.step()
dump({k: p for k, p in m.named_parameters()}, 'adam')
json.dump({'feat_cl': feat.is_contiguous(memory_format=torch.channels_last), 'feat_stride': list(feat.stride()),
           'grad_cl': m.conv1.weight.grad.is_contiguous(memory_format=torch.channels_last),
           'exp_avg_stride': list(opt.state[m.conv1.weight]['exp_avg'].stride())}, open(os.path.join(OUT, 'layout.json'), 'w'))
`;

test('channels_last resnet18: eval and train logits, running stats, gradients and an Adam step match PyTorch channels_last', { skip: !oracle && 'Debian python3-torch not installed' }, () => {
  const dir = tmpdir();
  runPython(PARITY, dir);
  const init = readDump(dir, 'init');
  const input = readDump(dir, 'input');
  const outputs = readDump(dir, 'outputs');
  const buffers = readDump(dir, 'buffers');
  const grads = readDump(dir, 'grads');
  const adam = readDump(dir, 'adam');
  const layout = JSON.parse(readFileSync(path.join(dir, 'layout.json'), 'utf8')) as { feat_cl: boolean; feat_stride: number[]; grad_cl: boolean; exp_avg_stride: number[] };

  const model = models.create('resnet18', { numClasses: 10 });
  model.loadStateDict(init);
  model.to({ memoryFormat: torch.channelsLast });
  const x = input.x!.contiguous(torch.channelsLast);
  const m = (n: string): Module => model.getModule(n)!;
  model.eval();
  const [ev, featStride, featCl] = torch.noGrad(() => {
    const f = m('layer1').forward(m('maxpool').forward(m('relu').forward(m('bn1').forward(m('conv1').forward(x)))));
    return [model.forward(x), f.stride(), f.isContiguous('channelsLast')] as const;
  });
  // the layout flows through the network as in PyTorch (oneDNN convolutions keep NHWC)
  assert.equal(featCl, layout.feat_cl);
  assert.equal(featCl, true);
  assert.deepEqual(featStride, layout.feat_stride);
  // float32 on both sides through the same libtorch kernels: differences are reduction order only
  assert.ok(relErr(ev, outputs.eval!) < 1e-4, `eval logits rel err ${relErr(ev, outputs.eval!)}`);
  model.train();
  const out = model.forward(x);
  assert.ok(relErr(out, outputs.train!) < 1e-4, `train logits rel err ${relErr(out, outputs.train!)}`);
  const loss = torch.crossEntropy(out, input.y!);
  assert.ok(Math.abs(loss.item() - outputs.loss!.item()) < 1e-4 * Math.abs(outputs.loss!.item()));
  loss.backward();
  for (const [k, b] of model.namedBuffers()) assert.ok(relErr(b, buffers[k]!) < 1e-4, `buffer ${k} rel err ${relErr(b, buffers[k]!)}`);
  let checked = 0;
  for (const [k, p] of model.namedParameters()) {
    assert.ok(relErr(p.grad!, grads[k]!) < 1e-4, `grad of ${k} rel err ${relErr(p.grad!, grads[k]!)}`);
    checked++;
  }
  assert.equal(checked, Object.keys(grads).length);
  const conv1 = m('conv1').getParameter('weight')!;
  assert.equal(conv1.grad!.isContiguous('channelsLast'), layout.grad_cl);
  const opt = new optim.Adam(model.parameters(), { lr: 1e-3, weightDecay: 1e-4 });
  opt.step();
  // Adam's moments are zerosLike(param): channels_last like PyTorch's torch.zeros_like(p, memory_format=torch.preserve_format)
  assert.deepEqual((opt.state.get(conv1)!.exp_avg as torch.Tensor).stride(), layout.exp_avg_stride);
  for (const [k, p] of model.namedParameters()) assert.ok(relErr(p, adam[k]!) < 1e-5, `Adam ${k} rel err ${relErr(p, adam[k]!)}`);
  assert.equal(conv1.isContiguous('channelsLast'), true, 'the step keeps the layout');
  opt.dispose();
  model.dispose();
});
