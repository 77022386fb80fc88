// Checkpoints between PyTorch 1.13 and awty's engine: a TC checkpoint (resnext50_32x4d, 1628-way head,
// DataParallel `module.` keys, Adam state, numpy acc1_list) loads bitwise and gives PyTorch's logits;
// awty's own checkpoint loads in PyTorch (strict); optimizer state resumes with the same numbers.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as torch from '../src/torch/index.js';
import { Tensor } from '../src/torch/index.js';
import * as nn from '../src/nn/index.js';
import * as optim from '../src/optim/index.js';
import * as models from '../src/models/index.js';
import * as io from '../src/io/index.js';

const PY = '/usr/bin/python3';
const pyCheck = spawnSync(PY, ['-c', 'import torch, torchvision, numpy'], { encoding: 'utf8' });
const skip = pyCheck.status === 0 ? false : `Debian's ${PY} with torch, torchvision and numpy is not available: ${pyCheck.stderr || pyCheck.error}`;

function python(script: string, args: string[] = []): string {
  const r = spawnSync(PY, ['-c', script, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`python failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const tensorSha = (t: Tensor): string => {
  const c = t.detach().contiguous();
  const h = sha(c.bytes());
  c.dispose();
  return h;
};
const f32 = (path: string): Float32Array => {
  const b = readFileSync(path);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

const GEN = String.raw`
import sys, json, hashlib, collections
import numpy as np, torch, torchvision
d = sys.argv[1]
torch.manual_seed(0)
INT = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
h = lambda t: hashlib.sha256(t.detach().contiguous().view(INT[t.element_size()]).numpy().tobytes()).hexdigest()
# a TC checkpoint as train_tc.py writes it
m = torchvision.models.resnext50_32x4d(num_classes=1628)
opt = torch.optim.Adam(m.parameters(), lr=0.0005)
for _ in range(2):
    x = torch.randn(2, 3, 64, 64); y = torch.randint(0, 1628, (2,))
    opt.zero_grad(); torch.nn.functional.cross_entropy(m(x), y).backward(); opt.step()
m.eval()
xe = torch.randn(2, 3, 64, 64)
with torch.no_grad(): logits = m(xe)
xe.numpy().tofile(d + '/x.bin'); logits.numpy().tofile(d + '/logits.bin')
sd = collections.OrderedDict(('module.' + k, v) for k, v in m.state_dict().items())
osd = opt.state_dict()
torch.save({'acc1_list': [np.float64(0.25), np.float64(1 / 3)], 'model_state_dict': sd, 'optimizer_state_dict': osd}, d + '/tc.tar')
man = {'model': {k: h(v) for k, v in sd.items()},
       'optim': {str(i): {k: h(v) for k, v in s.items()} for i, s in osd['state'].items()}}
# resume parity: 3 steps, save, 2 more steps
def small():
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
xs = torch.randn(5, 32, 8); ys = torch.randn(5, 32, 4)
xs.numpy().tofile(d + '/xs.bin'); ys.numpy().tofile(d + '/ys.bin')
for name, make in [('adam', lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.01)),
                   ('sgd', lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.001))]:
    net = small(); o = make(net.parameters())
    for i in range(5):
        if i == 3: torch.save({'model_state_dict': net.state_dict(), 'optimizer_state_dict': o.state_dict()}, d + '/' + name + '3.pt')
        o.zero_grad(); torch.nn.functional.mse_loss(net(xs[i]), ys[i]).backward(); o.step()
    torch.cat([p.detach().flatten() for p in net.parameters()]).numpy().tofile(d + '/' + name + '5.bin')
json.dump(man, open(d + '/manifest.json', 'w'))
`;

describe('checkpoints between PyTorch 1.13 and the engine', { skip }, () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'awty-io-engine-'));
    python(GEN, [dir]);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a TC checkpoint loads bitwise into resnext50_32x4d(n_out=1628) and gives PyTorch\'s logits; awty\'s save loads in torchvision strictly', async () => {
    const man = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { model: Record<string, string>; optim: Record<string, Record<string, string>> };
    const ckpt = (await io.load(join(dir, 'tc.tar'))) as { acc1_list: number[]; model_state_dict: Record<string, Tensor>; optimizer_state_dict: unknown };
    assert.deepEqual(ckpt.acc1_list, [0.25, 1 / 3]);
    const keys = Object.keys(ckpt.model_state_dict);
    assert.deepEqual(keys, Object.keys(man.model), 'same keys in the same order');
    for (const k of keys) assert.equal(tensorSha(ckpt.model_state_dict[k]!), man.model[k], `${k} bitwise`);
    const osd = io.optimizerStateFromPickle(ckpt.optimizer_state_dict);
    assert.equal(Object.keys(osd.state).length, Object.keys(man.optim).length);
    for (const [i, s] of Object.entries(man.optim)) {
      for (const [k, hsh] of Object.entries(s)) assert.equal(tensorSha(osd.state[Number(i)]![k] as Tensor), hsh, `state ${i}.${k} bitwise`);
    }

    const model = models.resnext50_32x4d({ numClasses: 1628 });
    const res = io.loadStateDictInto(model, ckpt);
    assert.deepEqual(res, { missingKeys: [], unexpectedKeys: [] });
    model.eval();
    const x = torch.fromTypedArray(f32(join(dir, 'x.bin')), [2, 3, 64, 64]);
    const got = torch.noGrad(() => model.forward(x)).toTypedArray() as Float32Array;
    const want = f32(join(dir, 'logits.bin'));
    assert.equal(got.length, want.length);
    let worst = 0;
    const scale = Math.max(...Array.from(want, Math.abs));
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / scale);
    assert.ok(worst < 1e-4, `logits within 1e-4 relative (worst ${worst})`);

    // the optimizer state goes into awty's Adam and back out, then PyTorch reads the whole checkpoint
    const adam = new optim.Adam(model.parameters(), { lr: 0.0005 });
    adam.loadStateDict(osd);
    const sd = io.modelStateDict(model);
    const expected: Record<string, string> = {};
    for (const [k, t] of Object.entries(sd)) expected[k] = tensorSha(t);
    await io.save({ acc1_list: ckpt.acc1_list, model_state_dict: sd, optimizer_state_dict: io.optimizerStateToPickle(adam.stateDict()) }, join(dir, 'awty.tar'));
    writeFileSync(join(dir, 'awty.json'), JSON.stringify(expected));
    // tensors viewing one storage, written once and read back as views (checked by PyTorch below)
    const base = torch.arange(0, 12, 1, { dtype: 'float64' }).reshape(3, 4);
    await io.save({ base, tr: base.t(), sl: base.slice(1, 1, 3), h: torch.ones([3], { dtype: 'bfloat16' }) }, join(dir, 'views.pt'));
    const out = python(String.raw`
import sys, json, hashlib, collections, torch, torchvision
d = sys.argv[1]
INT = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
h = lambda t: hashlib.sha256(t.detach().contiguous().view(INT[t.element_size()]).numpy().tobytes()).hexdigest()
c = torch.load(d + '/awty.tar'); ref = torch.load(d + '/tc.tar')
exp = json.load(open(d + '/awty.json'))
sd = c['model_state_dict']
assert type(sd) is collections.OrderedDict
assert {k: h(v) for k, v in sd.items()} == exp
for k, v in ref['model_state_dict'].items():
    assert torch.equal(sd[k[len('module.'):]], v), k
m = torchvision.models.resnext50_32x4d(num_classes=1628)
m.load_state_dict(sd, strict=True)
opt = torch.optim.Adam(m.parameters(), lr=0.0005)
opt.load_state_dict(c['optimizer_state_dict'])
a, b = c['optimizer_state_dict'], ref['optimizer_state_dict']
assert sorted(a['state']) == sorted(b['state'])
for i in b['state']:
    for k in b['state'][i]:
        assert torch.equal(a['state'][i][k], b['state'][i][k]), (i, k)
assert a['param_groups'][0]['params'] == b['param_groups'][0]['params']
assert tuple(a['param_groups'][0]['betas']) == b['param_groups'][0]['betas']
assert c['acc1_list'] == [0.25, 1 / 3]
x = torch.load(d + '/views.pt')
assert x['tr'].storage().data_ptr() == x['base'].storage().data_ptr() == x['sl'].storage().data_ptr()
assert x['tr'].stride() == (1, 4) and x['sl'].storage_offset() == 1 and x['sl'].stride() == (4, 1)
assert torch.equal(x['tr'], torch.arange(12, dtype=torch.float64).reshape(3, 4).t())
assert x['h'].dtype == torch.bfloat16 and x['h'].tolist() == [1.0, 1.0, 1.0]
print('ok')
`, [dir]);
    assert.equal(out.trim(), 'ok');
    io.disposeTree(ckpt);
    model.dispose();
  });

  for (const name of ['adam', 'sgd'] as const) {
    test(`resume parity (${name}): 3 steps in PyTorch, load, 2 steps in awty equal 5 steps in PyTorch`, async () => {
      const ckpt = await io.load(join(dir, `${name}3.pt`));
      const net = new nn.Sequential(new nn.Linear(8, 16), new nn.ReLU(), new nn.Linear(16, 4));
      io.loadStateDictInto(net, ckpt);
      const opt = name === 'adam'
        ? new optim.Adam(net.parameters(), { lr: 0.01 })
        : new optim.SGD(net.parameters(), { lr: 0.05, momentum: 0.9 });
      opt.loadStateDict(io.optimizerStateFromPickle((ckpt as { optimizer_state_dict: unknown }).optimizer_state_dict));
      const xs = f32(join(dir, 'xs.bin'));
      const ys = f32(join(dir, 'ys.bin'));
      for (const i of [3, 4]) {
        const x = torch.fromTypedArray(xs.slice(i * 256, (i + 1) * 256), [32, 8]);
        const y = torch.fromTypedArray(ys.slice(i * 128, (i + 1) * 128), [32, 4]);
        opt.zeroGrad();
        nn.functional.mseLoss(net.forward(x), y).backward();
        opt.step();
      }
      const got = net.parameters().flatMap((p) => Array.from(p.detach().toTypedArray() as Float32Array));
      const want = f32(join(dir, `${name}5.bin`));
      assert.equal(got.length, want.length);
      for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-5 * Math.max(1, Math.abs(want[i]!)), `param ${i}: ${got[i]} vs ${want[i]}`);
      if (name === 'adam') assert.deepEqual((opt.paramGroups[0] as unknown as { betas: number[] }).betas, [0.8, 0.99], 'hyperparameters come from the checkpoint');
    });
  }

  test('views sharing a storage load as views of one tensor; shape mismatches list every key', async () => {
    const back = (await io.load(join(dir, 'views.pt'))) as Record<string, Tensor>;
    assert.ok(back.tr!.sharesStorageWith(back.base!) && back.sl!.sharesStorageWith(back.base!));
    assert.deepEqual(back.sl!.stride(), [4, 1]);
    assert.equal(back.sl!.storageOffset(), 1);
    assert.deepEqual(back.tr!.tolist(), [[0, 4, 8], [1, 5, 9], [2, 6, 10], [3, 7, 11]]);
    back.base!.fill_(7);
    assert.deepEqual(back.sl!.tolist(), [[7, 7], [7, 7], [7, 7]], 'one storage in memory');

    const ckpt = await io.load(join(dir, 'adam3.pt'));
    const wrong = new nn.Sequential(new nn.Linear(8, 16), new nn.ReLU(), new nn.Linear(16, 5));
    assert.throws(() => io.loadStateDictInto(wrong, ckpt), (e: Error) => {
      assert.ok(e instanceof nn.StateDictError);
      assert.match(e.message, /2\.weight: checkpoint has \[4, 16\], model has \[5, 16\]/);
      assert.match(e.message, /2\.bias: checkpoint has \[4\], model has \[5\]/);
      return true;
    });
    io.disposeTree(ckpt);
  });

  test('safetensors from the engine round-trip, and the bytes follow the format', async () => {
    const a = torch.randn([4, 5]);
    const b = torch.arange(0, 6, 1, { dtype: 'int64' }).reshape(2, 3).t();
    const p = join(dir, 'm.safetensors');
    await io.saveSafetensors({ a, b }, p, { format: 'pt' });
    const back = await io.loadSafetensors(p);
    assert.equal(tensorSha(back.a!), tensorSha(a));
    assert.deepEqual(back.b!.tolist(), [[0, 3], [1, 4], [2, 5]]);
    const out = python(String.raw`
import sys, json, struct, numpy as np
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]; hdr = json.loads(raw[8:8 + n])
assert hdr['__metadata__'] == {'format': 'pt'} and hdr['b']['dtype'] == 'I64'
s, e = hdr['b']['data_offsets']
print(np.frombuffer(raw[8 + n + s: 8 + n + e], dtype='<i8').reshape(hdr['b']['shape']).tolist())
`, [p]);
    assert.equal(out.trim(), '[[0, 3], [1, 4], [2, 5]]');
  });
});
