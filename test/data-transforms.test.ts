// Transforms against torchvision (same JPEG, fixed parameters), sampled parameters against
// torchvision's own samplers (statistically), samplers against PyTorch's, loader determinism.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fsp, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import {
  transforms as T, Rng, DataLoader, ImageFolder, DistributedSampler, RandomSampler, SequentialSampler,
  tcAugmentation, imagenetVal, IMAGENET_MEAN, IMAGENET_STD,
} from '../src/data/index.js';

let tmp = '';
let jpeg = '';

function py(code: string, ...args: string[]): string {
  return execFileSync('/usr/bin/python3', ['-c', code, ...args], { maxBuffer: 1 << 28 }).toString();
}

/** Reads a .npy file written by numpy (uint8 or float32, C order). */
function npy(file: string): Uint8Array | Float32Array {
  const b = readFileSync(file);
  const hl = b.readUInt16LE(8);
  const hdr = b.toString('latin1', 10, 10 + hl);
  const d = b.subarray(10 + hl);
  const copy = d.buffer.slice(d.byteOffset, d.byteOffset + d.length);
  return hdr.includes('<f4') ? new Float32Array(copy) : new Uint8Array(copy);
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

before(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'awty-tf-'));
  jpeg = path.join(tmp, 'frame.jpg');
  execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-frames:v', '1', '-q:v', '3', jpeg]);
});

after(async () => {
  if (tmp) await fsp.rm(tmp, { recursive: true, force: true });
});

test('Resize(256) + CenterCrop(224) + ToTensor + Normalize match torchvision on the same JPEG', async () => {
  py(`
import sys, numpy as np, torchvision.transforms as T
from PIL import Image
im = Image.open(sys.argv[1]).convert('RGB')
x = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize([0.485,0.456,0.406],[0.229,0.224,0.225])])(im)
np.save(sys.argv[2], x.numpy())`, jpeg, path.join(tmp, 'val.npy'));
  const img = await T.transformImage(readFileSync(jpeg), imagenetVal(), new Rng(0));
  assert.equal(img.width, 224);
  const ours = new Float32Array(3 * 224 * 224);
  T.normalizeInto(img, IMAGENET_MEAN, IMAGENET_STD, ours, 0);
  // within one 8-bit level after normalisation (1/255/0.224)
  assert.ok(maxAbs(ours, npy(path.join(tmp, 'val.npy'))) < 0.018);
});

test('resized crops (down and up), colour ops, grayscale, blur and flip match torchvision/PIL with fixed parameters', async () => {
  const out = path.join(tmp, 'ops');
  await fsp.mkdir(out);
  py(`
import sys, os, numpy as np, torchvision.transforms.functional as F
from PIL import Image, ImageFilter
im = Image.open(sys.argv[1]).convert('RGB'); o = sys.argv[2]
save = lambda k, v: np.save(os.path.join(o, k + '.npy'), np.asarray(v))
save('rrc_down', F.resized_crop(im, 10, 30, 230, 250, [224, 224]))
save('rrc_up', F.resized_crop(im, 50, 70, 61, 90, [224, 224]))
c = F.resized_crop(im, 0, 0, 240, 320, [120, 160])
save('base', c)
save('bright', F.adjust_brightness(c, 1.7)); save('dark', F.adjust_brightness(c, 0.3))
save('contrast', F.adjust_contrast(c, 0.45)); save('sat', F.adjust_saturation(c, 1.8))
save('hue_p', F.adjust_hue(c, 0.31)); save('hue_n', F.adjust_hue(c, -0.45))
save('gray', F.rgb_to_grayscale(c, 3)); save('flip', F.hflip(c))
save('blur_big', c.filter(ImageFilter.GaussianBlur(radius=1.9))); save('blur_small', c.filter(ImageFilter.GaussianBlur(radius=0.4)))`, jpeg, out);
  const dec = await T.decodeRgb(readFileSync(jpeg));
  const ref = (k: string): Uint8Array => npy(path.join(out, `${k}.npy`)) as Uint8Array;
  assert.ok(maxAbs(T.resizeBilinear(dec.data, 320, { top: 10, left: 30, height: 230, width: 250 }, 224, 224), ref('rrc_down')) <= 1);
  assert.ok(maxAbs(T.resizeBilinear(dec.data, 320, { top: 50, left: 70, height: 61, width: 90 }, 224, 224), ref('rrc_up')) <= 1);
  const base = T.resizeBilinear(dec.data, 320, { top: 0, left: 0, height: 240, width: 320 }, 160, 120);
  assert.ok(maxAbs(base, ref('base')) <= 1);
  const check = (k: string, f: (px: Uint8Array) => void, tol: number): void => {
    const px = Uint8Array.from(ref('base'));
    f(px);
    const r = ref(k);
    const m = maxAbs(px, r);
    let diff = 0;
    for (let i = 0; i < px.length; i++) if (px[i] !== r[i]) diff++;
    assert.ok(m <= tol && diff / px.length < 0.01, `${k}: max ${m}, ${diff} values differ`);
    assert.ok(maxAbs(px, ref('base')) > 0, `${k} changed nothing`);
  };
  check('bright', (p) => T.adjustBrightness(p, 1.7), 1);
  check('dark', (p) => T.adjustBrightness(p, 0.3), 1);
  check('contrast', (p) => T.adjustContrast(p, 0.45), 1);
  check('sat', (p) => T.adjustSaturation(p, 1.8), 1);
  check('hue_p', (p) => T.adjustHue(p, 0.31), 8);
  check('hue_n', (p) => T.adjustHue(p, -0.45), 8);
  check('gray', (p) => T.toGrayscale(p), 0);
  check('flip', (p) => T.horizontalFlip(p, 160, 120), 0);
  check('blur_big', (p) => T.gaussianBlur(p, 160, 120, 1.9), 1);
  check('blur_small', (p) => T.gaussianBlur(p, 160, 120, 0.4), 1);
});

test('bicubic resized crops (MAE\'s RandomResizedCrop(interpolation=3)) equal torchvision/PIL byte for byte, down and up', async () => {
  // a lossless image, so that only the resampling is compared
  const W = 97, H = 75;
  const px = new Uint8Array(W * H * 3);
  let seed = 7;
  for (let i = 0; i < px.length; i++) { seed = (seed * 1103515245 + 12345) >>> 0; px[i] = (seed >>> 16) & 255; }
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) px[(y * W + x) * 3] = (px[(y * W + x) * 3]! >> 2) + ((x * 3) & 255) * 3 / 4;
  const png = path.join(tmp, 'noise.png');
  await sharp(Buffer.from(px), { raw: { width: W, height: H, channels: 3 } }).png().toFile(png);
  const cases: [number, number, number, number, number, number][] = [
    // top, left, height, width, output width, output height
    [3, 5, 60, 80, 32, 32], [10, 20, 21, 30, 64, 64], [0, 0, H, W, 224, 224], [7, 9, 50, 13, 40, 100], [0, 0, H, W, W, H], [30, 40, 2, 3, 16, 16],
  ];
  const out = path.join(tmp, 'bicubic');
  await fsp.mkdir(out);
  py(`
import sys, os, json, numpy as np, torchvision.transforms.functional as F
from torchvision.transforms import InterpolationMode
from PIL import Image
im = Image.open(sys.argv[1]).convert('RGB')
for i, (t, l, h, w, ow, oh) in enumerate(json.loads(sys.argv[3])):
    np.save(os.path.join(sys.argv[2], f'{i}.npy'), np.asarray(F.resized_crop(im, t, l, h, w, [oh, ow], InterpolationMode.BICUBIC)))`, png, out, JSON.stringify(cases));
  const dec = await T.decodeRgb(readFileSync(png));
  assert.deepEqual(dec.data, px, 'the PNG decodes to the pixels written');
  for (const [i, [top, left, height, width, ow, oh]] of cases.entries()) {
    const ref = npy(path.join(out, `${i}.npy`));
    const ours = T.resizeBicubic(dec.data, W, { top, left, height, width }, ow, oh);
    assert.equal(maxAbs(ours, ref), 0, `case ${i}: ${width}x${height} at (${left}, ${top}) to ${ow}x${oh}`);
    // bicubic is not bilinear (the comparison would catch a wrong filter)
    if (ow !== width) assert.ok(maxAbs(T.resizeBilinear(dec.data, W, { top, left, height, width }, ow, oh), ref) > 0, `case ${i}: bilinear equals bicubic`);
  }
});

/** Mean and standard error of a sample. */
function stats(xs: number[]): { mean: number; se: number } {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const v = xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1);
  return { mean: m, se: Math.sqrt(v / xs.length) };
}

function sameDistribution(name: string, ours: number[], theirs: number[]): void {
  const a = stats(ours), b = stats(theirs);
  const z = Math.abs(a.mean - b.mean) / Math.hypot(a.se, b.se);
  assert.ok(z < 4.5, `${name}: mean ${a.mean} vs torchvision ${b.mean} (z = ${z.toFixed(2)})`);
  const q = (xs: number[], p: number): number => xs.slice().sort((x, y) => x - y)[Math.floor(p * (xs.length - 1))]!;
  for (const p of [0.1, 0.5, 0.9]) {
    const spread = q(theirs, 0.95) - q(theirs, 0.05) || 1;
    assert.ok(Math.abs(q(ours, p) - q(theirs, p)) < 0.05 * spread, `${name}: quantile ${p}: ${q(ours, p)} vs ${q(theirs, p)}`);
  }
  assert.ok(Math.min(...ours) >= Math.min(...theirs) - 0.02 * (Math.max(...theirs) - Math.min(...theirs)), `${name}: below torchvision's range`);
  assert.ok(Math.max(...ours) <= Math.max(...theirs) + 0.02 * (Math.max(...theirs) - Math.min(...theirs)), `${name}: above torchvision's range`);
}

test('RandomResizedCrop and ColorJitter parameters follow torchvision\'s distributions', () => {
  const N = 20000;
  const W = 320, H = 240;
  const tv = JSON.parse(py(`
import json, torch, torchvision.transforms as T
from PIL import Image
torch.manual_seed(0)
im = Image.new('RGB', (${W}, ${H}))
rrc = [T.RandomResizedCrop.get_params(im, (0.08, 1.0), (3/4, 4/3)) for _ in range(${N})]
cj = [T.ColorJitter.get_params((0.1, 1.9), (0.1, 1.9), (0.1, 1.9), (-0.5, 0.5)) for _ in range(${N})]
print(json.dumps({'rrc': rrc, 'cj': [[c[0].tolist(), c[1], c[2], c[3], c[4]] for c in cj]}))`)) as { rrc: number[][]; cj: [number[], number, number, number, number][] };
  const rng = new Rng(7);
  const ours = Array.from({ length: N }, () => T.randomResizedCropParams(rng, W, H, [0.08, 1], [3 / 4, 4 / 3]));
  const feats: [string, (c: { top: number; left: number; height: number; width: number }) => number][] = [
    ['area fraction', (c) => (c.width * c.height) / (W * H)],
    ['log aspect', (c) => Math.log(c.width / c.height)],
    ['top', (c) => c.top], ['left', (c) => c.left], ['height', (c) => c.height], ['width', (c) => c.width],
  ];
  const theirs = tv.rrc.map(([i, j, h, w]) => ({ top: i!, left: j!, height: h!, width: w! }));
  for (const [name, f] of feats) sameDistribution(`crop ${name}`, ours.map(f), theirs.map(f));
  const cj = Array.from({ length: N }, () => T.colorJitterParams(rng, 0.9, 0.9, 0.9, 0.5));
  sameDistribution('brightness', cj.map((c) => c.brightness!), tv.cj.map((c) => c[1]));
  sameDistribution('contrast', cj.map((c) => c.contrast!), tv.cj.map((c) => c[2]));
  sameDistribution('saturation', cj.map((c) => c.saturation!), tv.cj.map((c) => c[3]));
  sameDistribution('hue', cj.map((c) => c.hue!), tv.cj.map((c) => c[4]));
  // the order of the four adjustments: each of the 4 ops first about a quarter of the time
  for (let op = 0; op < 4; op++) {
    sameDistribution(`op ${op} first`, cj.map((c) => Number(c.order[0] === op)), tv.cj.map((c) => Number(c[0][0] === op)));
  }
});

test('augmentations are applied with their probabilities (jitter 0.9, grayscale 0.2, blur 0.5, flip 0.5)', () => {
  const w = 16, h = 8;
  const base = new Uint8Array(w * h * 3);
  for (let i = 0; i < base.length; i++) base[i] = (i * 37 + (i % 3) * 91) & 255;
  const rate = (spec: T.TransformSpec, changed: (px: Uint8Array) => boolean): number => {
    let n = 0;
    for (let k = 0; k < 4000; k++) if (changed(T.applyOps({ data: Uint8Array.from(base), width: w, height: h }, spec, new Rng(5, 0, k)).data)) n++;
    return n / 4000;
  };
  const differs = (px: Uint8Array): boolean => px.some((v, i) => v !== base[i]);
  const tc = tcAugmentation(224);
  const only = (name: string, patch: Partial<T.Op> = {}): T.TransformSpec => ({ ...tc, ops: tc.ops.filter((o) => o.op === name).map((o) => ({ ...o, ...patch }) as T.Op) });
  const se = (p: number): number => 4.5 * Math.sqrt((p * (1 - p)) / 4000);
  const cases: [string, number, number][] = [
    ['colorJitter', rate(only('colorJitter'), differs), 0.9],
    ['randomGrayscale', rate(only('randomGrayscale'), (px) => px[0] === px[1] && px[1] === px[2] && differs(px)), 0.2],
    ['gaussianBlur', rate(only('gaussianBlur', { sigma: [1, 2] } as Partial<T.Op>), differs), 0.5],
    ['horizontalFlip', rate(only('horizontalFlip'), differs), 0.5],
  ];
  for (const [name, got, p] of cases) assert.ok(Math.abs(got - p) < se(p), `${name}: applied ${got}, expected ${p}`);
});

test('DistributedSampler partitions like PyTorch\'s (padding and drop_last), RandomSampler is seeded by seed + epoch', () => {
  const tv = JSON.parse(py(`
import json
from torch.utils.data import DistributedSampler
out = {}
for n in (10, 11, 3):
  for drop in (False, True):
    for r in range(4):
      s = DistributedSampler(range(n), num_replicas=4, rank=r, shuffle=False, drop_last=drop)
      out['%d-%d-%d' % (n, drop, r)] = list(s)
print(json.dumps(out))`)) as Record<string, number[]>;
  for (const n of [10, 11, 3]) {
    for (const drop of [false, true]) {
      for (let r = 0; r < 4; r++) {
        const s = new DistributedSampler(n, { rank: r, worldSize: 4, shuffle: false, dropLast: drop });
        assert.deepEqual(Array.from(s.indices(0)), tv[`${n}-${Number(drop)}-${r}`], `n=${n} drop=${drop} rank=${r}`);
      }
    }
  }
  // shuffled: the ranks together cover every index once (n divisible), and agree on the epoch's order
  const all = [0, 1, 2].flatMap((r) => Array.from(new DistributedSampler(12, { rank: r, worldSize: 3, seed: 4 }).indices(2)));
  assert.deepEqual(all.slice().sort((a, b) => a - b), Array.from({ length: 12 }, (_, i) => i));
  const rs = new RandomSampler(50, 3);
  assert.deepEqual(Array.from(rs.indices(1)), Array.from(new RandomSampler(50, 4).indices(0)));
  assert.notDeepEqual(Array.from(rs.indices(0)), Array.from(rs.indices(1)));
  assert.deepEqual(Array.from(rs.indices(0)).sort((a, b) => a - b), Array.from(new SequentialSampler(50).indices()));
});

test('the loader: same seed gives the same batch bytes with 0, 1 or 2 workers; dropLast; uint8 NHWC; int64 labels', async () => {
  const root = path.join(tmp, 'ds');
  for (let c = 0; c < 3; c++) {
    await fsp.mkdir(path.join(root, `c${c}`), { recursive: true });
    for (let k = 0; k < 7; k++) {
      const img = await sharp({ create: { width: 64 + 8 * k, height: 48 + 4 * c, channels: 3, background: { r: 40 * c, g: 30 * k, b: 90 } } })
        .composite([{ input: { create: { width: 10, height: 10, channels: 3, background: { r: 255, g: 255, b: 255 } } }, left: 3 * k, top: 2 * c }])
        .jpeg().toBuffer();
      await fsp.writeFile(path.join(root, `c${c}`, `img_${k}.jpg`), img);
    }
  }
  const ds = await ImageFolder.open(root, { cachePath: false });
  assert.equal(ds.length, 21);
  const run = async (workers: number, seed: number, extra: Partial<ConstructorParameters<typeof DataLoader>[1]> = {}) => {
    const dl = new DataLoader(ds, { batchSize: 4, transform: tcAugmentation(32), workers, shuffle: true, seed, ...extra });
    const out = [];
    for await (const b of dl.epoch(1)) out.push(b);
    await dl.close();
    return out;
  };
  const a = await run(0, 9, { labels: 'int32' }), b = await run(1, 9), c = await run(2, 9), d = await run(2, 10);
  assert.equal(a.length, 6);
  assert.deepEqual(a.at(-1)!.shape, [1, 3, 32, 32]);
  for (const other of [b, c]) {
    assert.equal(other.length, a.length);
    other.forEach((x, i) => {
      assert.deepEqual(Array.from(x.indices), Array.from(a[i]!.indices));
      assert.ok(Buffer.from(x.data.buffer, x.data.byteOffset, x.data.byteLength).equals(Buffer.from(a[i]!.data.buffer, a[i]!.data.byteOffset, a[i]!.data.byteLength)));
    });
  }
  assert.notDeepEqual(Array.from(d[0]!.indices), Array.from(a[0]!.indices));
  // every sample once per epoch, labels are the dataset's
  const seen = a.flatMap((x) => Array.from(x.indices)).sort((p, q) => p - q);
  assert.deepEqual(seen, Array.from({ length: 21 }, (_, i) => i));
  for (const x of a) x.indices.forEach((idx, k) => assert.equal((x.labels as Int32Array)[k], ds.label(idx)));
  const u = await run(2, 9, { output: 'uint8', dropLast: true }); // labels: int64 by default
  assert.equal(u.length, 5);
  assert.deepEqual(u[0]!.shape, [4, 32, 32, 3]);
  assert.ok(u[0]!.data instanceof Uint8Array && u[0]!.labels instanceof BigInt64Array);
  // the uint8 batch normalised equals the float32 batch
  const f = new Float32Array(3 * 32 * 32);
  const img = { data: (u[0]!.data as Uint8Array).subarray(0, 32 * 32 * 3), width: 32, height: 32 };
  T.normalizeInto(img, IMAGENET_MEAN, IMAGENET_STD, f, 0);
  assert.ok(maxAbs(f, (a[0]!.data as Float32Array).subarray(0, f.length)) === 0);
});
