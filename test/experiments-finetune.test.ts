// awty finetune end to end on a tiny "ImageNet" (3 colour classes of 32x32 JPEGs) and a tiny TC
// checkpoint saved by awty itself (resnet18 with a 5-way head, DataParallel `module.` keys): the
// linear probe leaves the trunk's weights bitwise unchanged while the head trains (and BatchNorm
// running statistics move unless --bn-eval), full fine-tuning moves the trunk, the few-shot subset
// has exactly floor(frac x N) images, the results file feeds `awty figure1 --results`, and bad input
// fails with a clear message.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import * as torch from '../src/torch/index.js';
import * as models from '../src/models/index.js';
import * as io from '../src/io/index.js';
import { fewShotIndices } from '../src/data/index.js';
import { readResults } from '../src/scaling/results.js';
import { writeNoisyImage } from './helpers/images.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const mainJs = join(repo, 'dist', 'src', 'cli', 'main.js');
const root = await mkdtemp(join(tmpdir(), 'awty-finetune-'));
after(() => rm(root, { recursive: true, force: true }));

const train = join(root, 'train');
const val = join(root, 'val');
const ckptPath = join(root, 'tc.tar');
const COLOURS = [[220, 30, 30], [30, 200, 40], [40, 50, 230]];

const jpeg = (file: string, rgb: number[], seed: number): Promise<void> => writeNoisyImage(file, rgb, seed);

before(async () => {
  for (const [dir, n] of [[train, 6], [val, 3]] as const) {
    for (let c = 0; c < 3; c++) {
      const d = join(dir, `n0000000${c}`);
      await mkdir(d, { recursive: true });
      for (let i = 0; i < n; i++) await jpeg(join(d, `img_${i}.JPEG`), COLOURS[c]!, c * 100 + i + (dir === val ? 50 : 0));
    }
  }
  torch.manualSeed(7);
  const m = models.create('resnet18', { numClasses: 5 });
  await io.save({ acc1_list: [1.5], model_state_dict: io.modelStateDict(m, { prefix: 'module.' }) }, ckptPath);
  m.dispose();
});

function awty(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [mainJs, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const base = (out: string, extra: string[] = []): string[] => ['finetune', '--imgnet-traindir', train, '--imgnet-valdir', val,
  '--model', 'resnet18', '--n_out', '5', '--resume', ckptPath, '--image-size', '32', '-b', '6', '--epochs', '3', '--workers', '0',
  '--threads', '1', '-p', '1', '--out', out, '--hours', '1', ...extra];

async function loadSd(file: string): Promise<Record<string, torch.Tensor>> {
  const ck = (await io.load(file)) as Record<string, unknown>;
  return io.stripPrefix(io.asStateDict(ck.model_state_dict));
}

async function onlyTar(dir: string): Promise<string> {
  const tars = (await readdir(dir)).filter((f) => f.endsWith('.tar'));
  assert.equal(tars.length, 1, `one checkpoint in ${dir}: ${tars.join(', ')}`);
  return join(dir, tars[0]!);
}

function compare(before: Record<string, torch.Tensor>, after: Record<string, torch.Tensor>): { changed: string[]; same: string[] } {
  const changed: string[] = [];
  const same: string[] = [];
  for (const [k, v] of Object.entries(before)) {
    if (k.startsWith('fc.') || k.endsWith('num_batches_tracked')) continue;
    const w = after[k];
    assert.ok(w, `${k} saved`);
    (torch.equal(v, w) ? same : changed).push(k);
  }
  return { changed, same };
}

test('linear probe: trunk weights bitwise unchanged, new head trained, BN running stats updating; results file and checkpoint layout', async () => {
  const out = join(root, 'probe');
  const r = awty(base(out, ['--freeze-trunk', '--lr', '0.01', '--hours', '10']));
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /validation Acc@1 [\d.]+ Acc@5 [\d.]+/);
  const tc = await loadSd(ckptPath);
  const file = await onlyTar(out);
  const ck = (await io.load(file)) as Record<string, unknown>;
  for (const k of ['acc1_list', 'val_acc1_list', 'model_state_dict', 'optimizer_state_dict']) assert.ok(k in ck, k);
  assert.equal((ck.val_acc1_list as number[]).length, 3);
  const sd = io.stripPrefix(io.asStateDict(ck.model_state_dict));
  assert.ok(Object.keys(io.asStateDict(ck.model_state_dict)).every((k) => k.startsWith('module.')));
  assert.deepEqual(sd['fc.weight']!.shape, [3, 512]);
  const params = Object.keys(tc).filter((k) => !k.startsWith('fc.') && !/running_|num_batches/.test(k));
  for (const k of params) assert.ok(torch.equal(tc[k]!, sd[k]!), `${k} unchanged in the linear probe`);
  // the head trained: the same seed with --epochs 0 saves the fresh head as initialised
  const init = join(root, 'probe-init');
  const r0 = awty(base(init, ['--freeze-trunk', '--epochs', '0']));
  assert.equal(r0.status, 0, r0.stderr + r0.stdout);
  const sd0 = await loadSd(await onlyTar(init));
  assert.deepEqual(compare(tc, sd0).changed, [], 'no training, nothing moves');
  assert.ok(!torch.equal(sd0['fc.weight']!, sd['fc.weight']!), 'fc.weight trained');
  assert.ok(!torch.equal(sd0['fc.bias']!, sd['fc.bias']!), 'fc.bias trained');
  const stats = Object.keys(tc).filter((k) => /running_(mean|var)/.test(k));
  assert.ok(stats.some((k) => !torch.equal(tc[k]!, sd[k]!)), 'BN running stats move (train mode, as the original)');
  // only fc in the optimizer
  const opt = ck.optimizer_state_dict as { state: Map<number, unknown> };
  assert.equal(opt.state.size, 2);
  const results = await readResults(out);
  assert.equal(results.runs.length, 1);
  assert.equal(results.runs[0]!.condition, 'linear-probe');
  assert.equal(results.runs[0]!.hours, 10);
  const json = JSON.parse(await readFile(results.runs[0]!.source!, 'utf8')) as { valTop1PerEpoch: number[]; top1: number };
  assert.equal(json.valTop1PerEpoch.length, 3);
  assert.equal(json.top1, json.valTop1PerEpoch[2]);
});

test('linear probe with --bn-eval keeps every trunk tensor, BN running stats included, bitwise unchanged', async () => {
  const out = join(root, 'probe-bn');
  const r = awty(base(out, ['--freeze-trunk', '--bn-eval', '--epochs', '2']));
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const { changed } = compare(await loadSd(ckptPath), await loadSd(await onlyTar(out)));
  assert.deepEqual(changed, []);
});

test('full fine-tuning changes the trunk and learns the colour classes above chance; second run at other hours gives a fit', async () => {
  const out = join(root, 'full');
  // the original's default lr (0.001): at 0.003 Adam's first steps on a random trunk with 6-image
  // batches throw the weights far from what BatchNorm's running statistics describe (training loss
  // jumps to ~7, validation loss to ~100 in eval mode) and every validation image lands in one class
  const r = awty(base(out, ['--lr', '0.001', '--hours', '100', '--condition', 'toy', '--schedule', '2']));
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const { changed } = compare(await loadSd(ckptPath), await loadSd(await onlyTar(out)));
  assert.ok(changed.some((k) => k.endsWith('conv1.weight')), 'trunk weights change');
  const res = await readResults(out);
  process.stdout.write(`# toy fine-tuning: val top-1 per epoch ${(JSON.parse(await readFile(res.runs[0]!.source!, 'utf8')) as { valTop1PerEpoch: number[] }).valTop1PerEpoch.join(', ')}\n`);
  assert.ok(res.runs[0]!.top1 > 100 / 3 + 1, `val top-1 ${res.runs[0]!.top1} above chance`);
  // another run of the same condition at other hours (1 epoch) next to it: awty figure1 fits the two
  const r2 = awty(base(out, ['--lr', '0.001', '--hours', '1000', '--condition', 'toy', '--epochs', '1', '--frac-retained', '0.5']));
  assert.equal(r2.status, 0, r2.stderr + r2.stdout);
  const fig = spawnSync(process.execPath, [mainJs, 'figure1', '--results', out, '--bootstrap', '0', '--json', '--out', join(root, 'fig')], { encoding: 'utf8' });
  assert.equal(fig.status, 0, fig.stderr);
  const a = JSON.parse(fig.stdout) as unknown;
  assert.match(JSON.stringify(a), /"toy"/);
  assert.match(JSON.stringify(a), /slope/i);
});

test('--frac-retained trains on exactly floor(frac x N) images (numpy-seeded subset)', () => {
  const out = join(root, 'few');
  // -b 4: batches of 4 and 3 (with -b 6 the last batch would be one image at 1x1, which BatchNorm refuses in training, as PyTorch does)
  const r = awty(base(out, ['--frac-retained', '0.4', '--epochs', '1', '--seed', '3', '-b', '4']));
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.equal(fewShotIndices(18, 0.4, 3).length, 7);
  assert.match(r.stdout, /training on 7 of 18 images/);
  assert.match(r.stdout, /epoch 0: trained on 7 images/);
});

test('a checkpoint without a run record needs --hours (clear message before any training); with a record the hours come from it', async () => {
  const noHours = awty(base(join(root, 'nohours')).filter((a, i, all) => a !== '--hours' && all[i - 1] !== '--hours'));
  assert.equal(noHours.status, 2, noHours.stderr + noHours.stdout);
  assert.match(noHours.stderr, /no run record .*tc\.tar\.json.*--hours/);
  assert.doesNotMatch(noHours.stdout, /Epoch: \[/);
  // a sidecar as train-tc writes it: the results file takes its hours and TC provenance
  const withRecord = join(root, 'tc-rec.tar');
  await writeFile(withRecord, await readFile(ckptPath));
  const record = { schema: io.RUN_RECORD_SCHEMA, status: 'complete', checkpoint: 'tc-rec.tar', hours: 0.0123, hoursMethod: 'test', epochs: [],
    config: { classFraction: 0.5, seed: 4, model: 'resnet18' }, data: { episodes: 5 } };
  await writeFile(io.runRecordPath(withRecord), JSON.stringify(record));
  const out = join(root, 'rec');
  const r = awty(base(out, ['--epochs', '1']).filter((a, i, all) => a !== '--hours' && all[i - 1] !== '--hours').map((a) => (a === ckptPath ? withRecord : a)));
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const res = await readResults(out);
  assert.equal(res.runs[0]!.hours, 0.0123);
  const json = JSON.parse(await readFile(res.runs[0]!.source!, 'utf8')) as Record<string, unknown>;
  assert.equal(json.tcSeed, 4);
  assert.equal(json.classFraction, 0.5);
  assert.equal(json.episodes, 5);
  assert.equal(json.complete, true);
  assert.equal((json.trainLossPerEpoch as number[]).length, 1);
  assert.equal((json.config as Record<string, unknown>).epochs, 1);
  assert.ok(typeof (json.versions as Record<string, string>).libtorch === 'string');
});

test('bad input: missing traindir, wrong --n_out, corrupt checkpoint -> non-zero exit with a clear message', async () => {
  const out = join(root, 'bad');
  const missing = awty(['finetune', '--imgnet-traindir', join(root, 'nope'), '--imgnet-valdir', val, '--model', 'resnet18', '--workers', '0']);
  assert.notEqual(missing.status, 0);
  assert.match(missing.stderr, /nope/);
  const wrong = awty(base(out).map((a) => (a === '5' ? '7' : a)));
  assert.notEqual(wrong.status, 0);
  assert.match(wrong.stderr, /5-way head.*--n_out is 7.*--n_out 5/);
  const corrupt = join(root, 'corrupt.tar');
  const bytes = await readFile(ckptPath);
  await writeFile(corrupt, bytes.subarray(0, Math.floor(bytes.length / 2)));
  const c = awty(base(out).map((a) => (a === ckptPath ? corrupt : a)));
  assert.notEqual(c.status, 0);
  assert.match(c.stderr, /corrupt\.tar/);
});
