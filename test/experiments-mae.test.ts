// awty train-mae on tiny episode folders: the loss falls, the checkpoint is in the MAE repository's
// layout and PyTorch reads it, resume continues at the next epoch, the schedule is lr_sched's, and
// bad input fails with a clear message. On episodes made by `awty extract` from two test videos at two
// frame rates, train-mae writes a run record whose hours equal frames / fps / 3600 computed here from
// the manifests, and finetune on its checkpoint takes the hours from it without --hours.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { main, MAE_DEFAULTS, maeLearningRate, weightDecayGroups, type MaeOptions } from '../src/experiments/mae.js';
import * as models from '../src/models/index.js';
import * as io from '../src/io/index.js';
import { extract, MANIFEST } from '../src/data/index.js';
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

test('train-mae writes a run record: hours of video from the extraction manifests (two folders, two frame rates), per-epoch loss and seconds; finetune takes the hours from it', async () => {
  const videos = path.join(tmp, 'videos');
  const dirs: string[] = [];
  for (const [name, fps, seconds] of [['a', 2, 3], ['b', 3, 2]] as const) {
    mkdirSync(path.join(videos, name), { recursive: true });
    const ff = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=64x48:rate=10', '-t', String(seconds),
      '-pix_fmt', 'yuv420p', path.join(videos, name, `${name}.mp4`)], { encoding: 'utf8' });
    assert.equal(ff.status, 0, ff.stderr);
    const saveDir = path.join(tmp, `episodes-${name}`);
    await extract({ videoDirs: [path.join(videos, name)], saveDir, fps, segLen: 1, resizeMinor: 40, size: 32, cropOffsetY: 0, rotate: 0, quality: 90 });
    dirs.push(saveDir);
  }
  // the hours, computed here: image files in each folder's episodes / that folder's manifest fps / 3600
  let expected = 0;
  for (const d of dirs) {
    const fps = (JSON.parse(readFileSync(path.join(d, MANIFEST), 'utf8')) as { settings: { fps: number } }).settings.fps;
    const frames = readdirSync(d).filter((e) => e.startsWith('class_')).reduce((a, e) => a + readdirSync(path.join(d, e)).filter((f) => f.endsWith('.jpeg')).length, 0);
    assert.ok(frames > 0, `frames in ${d}`);
    expected += frames / fps / 3600;
  }
  const outputDir = path.join(tmp, 'out-record');
  const r = await main(opts({ dataPath: dirs, epochs: 2, outputDir, cachePath: path.join(tmp, 'index-rec.bin') }));
  assert.equal(r.record, path.join(outputDir, 'mae_checkpoint.pth.json'));
  const rec = JSON.parse(readFileSync(r.record!, 'utf8')) as io.RunRecord;
  assert.equal(rec.schema, 'awty.mae-run/1');
  assert.equal(rec.status, 'complete');
  assert.equal(rec.checkpoint, 'mae_checkpoint.pth');
  assert.ok(Math.abs(rec.hours! - expected) <= 1e-12 * expected, `hours ${rec.hours} = ${expected}`);
  assert.match(rec.hoursMethod, /kept frames \/ fps \/ 3600 \(\d+ frames \/ 2 fps in .*episodes-a; \d+ frames \/ 3 fps in .*episodes-b\)/);
  assert.equal(rec.config.model, 'mae_vit_micro_patch8');
  assert.equal(rec.config.maskRatio, 0.75);
  assert.deepEqual(rec.data.extract.map((e) => e.fps), [2, 3]);
  assert.deepEqual(rec.epochs.map((e) => e.epoch), [0, 1]);
  assert.deepEqual(rec.epochs.map((e) => e.loss), r.epochs.map((e) => e.loss));
  assert.ok(rec.epochs.every((e) => e.seconds > 0 && e.images > 0));
  assert.ok(rec.wallSeconds >= rec.epochs.reduce((a, e) => a + e.seconds, 0));
  assert.deepEqual(Object.keys(rec.versions).sort(), ['awty', 'libtorch', 'node']);
  // resumed: the earlier epochs and the creation time kept
  const again = await main(opts({ dataPath: dirs, epochs: 3, outputDir, resume: r.checkpoint, cachePath: path.join(tmp, 'index-rec.bin') }));
  const rec2 = JSON.parse(readFileSync(again.record!, 'utf8')) as io.RunRecord;
  assert.deepEqual(rec2.epochs.map((e) => e.epoch), [0, 1, 2]);
  assert.equal(rec2.createdAt, rec.createdAt);
  assert.ok(rec2.wallSeconds > rec.wallSeconds);
  // finetune on the MAE checkpoint, no --hours: the results file has the record's hours
  const out = path.join(tmp, 'ft');
  const ft = spawnSync('node', [cli, 'finetune', '--imgnet-traindir', dirs[0]!, '--imgnet-valdir', dirs[0]!, '--model', 'vit_micro_8', '--resume', again.checkpoint,
    '--freeze-trunk', '--cache-features', '--epochs', '1', '--image-size', '32', '-b', '4', '--workers', '0', '--threads', '1', '--out', out], { encoding: 'utf8' });
  assert.equal(ft.status, 0, ft.stderr + ft.stdout);
  const results = readdirSync(out).filter((f) => f.endsWith('.json'));
  assert.equal(results.length, 1);
  const res = JSON.parse(readFileSync(path.join(out, results[0]!), 'utf8')) as { hours: number; hoursFrom: string; tcModel: string; tcRecord: string; episodes: number };
  assert.equal(res.hours, rec.hours);
  assert.match(res.hoursFrom, /^run record: kept frames/);
  assert.equal(res.tcModel, 'mae_vit_micro_patch8');
  assert.equal(res.tcRecord, r.record);
  assert.equal(res.episodes, rec.data.episodes);
});
