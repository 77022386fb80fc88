// Datasets: ImageFolder against torchvision's, MultirootImageFolder against the original's rules,
// few-shot subsets against numpy, the compact index and its cache, and every bad-input case.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import {
  ImageFolder, MultirootImageFolder, FileIndex, fewShotIndices, fewShot, selectClasses, DataLoader, imagenetVal, Subset,
} from '../src/data/index.js';

let tmp = '';
let r1 = '', r2 = '';

function py(code: string, ...args: string[]): string {
  return execFileSync('/usr/bin/python3', ['-c', code, ...args], { maxBuffer: 1 << 28 }).toString();
}

async function jpeg(file: string, shade: number): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await fsp.writeFile(file, await sharp({ create: { width: 300, height: 260, channels: 3, background: { r: shade, g: 255 - shade, b: 60 } } }).jpeg().toBuffer());
}

before(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'awty-ds-'));
  r1 = path.join(tmp, 'root1');
  r2 = path.join(tmp, 'root2');
  // names of several kinds: numeric runs, gaps, ImageNet style, unpadded numbers, plain names, nested folders
  const files: string[] = [
    'class_0001/img_0000.jpeg', 'class_0001/img_0001.jpeg', 'class_0001/img_0002.jpeg', 'class_0001/img_0010.jpeg',
    'class_0000/img_0000.jpeg', 'class_0000/img_0001.jpeg', 'class_0000/a.PNG', 'class_0000/zeta.webp',
    'n01440764/n01440764_10026.JPEG', 'n01440764/n01440764_9.JPEG', 'n01440764/n01440764_100.JPEG', 'n01440764/x_9_y.jpg',
    'B_upper/sub/deep/3.jpg', 'B_upper/sub/1.jpg', 'B_upper/sub2/2.jpg', 'B_upper/0.jpg', 'B_upper/img_007.jpg',
  ];
  for (const [i, f] of files.entries()) {
    if (/\.png$/i.test(f)) {
      await fsp.mkdir(path.dirname(path.join(r1, f)), { recursive: true });
      await fsp.writeFile(path.join(r1, f), await sharp({ create: { width: 280, height: 300, channels: 4, background: { r: 9, g: 9, b: 9, alpha: 0.5 } } }).png().toBuffer());
    } else if (/\.webp$/i.test(f)) {
      await fsp.writeFile(path.join(r1, f), await sharp({ create: { width: 256, height: 256, channels: 3, background: '#808080' } }).webp().toBuffer());
    } else await jpeg(path.join(r1, f), i * 13);
  }
  await fsp.writeFile(path.join(r1, 'class_0000', 'notes.txt'), 'not an image');
  await fsp.writeFile(path.join(r1, 'README'), 'a file in the root is not a class');
  for (const f of ['class_0002/img_0000.jpeg', 'class_0002/img_0001.jpeg', 'class_0003/img_0000.jpeg', 'aaa/img_0000.jpeg']) await jpeg(path.join(r2, f), 99);
});

after(async () => {
  if (tmp) await fsp.rm(tmp, { recursive: true, force: true });
});

function samples(ds: { length: number; source(i: number): { path: string }; label(i: number): number }): [string, number][] {
  return Array.from({ length: ds.length }, (_, i) => [ds.source(i).path, ds.label(i)]);
}

test('ImageFolder lists the same samples and labels as torchvision\'s', async () => {
  const ds = await ImageFolder.open(r1, { cachePath: false });
  const tv = JSON.parse(py(`
import sys, json, torchvision
d = torchvision.datasets.ImageFolder(sys.argv[1])
print(json.dumps({'classes': d.classes, 'samples': d.samples}))`, r1)) as { classes: string[]; samples: [string, number][] };
  assert.deepEqual(ds.classes, tv.classes);
  assert.deepEqual(samples(ds), tv.samples);
});

test("MultirootImageFolder with selection 'first' keeps the first round(N x fraction) sorted full paths (Python rounding), as eminorhan/alternative-imagefolders", async () => {
  // the original's rules, written out in Python
  const orig = (fraction: number): [string, number][] => JSON.parse(py(`
import os, sys, json
roots, fraction = json.loads(sys.argv[1]), float(sys.argv[2])
EXT = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp')
classes = []
for d in roots: classes = classes + [os.path.join(d, e.name) for e in os.scandir(d) if e.is_dir()]
classes.sort(); classes = classes[:round(len(classes) * fraction)]
out = []
for i, c in enumerate(classes):
  for root, _, fnames in sorted(os.walk(c, followlinks=True)):
    for f in sorted(fnames):
      if f.lower().endswith(EXT): out.append((os.path.join(root, f), i))
print(json.dumps(out))`, JSON.stringify([r2, r1]), String(fraction)));
  // 8 classes: 0.5 -> 4, 0.3125 -> round(2.5) = 2 (ties to even), 0.4375 -> round(3.5) = 4
  for (const f of [1, 0.5, 0.3125, 0.4375]) {
    const ds = await MultirootImageFolder.open([r2, r1], f, { cachePath: false, selection: 'first' });
    assert.deepEqual(samples(ds), orig(f), `fraction ${f}`);
  }
  assert.deepEqual(selectClasses(['b', 'a', 'c', 'd'], 0.625).length, 2);
  assert.deepEqual(selectClasses(['b', 'a', 'c', 'd', 'e', 'f'], 0.25), ['a', 'b']);
});

test('few-shot subsets are numpy\'s: seed, shuffle, the first int(fraction x N)', async () => {
  const ref = JSON.parse(py(`
import json, numpy as np
out = {}
for seed, n, f in ((1, 1000, 0.013), (2, 777, 0.1), (1, 1281167, 0.010147)):
  np.random.seed(seed); idx = list(range(n)); np.random.shuffle(idx)
  sel = idx[:int(f * n)]
  out['%d-%d' % (seed, n)] = sel if n < 10000 else [len(sel)] + sel[:50] + sel[-50:]
print(json.dumps(out))`)) as Record<string, number[]>;
  assert.deepEqual(Array.from(fewShotIndices(1000, 0.013, 1)), ref['1-1000']);
  assert.deepEqual(Array.from(fewShotIndices(777, 0.1, 2)), ref['2-777']);
  const big = fewShotIndices(1281167, 0.010147, 1);
  assert.equal(big.length, 13000);
  assert.deepEqual([big.length, ...big.slice(0, 50), ...big.slice(-50)], ref['1-1281167']);
  const ds = await ImageFolder.open(r1, { cachePath: false });
  const sub = fewShot(ds, 0.5, 1);
  assert.equal(sub.length, Math.trunc(0.5 * ds.length));
  for (let i = 0; i < sub.length; i++) assert.equal(sub.label(i), ds.label(sub.indices[i]!));
});

test('the index cache reloads, and is rebuilt when a folder changes', async () => {
  const cache = path.join(tmp, 'index.bin');
  const logs: string[] = [];
  const a = await ImageFolder.open(r1, { cachePath: cache, onLog: (l) => logs.push(l) });
  assert.ok(logs.some((l) => l.startsWith('indexed')));
  logs.length = 0;
  const b = await ImageFolder.open(r1, { cachePath: cache, onLog: (l) => logs.push(l) });
  assert.ok(!logs.some((l) => l.startsWith('indexed')), 'second open read the cache');
  assert.deepEqual(samples(b), samples(a));
  // a new file in a nested folder, then a new class folder
  await new Promise((r) => setTimeout(r, 20));
  await jpeg(path.join(r1, 'B_upper', 'sub', '5.jpg'), 1);
  const c = await ImageFolder.open(r1, { cachePath: cache });
  assert.equal(c.length, a.length + 1);
  assert.ok(samples(c).some(([p]) => p.endsWith('B_upper/sub/5.jpg')));
  await jpeg(path.join(r1, 'A_new', 'x.jpg'), 1);
  const d = await ImageFolder.open(r1, { cachePath: cache });
  assert.equal(d.classes[0], 'A_new');
  assert.equal(d.label(d.length - 1), d.classes.length - 1);
  await fsp.rm(path.join(r1, 'A_new'), { recursive: true });
  await fsp.rm(path.join(r1, 'B_upper', 'sub', '5.jpg'));
});

test('the compact index: names of every kind round-trip through the binary form, a few bytes per file', () => {
  const classes = ['ep0', 'ep1', 'n0', 'odd'];
  const listings = [
    { dirs: [{ dir: 'r/ep0', names: Array.from({ length: 1440 }, (_, i) => `img_${String(i).padStart(4, '0')}.jpeg`) }] },
    { dirs: [{ dir: 'r/ep1', names: Array.from({ length: 200 }, (_, i) => `img_${String(i * 3).padStart(4, '0')}.jpeg`) }] },
    { dirs: [{ dir: 'r/n0', names: ['n0_10026.JPEG', 'n0_100.JPEG', 'n0_9.JPEG', 'n0_0099.JPEG', 'x.jpg', '123.jpg', 'a1b2.png', 'é.jpg', '99999999999.jpg'] }] },
    { dirs: [] },
  ];
  const ix = FileIndex.fromListing('k', classes, listings);
  const expected = listings.flatMap((l, c) => l.dirs.flatMap((d) => d.names.map((n) => [`${d.dir}/${n}`, c])));
  const back = FileIndex.deserialize(ix.serialize());
  for (const x of [ix, back]) {
    assert.equal(x.length, expected.length);
    assert.deepEqual(Array.from({ length: x.length }, (_, i) => [x.path(i), x.label(i)]), expected);
  }
  assert.deepEqual(back.emptyClasses, ['odd']);
  assert.ok(ix.byteSize() / ix.length < 8, `${ix.byteSize() / ix.length} bytes per file`);
});

test('bad input: a missing root, an empty class, zero-byte and truncated JPEGs (fail names the file; skip reports it)', async () => {
  await assert.rejects(ImageFolder.open(path.join(tmp, 'nope'), { cachePath: false }), /nope/);
  const bad = path.join(tmp, 'bad');
  await jpeg(path.join(bad, 'a', '0.jpg'), 10);
  await jpeg(path.join(bad, 'a', '1.jpg'), 20);
  await jpeg(path.join(bad, 'c', '0.jpg'), 30);
  await fsp.mkdir(path.join(bad, 'b_empty'));
  await fsp.writeFile(path.join(bad, 'b_empty', 'readme.txt'), 'no images here');
  await assert.rejects(ImageFolder.open(bad, { cachePath: false }), /b_empty/);
  const ds = await ImageFolder.open(bad, { cachePath: false, onBadImage: 'skip', onLog: () => undefined });
  // the empty class keeps its label: c is still label 2
  assert.deepEqual(ds.classes, ['a', 'b_empty', 'c']);
  assert.equal(ds.label(ds.length - 1), 2);
  // now break two files
  const full = await fsp.readFile(path.join(bad, 'a', '1.jpg'));
  await fsp.writeFile(path.join(bad, 'a', '1.jpg'), full.subarray(0, Math.floor(full.length / 2)));
  await fsp.writeFile(path.join(bad, 'c', '0.jpg'), '');
  const ds2 = await ImageFolder.open(bad, { cachePath: false, onBadImage: 'skip', onLog: () => undefined });
  for (const name of ['a/1.jpg', 'c/0.jpg']) {
    const i = samples(ds2).findIndex(([p]) => p.endsWith(name));
    const one = new DataLoader(new Subset(ds2, [i]), { batchSize: 1, transform: imagenetVal(), workers: 0 });
    await assert.rejects(async () => { for await (const _ of one.epoch(0)) { /* consume */ } }, new RegExp(name.replace('.', '\\.')));
  }
  const logs: string[] = [];
  const dl = new DataLoader(ds2, { batchSize: 3, transform: imagenetVal(), workers: 1, labels: 'int32', onBadImage: 'skip', onLog: (l) => logs.push(l) });
  const got: number[] = [];
  for await (const b of dl.epoch(0)) {
    b.indices.forEach((idx, k) => { assert.equal((b.labels as Int32Array)[k], ds2.label(idx)); got.push(idx); });
    assert.equal(b.shape[0], b.indices.length);
  }
  await dl.close();
  assert.equal(got.length, 1);
  assert.equal(dl.skipped.length, 2);
  assert.ok(logs.some((l) => l.includes('a/1.jpg') && l.includes('c/0.jpg')));
});
