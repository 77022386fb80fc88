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
import { buildTcModel, main, TC_DEFAULTS, type TcOptions } from '../src/experiments/tc.js';
import { accuracy, AverageMeter, pyFloat, scalarValue, tcCheckpointName } from '../src/experiments/common.js';
import * as io from '../src/io/index.js';
import { MultirootImageFolder } from '../src/data/index.js';
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
  // each checkpoint with its run record beside it, and the run's per-epoch metrics
  assert.deepEqual(readdirSync(out1).sort(), ['TC_SAYAVAKEPICUT_resnet18_1.0_1.metrics.csv', 'TC_SAYAVAKEPICUT_resnet18_1.0_1.metrics.jsonl',
    ...[0, 1].flatMap((e) => [`TC_SAYAVAKEPICUT_resnet18_1.0_1_epoch_${e}.tar`, `TC_SAYAVAKEPICUT_resnet18_1.0_1_epoch_${e}.tar.json`])]);
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
  assert.deepEqual(readdirSync(out2).sort(), ['TC_SAYAVAKEPICUT_resnet18_1.0_1.metrics.csv', 'TC_SAYAVAKEPICUT_resnet18_1.0_1.metrics.jsonl', 'TC_SAYAVAKEPICUT_resnet18_1.0_1_epoch_1.tar', 'TC_SAYAVAKEPICUT_resnet18_1.0_1_epoch_1.tar.json']);
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
# as the original's train() returns it: top1.avg.cpu().numpy(), a 0-d float32 array
acc = [(torch.tensor([v]) * 4 / 4)[0].cpu().numpy() for v in (20.0, 35.5, 41.25)]
assert all(isinstance(a, np.ndarray) and a.shape == () and a.dtype == np.float32 for a in acc)
torch.save({'acc1_list': acc, 'model_state_dict': m.state_dict(), 'optimizer_state_dict': opt.state_dict()}, ${JSON.stringify(file)})
`);
  const lines: string[] = [];
  const r = await main(opts({ resume: file, epochs: 4, lr: 0.01, out: path.join(tmp, 'orig-out'), log: (l) => lines.push(l) }));
  assert.equal(r.startEpoch, 3);
  assert.deepEqual(r.acc1List.slice(0, 3), [20, 35.5, 41.25]);
  assert.equal(r.checkpoints.length, 1);
  // the effective learning rate (the checkpoint's) is printed, not --lr
  assert.ok(lines.some((l) => /^learning rate 0\.0005 \(from the checkpoint; --lr 0\.01 is not applied, as in the original\)$/.test(l)), lines.join('\n'));
  // written back: PyTorch reads the accuracies as numbers, none NaN
  const back = python(`
import torch, json, math
ck = torch.load(${JSON.stringify(r.checkpoints[0]!)})
print(json.dumps([float(a) for a in ck['acc1_list']]))`);
  const acc = JSON.parse(back) as number[];
  assert.deepEqual(acc.slice(0, 3), [20, 35.5, 41.25]);
  assert.equal(acc.length, 4);
  assert.ok(acc.every(Number.isFinite), acc.join(', '));
});

test('scalarValue: every numeric form io gives (number, bigint, boolean, 0-d and 1-element numpy arrays, 0-d tensors); others named', () => {
  const nd = (data: unknown, shape: number[]): unknown => Object.assign(Object.create(null) as object, { __class__: 'numpy.ndarray', args: [], dtype: 'float32', shape, fortranOrder: false, data });
  assert.equal(scalarValue(1.5, 'x'), 1.5);
  assert.equal(scalarValue(7n, 'x'), 7);
  assert.equal(scalarValue(true, 'x'), 1);
  assert.equal(scalarValue(nd(new Float32Array([41.25]), []), 'x'), 41.25);
  assert.equal(scalarValue(nd(new Float64Array([2.5]), [1]), 'x'), 2.5);
  assert.equal(scalarValue(nd(new BigInt64Array([3n]), [1, 1]), 'x'), 3);
  torch.tidy(() => {
    assert.equal(scalarValue(torch.tensor([12.5]).squeeze(), 'x'), 12.5);
    assert.equal(scalarValue(torch.tensor([3]), 'x'), 3);
    assert.throws(() => scalarValue(torch.tensor([1, 2]), 'acc1_list[0]'), /acc1_list\[0\] is a tensor of shape \[2\]/);
  });
  assert.throws(() => scalarValue(nd(new Float32Array([1, 2]), [2]), 'acc1_list[1]'), /acc1_list\[1\] is a numpy array of shape \(2\)/);
  assert.throws(() => scalarValue('12', 'acc1_list[2]'), /acc1_list\[2\] is not a number \(string\)/);
  assert.throws(() => scalarValue(null, 'acc1_list[3]'), /None/);
});

test("class fraction: the original's seeded window of ceil(N x f) episodes, its start printed; 'first' keeps round(N x f); a larger --n_out is allowed", async () => {
  await ready;
  const lines: string[] = [];
  const r = await main(opts({ classFraction: 0.5, epochs: 0, seed: 3, log: (l) => lines.push(l) })); // ceil(2.5) = 3
  // Python: random.seed(3); random.randint(0, 5 - 3 - 1) == 1
  const start = Number(python('import random; random.seed(3); print(random.randint(0, 1))'));
  assert.equal(r.classes, 3);
  assert.equal(r.episodeStart, start);
  assert.deepEqual(r.episodes.map((e) => path.basename(e)), [0, 1, 2].map((k) => `class_000${k + start}`));
  assert.equal(r.samples, 3 * FRAMES);
  assert.ok(lines.includes(`Class start index: ${start}`), lines.join('\n'));
  assert.ok(lines.some((l) => /warning: --n_out 5 is larger than the number of episodes kept \(3\)/.test(l)), lines.join('\n'));
  const first = await main(opts({ classFraction: 0.5, epochs: 0, episodeSelection: 'first' })); // round(2.5) = 2 (ties to even)
  assert.deepEqual([first.classes, first.episodeStart], [2, 0]);
  assert.equal((await main(opts({ classFraction: 0.7, epochs: 0, episodeSelection: 'first' }))).classes, 4); // round(3.5) = 4
  const all: string[] = [];
  assert.equal((await main(opts({ classFraction: 1, epochs: 0, log: (l) => all.push(l) }))).classes, 5);
  assert.ok(all.some((l) => /keeps all 5 episodes \(the original raises ValueError: empty range for randrange\(\) here\)/.test(l)), all.join('\n'));
  await assert.rejects(main(opts({ epochs: 0, episodeSelection: 'middle' as 'first' })), /--episode-selection must be one of window, first/);
});

test('empty episode folders are accepted as the original does: a warning, their labels counted, no samples', async () => {
  await ready;
  const dir = path.join(tmp, 'with-empty');
  mkdirSync(dir, { recursive: true });
  for (const e of readdirSync(dataDir).filter((n) => n.startsWith('class_'))) {
    mkdirSync(path.join(dir, e));
    for (const f of readdirSync(path.join(dataDir, e))) copyFileSync(path.join(dataDir, e, f), path.join(dir, e, f));
  }
  mkdirSync(path.join(dir, 'class_0005')); // read_saycam.py leaves this when frames are a multiple of the episode length
  const lines: string[] = [];
  const r = await main(opts({ dataDirs: [dir], nOut: 6, epochs: 1, classFraction: 1, out: path.join(tmp, 'empty-out'), log: (l) => lines.push(l) }));
  assert.equal(r.classes, 6);
  assert.equal(r.samples, EPISODES * FRAMES);
  assert.ok(lines.some((l) => /warning: 1 class folder\(s\) without images: .*class_0005; their labels are kept, with no samples/.test(l)), lines.join('\n'));
  assert.ok(!lines.some((l) => /--on-bad-image/.test(l)));
});

test("--cache-path pointing at a file that is not awty's index (the original's torch.save'd dataset) is refused and left as it was", { skip: !hasOracle() && 'no python3 with torch' }, async () => {
  await ready;
  const cache = path.join(tmp, 'train_cache.pth');
  python(`import torch; torch.save({'samples': [('a.jpeg', 0)], 'classes': ['a']}, ${JSON.stringify(cache)})`);
  const before = readFileSync(cache);
  await assert.rejects(main(opts({ epochs: 0, cachePath: cache })), (e: Error) => e.message.includes(cache) && /not an awty index.*refusing to overwrite/.test(e.message));
  assert.ok(readFileSync(cache).equals(before), 'the file is untouched');
  const own = path.join(tmp, 'own-index.bin');
  assert.equal((await main(opts({ epochs: 0, cachePath: own }))).classes, 5);
  assert.equal((await main(opts({ epochs: 0, cachePath: own }))).classes, 5, 'awty rewrites and reuses its own index');
});

test("the TC model starts from the original's weights for the same seed (num_classes=n_out, then a fresh fc), n_out 8 and 163", { skip: !hasOracle() && 'no python3 with torch' }, async () => {
  const dir = tmpdir('awty-tc-init-');
  try {
    for (const nOut of [8, 163]) {
      python(`
import torch, torchvision
torch.manual_seed(5)
m = torchvision.models.resnet18(num_classes=${nOut})
m.fc = torch.nn.Linear(m.fc.in_features, ${nOut})
torch.save(m.state_dict(), ${JSON.stringify(path.join(dir, `init-${nOut}.pt`))})`);
      const ref = io.asStateDict(await io.load(path.join(dir, `init-${nOut}.pt`)));
      torch.manualSeed(5);
      const m = buildTcModel('resnet18', nOut);
      const sd = m.stateDict();
      assert.deepEqual(Object.keys(sd).sort(), Object.keys(ref).sort());
      for (const [k, v] of Object.entries(ref)) assert.ok(torch.equal(sd[k]!, v), `${k} bitwise equal at n_out ${nOut}`);
      m.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--epochs defaults to 12, as train_tc.py', () => {
  assert.equal(TC_DEFAULTS.epochs, 12);
  const help = spawnSync('node', [cli, 'train-tc', '--help'], { encoding: 'utf8' }).stdout;
  assert.match(help, /--epochs <n>\s+total epochs \(default: 12\)/);
  assert.match(help, /--episode-selection <rule>/);
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

test("acceptance: the original train_tc.py's checkpoint resumes in awty on the same episodes with the same labels; awty's run from the same seed selects the same window", { skip: !hasOracle() && 'no python3 with torch' }, async () => {
  await ready;
  const dir = path.join(tmp, 'original');
  mkdirSync(dir, { recursive: true });
  // seed 7 and fraction 0.4 of 5 episodes: ceil(2.0) = 2 episodes from random.randint(0, 2) = 1, so not the first two
  const seed = 7;
  const helper = path.join(repo, 'test', 'helpers', 'original_tc.py');
  const r0 = spawnSync(PYTHON, [helper, dir, 'resnet18', '2', '0.4', String(seed), '1', '4', dataDir], { encoding: 'utf8', env: oracleEnv() });
  assert.equal(r0.status, 0, r0.stderr);
  const orig = JSON.parse(readFileSync(path.join(dir, 'original.json'), 'utf8')) as { start: number; episodes: string[]; samples: [string, number][]; acc1: number[]; acc1_types: string[] };
  assert.match(r0.stdout, new RegExp(`^Class start index: ${orig.start}$`, 'm'));
  assert.equal(orig.start, 1);
  assert.deepEqual(orig.acc1_types, ['ndarray:float32:()'], 'the original saves 0-d float32 arrays');
  const ckpt = path.join(dir, `TC_SAYAVAKEPICUT_resnet18_0.4_${seed}_epoch_0.tar`);

  const lines: string[] = [];
  const r = await main(opts({ resume: ckpt, nOut: 2, classFraction: 0.4, seed, epochs: 2, batchSize: 4, augmentation: false, out: path.join(tmp, 'original-resumed'), log: (l) => lines.push(l) }));
  assert.ok(lines.includes(`Class start index: ${orig.start}`), lines.join('\n'));
  assert.equal(r.episodeStart, orig.start);
  assert.deepEqual(r.episodes, orig.episodes);
  assert.equal(r.startEpoch, 1);
  assert.equal(r.acc1List.length, 2);
  assert.equal(r.acc1List[0], Math.fround(orig.acc1[0]!), 'the saved accuracy, not NaN');
  assert.ok(Number.isFinite(r.acc1List[1]));
  // the same samples with the same labels as the original's dataset
  const ds = await MultirootImageFolder.open([dataDir], 0.4, { seed, cachePath: false });
  assert.deepEqual(Array.from({ length: ds.length }, (_, i) => [ds.source(i).path, ds.label(i)]), orig.samples);
  // the rule of the other variant would have trained on other episodes
  assert.notDeepEqual((await main(opts({ nOut: 2, classFraction: 0.4, seed, epochs: 0, episodeSelection: 'first' }))).episodes, orig.episodes);
});
