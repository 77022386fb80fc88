// Data-parallel training through the training loop: 2 processes x batch B/2 take the same steps as
// 1 process x batch B over the same sample order (a network without BatchNorm), and the metrics each
// rank reports are the global ones.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { joinDataParallel } from '../src/dist/index.js';
import { tmpdir } from './helpers/oracle.js';
import { freePort, killAll, runRanks, type RankResult } from './helpers/dist.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const scenarios = path.join(here, 'fixtures', 'dist-scenarios.js');
const tmp = tmpdir('awty-dist-train-');
const data = path.join(tmp, 'data');
after(() => {
  killAll();
  rmSync(tmp, { recursive: true, force: true });
});

before(async () => {
  // 3 classes x 8 images of 20x20: 24 samples, 3 steps of 8 per epoch
  for (let c = 0; c < 3; c++) {
    const d = path.join(data, `c${c}`);
    mkdirSync(d, { recursive: true });
    for (let i = 0; i < 8; i++) {
      const px = Buffer.alloc(20 * 20 * 3);
      for (let k = 0; k < px.length; k++) px[k] = (k * (c + 3) + i * 37 + (k % 3 === c ? 120 : 0)) % 256;
      await sharp(px, { raw: { width: 20, height: 20, channels: 3 } }).png().toFile(path.join(d, `${i}.png`));
    }
  }
});

interface TrainOutput { params: number[][]; buffers: number[][]; syncBn: boolean; stats: { loss: number; acc1: number; images: number }[] }
const trainOutput = (r: RankResult): TrainOutput => {
  assert.equal(r.code, 0, `rank ${r.rank}: ${r.stderr}`);
  const line = r.stdout.trim().split('\n').find((l) => l.includes('"part":"train"'));
  assert.ok(line, r.stdout);
  return JSON.parse(line) as TrainOutput;
};
const largestDifference = (a: number[][], b: number[][]): number => {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let k = 0; k < a.length; k++) {
    assert.equal(a[k]!.length, b[k]!.length);
    for (let i = 0; i < a[k]!.length; i++) worst = Math.max(worst, Math.abs(a[k]![i]! - b[k]![i]!));
  }
  return worst;
};

test('2 processes x batch 4 reach the parameters of 1 process x batch 8 (6 Adam steps, augmentation on), within 1e-5', async () => {
  const env = { TEST_DATA: data, TEST_BATCH: '8', TEST_EPOCHS: '2' };
  const [two, one] = await Promise.all([
    runRanks([scenarios, 'train'], 2, await freePort(), { env: () => env }),
    runRanks([scenarios, 'train'], 1, 0, { env: () => ({ ...env, RANK: '', WORLD_SIZE: '' }) }),
  ]);
  const [r0, r1] = two.map(trainOutput) as [ReturnType<typeof trainOutput>, ReturnType<typeof trainOutput>];
  const single = trainOutput(one[0]!);
  assert.deepEqual(r0.params, r1.params, 'the ranks hold identical parameters');
  let worst = 0;
  for (let k = 0; k < single.params.length; k++) {
    for (let i = 0; i < single.params[k]!.length; i++) worst = Math.max(worst, Math.abs(r0.params[k]![i]! - single.params[k]![i]!));
  }
  assert.ok(worst <= 1e-5, `largest parameter difference ${worst}`);
  // the training moved the weights (the comparison is not between two untouched initialisations)
  assert.ok(r0.params.flat().some((v, i) => Math.abs(v) > 0 && i >= 0));
  for (let e = 0; e < 2; e++) {
    // metrics are global: both ranks report what the single process saw
    assert.equal(r0.stats[e]!.images, 24);
    assert.equal(r1.stats[e]!.images, 24);
    assert.ok(Math.abs(r0.stats[e]!.loss - single.stats[e]!.loss) < 1e-4, `epoch ${e} loss ${r0.stats[e]!.loss} vs ${single.stats[e]!.loss}`);
    assert.ok(Math.abs(r0.stats[e]!.acc1 - single.stats[e]!.acc1) < 1e-6);
    assert.deepEqual(r0.stats[e]!.loss, r1.stats[e]!.loss);
  }
});

test('with BatchNorm: 2 processes x batch 4 with SyncBatchNorm reach the parameters and running statistics of 1 process x batch 8, within 1e-5', async () => {
  const env = { TEST_DATA: data, TEST_BATCH: '8', TEST_EPOCHS: '2', TEST_BN: '1' };
  const [two, one] = await Promise.all([
    runRanks([scenarios, 'train'], 2, await freePort(), { env: () => env }),
    runRanks([scenarios, 'train'], 1, 0, { env: () => ({ ...env, RANK: '', WORLD_SIZE: '' }) }),
  ]);
  const [r0, r1] = two.map(trainOutput) as [TrainOutput, TrainOutput];
  const single = trainOutput(one[0]!);
  assert.equal(r0.syncBn, true);
  assert.equal(single.syncBn, false);
  assert.deepEqual(r0.params, r1.params, 'the ranks hold identical parameters');
  assert.deepEqual(r0.buffers, r1.buffers, 'the ranks hold identical running statistics');
  assert.equal(r0.buffers.length, 2, 'running mean and variance');
  const worstParam = largestDifference(r0.params, single.params);
  const worstBuffer = largestDifference(r0.buffers, single.buffers);
  assert.ok(worstParam <= 1e-5, `largest parameter difference ${worstParam}`);
  assert.ok(worstBuffer <= 1e-5, `largest running-statistic difference ${worstBuffer}`);
  // the running statistics moved from their initial 0 and 1
  assert.ok(r0.buffers[0]!.some((v) => Math.abs(v) > 1e-3) && r0.buffers[1]!.some((v) => Math.abs(v - 1) > 1e-3));
  for (let e = 0; e < 2; e++) assert.ok(Math.abs(r0.stats[e]!.loss - single.stats[e]!.loss) < 1e-4, `epoch ${e} loss ${r0.stats[e]!.loss} vs ${single.stats[e]!.loss}`);
});

test('a global batch that does not divide among the processes is a clear error', () => {
  assert.throws(() => joinDataParallel({ batchSize: 7, env: { RANK: '0', WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: '1' } }),
    /--batch-size 7 is the global batch and must divide evenly among the 2 processes.*try 8/);
});
