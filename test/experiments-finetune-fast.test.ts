// The cheap evaluations of awty finetune on a tiny "ImageNet" (3 colour classes of 32x32 JPEGs, 6
// training and 3 validation images each) and a resnet18 TC checkpoint with its run record:
// `--freeze-trunk --cache-features` trains the head on features extracted once (validation transform,
// eval mode) and equals PyTorch training the same head (Linear, or --head-bn's BatchNorm1d + Linear)
// on the same features in the same batches with the same Adam and MultiStepLR; `--knn K` gives
// exactly awty knn's results file; bad combinations are usage errors (exit 2).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import * as torch from '../src/torch/index.js';
import * as nn from '../src/nn/index.js';
import * as models from '../src/models/index.js';
import * as io from '../src/io/index.js';
import { DataLoader, ImageFolder, SubsetRandomSampler, fewShotIndices, imagenetVal } from '../src/data/index.js';
import { extractFeatures } from '../src/experiments/knn.js';
import { readResults } from '../src/scaling/results.js';
import { hasOracle, readDump, runPython, writeDump } from './helpers/oracle.js';
import { writeNoisyImage } from './helpers/images.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const mainJs = join(repo, 'dist', 'src', 'cli', 'main.js');
const root = await mkdtemp(join(tmpdir(), 'awty-finetune-fast-'));
after(() => rm(root, { recursive: true, force: true }));

const train = join(root, 'train');
const val = join(root, 'val');
const ckptPath = join(root, 'tc.tar');
// two near colours and a far one under strong noise: neither the probe nor the kNN is perfect
const COLOURS = [[190, 70, 60], [165, 85, 70], [60, 70, 190]];
const N_TRAIN = 6;

before(async () => {
  for (const [dir, n] of [[train, N_TRAIN], [val, 3]] as const) {
    for (let c = 0; c < COLOURS.length; c++) {
      const d = join(dir, `n0000000${c}`);
      await mkdir(d, { recursive: true });
      for (let i = 0; i < n; i++) await writeNoisyImage(join(d, `img_${i}.JPEG`), COLOURS[c]!, c * 100 + i + (dir === val ? 50 : 0), { spread: 90 });
    }
  }
  torch.manualSeed(5);
  const m = models.create('resnet18', { numClasses: 5 });
  await io.save({ acc1_list: [1.5], model_state_dict: io.modelStateDict(m, { prefix: 'module.' }) }, ckptPath);
  m.dispose();
  const record = { schema: io.RUN_RECORD_SCHEMA, status: 'complete', checkpoint: 'tc.tar', hours: 0.5, hoursMethod: 'test', epochs: [],
    config: { classFraction: 0.25, seed: 4, model: 'resnet18' }, data: { episodes: 3 } };
  await writeFile(io.runRecordPath(ckptPath), JSON.stringify(record));
});

function awty(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [mainJs, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const threads = String(torch.getNumThreads());
const finetune = (out: string, extra: string[]): string[] => ['finetune', '--imgnet-traindir', train, '--imgnet-valdir', val,
  '--image-size', '32', '--workers', '0', '--threads', threads, '-p', '1', '--out', out, ...extra];

async function checkpointOf(file: string): Promise<Record<string, torch.Tensor>> {
  const ck = (await io.load(file)) as Record<string, unknown>;
  return io.stripPrefix(io.asStateDict(ck.model_state_dict));
}

// PyTorch: the same head trained on the same features, batch by batch, as a linear probe does
const REFERENCE = `
import torch.nn as nn
d = load('probe')
spec = json.load(open(os.path.join(OUT, 'spec.json')))
feats, labels, vfeats, vlabels = d['feats'], d['labels'], d['vfeats'], d['vlabels']
lin = nn.Linear(feats.shape[1], spec['classes'])
with torch.no_grad():
    lin.weight.copy_(d['w0']); lin.bias.copy_(d['b0'])
head = nn.Sequential(nn.BatchNorm1d(feats.shape[1], affine=False, eps=1e-6), lin) if spec['headBn'] else lin
opt = torch.optim.Adam(head.parameters(), lr=spec['lr'], weight_decay=spec['wd'])
sched = torch.optim.lr_scheduler.MultiStepLR(opt, spec['schedule'], 0.2)
bs = spec['batchSize']
def top1(out, y): return float(out.argmax(1).eq(y).float().sum())
train_loss, train_top1, val_loss, val_top1 = [], [], [], []
for batches in spec['orders']:
    head.train()
    ls, a1, n = 0.0, 0.0, 0
    for rows in batches:
        idx = torch.tensor(rows, dtype=torch.long)
        x, y = feats[idx], labels[idx]
        out = head(x)
        loss = torch.nn.functional.cross_entropy(out, y)
        opt.zero_grad(); loss.backward(); opt.step()
        ls += loss.item() * len(rows); a1 += top1(out, y); n += len(rows)
    sched.step()
    train_loss.append(ls / n); train_top1.append(a1 * 100 / n)
    head.eval()
    ls, a1 = 0.0, 0.0
    with torch.no_grad():
        for s in range(0, vfeats.shape[0], bs):
            out = head(vfeats[s:s + bs]); y = vlabels[s:s + bs]
            ls += torch.nn.functional.cross_entropy(out, y).item() * y.shape[0]; a1 += top1(out, y)
    val_loss.append(ls / vfeats.shape[0]); val_top1.append(a1 * 100 / vfeats.shape[0])
res = {'w': lin.weight.detach(), 'b': lin.bias.detach()}
if spec['headBn']: res.update({'rm': head[0].running_mean, 'rv': head[0].running_var})
dump(res, 'ref')
print(json.dumps({'trainLoss': train_loss, 'trainTop1': train_top1, 'valLoss': val_loss, 'valTop1': val_top1}))
`;

interface Ref { trainLoss: number[]; trainTop1: number[]; valLoss: number[]; valTop1: number[] }

const maxAbs = (a: torch.Tensor, b: torch.Tensor): number => torch.tidy(() => a.sub(b).abs().max().item());

const probes = [
  { name: 'resnet18 TC trunk, Linear head', model: 'resnet18', trunk: ['--resume', ckptPath, '--n_out', '5'], headBn: false, hours: 0.5, source: 'tc' },
  { name: 'vit_micro_8 random trunk, --head-bn', model: 'vit_micro_8', trunk: ['--head-bn', '--hours', '2'], headBn: true, hours: 2, source: 'random' },
];

for (const p of probes) {
  test(`--cache-features (${p.name}): head weights and per-epoch metrics equal PyTorch training the same head on the same features`, { skip: !hasOracle() && 'Debian python3-torch not installed' }, async () => {
    const tag = p.model;
    const flags = ['--model', p.model, ...p.trunk, '--freeze-trunk', '--cache-features', '-b', '4', '--lr', '0.02', '--weight-decay', '0.001', '--schedule', '2'];
    // the head as initialised: the same run with no epochs (its checkpoint holds the trunk and the fresh head)
    const initOut = join(root, `init-${tag}`);
    const r0 = awty(finetune(initOut, [...flags, '--epochs', '0']));
    assert.equal(r0.status, 0, r0.stderr + r0.stdout);
    const out = join(root, `cached-${tag}`);
    const r = awty(finetune(out, [...flags, '--epochs', '3']));
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /--cache-features: 18 training and 9 validation images through the frozen trunk once/);
    assert.doesNotMatch(r.stdout, /Epoch: \[/, 'no image is read while the head trains');
    const name = `IMGNET_${p.source}_linear-probe-cached_${p.model}_1.0_1_${p.hours}h`;
    const initSd = await checkpointOf(join(initOut, `${name}.tar`));
    const sd = await checkpointOf(join(out, `${name}.tar`));
    const res = JSON.parse(await readFile(join(out, `${name}.json`), 'utf8')) as Record<string, unknown>;
    assert.equal(res.condition, 'linear-probe-cached');
    assert.equal(res.hours, p.hours);
    assert.equal((res.config as Record<string, unknown>).cacheFeatures, true);
    assert.deepEqual((res.featureCache as Record<string, unknown>).trainRows, 18);
    assert.equal((res.featureCache as Record<string, unknown>).transform, 'val: Resize(37) + CenterCrop(32)');

    // the features, computed here from the saved trunk: the validation transform on the training images, in folder order
    const headKey = p.model === 'resnet18' ? 'fc' : 'heads.head';
    const model = models.create(models.modelName(p.model), { numClasses: 3, imageSize: 32 });
    if (p.headBn) (model as models.VisionTransformer).setHeadNorm(new nn.BatchNorm1d(64, { affine: false, eps: 1e-6 }));
    model.loadStateDict(initSd);
    const trainSet = await ImageFolder.open(train, { cachePath: false });
    const valSet = await ImageFolder.open(val, { cachePath: false });
    const subset = Int32Array.from(fewShotIndices(trainSet.length, 1, 1)).sort();
    const transform = imagenetVal(37, 32);
    const tl = new DataLoader(trainSet, { batchSize: 4, workers: 0, labels: 'int64', sampler: { indices: () => subset }, transform });
    const vl = new DataLoader(valSet, { batchSize: 4, workers: 0, labels: 'int64', transform });
    const tr = await extractFeatures(model, tl, { device: 'cpu' });
    const va = await extractFeatures(model, vl, { device: 'cpu' });
    await Promise.all([tl.close(), vl.close()]);
    model.dispose();
    // the probe's batches: the subset sampler's order each epoch, in batches of 4 (the last one of 2)
    const rowOf = new Map([...tr.indices].map((idx, row) => [idx, row]));
    const sampler = new SubsetRandomSampler(fewShotIndices(trainSet.length, 1, 1), 1);
    const orders = [0, 1, 2].map((e) => {
      const order = [...sampler.indices(e)].map((i) => rowOf.get(i)!);
      return Array.from({ length: Math.ceil(order.length / 4) }, (_, b) => order.slice(4 * b, 4 * b + 4));
    });
    assert.deepEqual(orders[0]!.map((b) => b.length), [4, 4, 4, 4, 2]);
    await writeFile(join(root, 'spec.json'), JSON.stringify({ orders, classes: 3, lr: 0.02, wd: 0.001, schedule: [2], batchSize: 4, headBn: p.headBn }));
    writeDump(root, 'probe', { feats: tr.features, labels: tr.labels, vfeats: va.features, vlabels: va.labels,
      w0: initSd[`${headKey}.weight`]!, b0: initSd[`${headKey}.bias`]! });
    const ref = JSON.parse(runPython(REFERENCE, root)) as Ref;
    const refT = readDump(root, 'ref');
    try {
      // float32 through the same libtorch kernels: agreement to 1e-5 (absolute) on weights, 1e-5 (relative) on losses
      const dw = maxAbs(sd[`${headKey}.weight`]!, refT.w!);
      const db = maxAbs(sd[`${headKey}.bias`]!, refT.b!);
      process.stdout.write(`# ${p.name}: max |w - w_torch| ${dw.toExponential(2)}, |b - b_torch| ${db.toExponential(2)}; val top-1 ${ref.valTop1.join(', ')}\n`);
      assert.ok(dw <= 1e-5 && db <= 1e-5, `head equals PyTorch's: ${dw}, ${db}`);
      assert.ok(maxAbs(sd[`${headKey}.weight`]!, initSd[`${headKey}.weight`]!) > 1e-3, 'the head trained');
      if (p.headBn) {
        assert.ok(maxAbs(sd['heads.bn.running_mean']!, refT.rm!) <= 1e-5, 'head BatchNorm running mean');
        assert.ok(maxAbs(sd['heads.bn.running_var']!, refT.rv!) <= 1e-5, 'head BatchNorm running var');
      }
      const close = (a: number[], b: number[], what: string): void => {
        assert.equal(a.length, b.length, what);
        a.forEach((x, i) => assert.ok(Math.abs(x - b[i]!) <= 1e-5 * Math.max(1, Math.abs(b[i]!)), `${what}[${i}]: ${x} vs ${b[i]}`));
      };
      close(res.trainLossPerEpoch as number[], ref.trainLoss, 'train loss');
      close(res.valLossPerEpoch as number[], ref.valLoss, 'val loss');
      close(res.trainTop1PerEpoch as number[], ref.trainTop1, 'train top-1');
      close(res.valTop1PerEpoch as number[], ref.valTop1, 'val top-1');
      // the trunk was not touched (eval mode: BatchNorm statistics included)
      for (const [k, v] of Object.entries(initSd)) if (!k.startsWith(headKey) && !k.startsWith('heads.')) assert.ok(torch.equal(v, sd[k]!), `${k} unchanged`);
    } finally {
      for (const t of [...Object.values(refT), ...Object.values(initSd), ...Object.values(sd), tr.features, tr.labels, va.features, va.labels]) t.dispose();
    }
  });
}

test('--knn K equals awty knn on the same flags: the same results file (name, condition, top-1, top-5, neighbours), hours from the run record', async () => {
  const shared = ['--imgnet-traindir', train, '--imgnet-valdir', val, '--model', 'resnet18', '--n_out', '5', '--resume', ckptPath,
    '--image-size', '32', '-b', '5', '--workers', '0', '--threads', threads, '--frac-retained', '0.5', '--seed', '3'];
  const viaFinetune = join(root, 'knn-finetune');
  const viaKnn = join(root, 'knn-knn');
  const a = awty(['finetune', ...shared, '--knn', '3', '--freeze-trunk', '--epochs', '7', '--out', viaFinetune]);
  assert.equal(a.status, 0, a.stderr + a.stdout);
  assert.match(a.stdout, /--knn 3: k-nearest-neighbour evaluation/);
  assert.doesNotMatch(a.stdout, /Epoch: \[/);
  const b = awty(['knn', ...shared, '--k', '3', '--out', viaKnn]);
  assert.equal(b.status, 0, b.stderr + b.stdout);
  const [ra, rb] = [await readResults(viaFinetune), await readResults(viaKnn)];
  assert.equal(ra.runs.length, 1);
  assert.equal(rb.runs.length, 1);
  const [ja, jb] = await Promise.all([ra.runs[0]!, rb.runs[0]!].map(async (r) => JSON.parse(await readFile(r.source!, 'utf8')) as Record<string, unknown>));
  assert.equal(basename(ra.runs[0]!.source!), 'IMGNET_tc_knn-k3-frac0.5_resnet18_0.5_3_0.5h.json');
  assert.equal(basename(ra.runs[0]!.source!), basename(rb.runs[0]!.source!));
  for (const k of ['condition', 'hours', 'seed', 'top1', 'top5', 'trainImages', 'fracRetained', 'hoursFrom', 'tcSeed', 'episodes']) assert.deepEqual(ja[k], jb[k], k);
  assert.equal(ja.trainImages, 9);
  const line = /3-NN classifier result: Top1: [\d.]+, Top5: [\d.]+/;
  assert.equal(a.stdout.match(line)![0], b.stdout.match(line)![0]);
  process.stdout.write(`# finetune --knn 3 and awty knn --k 3: top-1 ${String(ja.top1)} and ${String(jb.top1)}\n`);
});

test('bad input: --cache-features without --freeze-trunk, --knn 0, --knn with --cache-features or --head-bn -> exit 2 naming the flags, before any work', () => {
  const out = join(root, 'bad');
  const base = ['--model', 'resnet18', '--n_out', '5', '--resume', ckptPath, '-b', '4', '--epochs', '1'];
  const cases: [string[], RegExp][] = [
    [['--cache-features'], /--cache-features needs --freeze-trunk/],
    [['--cache-features', '--freeze-trunk', '--strong-augment'], /--cache-features extracts every image once without augmentation; --strong-augment cannot apply/],
    [['--knn', '0'], /--knn must be a positive integer .*got 0/],
    [['--knn', '3', '--freeze-trunk', '--cache-features'], /--knn and --cache-features are two different evaluations/],
    [['--knn', '3', '--head-bn'], /--head-bn is a trained head; --knn trains none/],
    [['--knn', '19'], /--k 19 is larger than the training set: 18 image\(s\)/],
  ];
  for (const [extra, msg] of cases) {
    const r = awty(finetune(out, [...base, ...extra]));
    assert.equal(r.status, 2, `${extra.join(' ')}: ${r.stderr}${r.stdout}`);
    assert.match(r.stderr, msg);
    assert.doesNotMatch(r.stdout, /Epoch: \[|train features|through the frozen trunk once/);
  }
  assert.ok(!existsSync(out) || spawnSync('ls', [out], { encoding: 'utf8' }).stdout.trim() === '', 'nothing written');
});
