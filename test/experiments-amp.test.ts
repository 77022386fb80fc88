// --channels-last and --amp in the training commands: a tiny train-tc run with both finishes with a
// finite loss and a checkpoint PyTorch loads (the original's keys, channels_last weights), resumes;
// precisionFor's choices (bfloat16 without a scaler on CPU, float16 with one on CUDA); a checkpoint
// with a scaler keeps the original's keys and PyTorch's GradScaler reads its state; finetune with both.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as torch from '../src/torch/index.js';
import * as models from '../src/models/index.js';
import * as optim from '../src/optim/index.js';
import * as io from '../src/io/index.js';
import { loadCheckpoint, precisionFor, saveCheckpoint, SCALER_KEY } from '../src/experiments/common.js';
import { main as finetune } from '../src/experiments/finetune.js';
import { UsageError } from '../src/experiments/errors.js';
import { hasOracle, oracleEnv, PYTHON, tmpdir } from './helpers/oracle.js';
import { writeNoisyImage } from './helpers/images.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = path.join(repo, 'dist', 'src', 'cli', 'main.js');
const oracle = hasOracle();
const threads = Number(process.env.AWTY_NUM_THREADS ?? '1');
const tmp = tmpdir('awty-amp-');
after(() => rmSync(tmp, { recursive: true, force: true }));
const COLOURS: [number, number, number][] = [[230, 20, 20], [20, 200, 40], [30, 40, 220], [240, 230, 30]];

async function makeEpisodes(dir: string, frames: number): Promise<void> {
  for (let c = 0; c < COLOURS.length; c++) {
    const d = path.join(dir, `class_${String(c).padStart(4, '0')}`);
    mkdirSync(d, { recursive: true });
    for (let i = 0; i < frames; i++) await writeNoisyImage(path.join(d, `img_${String(i).padStart(4, '0')}.jpeg`), COLOURS[c]!, c * 100 + i);
  }
}

function python(code: string): string {
  const r = spawnSync(PYTHON, ['-c', code], { encoding: 'utf8', maxBuffer: 1 << 26, env: oracleEnv() });
  if (r.status !== 0) throw new Error(`python failed:\n${r.stderr}`);
  return r.stdout;
}

test('precisionFor: bfloat16 without a scaler on CPU, float16 with a GradScaler on CUDA, bad combinations refused', () => {
  const cpu = precisionFor({ amp: true, channelsLast: true, device: 'cpu' });
  assert.deepEqual(cpu.autocast, { deviceType: 'cpu', dtype: 'bfloat16' });
  assert.equal(cpu.scaler, undefined, 'no scaler for bfloat16 (as PyTorch)');
  assert.equal(cpu.memoryFormat, 'channelsLast');
  assert.match(cpu.describe, /channels_last.*autocast bfloat16/);
  const gpu = precisionFor({ amp: true, device: 'cuda' });
  assert.deepEqual(gpu.autocast, { deviceType: 'cuda', dtype: 'float16' });
  assert.ok(gpu.scaler?.isEnabled(), 'float16 is scaled');
  assert.equal(precisionFor({ amp: true, ampDtype: 'bfloat16', device: 'cuda:0' }).scaler, undefined);
  const none = precisionFor({ device: 'cpu' });
  assert.equal(none.autocast, undefined);
  assert.equal(none.memoryFormat, undefined);
  assert.throws(() => precisionFor({ amp: true, ampDtype: 'float16', device: 'cpu' }), (e: unknown) => e instanceof UsageError && /CPU autocast supports only bfloat16/.test((e as Error).message));
  assert.throws(() => precisionFor({ ampDtype: 'bfloat16', device: 'cpu' }), /--amp-dtype needs --amp/);
  assert.throws(() => precisionFor({ amp: true, ampDtype: 'float8', device: 'cpu' }), /--amp-dtype must be bfloat16 or float16/);
});

test('awty train-tc --amp --channels-last: finishes with a finite loss, PyTorch loads the checkpoint, --resume continues', { timeout: 600_000 }, async () => {
  const data = path.join(tmp, 'tc-data');
  await makeEpisodes(data, 4);
  const out = path.join(tmp, 'tc-out');
  const base = ['train-tc', '--data-dirs', data, '--model', 'resnet18', '--n_out', '4', '--image-size', '32', '-b', '4', '-j', '0', '--threads', String(threads),
    '--class-fraction', '1', '--subject', 'S', '--out', out, '--amp', '--channels-last', '--metrics', ''];
  const r = spawnSync('node', [cli, ...base, '--epochs', '1'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /channels_last memory format; autocast bfloat16\b/);
  const loss = Number(/Epoch 0: loss ([-\d.e+naNIfity]+)/.exec(r.stdout)?.[1]);
  assert.ok(Number.isFinite(loss) && loss > 0, `epoch loss ${loss}`);
  const ckpt = path.join(out, 'TC_S_resnet18_1.0_1_epoch_0.tar');
  assert.ok(existsSync(ckpt));
  const tree = (await io.load(ckpt)) as Record<string, unknown>;
  try {
    assert.deepEqual(Object.keys(tree).sort(), ['acc1_list', 'model_state_dict', 'optimizer_state_dict'], 'no scaler on CPU bfloat16: the original keys only');
    const sd = io.asStateDict(tree.model_state_dict);
    assert.equal(sd['module.conv1.weight']!.isContiguous('channelsLast'), true, 'weights saved as they are (channels_last strides, as torch.save)');
    for (const [k, t] of Object.entries(sd)) if (t.dtype === 'float32') assert.ok(torch.tidy(() => t.isfinite().all().item()), `${k} finite`);
  } finally {
    io.disposeTree(tree);
  }
  if (oracle) {
    // the original train_tc.py's model: torchvision resnet18 with the head size, DataParallel's 'module.' keys
    const py = python(`
import torch, torchvision
c = torch.load(${JSON.stringify(ckpt)}, map_location='cpu')
m = torchvision.models.resnet18(num_classes=4)
m = torch.nn.DataParallel(m)
m.load_state_dict(c['model_state_dict'])
o = torch.optim.Adam(m.parameters(), 1e-4); o.load_state_dict(c['optimizer_state_dict'])
print(len(c['acc1_list']), c['model_state_dict']['module.conv1.weight'].is_contiguous(memory_format=torch.channels_last))
`);
    assert.equal(py.trim(), '1 True');
  }
  const r2 = spawnSync('node', [cli, ...base, '--epochs', '2', '--resume', ckpt], { encoding: 'utf8', maxBuffer: 1 << 26 });
  assert.equal(r2.status, 0, r2.stderr);
  assert.match(r2.stdout, /resumed from .*continuing at epoch 1/);
  const loss1 = Number(/Epoch 1: loss ([-\d.e+naNIfity]+)/.exec(r2.stdout)?.[1]);
  assert.ok(Number.isFinite(loss1), `epoch 1 loss ${loss1}`);
  assert.ok(existsSync(path.join(out, 'TC_S_resnet18_1.0_1_epoch_1.tar')));
  const bad = spawnSync('node', [cli, ...base, '--epochs', '1', '--amp-dtype', 'float16'], { encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--amp-dtype float16: CPU autocast supports only bfloat16/);
});

test('a checkpoint with a GradScaler keeps the original keys, adds PyTorch\'s scaler state, and loadCheckpoint restores it', async () => {
  const file = path.join(tmp, 'scaled.tar');
  const m = models.create('resnet18', { numClasses: 3 });
  const opt = new optim.Adam(m.parameters(), { lr: 1e-3 });
  const scaler = new optim.GradScaler({ initScale: 512, growthInterval: 7 });
  torch.tidy(() => {
    scaler.scale(m.forward(torch.randn(2, 3, 32, 32)).sum()).backward();
    scaler.step(opt);
    scaler.update();
  });
  await saveCheckpoint(file, m, opt, [12.5], undefined, scaler);
  const tree = (await io.load(file)) as Record<string, unknown>;
  assert.deepEqual(Object.keys(tree).sort(), ['acc1_list', 'model_state_dict', 'optimizer_state_dict', SCALER_KEY].sort());
  io.disposeTree(tree);
  const again = new optim.GradScaler();
  const m2 = models.create('resnet18', { numClasses: 3 });
  const opt2 = new optim.Adam(m2.parameters(), { lr: 1e-3 });
  const r = await loadCheckpoint(file, m2, opt2, again);
  assert.deepEqual(r.acc1List, [12.5]);
  assert.deepEqual(again.stateDict(), { scale: 512, growth_factor: 2, backoff_factor: 0.5, growth_interval: 7, _growth_tracker: 1 });
  // a run without a scaler reads the same file (the extra key is ignored)
  const m3 = models.create('resnet18', { numClasses: 3 });
  const opt3 = new optim.Adam(m3.parameters(), { lr: 1e-3 });
  await loadCheckpoint(file, m3, opt3);
  if (oracle) {
    const py = python(`
import torch
import torch.cuda.amp.grad_scaler as gs
gs.amp_definitely_not_available = lambda: False
c = torch.load(${JSON.stringify(file)}, map_location='cpu')
s = torch.cuda.amp.GradScaler(); s.load_state_dict(c['scaler'])
print(s.get_scale(), s._get_growth_tracker(), s.get_growth_interval(), sorted(c.keys()))
`);
    assert.equal(py.trim(), "512 1 7 ['acc1_list', 'model_state_dict', 'optimizer_state_dict', 'scaler']");
  }
  for (const x of [opt, opt2, opt3]) x.dispose();
  for (const x of [m, m2, m3]) x.dispose();
  scaler.dispose();
  again.dispose();
});

test('finetune with --amp and --channels-last trains and validates (finite numbers) and writes its checkpoint', { timeout: 600_000 }, async () => {
  const train = path.join(tmp, 'ft-train');
  const val = path.join(tmp, 'ft-val');
  for (const [dir, n] of [[train, 4], [val, 2]] as const) {
    for (let c = 0; c < 3; c++) {
      const d = path.join(dir, `n0000000${c}`);
      mkdirSync(d, { recursive: true });
      for (let i = 0; i < n; i++) await writeNoisyImage(path.join(d, `img_${i}.JPEG`), COLOURS[c]!, c * 10 + i + (dir === val ? 50 : 0));
    }
  }
  const out = path.join(tmp, 'ft-out');
  const lines: string[] = [];
  const s = await finetune({
    imgnetTraindir: train, imgnetValdir: val, model: 'resnet18', nOut: 4, imageSize: 32, batchSize: 4, epochs: 2, workers: 0, threads,
    printFreq: 100, out, hours: 1, amp: true, channelsLast: true, log: (l) => lines.push(l), metrics: '',
  });
  assert.ok(lines.some((l) => /precision: channels_last memory format; autocast bfloat16; validation in float32/.test(l)), lines.join('\n'));
  assert.equal(s.acc1List.length, 2);
  assert.equal(s.valAcc1List.length, 2);
  for (const v of [...s.acc1List, ...s.valAcc1List]) assert.ok(Number.isFinite(v) && v >= 0 && v <= 100, `accuracy ${v}`);
  assert.ok(existsSync(s.checkpoint));
  const result = JSON.parse(readFileSync(s.resultFile!, 'utf8')) as { trainLossPerEpoch: number[] };
  for (const l of result.trainLossPerEpoch) assert.ok(Number.isFinite(l) && l > 0, `train loss ${l}`);
});
