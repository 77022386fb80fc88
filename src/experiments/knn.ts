// k-nearest-neighbour evaluation on frozen features, as DINO's eval_knn.py (knn_classifier) and
// solo-learn do it: features L2-normalised, cosine similarity to every training feature, the k most
// similar vote for their class with weight exp(similarity / T). Orders of magnitude cheaper than a
// trained linear probe; reported as its own condition.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import type { DataLoader } from '../data/index.js';
import { toTensors } from '../data/tensors.js';
import type { Classifier } from '../models/index.js';

export interface KnnResult { top1: number; top5: number; predictions: Int32Array }

/**
 * Top-1/top-5 accuracy (percent) of temperature-weighted kNN votes. Features are [N, D] float
 * tensors (normalised here), labels int64 [N]; test samples are processed in chunks of `chunk`.
 */
export function knnClassifier(trainFeatures: Tensor, trainLabels: Tensor, testFeatures: Tensor, testLabels: Tensor,
  o: { k?: number; temperature?: number; numClasses?: number; chunk?: number } = {}): KnnResult {
  const k = o.k ?? 20;
  const T = o.temperature ?? 0.07;
  const n = trainFeatures.shape[0]!;
  const m = testFeatures.shape[0]!;
  if (!(Number.isInteger(k) && k >= 1)) throw new Error(`kNN: k must be a positive integer, got ${k}`);
  if (k > n) throw new Error(`kNN: k = ${k} is larger than the ${n} training features`);
  if (!(T > 0)) throw new Error(`kNN: the temperature must be positive, got ${T}`);
  if (trainFeatures.shape[1] !== testFeatures.shape[1]) throw new Error(`kNN: train features are ${trainFeatures.shape[1]}-d but test features ${testFeatures.shape[1]}-d`);
  if (trainLabels.shape[0] !== n || testLabels.shape[0] !== m) throw new Error('kNN: one label per feature row is needed');
  const chunk = o.chunk ?? 256;
  return torch.noGrad(() => torch.tidy(() => {
    const numClasses = o.numClasses ?? Number(trainLabels.max().item()) + 1;
    const train = trainFeatures.div(trainFeatures.norm(2, 1, true).clamp(1e-12)).t();
    const test = testFeatures.div(testFeatures.norm(2, 1, true).clamp(1e-12));
    const trainY = trainLabels.long();
    const testY = testLabels.long();
    let top1 = 0;
    let top5 = 0;
    const predictions = new Int32Array(m);
    for (let s = 0; s < m; s += chunk) {
      torch.tidy(() => {
        const b = Math.min(chunk, m - s);
        const { values, indices } = test.narrow(0, s, b).mm(train).topk(k, 1, true, true);
        const neighbours = trainY.view([1, -1]).expand([b, n]).gather(1, indices);                  // [b, k]
        const votes = torch.oneHot(neighbours, numClasses).float().mul(values.div(T).exp().unsqueeze(-1)).sum(1); // [b, C]
        const order = votes.sort(1, true).indices;
        const correct = order.eq(testY.narrow(0, s, b).view([-1, 1]));
        top1 += correct.narrow(1, 0, 1).float().sum().item();
        top5 += correct.narrow(1, 0, Math.min(5, k, numClasses)).float().sum().item();
        predictions.set(order.select(1, 0).int().toTypedArray() as Int32Array, s);
      });
    }
    return { top1: (top1 * 100) / m, top5: (top5 * 100) / m, predictions };
  }));
}

/** The frozen trunk's features (input of the head) and labels of every sample of the loader, in its order, in eval mode. */
export async function extractFeatures(model: Classifier, loader: DataLoader, o: { device: torch.Device; epoch?: number }): Promise<{ features: Tensor; labels: Tensor }> {
  model.eval();
  const feats: Tensor[] = [];
  const labels: Tensor[] = [];
  try {
    for await (const batch of loader.epoch(o.epoch ?? 0)) {
      const [f, y] = torch.noGrad(() => torch.tidy(() => {
        const { images, labels: l } = toTensors(batch, { releaseTo: loader });
        const x = o.device === 'cpu' ? images : images.to(o.device);
        return [model.features(x).cpu().keep(), l.long().keep()];
      }));
      feats.push(f);
      labels.push(y);
    }
    return torch.tidy(() => ({ features: torch.cat(feats, 0).keep(), labels: torch.cat(labels, 0).keep() }));
  } finally {
    for (const t of [...feats, ...labels]) t.dispose();
  }
}
