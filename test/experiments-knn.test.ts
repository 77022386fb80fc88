// kNN evaluation equals DINO's knn_classifier (eval_knn.py, run here in PyTorch) on the same
// features: top-1, top-5 and every prediction; features come from a frozen trunk in loader order.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import * as torch from '../src/torch/index.js';
import * as models from '../src/models/index.js';
import { DataLoader, ImageFolder, noAugmentation } from '../src/data/index.js';
import { extractFeatures, knnClassifier } from '../src/experiments/knn.js';
import { hasOracle, runPython, tmpdir, writeDump } from './helpers/oracle.js';

const tmp = tmpdir('awty-knn-');
after(() => rmSync(tmp, { recursive: true, force: true }));

const DINO = `
import torch.nn.functional as F
d = load('feats')
train_features = F.normalize(d['train'], dim=1)
test_features = F.normalize(d['test'], dim=1)
train_labels = d['ytrain']; test_labels = d['ytest']
k, T, num_classes = int(os.environ['K']), float(os.environ['T']), int(os.environ['C'])
# DINO eval_knn.py knn_classifier, as it is (train_features passed transposed)
train_features = train_features.t()
top1, top5, total = 0.0, 0.0, 0
num_test_images, num_chunks = test_labels.shape[0], 100
imgs_per_chunk = num_test_images // num_chunks if num_test_images >= num_chunks else 4
retrieval_one_hot = torch.zeros(k, num_classes)
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
    top5 = top5 + correct.narrow(1, 0, min(5, k)).sum().item()
    total += targets.size(0)
    preds.append(predictions[:, 0])
print(json.dumps({'top1': top1 * 100.0 / total, 'top5': top5 * 100.0 / total, 'pred': torch.cat(preds).tolist()}))
`;

test('knnClassifier equals DINO\'s knn_classifier on the same features (k 5 and 20, T 0.07 and 0.5)', { skip: !hasOracle() && 'Debian python3-torch not installed' }, () => {
  torch.manualSeed(11);
  const centres = torch.randn(7, 16).mul(2);
  const ytrain = torch.randint(0, 7, [60]);
  const ytest = torch.randint(0, 7, [23]);
  const train = centres.indexSelect(0, ytrain).add(torch.randn(60, 16).mul(1.5)).keep();
  const test = centres.indexSelect(0, ytest).add(torch.randn(23, 16).mul(1.5)).keep();
  ytrain.keep();
  ytest.keep();
  writeDump(tmp, 'feats', { train, test, ytrain, ytest });
  for (const [k, T] of [[5, 0.07], [20, 0.5]] as const) {
    const ref = JSON.parse(runPython(DINO, tmp, { K: String(k), T: String(T), C: '7' })) as { top1: number; top5: number; pred: number[] };
    const r = knnClassifier(train, ytrain, test, ytest, { k, temperature: T, numClasses: 7, chunk: 4 });
    assert.equal(r.top1, ref.top1);
    assert.equal(r.top5, ref.top5);
    assert.deepEqual([...r.predictions], ref.pred);
    assert.ok(r.top1 > 100 / 7, `above chance: ${r.top1}`);
  }
  assert.throws(() => knnClassifier(train, ytrain, test, ytest, { k: 61 }), /k = 61 is larger than the 60 training features/);
  assert.throws(() => knnClassifier(train, ytrain, test.narrow(1, 0, 8), ytest), /train features are 16-d but test features 8-d/);
  for (const t of [train, test, ytrain, ytest, centres]) t.dispose();
});

test('extractFeatures: a frozen ViT trunk\'s features of every image in loader order, with their labels', async () => {
  const root = path.join(tmp, 'imgs');
  for (let c = 0; c < 2; c++) {
    mkdirSync(path.join(root, `c${c}`), { recursive: true });
    for (let i = 0; i < 3; i++) await sharp(Buffer.alloc(32 * 32 * 3, 30 + 90 * c + 20 * i), { raw: { width: 32, height: 32, channels: 3 } }).png().toFile(path.join(root, `c${c}`, `${i}.png`));
  }
  const ds = await ImageFolder.open(root, { cachePath: false });
  const loader = new DataLoader(ds, { batchSize: 4, transform: noAugmentation(), workers: 0, labels: 'int64' });
  const model = models.create('vit_micro_8', { imageSize: 32, numClasses: 2 });
  try {
    const { features, labels } = await extractFeatures(model, loader, { device: 'cpu' });
    assert.deepEqual(features.shape, [6, 64]);
    assert.deepEqual(labels.tolist(), [0, 0, 0, 1, 1, 1]);
    assert.equal(model.training, false);
    const r = knnClassifier(features, labels, features, labels, { k: 1 });
    assert.equal(r.top1, 100); // each image's nearest neighbour is itself
    features.dispose();
    labels.dispose();
  } finally {
    model.dispose();
    await loader.close();
  }
});
