// awty train-tc: end to end on tiny episode folders (solid colours, 32x32), checkpoints read by
// PyTorch, resume, class fraction, learning, flat memory and bad input.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import * as torch from '../src/torch/index.js';
import { main, TC_DEFAULTS, type TcOptions } from '../src/experiments/tc.js';
import { accuracy, AverageMeter, pyFloat, tcCheckpointName } from '../src/experiments/common.js';
import { hasOracle, oracleEnv, PYTHON, tmpdir } from './helpers/oracle.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = path.join(repo, 'dist', 'src', 'cli', 'main.js');
const COLOURS: [number, number, number][] = [[230, 20, 20], [20, 200, 40], [30, 40, 220], [240, 230, 30], [200, 30, 220]];
const EPISODES = 5;
const FRAMES = 4;

const tmp = tmpdir('awty-tc-');
const dataDir = path.join(tmp, 'data');
after(() => rmSync(tmp, { recursive: true, force: true }));

async function makeEpisodes(): Promise<void> {
  for (let c = 0; c < EPISODES; c++) {
    const d = path.join(dataDir, `class_${String(c).padStart(4, '0')}`);
    mkdirSync(d, { recursive: true });
    const [r, g, b] = COLOURS[c]!;
    for (let i = 0; i < FRAMES; i++) {
      // a little per-frame noise so frames differ, the colour still says the episode
      const px = Buffer.alloc(32 * 32 * 3);
      for (let k = 0; k < px.length; k += 3) {
        const n = ((k * 7919 + i * 104729) % 21) - 10;
        px[k] = Math.max(0, Math.min(255, r + n));
        px[k + 1] = Math.max(0, Math.min(255, g + n));
        px[k + 2] = Math.max(0, Math.min(255, b + n));
      }
      await sharp(px, { raw: { width: 32, height: 32, channels: 3 } }).jpeg({ quality: 95 }).toFile(path.join(d, `img_${String(i).padStart(4, '0')}.jpeg`));
    }
  }
}
const ready = makeEpisodes();

const SMALL = ['--model', 'resnet18', '--image-size', '32', '-b', '4', '-j', '0', '--threads', '2'];

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('node', [cli, 'train-tc', ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function opts(o: Partial<TcOptions>): TcOptions {
  return { ...TC_DEFAULTS, dataDirs: [dataDir], model: 'resnet18', nOut: EPISODES, batchSize: 4, workers: 0, imageSize: 32, threads: 2, log: () => undefined, ...o };
}

function python(code: string): string {
  const r = spawnSync(PYTHON, ['-c', code], { encoding: 'utf8', maxBuffer: 1 << 26, env: oracleEnv() });
  if (r.status !== 0) throw new Error(`python failed:\n${r.stderr}`);
  return r.stdout;
}

test('helpers: top-k accuracy, average meter, Python float names', () => {
  torch.tidy(() => {
    const out = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.15, 0.05], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]);
    const target = torch.tensor([1, 1, 0, 2], { dtype: 'int64' });
    const [a1, a2, a5] = accuracy(out, target, [1, 2, 5]);
    assert.equal(a1, 25);
    assert.equal(a2, 50);
    assert.equal(a5, 100); // k above the class count: every prediction set holds all classes
  });
  const m = new AverageMeter('Loss');
  m.update(2, 3);
  m.update(4, 1);
  assert.equal(m.avg, 2.5);
  assert.deepEqual([pyFloat(1), pyFloat(0.1), pyFloat(0.5), pyFloat(0.0001), pyFloat(0.00001)], ['1.0', '0.1', '0.5', '0.0001', '1e-05']);
  assert.equal(tcCheckpointName('S', 'resnet18', 0.1, 1, 3), 'TC_S_resnet18_0.1_1_epoch_3.tar');
});

const out1 = path.join(tmp, 'run1');
test('CLI: two epochs write the checkpoints under the original names', async () => {
  await ready;
  const r = run(['--data-dirs', dataDir, ...SMALL, '--n_out', String(EPISODES), '--epochs', '2', '-p', '2', '--augmentation', '--out', out1]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readdirSync(out1).sort(), [0, 1].map((e) => `TC_SAYAVAKEPICUT_resnet18_1.0_1_epoch_${e}.tar`));
  assert.match(r.stdout, /Epoch: \[0\]\[0\/5\] {2}Loss [\d.]+ \([\d.]+\) {2}Acc@1 .* Acc@5 .* img\/s {2}ETA \d+:\d\d:\d\d/);
  assert.match(r.stdout, /Epoch: \[1\]\[4\/5\]/);
  assert.match(r.stdout, /Epoch 1: loss [\d.]+ {2}Acc@1 [\d.]+ {2}Acc@5 [\d.]+/);
  assert.match(r.stdout, /augmentation off/);
});

test('PyTorch loads the checkpoint; torchvision resnet18 takes its weights without module.', { skip: !hasOracle() && 'no python3 with torch' }, () => {
  const file = path.join(out1, 'TC_SAYAVAKEPICUT_resnet18_1.0_1_epoch_1.tar');
  const res = python(`
import torch, torchvision, json
ck = torch.load(${JSON.stringify(file)}, map_location='cpu')
sd = ck['model_state_dict']
assert all(k.startswith('module.') for k in sd), 'keys without module.'
m = torchvision.models.resnet18(num_classes=${EPISODES})
m.load_state_dict({k[len('module.'):]: v for k, v in sd.items()})
opt = torch.optim.Adam(m.parameters(), lr=0.0005)
opt.load_state_dict(ck['optimizer_state_dict'])
steps = sorted({float(s['step']) for s in ck['optimizer_state_dict']['state'].values()})
print(json.dumps({'acc1': [float(a) for a in ck['acc1_list']], 'steps': steps, 'fc': list(sd['module.fc.weight'].shape), 'lr': opt.param_groups[0]['lr']}))
`);
  const o = JSON.parse(res) as { acc1: number[]; steps: number[]; fc: number[]; lr: number };
  assert.equal(o.acc1.length, 2);
  assert.deepEqual(o.steps, [10]); // 2 epochs x 5 batches
  assert.deepEqual(o.fc, [EPISODES, 512]);
  assert.equal(o.lr, 0.0005);
});

test('CLI: --resume from the epoch-0 checkpoint continues at epoch 1 with the optimizer step count', { skip: !hasOracle() && 'no python3 with torch' }, () => {
  const out2 = path.join(tmp, 'run2');
  const r = run(['--data-dirs', dataDir, ...SMALL, '--n_out', String(EPISODES), '--epochs', '2', '--augmentation', '--out', out2,
    '--resume', path.join(out1, 'TC_SAYAVAKEPICUT_resnet18_1.0_1_epoch_0.tar')]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /continuing at epoch 1 \(1 epoch accuracies saved\)/);
  assert.doesNotMatch(r.stdout, /Epoch: \[0\]/);
  assert.deepEqual(readdirSync(out2), ['TC_SAYAVAKEPICUT_resnet18_1.0_1_epoch_1.tar']);
  const res = python(`
import torch, json
a = torch.load(${JSON.stringify(path.join(out2, 'TC_SAYAVAKEPICUT_resnet18_1.0_1_epoch_1.tar'))})
b = torch.load(${JSON.stringify(path.join(out1, 'TC_SAYAVAKEPICUT_resnet18_1.0_1_epoch_1.tar'))})
st = lambda c: sorted({float(s['step']) for s in c['optimizer_state_dict']['state'].values()})
print(json.dumps({'resumed': st(a), 'straight': st(b), 'acc': [len(a['acc1_list']), len(b['acc1_list'])], 'acc0': [float(a['acc1_list'][0]), float(b['acc1_list'][0])]}))
`);
  const o = JSON.parse(res) as { resumed: number[]; straight: number[]; acc: number[]; acc0: number[] };
  assert.deepEqual(o.resumed, [10]);
  assert.deepEqual(o.resumed, o.straight);
  assert.deepEqual(o.acc, [2, 2]);
  assert.equal(o.acc0[0], o.acc0[1]);
});

test("resume accepts the original's checkpoints (module. keys, numpy accuracies, PyTorch's Adam state)", { skip: !hasOracle() && 'no python3 with torch' }, async () => {
  await ready;
  const file = path.join(tmp, 'orig', 'TC_SAYAVAKEPICUT_resnet18_1.0_1_epoch_2.tar');
  mkdirSync(path.dirname(file), { recursive: true });
  python(`
import torch, torchvision, numpy as np
torch.manual_seed(0)
m = torchvision.models.resnet18()
m.fc = torch.nn.Linear(512, ${EPISODES})
m = torch.nn.DataParallel(m)
opt = torch.optim.Adam(m.parameters(), lr=0.0005)
for _ in range(3):
    opt.zero_grad(); m(torch.randn(2, 3, 32, 32)).sum().backward(); opt.step()
torch.save({'acc1_list': [np.float64(20.0), np.float64(35.5), np.float32(41.25)], 'model_state_dict': m.state_dict(), 'optimizer_state_dict': opt.state_dict()}, ${JSON.stringify(file)})
`);
  const r = await main(opts({ resume: file, epochs: 3, out: path.join(tmp, 'orig-out') }));
  assert.equal(r.startEpoch, 3);
  assert.deepEqual(r.acc1List, [20, 35.5, 41.25]);
  assert.equal(r.checkpoints.length, 0);
});

test('class fraction: the first round(N x f) sorted episodes are kept; a larger --n_out is allowed', async () => {
  await ready;
  const lines: string[] = [];
  const r = await main(opts({ classFraction: 0.5, epochs: 0, log: (l) => lines.push(l) })); // round(2.5) = 2 (ties to even)
  assert.equal(r.classes, 2);
  assert.equal(r.samples, 2 * FRAMES);
  assert.ok(lines.some((l) => /warning: --n_out 5 is larger than the number of episodes kept \(2\)/.test(l)), lines.join('\n'));
  assert.equal((await main(opts({ classFraction: 0.7, epochs: 0 }))).classes, 4); // round(3.5) = 4
});

test('learning on solid colours: the loss falls, and memory stays flat across epochs', async () => {
  await ready;
  const mem: number[] = [];
  // batches of 10 (2 per epoch): batch-norm statistics over several colours keep the steps steady
  const r = await main(opts({
    epochs: 3, batchSize: 10, augmentation: false, out: path.join(tmp, 'learn'),
    log: (l) => { if (l.startsWith('Epoch ')) mem.push(torch.cpuMemoryStats().largeBlocksInUse); },
  }));
  const losses = r.epochs.map((e) => e.loss);
  assert.equal(losses.length, 3);
  assert.ok(losses[1]! < losses[0]! && losses[2]! < losses[1]! && losses[2]! < 0.25 * losses[0]!, `loss did not fall: ${losses.join(', ')}`);
  assert.ok(r.acc1List[2]! > r.acc1List[0]!, `accuracy did not rise: ${r.acc1List.join(', ')}`);
  assert.equal(mem.length, 3);
  assert.equal(mem[2], mem[1], `memory in use after each epoch: ${mem.join(', ')}`);
});

test('bad input: a clear message and a non-zero exit', async () => {
  await ready;
  const missing = path.join(tmp, 'no-such-dir');
  let r = run(['--data-dirs', missing, ...SMALL, '--n_out', '5', '--epochs', '1']);
  assert.notEqual(r.status, 0);
  assert.ok(r.stderr.includes(missing), r.stderr);

  r = run(['--data-dirs', dataDir, ...SMALL, '--n_out', '3', '--epochs', '1']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--n_out 3 is smaller than the number of episodes kept \(5\)/);

  r = run(['--data-dirs', dataDir, ...SMALL, '--model', 'resnet9000', '--epochs', '1']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /unknown --model 'resnet9000'; known: .*resnext101_32x8d/);

  const good = path.join(out1, 'TC_SAYAVAKEPICUT_resnet18_1.0_1_epoch_0.tar');
  const bad = path.join(tmp, 'truncated.tar');
  if (existsSync(good)) {
    writeFileSync(bad, readFileSync(good).subarray(0, 50000));
  } else {
    copyFileSync(cli, bad);
  }
  r = run(['--data-dirs', dataDir, ...SMALL, '--n_out', '5', '--epochs', '1', '--resume', bad]);
  assert.notEqual(r.status, 0);
  assert.ok(r.stderr.includes(`cannot resume from ${bad}`), r.stderr);

  const none = path.join(tmp, 'absent.tar');
  r = run(['--data-dirs', dataDir, ...SMALL, '--n_out', '5', '--epochs', '1', '--resume', none]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, new RegExp(`cannot resume from ${none.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: no such file`));
});
