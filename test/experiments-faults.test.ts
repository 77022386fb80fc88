// train-tc and finetune under faults: an output folder that cannot be written is found before any
// work, a corrupt JPEG stops the run naming it (and how to skip it) or is skipped, duplicate data
// roots and a class fraction that keeps no episode are refused with the real cause.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { main as trainTc, TC_DEFAULTS, type TcOptions } from '../src/experiments/tc.js';
import { main as finetune } from '../src/experiments/finetune.js';
import { tmpdir } from './helpers/oracle.js';

const tmp = tmpdir('awty-exp-faults-');
const data = path.join(tmp, 'data');
const imgnet = path.join(tmp, 'imgnet');
after(() => rmSync(tmp, { recursive: true, force: true }));

async function jpeg(file: string, rgb: [number, number, number]): Promise<void> {
  const px = Buffer.alloc(32 * 32 * 3);
  for (let k = 0; k < px.length; k++) px[k] = rgb[k % 3]!;
  await sharp(px, { raw: { width: 32, height: 32, channels: 3 } }).jpeg({ quality: 90 }).toFile(file);
}

before(async () => {
  for (let c = 0; c < 4; c++) {
    const d = path.join(data, `class_${String(c).padStart(4, '0')}`);
    mkdirSync(d, { recursive: true });
    for (let i = 0; i < 2; i++) await jpeg(path.join(d, `img_${String(i).padStart(4, '0')}.jpeg`), [60 * c, 200 - 40 * c, 30]);
  }
  // one corrupt frame: a JPEG header and nothing else
  writeFileSync(path.join(data, 'class_0002', 'img_0002.jpeg'), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46]));
  for (const split of ['train', 'val']) {
    for (let c = 0; c < 2; c++) {
      const d = path.join(imgnet, split, `n0${c}`);
      mkdirSync(d, { recursive: true });
      for (let i = 0; i < 2; i++) await jpeg(path.join(d, `i${i}.JPEG`), [200 * c, 50, 100]);
    }
  }
  writeFileSync(path.join(imgnet, 'train', 'n01', 'bad.JPEG'), 'not a jpeg');
});

const tc = (o: Partial<TcOptions>): TcOptions => ({
  ...TC_DEFAULTS, dataDirs: [data], model: 'resnet18', nOut: 4, batchSize: 3, workers: 0, imageSize: 32, threads: 1, epochs: 1,
  printFreq: 100, out: path.join(tmp, 'out'), log: () => undefined, ...o,
});

const ft = (extra: Record<string, unknown>): Parameters<typeof finetune>[0] => ({
  imgnetTraindir: path.join(imgnet, 'train'), imgnetValdir: path.join(imgnet, 'val'), model: 'resnet18', nOut: 2, imageSize: 32,
  batchSize: 4, epochs: 1, workers: 0, threads: 1, printFreq: 100, out: path.join(tmp, 'ft-out'), log: () => undefined, ...extra,
});

test('an unwritable --out is refused before any training (train-tc and finetune)', async () => {
  const file = path.join(tmp, 'a-file');
  writeFileSync(file, 'x');
  for (const [out, re] of [
    ['/proc/awty-x', /--out \/proc\/awty-x: cannot create the folder \/proc\/awty-x: \/proc does not accept new folders/],
    [path.join(file, 'sub'), /--out .*a-file\/sub: .*a part of the path is a file, not a folder \(ENOTDIR\)/],
  ] as const) {
    const lines: string[] = [];
    const t0 = Date.now();
    await assert.rejects(trainTc(tc({ out, log: (l) => lines.push(l) })), re);
    assert.deepEqual(lines.filter((l) => /^Epoch|^data:/.test(l)), [], 'no data was read, no epoch run');
    assert.ok(Date.now() - t0 < 5000);
    await assert.rejects(finetune(ft({ out, log: (l: string) => lines.push(l) })), re);
    assert.deepEqual(lines, [], 'finetune logged nothing: no data, no epoch');
  }
});

test('a corrupt JPEG: fail names it and says how to skip; skip trains on the others', async () => {
  await assert.rejects(trainTc(tc({ out: path.join(tmp, 'o1') })), (e: Error) => {
    assert.match(e.message, /cannot load image .*class_0002\/img_0002\.jpeg: .*rerun with --on-bad-image skip/);
    return true;
  });
  const r = await trainTc(tc({ out: path.join(tmp, 'o2'), onBadImage: 'skip' }));
  assert.equal(r.samples, 9);
  assert.equal(r.epochs[0]!.images, 8, 'the corrupt frame is left out');
  assert.equal(r.checkpoints.length, 1);
  await assert.rejects(finetune(ft({ out: path.join(tmp, 'f1') })), /cannot load image .*bad\.JPEG: .*--on-bad-image skip/);
  // batches of 4 over 5 images: one batch holds only the bad image and is left out whole
  const f = await finetune(ft({ out: path.join(tmp, 'f2'), onBadImage: 'skip' }));
  assert.equal(f.trainImages, 4);
  await assert.rejects(trainTc(tc({ onBadImage: 'maybe' as 'skip' })), /--on-bad-image must be fail or skip, got maybe/);
});

test('the same data root twice is refused (every frame would get two labels)', async () => {
  for (const dirs of [[data, data], [data, `${data}/`], [data, path.join(data, '..', 'data')]]) {
    await assert.rejects(trainTc(tc({ dataDirs: dirs })), /--data-dirs names the folder .*data twice .*every frame would get two labels/);
  }
});

test('a class fraction that keeps no episode says so', async () => {
  // the 'first' rule keeps round(4 x 0.1) = 0 episodes; the original's window keeps ceil(0.4) = 1
  await assert.rejects(trainTc(tc({ classFraction: 0.1, episodeSelection: 'first' })), /class fraction 0\.1 keeps 0 of the 4 episode folder\(s\)/);
});
