// awty finetune from an MAE checkpoint written by awty's own train-mae (one epoch of mae_vit_micro_patch8
// at 32 px on tiny colour images, in the MAE repository's layout): the encoder loads into vit_micro_8
// with every tensor equal to the checkpoint's (decoder and mask token dropped); the MAE linear probe
// (--freeze-trunk --head-bn) keeps the trunk bitwise unchanged while its head's BatchNorm (no weight or
// bias) updates its running statistics; the head's forward equals PyTorch's BatchNorm1d(affine=False,
// eps=1e-6) + Linear on the same tensors; a mismatched architecture fails naming the checkpoint.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import * as torch from '../src/torch/index.js';
import * as nn from '../src/nn/index.js';
import * as models from '../src/models/index.js';
import * as io from '../src/io/index.js';
import { MAE_DEFAULTS, main as trainMae } from '../src/experiments/mae.js';
import { addHeadBatchNorm, loadTrunk } from '../src/experiments/finetune.js';
import { hasOracle, readDump, relErr, runPython, tmpdir, writeDump } from './helpers/oracle.js';
import { writeNoisyImage } from './helpers/images.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const mainJs = join(repo, 'dist', 'src', 'cli', 'main.js');
const root = tmpdir('awty-finetune-mae-');
after(() => rm(root, { recursive: true, force: true }));

const train = join(root, 'train');
const val = join(root, 'val');
const maeOut = join(root, 'mae');
const maeCkpt = join(maeOut, 'mae_checkpoint.pth');
const COLOURS = [[220, 30, 30], [30, 200, 40], [40, 50, 230]];

const png = (file: string, rgb: number[], seed: number): Promise<void> => writeNoisyImage(file, rgb, seed, { ramp: true, format: 'png' });

before(async () => {
  for (const [dir, n] of [[train, 6], [val, 3]] as const) {
    for (let c = 0; c < 3; c++) {
      const d = join(dir, `n0000000${c}`);
      await mkdir(d, { recursive: true });
      for (let i = 0; i < n; i++) await png(join(d, `img_${i}.png`), COLOURS[c]!, c * 100 + i + (dir === val ? 50 : 0));
    }
  }
  // one epoch of MAE pre-training on the training images (their labels unused), as `awty train-mae` runs it
  await trainMae({
    ...MAE_DEFAULTS, dataPath: [train], model: 'mae_vit_micro_patch8', inputSize: 32, batchSize: 6, workers: 0, threads: 1,
    epochs: 1, warmupEpochs: 0, outputDir: maeOut, cachePath: join(root, 'index.bin'), log: () => undefined,
  });
});

function awty(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [mainJs, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const finetune = (out: string, extra: string[]): string[] => ['finetune', '--imgnet-traindir', train, '--imgnet-valdir', val,
  '--resume', maeCkpt, '--image-size', '32', '-b', '6', '--epochs', '2', '--workers', '0', '--threads', '1', '-p', '1',
  '--out', out, '--hours', '1', ...extra];

/** Bitwise equality of two tensors (shape, dtype and bytes). */
function same(a: torch.Tensor, b: torch.Tensor): boolean {
  return a.dtype === b.dtype && a.shape.join() === b.shape.join() && Buffer.from(a.contiguous().bytes()).equals(Buffer.from(b.contiguous().bytes()));
}

/** The checkpoint's encoder under torchvision's names (the MAE state dict as train-mae saved it). */
async function maeEncoderOfCheckpoint(): Promise<{ enc: Record<string, torch.Tensor>; all: Record<string, torch.Tensor> }> {
  const ck = (await io.load(maeCkpt)) as Record<string, unknown>;
  const all = io.asStateDict(ck.model);
  return { enc: models.encoderToTorchvision(all), all };
}

test('the MAE checkpoint\'s encoder loads into vit_micro_8: every trunk tensor equals the checkpoint\'s; decoder and mask token dropped', async () => {
  const { enc, all } = await maeEncoderOfCheckpoint();
  assert.ok(Object.keys(all).some((k) => k.startsWith('decoder_')) && all.mask_token, 'the checkpoint has a decoder and a mask token');
  const lines: string[] = [];
  const model = await loadTrunk({ model: 'vit_micro_8', nOut: 1000, resume: maeCkpt, imageSize: 32, log: (l) => lines.push(l) });
  try {
    const sd = model.stateDict();
    const trunk = Object.keys(sd).filter((k) => !k.startsWith('heads.'));
    // every trunk entry of the ViT comes from the checkpoint, and nothing else of the checkpoint does
    assert.deepEqual([...trunk].sort(), Object.keys(enc).sort());
    assert.equal(trunk.length, 4 + 4 * 12 + 2, 'class token, pos embedding, conv_proj, 4 blocks of 12 tensors, encoder.ln');
    for (const k of trunk) assert.ok(same(sd[k]!, enc[k]!), `${k} equals the checkpoint's`);
    // the MAE names behind a few of them, directly
    assert.ok(same(sd['encoder.layers.encoder_layer_3.self_attention.in_proj_weight']!, all['blocks.3.attn.qkv.weight']!));
    assert.ok(same(sd['encoder.pos_embedding']!, all.pos_embed!));
    assert.ok(same(sd.class_token!, all.cls_token!));
    assert.match(lines.join('\n'), /loaded the encoder of .*mae_checkpoint\.pth \(an MAE checkpoint of mae_vit_micro_patch8\) into vit_micro_8; decoder and mask token dropped/);
    // the MAE encoder and the ViT compute the same class-token features (MAE's models_vit forward_features, global_pool False)
    const mae = models.createMae('mae_vit_micro_patch8', { imgSize: 32 });
    mae.loadStateDict(all);
    torch.tidy(() => {
      const x = torch.randn([2, 3, 32, 32]);
      mae.eval();
      model.eval();
      const viaMae = mae.forwardEncoder(x, 0, torch.arange(16).reshape([1, 16]).expand([2, 16]).to('float32')).latent.select(1, 0);
      const err = relErr(model.features(x), viaMae);
      assert.ok(err < 1e-5, `class-token features agree (rel err ${err})`);
    });
    mae.dispose();
  } finally {
    model.dispose();
    io.disposeTree(all);
  }
});

test('at another --image-size the position embedding is interpolated (class-token row kept), as MAE\'s interpolate_pos_embed', async () => {
  const { all } = await maeEncoderOfCheckpoint();
  const lines: string[] = [];
  const model = await loadTrunk({ model: 'vit_micro_8', nOut: 10, resume: maeCkpt, imageSize: 48, log: (l) => lines.push(l) });
  try {
    const pe = model.stateDict()['encoder.pos_embedding']!;
    assert.deepEqual(pe.shape, [1, 37, 64]);
    assert.ok(same(pe.narrow(1, 0, 1), all.pos_embed!.narrow(1, 0, 1)));
    assert.match(lines.join('\n'), /position embedding interpolated to 48 px/);
  } finally {
    model.dispose();
    io.disposeTree(all);
  }
});

test('finetune --resume MAE --freeze-trunk --head-bn: trunk bitwise unchanged, head BN without weight/bias, its running statistics updating', async () => {
  const out = join(root, 'probe');
  const r = awty(finetune(out, ['--model', 'vit_micro_8', '--freeze-trunk', '--head-bn']));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /loaded the encoder of .*\(an MAE checkpoint of mae_vit_micro_patch8\) into vit_micro_8/);
  assert.match(r.stdout, /head: BatchNorm1d\(64, affine=False, eps=1e-6\) \+ Linear \(--head-bn\)/);
  const tars = (await readdir(out)).filter((f) => f.endsWith('.tar'));
  assert.deepEqual(tars, ['IMGNET_mae_checkpoint_linear-probe_vit_micro_8_1.0_1_1h.tar']);
  const ck = (await io.load(join(out, tars[0]!))) as Record<string, unknown>;
  const sd = io.stripPrefix(io.asStateDict(ck.model_state_dict));
  const { enc, all } = await maeEncoderOfCheckpoint();
  try {
    for (const [k, v] of Object.entries(enc)) assert.ok(same(sd[k]!, v), `${k} unchanged by the linear probe`);
    const heads = Object.keys(sd).filter((k) => k.startsWith('heads.')).sort();
    assert.deepEqual(heads, ['heads.bn.num_batches_tracked', 'heads.bn.running_mean', 'heads.bn.running_var', 'heads.head.bias', 'heads.head.weight']);
    assert.deepEqual(sd['heads.head.weight']!.shape, [3, 64]);
    // 18 training images in batches of 6, 2 epochs: 6 updates of the running statistics
    assert.equal(Number(sd['heads.bn.num_batches_tracked']!.item()), 6);
    const mean = sd['heads.bn.running_mean']!.toTypedArray() as Float32Array;
    const v = sd['heads.bn.running_var']!.toTypedArray() as Float32Array;
    assert.ok(mean.some((x) => x !== 0), 'running mean moved from 0');
    assert.ok(v.some((x) => x !== 1), 'running var moved from 1');
    // the head trained: its weight is no longer the N(0, 0.01) draw alone (it has a non-zero bias)
    assert.ok((sd['heads.head.bias']!.toTypedArray() as Float32Array).some((x) => x !== 0), 'head bias trained');
    // the optimizer kept state for the head only
    const state = (ck.optimizer_state_dict as Map<unknown, unknown> | Record<string, unknown>);
    const st = state instanceof Map ? state.get('state') : state.state;
    const n = st instanceof Map ? st.size : Object.keys(st as object).length;
    assert.equal(n, 2, 'Adam state for heads.head.weight and heads.head.bias only');
  } finally {
    io.disposeTree(all);
    io.disposeTree(ck);
  }
});

test('a checkpoint as the MAE repository\'s misc.save_model writes it (args an argparse.Namespace, written by PyTorch) loads too', { skip: !hasOracle() && 'no python3 with torch' }, async () => {
  const dir = tmpdir('awty-mae-ns-');
  try {
    const file = join(dir, 'checkpoint-0.pth');
    runPython(`
import argparse
ck = torch.load('${maeCkpt}')
torch.save({'model': ck['model'], 'optimizer': ck['optimizer'], 'epoch': 0, 'scaler': {},
            'args': argparse.Namespace(model='mae_vit_micro_patch8', input_size=32, mask_ratio=0.75)}, '${file}')
`, dir);
    const lines: string[] = [];
    const model = await loadTrunk({ model: 'vit_micro_8', nOut: 3, resume: file, imageSize: 32, log: (l) => lines.push(l) });
    const { enc, all } = await maeEncoderOfCheckpoint();
    try {
      assert.match(lines.join('\n'), /checkpoint-0\.pth \(an MAE checkpoint of mae_vit_micro_patch8\) into vit_micro_8/);
      const sd = model.stateDict();
      for (const [k, v] of Object.entries(enc)) assert.ok(same(sd[k]!, v), `${k} equals the checkpoint's`);
    } finally {
      model.dispose();
      io.disposeTree(all);
    }
    await assert.rejects(loadTrunk({ model: 'vit_s_8', nOut: 3, resume: file, imageSize: 32, log: () => undefined }),
      /checkpoint-0\.pth \(an MAE checkpoint of mae_vit_micro_patch8\) does not fit --model vit_s_8: its encoder has width 64 \(the model's 384\)/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a mismatched architecture fails naming the checkpoint and the model that fits', async () => {
  const out = join(root, 'bad');
  let r = awty(finetune(out, ['--model', 'vit_tiny_8']));
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /mae_checkpoint\.pth \(an MAE checkpoint of mae_vit_micro_patch8\) does not fit --model vit_tiny_8: its encoder has width 64 \(the model's 192\), blocks 4 \(the model's 12\), MLP width 256 \(the model's 768\), heads 4 \(the model's 3\); the matching model: --model vit_micro_8/);
  r = awty(finetune(out, ['--model', 'resnet18']));
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /mae_checkpoint\.pth \(an MAE checkpoint of mae_vit_micro_patch8\) is a ViT encoder; --model resnet18 is not a vit_\* model: give --model vit_micro_8/);
  r = awty(finetune(out, ['--model', 'resnet18', '--head-bn']));
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--head-bn needs a vit_\* model \(MAE's linear probe\), got --model resnet18/);
  // the number of heads is not in the tensors: it comes from the checkpoint's args.model
  const { all } = await maeEncoderOfCheckpoint();
  const twoHeads = models.vit({ patchSize: 8, numLayers: 4, numHeads: 2, hiddenDim: 64, mlpDim: 256 }, { imageSize: 32 });
  try {
    assert.throws(() => models.maeEncoderStateDict(all, twoHeads, 'mae_vit_micro_patch8'), /its encoder has heads 4 \(the model's 2\); the matching model: --model vit_micro_8/);
    const fits = models.maeEncoderStateDict(all, twoHeads);
    assert.equal(fits.resized, undefined);
  } finally {
    twoHeads.dispose();
    io.disposeTree(all);
  }
});

test('the --head-bn head\'s forward equals PyTorch\'s BatchNorm1d(affine=False, eps=1e-6) + Linear (train and eval), running statistics too', { skip: !hasOracle() && 'no python3 with torch' }, () => {
  const dir = tmpdir('awty-headbn-');
  const model = models.vit_micro_8({ imageSize: 32, numClasses: 1000 });
  try {
    models.replaceHead(model, 5);
    addHeadBatchNorm(model);
    const bn = model.headNorm!;
    assert.ok(bn instanceof nn.BatchNorm1d);
    assert.equal(bn.getParameter('weight'), undefined);
    assert.equal(bn.getParameter('bias'), undefined);
    assert.equal(bn.eps, 1e-6);
    const heads = model.getModule('heads')!;
    const feats = torch.randn([8, 64]).mul(3).add(1).keep();
    const feats2 = torch.randn([8, 64]).mul(1e-3).keep(); // variance ~1e-6: eps matters
    model.train();
    const y1 = torch.noGrad(() => heads.forward(feats)).keep();
    const y2 = torch.noGrad(() => heads.forward(feats2)).keep();
    model.eval();
    const yEval = torch.noGrad(() => heads.forward(feats)).keep();
    writeDump(dir, 'in', { feats, feats2, weight: model.head.weight, bias: model.head.bias! });
    runPython(`
t = load('in')
head = torch.nn.Sequential(torch.nn.BatchNorm1d(64, affine=False, eps=1e-6), torch.nn.Linear(64, 5))
with torch.no_grad():
    head[1].weight.copy_(t['weight']); head[1].bias.copy_(t['bias'])
    head.train()
    y1 = head(t['feats']); y2 = head(t['feats2'])
    head.eval()
    ye = head(t['feats'])
dump({'y1': y1, 'y2': y2, 'ye': ye, 'mean': head[0].running_mean, 'var': head[0].running_var}, 'out')
`, dir);
    const ref = readDump(dir, 'out');
    for (const [name, ours, theirs] of [['train', y1, ref.y1], ['train 2', y2, ref.y2], ['eval', yEval, ref.ye],
      ['running_mean', bn.getBuffer('running_mean')!, ref.mean], ['running_var', bn.getBuffer('running_var')!, ref.var]] as const) {
      const err = relErr(ours, theirs!);
      assert.ok(err < 1e-5, `${name}: rel err ${err}`);
    }
    assert.equal(Number(bn.getBuffer('num_batches_tracked')!.item()), 2);
    for (const t of [feats, feats2, y1, y2, yEval, ...Object.values(ref)]) t.dispose();
  } finally {
    model.dispose();
    void rm(dir, { recursive: true, force: true });
  }
});
