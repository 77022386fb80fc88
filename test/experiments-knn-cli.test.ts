// awty knn end to end on a tiny "ImageNet" (6 colour classes of 32x32 JPEGs) and a tiny TC checkpoint
// saved by awty itself (resnet18 with a 5-way head, `module.` keys, a run-record sidecar as train-tc
// writes): the features awty dumps (DINO's --dump_features files) go through DINO's knn_classifier in
// PyTorch, and its top-1 / top-5 and every prediction equal awty's; the results file takes the hours
// from the record, feeds `awty figure1 --results` as its own condition; bad input fails clearly.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import * as torch from '../src/torch/index.js';
import * as models from '../src/models/index.js';
import * as io from '../src/io/index.js';
import { fewShotIndices } from '../src/data/index.js';
import { knnClassifier } from '../src/experiments/knn.js';
import { readResults } from '../src/scaling/results.js';
import { hasOracle, runPython } from './helpers/oracle.js';
import { writeNoisyImage } from './helpers/images.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const mainJs = join(repo, 'dist', 'src', 'cli', 'main.js');
const root = await mkdtemp(join(tmpdir(), 'awty-knn-cli-'));
after(() => rm(root, { recursive: true, force: true }));

const train = join(root, 'train');
const val = join(root, 'val');
const ckptPath = join(root, 'tc.tar');
// three pairs of near colours under strong noise: not every image's neighbours are of its class
const COLOURS = [[190, 70, 60], [165, 85, 70], [70, 180, 70], [85, 160, 90], [60, 70, 190], [85, 80, 170]];
const N_TRAIN = 4;
const N_VAL = 2;

const jpeg = (file: string, rgb: number[], seed: number): Promise<void> => writeNoisyImage(file, rgb, seed, { spread: 80 });

before(async () => {
  for (const [dir, n] of [[train, N_TRAIN], [val, N_VAL]] as const) {
    for (let c = 0; c < COLOURS.length; c++) {
      const d = join(dir, `n0000000${c}`);
      await mkdir(d, { recursive: true });
      for (let i = 0; i < n; i++) await jpeg(join(d, `img_${i}.JPEG`), COLOURS[c]!, c * 100 + i + (dir === val ? 50 : 0));
    }
  }
  torch.manualSeed(7);
  const m = models.create('resnet18', { numClasses: 5 });
  await io.save({ acc1_list: [1.5], model_state_dict: io.modelStateDict(m, { prefix: 'module.' }) }, ckptPath);
  m.dispose();
  // the sidecar train-tc writes beside its checkpoints: the hours of video come from it
  const record = { schema: io.RUN_RECORD_SCHEMA, status: 'complete', checkpoint: 'tc.tar', hours: 0.5, hoursMethod: 'test', epochs: [],
    config: { classFraction: 0.25, seed: 4, model: 'resnet18' }, data: { episodes: 3 } };
  await writeFile(io.runRecordPath(ckptPath), JSON.stringify(record));
});

function awty(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [mainJs, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const base = (out: string, extra: string[] = []): string[] => ['knn', '--imgnet-traindir', train, '--imgnet-valdir', val,
  '--model', 'resnet18', '--n_out', '5', '--resume', ckptPath, '--image-size', '32', '-b', '5', '--workers', '0',
  '--threads', String(torch.getNumThreads()), '--out', out, ...extra];

// DINO eval_knn.py's knn_classifier as it is, on the files its --dump_features writes (torch.load),
// with imgs_per_chunk = awty's chunk (DINO's num_test_images // 100 is 0 below 100 test images);
// the top-1 class of every test image is collected besides
const DINO = `
import torch
d = os.environ['DUMP']
train_features = torch.load(os.path.join(d, 'trainfeat.pth'))
test_features = torch.load(os.path.join(d, 'testfeat.pth'))
train_labels = torch.load(os.path.join(d, 'trainlabels.pth'))
test_labels = torch.load(os.path.join(d, 'testlabels.pth'))
k, T, num_classes, imgs_per_chunk = int(os.environ['K']), float(os.environ['T']), int(os.environ['C']), int(os.environ['CHUNK'])
top1, top5, total = 0.0, 0.0, 0
train_features = train_features.t()
num_test_images = test_labels.shape[0]
retrieval_one_hot = torch.zeros(k, num_classes).to(train_features.device)
preds = []
for idx in range(0, num_test_images, imgs_per_chunk):
    features = test_features[idx : min((idx + imgs_per_chunk), num_test_images), :]
    targets = test_labels[idx : min((idx + imgs_per_chunk), num_test_images)]
    batch_size = targets.shape[0]
    similarity = torch.mm(features, train_features)
    distances, indices = similarity.topk(k, largest=True, sorted=True)
    candidates = train_labels.view(1, -1).expand(batch_size, -1)
    retrieved_neighbors = torch.gather(candidates, 1, indices)
    retrieval_one_hot.resize_(batch_size * k, num_classes).zero_()
    retrieval_one_hot.scatter_(1, retrieved_neighbors.view(-1, 1), 1)
    distances_transform = distances.clone().div_(T).exp_()
    probs = torch.sum(torch.mul(retrieval_one_hot.view(batch_size, -1, num_classes), distances_transform.view(batch_size, -1, 1)), 1)
    _, predictions = probs.sort(1, True)
    correct = predictions.eq(targets.data.view(-1, 1))
    top1 = top1 + correct.narrow(1, 0, 1).sum().item()
    top5 = top5 + correct.narrow(1, 0, min(5, k)).sum().item()  # top5 does not make sense if k < 5
    total += targets.size(0)
    preds.append(predictions[:, 0])
top1 = top1 * 100.0 / total
top5 = top5 * 100.0 / total
norms = [float(train_features.t().norm(dim=1).sub(1).abs().max()), float(test_features.norm(dim=1).sub(1).abs().max())]
print(json.dumps({'top1': top1, 'top5': top5, 'pred': torch.cat(preds).tolist(), 'shapes': [list(train_features.shape), list(test_features.shape)],
                  'ytrain': train_labels.tolist(), 'ytest': test_labels.tolist(), 'norms': norms}))
`;

interface Dino { top1: number; top5: number; pred: number[]; shapes: number[][]; ytrain: number[]; ytest: number[]; norms: number[] }

async function loadDump(dir: string): Promise<Record<string, torch.Tensor>> {
  const out: Record<string, torch.Tensor> = {};
  for (const f of ['trainfeat', 'testfeat', 'trainlabels', 'testlabels']) out[f] = (await io.load(join(dir, `${f}.pth`))) as torch.Tensor;
  return out;
}

const cases: { name: string; extra: string[]; k: number; T: number; condition: string; trainImages: number }[] = [
  { name: 'defaults (k 20, T 0.07)', extra: [], k: 20, T: 0.07, condition: 'knn-k20', trainImages: 24 },
  { name: 'k 3, T 0.5, --frac-retained 0.5 --seed 3', extra: ['--k', '3', '--temperature', '0.5', '--frac-retained', '0.5', '--seed', '3'], k: 3, T: 0.5, condition: 'knn-k3-T0.5-frac0.5', trainImages: 12 },
];

for (const c of cases) {
  test(`awty knn ${c.name}: top-1, top-5 and predictions equal DINO's knn_classifier on the dumped features`, { skip: !hasOracle() && 'Debian python3-torch not installed' }, async () => {
    const tag = c.condition;
    const out = join(root, `out-${tag}`);
    const dump = join(root, `dump-${tag}`);
    const r = awty(base(out, [...c.extra, '--dump-features', dump]));
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, new RegExp(`neighbours: ${c.trainImages} of 24 training images`));
    assert.match(r.stdout, /train features: \d+ x 512/);
    const res = await readResults(out);
    assert.equal(res.runs.length, 1);
    const run = res.runs[0]!;
    assert.equal(run.condition, c.condition);
    assert.equal(run.hours, 0.5); // from the run record beside the checkpoint
    // named as finetune names its outputs: source checkpoint, condition, model, frac, seed, hours
    assert.equal(basename(run.source!), `IMGNET_tc_${c.condition}_resnet18_${c.trainImages === 24 ? '1.0' : '0.5'}_${c.extra.includes('--seed') ? 3 : 1}_0.5h.json`);
    const json = JSON.parse(await readFile(run.source!, 'utf8')) as Record<string, unknown>;
    const config = json.config as Record<string, unknown>;
    assert.equal(json.trainImages, c.trainImages);
    assert.equal(json.tcSeed, 4);
    assert.equal(json.episodes, 3);
    assert.equal(config.k, c.k);
    assert.equal(config.temperature, c.T);
    assert.match(r.stdout, new RegExp(`${c.k}-NN classifier result: Top1: ${run.top1}, Top5: ${run.top5}`));

    const ref = JSON.parse(runPython(DINO, root, { DUMP: dump, K: String(c.k), T: String(c.T), C: '6', CHUNK: String(config.chunk) })) as Dino;
    assert.deepEqual(ref.shapes, [[512, c.trainImages], [12, 512]]);
    assert.ok(ref.norms.every((e) => e < 1e-5), `dumped features are L2-normalised: ${ref.norms.join(', ')}`);
    assert.deepEqual(ref.ytest, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
    // the neighbours are finetune's few-shot subset, in folder order
    const subset = [...fewShotIndices(24, c.extra.includes('--frac-retained') ? 0.5 : 1, c.extra.includes('--seed') ? 3 : 1)].sort((a, b) => a - b);
    assert.deepEqual(ref.ytrain, subset.map((i) => Math.floor(i / N_TRAIN)));
    assert.equal(run.top1, ref.top1);
    assert.equal(run.top5, ref.top5);
    // the library function on the same (dumped) tensors: the predictions, one by one
    const d = await loadDump(dump);
    try {
      const lib = knnClassifier(d.trainfeat!, d.trainlabels!, d.testfeat!, d.testlabels!, { k: c.k, temperature: c.T, numClasses: 6, normalized: true, chunk: config.chunk as number });
      assert.deepEqual([...lib.predictions], ref.pred);
      assert.equal(lib.top1, ref.top1);
      assert.equal(lib.top5, ref.top5);
    } finally {
      for (const t of Object.values(d)) t.dispose();
    }
    process.stdout.write(`# ${c.condition}: top-1 ${run.top1}, top-5 ${run.top5}, predictions ${ref.pred.join(' ')}\n`);
    // chance is 100/6; colour classes are easy even for a random trunk
    assert.ok(run.top1 > 100 / 6 + 10, `top-1 ${run.top1} above chance`);
  });
}

test('awty knn results at two hours (record and --hours), an earlier result kept unless --overwrite, a ViT trunk: awty figure1 --results reads knn-k5 as its own condition', async () => {
  const out = join(root, 'fig-results');
  const a = awty(base(out, ['--k', '5']));
  assert.equal(a.status, 0, a.stderr + a.stdout);
  const b = awty(base(out, ['--k', '5', '--hours', '50']));
  assert.equal(b.status, 0, b.stderr + b.stdout);
  assert.match(b.stderr, /--hours 50 overrides the 0.5 hours recorded/);
  // an earlier run's results file is kept (exit 2 before any work) unless --overwrite
  const again = awty(base(out, ['--k', '5']));
  assert.equal(again.status, 2, again.stderr + again.stdout);
  assert.match(again.stderr, /IMGNET_tc_knn-k5_resnet18_1\.0_1_0\.5h\.json exists .*--overwrite/);
  assert.doesNotMatch(again.stdout, /train features/);
  const replaced = awty(base(out, ['--k', '5', '--overwrite']));
  assert.equal(replaced.status, 0, replaced.stderr + replaced.stdout);
  // a ViT trunk from random weights (finetune's --resume ''), with the hours given
  const v = awty(['knn', '--imgnet-traindir', train, '--imgnet-valdir', val, '--model', 'vit_micro_8', '--image-size', '32', '-b', '8',
    '--workers', '0', '--k', '5', '--hours', '5', '--out', out, '--threads', '1']);
  assert.equal(v.status, 0, v.stderr + v.stdout);
  assert.match(v.stdout, /train features: 24 x 64/);
  const res = await readResults(out);
  assert.deepEqual(res.runs.map((r) => `${r.condition}@${r.hours}`).sort(), ['knn-k5@0.5', 'knn-k5@5', 'knn-k5@50']);
  const fig = spawnSync(process.execPath, [mainJs, 'figure1', '--results', out, '--bootstrap', '0', '--json', '--out', join(root, 'fig')], { encoding: 'utf8' });
  assert.equal(fig.status, 0, fig.stderr);
  const j = JSON.stringify(JSON.parse(fig.stdout) as unknown);
  assert.match(j, /"knn-k5"/);
  assert.match(j, /slope/i);
});

test('bad input: missing folders, --k < 1 or larger than the training set, a foreign dump file -> exit 2 naming the thing', async () => {
  const out = join(root, 'bad');
  const missing = awty(base(out).map((a) => (a === train ? join(root, 'nope') : a)));
  assert.equal(missing.status, 2, missing.stderr);
  assert.match(missing.stderr, /--imgnet-traindir .*nope does not exist or is not a folder/);
  const missingVal = awty(base(out).map((a) => (a === val ? join(root, 'nope-val') : a)));
  assert.equal(missingVal.status, 2, missingVal.stderr);
  assert.match(missingVal.stderr, /--imgnet-valdir .*nope-val does not exist/);
  const zero = awty(base(out, ['--k', '0']));
  assert.equal(zero.status, 2, zero.stderr);
  assert.match(zero.stderr, /--k must be a positive integer, got 0/);
  const frac = awty(base(out, ['--k', '2.5']));
  assert.equal(frac.status, 2, frac.stderr);
  assert.match(frac.stderr, /--k <n>' argument '2\.5' is invalid\. Expected an integer/);
  const big = awty(base(out, ['--k', '25']));
  assert.equal(big.status, 2, big.stderr);
  assert.match(big.stderr, /--k 25 is larger than the training set: 24 image\(s\) of .*train/);
  const bigSubset = awty(base(out, ['--frac-retained', '0.5']));
  assert.equal(bigSubset.status, 2, bigSubset.stderr);
  assert.match(bigSubset.stderr, /--k 20 is larger than the training set: 12 image\(s\) of .*train \(--frac-retained 0.5 of 24\)/);
  const temp = awty(base(out, ['--temperature', '0']));
  assert.equal(temp.status, 2, temp.stderr);
  assert.match(temp.stderr, /--temperature must be positive, got 0/);
  // a file the program did not write is never overwritten
  const dump = join(root, 'foreign-dump');
  await mkdir(dump, { recursive: true });
  await writeFile(join(dump, 'testfeat.pth'), 'not ours');
  const foreign = awty(base(out, ['--dump-features', dump]));
  assert.equal(foreign.status, 2, foreign.stderr);
  assert.match(foreign.stderr, /testfeat\.pth exists; give --overwrite/);
  assert.equal(await readFile(join(dump, 'testfeat.pth'), 'utf8'), 'not ours');
  const noResults = await readResults(out).catch(() => ({ runs: [] }));
  assert.equal(noResults.runs.length, 0, 'no results file from a failed run');
});
