// Parity with PyTorch (Debian's torch 1.13 / torchvision 0.14): identical weights and inputs give the
// same logits (eval and train mode), running statistics, gradients and optimizer steps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../src/torch/index.js';
import * as models from '../src/models/index.js';
import * as optim from '../src/optim/index.js';
import { hasOracle, readDump, relErr, runPython, tmpdir } from './helpers/oracle.js';

const oracle = hasOracle();

const SCRIPT = `
import torchvision
import torch.nn.functional as F
torch.manual_seed(0)
m = getattr(torchvision.models, os.environ['ARCH'])(num_classes=10)
# Non-trivial BatchNorm state, so that eval mode differs from train mode.
for mod in m.modules():
    if isinstance(mod, torch.nn.BatchNorm2d):
        mod.running_mean.uniform_(-0.1, 0.1); mod.running_var.uniform_(0.5, 1.5)
        mod.weight.data.uniform_(0.5, 1.5); mod.bias.data.uniform_(-0.1, 0.1)
x = torch.randn(2, 3, 112, 112)
y = torch.randint(0, 10, (2,))
dump(m.state_dict(), 'init')
dump({'x': x, 'y': y}, 'input')
m.eval()
with torch.no_grad():
    ev = m(x)
m.train()
out = m(x)
loss = F.cross_entropy(out, y)
loss.backward()
dump({'eval': ev, 'train': out, 'loss': loss.reshape(1)}, 'outputs')
dump(dict(m.named_buffers()), 'buffers')
dump({k: p.grad for k, p in m.named_parameters()}, 'grads')
params = [p for p in m.parameters()]
start = [p.detach().clone() for p in params]
opt = torch.optim.Adam(params, lr=1e-3, weight_decay=1e-4)
opt.step(); opt.step()
dump({k: p for k, p in m.named_parameters()}, 'adam')
with torch.no_grad():
    for p, s in zip(params, start): p.copy_(s)
opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-4)
opt.step(); opt.step()
dump({k: p for k, p in m.named_parameters()}, 'sgd')
`;

for (const arch of ['resnet18', 'resnext50_32x4d'] as const) {
  test(`${arch} matches torchvision: logits, running stats, gradients, Adam and SGD steps`, { skip: !oracle && 'Debian python3-torch not installed' }, () => {
    const dir = tmpdir();
    runPython(SCRIPT, dir, { ARCH: arch });
    const init = readDump(dir, 'init');
    const input = readDump(dir, 'input');
    const outputs = readDump(dir, 'outputs');
    const buffers = readDump(dir, 'buffers');
    const grads = readDump(dir, 'grads');
    const adam = readDump(dir, 'adam');
    const sgd = readDump(dir, 'sgd');

    const model = models.create(arch, { numClasses: 10 });
    model.loadStateDict(init);
    const x = input.x!;
    const y = input.y!;

    model.eval();
    const ev = torch.noGrad(() => model.forward(x));
    assert.ok(relErr(ev, outputs.eval!) < 1e-4, `eval logits rel err ${relErr(ev, outputs.eval!)}`);

    model.train();
    const out = model.forward(x);
    assert.ok(relErr(out, outputs.train!) < 1e-4, `train logits rel err ${relErr(out, outputs.train!)}`);
    const loss = torch.crossEntropy(out, y);
    assert.ok(Math.abs(loss.item() - outputs.loss!.item()) < 1e-4 * Math.abs(outputs.loss!.item()));
    loss.backward();

    for (const [k, b] of model.namedBuffers()) {
      const e = relErr(b, buffers[k]!);
      assert.ok(e < 1e-4, `buffer ${k} rel err ${e}`);
    }
    let checked = 0;
    for (const [k, p] of model.namedParameters()) {
      const e = relErr(p.grad!, grads[k]!);
      assert.ok(e < 1e-4, `grad of ${k} rel err ${e}`);
      checked++;
    }
    assert.equal(checked, Object.keys(grads).length);

    const params = model.parameters();
    const start = params.map((p) => p.detach().clone().keep());
    const restore = (): void => torch.noGrad(() => params.forEach((p, i) => p.copy_(start[i]!)));

    const a = new optim.Adam(params, { lr: 1e-3, weightDecay: 1e-4 });
    a.step();
    a.step();
    for (const [k, p] of model.namedParameters()) assert.ok(relErr(p, adam[k]!) < 1e-5, `Adam ${k} rel err ${relErr(p, adam[k]!)}`);

    restore();
    const s = new optim.SGD(params, { lr: 0.1, momentum: 0.9, weightDecay: 1e-4 });
    s.step();
    s.step();
    for (const [k, p] of model.namedParameters()) assert.ok(relErr(p, sgd[k]!) < 1e-5, `SGD ${k} rel err ${relErr(p, sgd[k]!)}`);
  });
}
