// The shared training loop takes its objective as a parameter: a custom loss and metrics are used,
// reported under their names, and averaged over images; the per-iteration hook sees every step.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import * as torch from '../src/torch/index.js';
import * as nn from '../src/nn/index.js';
import * as optim from '../src/optim/index.js';
import { DataLoader, ImageFolder, noAugmentation } from '../src/data/index.js';
import { trainOneEpoch, type Objective } from '../src/experiments/common.js';
import { tmpdir } from './helpers/oracle.js';

const tmp = tmpdir('awty-common-');
after(() => rmSync(tmp, { recursive: true, force: true }));

async function folder(): Promise<string> {
  const root = path.join(tmp, 'imgs');
  for (let c = 0; c < 2; c++) {
    const d = path.join(root, `c${c}`);
    mkdirSync(d, { recursive: true });
    for (let i = 0; i < 5; i++) {
      const px = Buffer.alloc(8 * 8 * 3, 40 + 100 * c + 10 * i);
      await sharp(px, { raw: { width: 8, height: 8, channels: 3 } }).png().toFile(path.join(d, `${i}.png`));
    }
  }
  return root;
}

test('trainOneEpoch: a custom objective gives the loss, its metrics by name, and the progress line', async () => {
  torch.manualSeed(0);
  const ds = await ImageFolder.open(await folder(), { cachePath: false });
  const loader = new DataLoader(ds, { batchSize: 4, transform: noAugmentation(), workers: 0, labels: 'int64' });
  const model = new nn.Sequential(new nn.Flatten(), new nn.Linear(3 * 8 * 8, 2));
  const opt = new optim.SGD(model.parameters(), { lr: 1e-3 });
  const seen: { loss: number; n: number; labelSum: number }[] = [];
  const steps: [number, number][] = [];
  const lines: string[] = [];
  // mean squared output: a loss with no labels, and a metric that is the sum of the labels of the batch
  const objective: Objective = {
    metricNames: ['LabelSum'],
    compute(m, images, labels) {
      const loss = m.forward(images).pow(2).mean();
      const labelSum = labels.float().sum().item();
      seen.push({ loss: loss.item(), n: images.shape[0]!, labelSum });
      return { loss, metrics: [labelSum] };
    },
  };
  try {
    const s = await trainOneEpoch(model, opt, loader, 0, { device: 'cpu', printFreq: 1, log: (l) => lines.push(l), objective, beforeStep: (i, n) => steps.push([i, n]) });
    assert.deepEqual(seen.map((x) => x.n), [4, 4, 2]);
    assert.deepEqual(steps, [[0, 3], [1, 3], [2, 3]]);
    const w = (f: (x: (typeof seen)[number]) => number): number => seen.reduce((a, x) => a + f(x) * x.n, 0) / 10;
    assert.ok(Math.abs(s.loss - w((x) => x.loss)) < 1e-9);
    assert.ok(Math.abs(s.metrics.LabelSum! - w((x) => x.labelSum)) < 1e-9);
    assert.deepEqual(Object.keys(s.metrics), ['LabelSum']);
    assert.ok(Number.isNaN(s.acc1) && Number.isNaN(s.acc5));
    assert.equal(s.images, 10);
    assert.equal(lines.length, 3);
    assert.match(lines[0]!, /^Epoch: \[0\]\[0\/3\] {2}Loss [\d.]+ \([\d.]+\) {2}LabelSum [\d.]+ \([\d.]+\) {2}/);
    // the loss fell: SGD on the mean square pulls the outputs towards 0
    const again = await trainOneEpoch(model, opt, loader, 1, { device: 'cpu', printFreq: 100, log: () => undefined, objective });
    assert.ok(again.loss < s.loss, `${again.loss} < ${s.loss}`);
    // the default objective is classification
    const cls = await trainOneEpoch(model, opt, loader, 2, { device: 'cpu', printFreq: 100, log: () => undefined });
    assert.deepEqual(Object.keys(cls.metrics), ['Acc@1', 'Acc@5']);
    assert.equal(cls.acc5, 100);
    assert.ok(cls.acc1 >= 0 && cls.acc1 <= 100);
  } finally {
    opt.dispose();
    model.dispose();
    await loader.close();
  }
});
