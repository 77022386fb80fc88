// awty finetune's outputs as the original's scripts expect them, on a tiny "ImageNet" (3 colour
// classes of 32x32 JPEGs) and two tiny TC checkpoints (resnet18, 5-way head, `module.` keys):
// - checkpoint and results file are named after the source checkpoint, so evaluations of two TC
//   checkpoints in one folder never replace each other, and an earlier run's files are kept unless
//   --overwrite (refused before any training, naming the file); --checkpoint-name original gives
//   finetune_imgnet.py's name; a finetune checkpoint can itself be the --resume of another finetune;
// - a linear probe's optimizer state lists every parameter (state only for the head), as the
//   original's Adam(model.parameters()): torch.optim.Adam over the full torchvision model loads it
//   and steps, and awty's own train-tc resume (loadCheckpoint over all parameters) loads it;
// - a bare --schedule is the original's nargs='*' empty list (no decay), also in sweep's commands;
// - train-tc stops at a loss that is not finite (docs/experiments.md).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import * as torch from '../src/torch/index.js';
import * as models from '../src/models/index.js';
import * as optim from '../src/optim/index.js';
import * as io from '../src/io/index.js';
import { loadCheckpoint } from '../src/experiments/common.js';
import { finetuneCheckpointName } from '../src/experiments/finetune.js';
import { planSweep, resolveConfig } from '../src/experiments/sweep.js';
import { runPython } from './helpers/oracle.js';
import { writeNoisyImage } from './helpers/images.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const mainJs = join(repo, 'dist', 'src', 'cli', 'main.js');
const root = await mkdtemp(join(tmpdir(), 'awty-finetune-out-'));
after(() => rm(root, { recursive: true, force: true }));

const train = join(root, 'train');
const val = join(root, 'val');
const tcA = join(root, 'tc-a.tar');
const tcB = join(root, 'tc-b.tar');
const eps = join(root, 'episodes');
const COLOURS = [[220, 30, 30], [30, 200, 40], [40, 50, 230]];

const jpeg = (file: string, rgb: number[], seed: number): Promise<void> => writeNoisyImage(file, rgb, seed);

before(async () => {
  for (const [dir, n] of [[train, 4], [val, 2]] as const) {
    for (let c = 0; c < 3; c++) {
      const d = join(dir, `n0000000${c}`);
      await mkdir(d, { recursive: true });
      for (let i = 0; i < n; i++) await jpeg(join(d, `img_${i}.JPEG`), COLOURS[c]!, c * 100 + i + (dir === val ? 50 : 0));
    }
  }
  for (let e = 0; e < 4; e++) {
    const d = join(eps, `class_${String(e).padStart(4, '0')}`);
    await mkdir(d, { recursive: true });
    for (let i = 0; i < 2; i++) await jpeg(join(d, `img_${i}.jpeg`), COLOURS[e % 3]!, e * 10 + i);
  }
  for (const [file, seed] of [[tcA, 7], [tcB, 8]] as const) {
    torch.manualSeed(seed);
    const m = models.create('resnet18', { numClasses: 5 });
    await io.save({ acc1_list: [1.5], model_state_dict: io.modelStateDict(m, { prefix: 'module.' }) }, file);
    m.dispose();
  }
});

function awty(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [mainJs, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const base = (out: string, resume: string, extra: string[] = []): string[] => ['finetune', '--imgnet-traindir', train, '--imgnet-valdir', val,
  '--model', 'resnet18', '--n_out', '5', '--resume', resume, '--image-size', '32', '-b', '6', '--epochs', '1', '--workers', '0',
  '--threads', '1', '-p', '100', '--out', out, '--hours', '1', '--freeze-trunk', ...extra];

const list = async (dir: string, ext: string): Promise<string[]> => (await readdir(dir)).filter((f) => f.endsWith(ext)).sort();

async function loadSd(file: string): Promise<Record<string, torch.Tensor>> {
  const ck = (await io.load(file)) as Record<string, unknown>;
  return io.stripPrefix(io.asStateDict(ck.model_state_dict));
}

test('checkpoints and results files are named after the source checkpoint: two TC checkpoints evaluated into one folder keep both', async () => {
  const out = join(root, 'two');
  for (const tc of [tcA, tcB]) {
    const r = awty(base(out, tc));
    assert.equal(r.status, 0, r.stderr + r.stdout);
  }
  assert.deepEqual(await list(out, '.tar'), ['IMGNET_tc-a_linear-probe_resnet18_1.0_1_1h.tar', 'IMGNET_tc-b_linear-probe_resnet18_1.0_1_1h.tar']);
  const results = await list(out, '.json');
  assert.deepEqual(results, ['IMGNET_tc-a_linear-probe_resnet18_1.0_1_1h.json', 'IMGNET_tc-b_linear-probe_resnet18_1.0_1_1h.json']);
  for (const [i, tc] of [tcA, tcB].entries()) {
    const j = JSON.parse(await readFile(join(out, results[i]!), 'utf8')) as { checkpoint: string; evalCheckpoint: string };
    assert.equal(j.checkpoint, tc);
    assert.equal(j.evalCheckpoint, join(out, results[i]!.replace(/\.json$/, '.tar')));
  }
  // each checkpoint holds the trunk of its own source
  const a = await loadSd(join(out, 'IMGNET_tc-a_linear-probe_resnet18_1.0_1_1h.tar'));
  const b = await loadSd(join(out, 'IMGNET_tc-b_linear-probe_resnet18_1.0_1_1h.tar'));
  assert.ok(torch.equal(a['conv1.weight']!, (await loadSd(tcA))['conv1.weight']!));
  assert.ok(torch.equal(b['conv1.weight']!, (await loadSd(tcB))['conv1.weight']!));
});

test('an earlier run\'s checkpoint or results file is kept: refused before training, naming the file; --overwrite replaces it', async () => {
  const out = join(root, 'again');
  const first = awty(base(out, tcA));
  assert.equal(first.status, 0, first.stderr + first.stdout);
  const ckpt = join(out, 'IMGNET_tc-a_linear-probe_resnet18_1.0_1_1h.tar');
  const result = join(out, 'IMGNET_tc-a_linear-probe_resnet18_1.0_1_1h.json');
  const before = [await readFile(ckpt), await readFile(result)];
  const again = awty(base(out, tcA));
  assert.equal(again.status, 2, again.stderr + again.stdout);
  assert.ok(again.stderr.includes(`${ckpt} exists`), again.stderr);
  assert.match(again.stderr, /--overwrite/);
  assert.doesNotMatch(again.stdout, /Epoch: \[|validation Acc@1/);
  assert.deepEqual([await readFile(ckpt), await readFile(result)], before);
  // only the results file there (a run without its checkpoint): refused too, naming it
  await rm(ckpt);
  const onlyResult = awty(base(out, tcA));
  assert.equal(onlyResult.status, 2, onlyResult.stderr + onlyResult.stdout);
  assert.ok(onlyResult.stderr.includes(`${result} exists`), onlyResult.stderr);
  const mtime = (await stat(result)).mtimeMs;
  const forced = awty(base(out, tcA, ['--overwrite']));
  assert.equal(forced.status, 0, forced.stderr + forced.stdout);
  assert.deepEqual(await list(out, '.tar'), [ckpt.slice(out.length + 1)]);
  const j = JSON.parse(await readFile(result, 'utf8')) as { complete: boolean; createdAt: string };
  assert.equal(j.complete, true);
  assert.ok(Date.parse(j.createdAt) >= mtime - 1000, 'the results file was rewritten');
});

test('--checkpoint-name original: finetune_imgnet.py\'s ImageNet_{resume}_{freeze}_{frac}_{seed}.tar, results file beside it', async () => {
  assert.equal(finetuneCheckpointName({ resume: 'TC_SAY_resnext101_32x8d_1.0_1_epoch_11.tar', freezeTrunk: true, fracRetained: 1, seed: 1, condition: 'linear-probe', model: 'resnext101_32x8d' }, 'original'),
    'ImageNet_TC_SAY_resnext101_32x8d_1.0_1_epoch_11.tar_True_1.0_1.tar');
  assert.equal(finetuneCheckpointName({ resume: '', freezeTrunk: false, fracRetained: 0.010147, seed: 2, condition: 'few-shot-1pct', model: 'resnet18' }, 'original'),
    'ImageNet__False_0.010147_2.tar');
  assert.equal(finetuneCheckpointName({ resume: '/x/y/TC_S_resnet18_0.1_1_epoch_3.tar', freezeTrunk: false, fracRetained: 0.02, seed: 1, condition: 'few-shot-2pct', model: 'resnet18', hours: 2.5 }),
    'IMGNET_TC_S_resnet18_0.1_1_epoch_3_few-shot-2pct_resnet18_0.02_1_2.5h.tar');
  const out = join(root, 'original');
  const r = awty(base(out, tcA, ['--checkpoint-name', 'original']));
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.deepEqual(await list(out, '.tar'), ['ImageNet_tc-a.tar_True_1.0_1.tar']);
  assert.deepEqual(await list(out, '.json'), ['ImageNet_tc-a.tar_True_1.0_1.json']);
  const bad = awty(base(out, tcA, ['--checkpoint-name', 'paper']));
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /--checkpoint-name must be awty or original, got paper/);
});

test('a finetune checkpoint is the --resume of another finetune (its own name, its trunk loaded)', async () => {
  const out = join(root, 'chain');
  const first = awty(base(out, tcA));
  assert.equal(first.status, 0, first.stderr + first.stdout);
  const ft = join(out, 'IMGNET_tc-a_linear-probe_resnet18_1.0_1_1h.tar');
  const second = awty(base(out, ft, ['--epochs', '0']).map((a, i, all) => (all[i - 1] === '--n_out' ? '3' : a)));
  assert.equal(second.status, 0, second.stderr + second.stdout);
  assert.deepEqual(await list(out, '.tar'), ['IMGNET_IMGNET_tc-a_linear-probe_resnet18_1.0_1_1h_linear-probe_resnet18_1.0_1_1h.tar', 'IMGNET_tc-a_linear-probe_resnet18_1.0_1_1h.tar']);
  const sd1 = await loadSd(ft);
  const sd2 = await loadSd(join(out, 'IMGNET_IMGNET_tc-a_linear-probe_resnet18_1.0_1_1h_linear-probe_resnet18_1.0_1_1h.tar'));
  for (const k of Object.keys(sd1).filter((x) => !x.startsWith('fc.'))) assert.ok(torch.equal(sd1[k]!, sd2[k]!), `${k} from the first finetune`);
});

test('linear probe: the optimizer state lists every parameter (state for fc only); torch.optim.Adam over the full model loads it and steps; awty resumes it', async () => {
  const out = join(root, 'probe');
  const r = awty(base(out, tcA, ['--epochs', '2', '--lr', '0.01']));
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const file = join(out, 'IMGNET_tc-a_linear-probe_resnet18_1.0_1_1h.tar');
  // the original's --resume of it (train_tc.py): the torchvision model with the checkpoint's head,
  // DataParallel, Adam(model.parameters()), then load_state_dict of model and optimizer
  const py = JSON.parse(runPython(`
import torchvision
ck = torch.load(${JSON.stringify(file)}, weights_only=False)
model = torchvision.models.resnet18(num_classes=3)
model.fc = torch.nn.Linear(in_features=512, out_features=3, bias=True)
model = torch.nn.DataParallel(model)
optimizer = torch.optim.Adam(model.parameters(), 0.0005, weight_decay=0.0)
model.load_state_dict(ck['model_state_dict'])
optimizer.load_state_dict(ck['optimizer_state_dict'])
names = [n for n, _ in model.named_parameters()]
sd = optimizer.state_dict()
steps = [float(v['step']) for v in sd['state'].values()]
fc_ok = all(optimizer.state[p]['exp_avg'].shape == p.shape for n, p in model.named_parameters() if n.startswith('module.fc.'))
x = torch.randn(2, 3, 32, 32)
loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1]))
optimizer.zero_grad(); loss.backward(); optimizer.step()
print(json.dumps({'params': len(sd['param_groups'][0]['params']), 'total': len(names), 'state': sorted(int(k) for k in sd['state']),
  'stateNames': [names[int(k)] for k in sorted(sd['state'])], 'steps': steps,
  'fcOk': fc_ok, 'lr': sd['param_groups'][0]['lr'], 'stepsAfter': sorted(float(v['step']) for v in optimizer.state_dict()['state'].values())}))
`, await mkdtemp(join(root, 'py-'))).trim().split('\n').at(-1)!) as { params: number; total: number; state: number[]; stateNames: string[]; steps: number[]; fcOk: boolean; lr: number; stepsAfter: number[] };
  assert.equal(py.params, py.total, 'every parameter in the group');
  assert.deepEqual(py.stateNames, ['module.fc.weight', 'module.fc.bias']);
  assert.deepEqual(py.state, [py.total - 2, py.total - 1]);
  assert.deepEqual(py.steps, [4, 4], 'a step per batch: 2 epochs of 2 batches (12 images, -b 6)');
  assert.ok(py.fcOk);
  assert.equal(py.lr, 0.01);
  // the optimizer stepped every parameter that got a gradient: fc continues at 5, the trunk starts at 1
  assert.equal(py.stepsAfter.filter((s) => s === 5).length, 2);
  assert.equal(py.stepsAfter.filter((s) => s === 1).length, py.total - 2);
  // awty's own resume (train-tc's loadCheckpoint, Adam over every parameter of the 3-way model)
  const model = models.create('resnet18', { numClasses: 3 });
  const opt = new optim.Adam(model.parameters(), { lr: 0.0005 });
  try {
    const info = await loadCheckpoint(file, model, opt);
    assert.equal(info.acc1List.length, 2);
    assert.equal(opt.paramGroups[0]!.lr, 0.01);
    assert.equal(opt.state.size, 2);
    assert.ok(opt.state.has(model.head.weight) && opt.state.has(model.head.bias!));
  } finally {
    opt.dispose();
    model.dispose();
  }
});

test('a bare --schedule is the original\'s empty list (no decay); also before another flag; sweep prints it bare', async () => {
  const lrOf = async (out: string): Promise<{ lr: number; schedule: unknown }> => {
    const ck = (await io.load(join(out, 'IMGNET_tc-a_linear-probe_resnet18_1.0_1_1h.tar'))) as { optimizer_state_dict: { param_groups: { lr: number }[] } };
    const res = JSON.parse(await readFile(join(out, 'IMGNET_tc-a_linear-probe_resnet18_1.0_1_1h.json'), 'utf8')) as { config: { schedule: unknown } };
    return { lr: ck.optimizer_state_dict.param_groups[0]!.lr, schedule: res.config.schedule };
  };
  const bare = awty(base(join(root, 'bare'), tcA, ['--epochs', '2', '--schedule']));
  assert.equal(bare.status, 0, bare.stderr + bare.stdout);
  assert.deepEqual(await lrOf(join(root, 'bare')), { lr: 0.001, schedule: [] });
  const bareThenFlag = awty(base(join(root, 'bare2'), tcA, ['--schedule', '--epochs', '2']));
  assert.equal(bareThenFlag.status, 0, bareThenFlag.stderr + bareThenFlag.stdout);
  assert.deepEqual(await lrOf(join(root, 'bare2')), { lr: 0.001, schedule: [] });
  const one = awty(base(join(root, 'one'), tcA, ['--epochs', '2', '--schedule', '1']));
  assert.equal(one.status, 0, one.stderr + one.stdout);
  const decayed = await lrOf(join(root, 'one'));
  assert.deepEqual(decayed.schedule, [1]);
  assert.ok(Math.abs(decayed.lr - 0.0002) < 1e-12, `lr ${decayed.lr}`);
  // awty sweep's printed finetune command with eval.schedule [] says so (no flag would mean 25 45)
  const c = resolveConfig({ dataDirs: [eps], model: 'resnet18', classFractions: [0.5], seeds: [1], trainDir: train, valDir: val, out: join(root, 'sweep'),
    conditions: [{ name: 'linear-probe', fracRetained: 1, freezeTrunk: true }], eval: { schedule: [] } });
  const plan = await planSweep(c);
  assert.equal(plan.evalRuns.length, 1);
  assert.match(plan.evalRuns[0]!.command, / --schedule --seed 1 /);
  assert.match(plan.evalRuns[0]!.command, / --overwrite( |$)/);
});

test('train-tc stops when the loss is not finite, naming the epoch and iteration (the original trains on with NaN weights)', async () => {
  const out = join(root, 'nan');
  // Adam moves every weight by about lr at its first step: at 1e30 the next forward pass overflows
  const r = awty(['train-tc', '--data-dirs', eps, '--model', 'resnet18', '--n_out', '4', '--class-fraction', '1.0', '--image-size', '32', '-b', '2',
    '--epochs', '1', '--workers', '0', '--threads', '1', '-p', '1', '--lr', '1e30', '--out', out, '--metrics', '']);
  assert.equal(r.status, 1, r.stderr + r.stdout);
  assert.match(r.stderr, /epoch 0, iteration [1-3]: the loss is (NaN|Infinity)/);
  assert.deepEqual(await list(out, '.tar'), [], 'no checkpoint of NaN weights');
});
