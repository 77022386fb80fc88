// awty train-mae on tiny episode folders: the loss falls, the checkpoint is in the MAE repository's
// layout and PyTorch reads it, resume continues at the next epoch, the schedule is lr_sched's, and
// bad input fails with a clear message.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { main, MAE_DEFAULTS, maeLearningRate, weightDecayGroups, type MaeOptions } from '../src/experiments/mae.js';
import * as models from '../src/models/index.js';
import { hasOracle, PYTHON, tmpdir } from './helpers/oracle.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = path.join(repo, 'dist', 'src', 'cli', 'main.js');
const tmp = tmpdir('awty-mae-run-');
const dataDir = path.join(tmp, 'data');
after(() => rmSync(tmp, { recursive: true, force: true }));

async function makeEpisodes(): Promise<void> {
  for (let c = 0; c < 3; c++) {
    const d = path.join(dataDir, `class_${String(c).padStart(4, '0')}`);
    mkdirSync(d, { recursive: true });
    for (let i = 0; i < 4; i++) {
      // smooth gradients with a per-episode colour: structure a decoder can learn
      const px = Buffer.alloc(32 * 32 * 3);
      for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) {
        const k = (y * 32 + x) * 3;
        px[k] = (x * 8 + c * 80) & 255;
        px[k + 1] = (y * 8 + i * 20) & 255;
        px[k + 2] = ((x + y) * 4 + c * 40) & 255;
      }
      await sharp(px, { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(path.join(d, `img_${i}.png`));
    }
  }
}
const ready = makeEpisodes();

function opts(o: Partial<MaeOptions>): MaeOptions {
  return { ...MAE_DEFAULTS, dataPath: [dataDir], model: 'mae_vit_micro_patch8', inputSize: 32, batchSize: 4, workers: 0, threads: 2,
    lr: 2e-3, schedule: 'constant', epochs: 6, outputDir: path.join(tmp, 'out'), cachePath: path.join(tmp, 'index.bin'), log: () => undefined, ...o };
}

test('train-mae: the loss falls; the checkpoint has model/optimizer/epoch/args and PyTorch reads it; resume continues', async () => {
  await ready;
  const r = await main(opts({}));
  const losses = r.epochs.map((s) => s.loss);
  process.stdout.write(`# MAE losses per epoch: ${losses.map((l) => l.toFixed(4)).join(', ')}\n`);
  assert.equal(losses.length, 6);
  assert.ok(losses.every(Number.isFinite));
  assert.ok(losses[5]! < 0.8 * losses[0]!, `loss falls: ${losses.join(', ')}`);
  assert.equal(r.checkpoint, path.join(tmp, 'out', 'mae_checkpoint.pth'));
  const log = readFileSync(path.join(tmp, 'out', 'mae_log.txt'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { epoch: number; train_loss: number });
  assert.deepEqual(log.map((l) => l.epoch), [0, 1, 2, 3, 4, 5]);
  if (hasOracle()) {
    const py = spawnSync(PYTHON, ['-c', `
import torch, json
ck = torch.load('${r.checkpoint}')
sd = ck['model']
print(json.dumps({'keys': sorted(ck.keys()), 'epoch': ck['epoch'], 'n': len(sd), 'first': list(sd.keys())[:5], 'groups': [(len(g['params']), g['weight_decay'], list(g['betas'])) for g in ck['optimizer']['param_groups']], 'ratio': ck['args']['mask_ratio']}))
`], { encoding: 'utf8' });
    assert.equal(py.status, 0, py.stderr);
    const o = JSON.parse(py.stdout) as { keys: string[]; epoch: number; n: number; first: string[]; groups: [number, number, number[]][]; ratio: number };
    assert.deepEqual(o.keys, ['args', 'epoch', 'model', 'optimizer']);
    assert.equal(o.epoch, 5);
    assert.deepEqual(o.first, ['cls_token', 'pos_embed', 'mask_token', 'decoder_pos_embed', 'patch_embed.proj.weight']);
    assert.equal(o.groups.length, 2);
    assert.equal(o.groups[0]![1], 0);
    assert.equal(o.groups[1]![1], 0.05);
    assert.deepEqual(o.groups[0]![2], [0.9, 0.95]);
    assert.equal(o.ratio, 0.75);
  }
  const again = await main(opts({ epochs: 7, resume: r.checkpoint }));
  assert.equal(again.startEpoch, 6);
  assert.equal(again.epochs.length, 1);
  assert.ok(again.epochs[0]!.loss < losses[0]!);
});

test('lr_sched: linear warm-up then half cosine to min_lr; no weight decay on biases and 1-d parameters; frozen embeddings left out', () => {
  const s = { lr: 1, minLr: 0.1, warmupEpochs: 4, epochs: 10, schedule: 'cosine' as const };
  assert.equal(maeLearningRate(0, s), 0);
  assert.equal(maeLearningRate(2, s), 0.5);
  assert.equal(maeLearningRate(4, s), 1);
  assert.ok(Math.abs(maeLearningRate(7, s) - (0.1 + 0.9 * 0.5)) < 1e-12);
  assert.ok(Math.abs(maeLearningRate(10, s) - 0.1) < 1e-12);
  assert.equal(maeLearningRate(2, { ...s, schedule: 'constant' }), 1);
  const m = models.createMae('mae_vit_micro_patch8', { imgSize: 32 });
  const [noDecay, decay] = weightDecayGroups(m, 0.05);
  const names = new Map([...m.namedParameters()].map(([k, p]) => [p, k]));
  assert.ok(noDecay.params.every((p) => p.ndim === 1 || names.get(p)!.endsWith('.bias')));
  assert.ok(decay.params.some((p) => names.get(p) === 'cls_token'));
  assert.ok(![...noDecay.params, ...decay.params].some((p) => names.get(p) === 'pos_embed'));
  assert.equal(noDecay.params.length + decay.params.length, [...m.namedParameters()].length - 2);
  m.dispose();
});

test('train-mae: bad input exits non-zero naming the problem', async () => {
  await ready;
  const run = (args: string[]): { status: number | null; stderr: string } => {
    const r = spawnSync('node', [cli, 'train-mae', '--data_path', dataDir, '--model', 'mae_vit_micro_patch8', '--input_size', '32', '-j', '0', '--output_dir', path.join(tmp, 'bad'), ...args], { encoding: 'utf8' });
    return { status: r.status, stderr: r.stderr };
  };
  let r = run(['--mask_ratio', '1']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--mask_ratio must be in \[0, 1\)/);
  r = run(['--model', 'mae_nope']);
  assert.match(r.stderr, /unknown --model 'mae_nope'; known: mae_vit_small_patch16/);
  r = run(['-b', '64']);
  assert.match(r.stderr, /12 frames make no full batch of 64/);
  r = run(['--input_size', '30', '-b', '4']);
  assert.match(r.stderr, /not a multiple of the patch size 8/);
});
