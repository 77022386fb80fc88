// IDX reading and the Fashion-MNIST class-folder conversion: a hand-made IDX pair, bad headers,
// Debian's Fashion-MNIST against torchvision's own reader (read_image_file / read_label_file), and
// the class folders (first N per class, reused once finished, a foreign folder refused).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, test } from 'node:test';
import sharp from 'sharp';
import { parseIdx, readIdx, idxToClassFolders, fashionMnistFiles, FASHION_MNIST_DIR, IDX_MANIFEST } from '../src/data/idx.js';
import { hasOracle, runPython, tmpdir } from './helpers/oracle.js';

const root = tmpdir('awty-idx-');
after(() => rmSync(root, { recursive: true, force: true }));

function idx(dims: number[], data: number[]): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(data)]);
}

test('parseIdx reads dimensions and bytes; bad files fail naming the problem', () => {
  const a = parseIdx(idx([2, 2, 3], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]));
  assert.deepEqual(a.dims, [2, 2, 3]);
  assert.deepEqual([...a.data], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  assert.throws(() => parseIdx(Buffer.from([1, 0, 8, 1, 0, 0, 0, 0]), 'x.idx'), /x\.idx: not an IDX file/);
  assert.throws(() => parseIdx(Buffer.from([0, 0, 0x0d, 1, 0, 0, 0, 0])), /element type 0xd is not supported/);
  assert.throws(() => parseIdx(idx([3], [1, 2])), /dimensions 3 need 3 bytes of data but the file has 2/);
  assert.throws(() => parseIdx(Buffer.from([0, 0, 8, 2, 0, 0])), /truncated header/);
});

test('hand-made gzip IDX pair -> class folders: first N per class, in file order, pixels kept', async () => {
  const n = 7;
  const labels = [0, 1, 0, 2, 1, 0, 2];
  const px = Array.from({ length: n * 4 * 3 }, (_, i) => (i * 37) % 256);
  const dir = join(root, 'hand');
  mkdirSync(dir);
  writeFileSync(join(dir, 'img.gz'), gzipSync(idx([n, 4, 3], px)));
  writeFileSync(join(dir, 'lab'), idx([n], labels));
  const out = join(dir, 'folders');
  const logs: string[] = [];
  const s = await idxToClassFolders({ images: join(dir, 'img.gz'), labels: join(dir, 'lab'), out, classes: ['a', 'b', 'c'], perClass: 2, onLog: (l) => logs.push(l) });
  assert.deepEqual(s.counts, [2, 2, 2]);
  assert.equal(s.reused, false);
  assert.deepEqual(readdirSync(out).filter((d) => !d.startsWith('.')).sort(), ['00_a', '01_b', '02_c']);
  assert.deepEqual(readdirSync(join(out, '00_a')).sort(), ['img_00000.png', 'img_00002.png']);
  const { data, info } = await sharp(join(out, '02_c', 'img_00003.png')).raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.width, 3);
  assert.equal(info.height, 4);
  assert.deepEqual([...data].filter((_, i) => i % info.channels === 0), px.slice(3 * 12, 4 * 12));
  // skipPerClass takes a disjoint subset
  const rest = await idxToClassFolders({ images: join(dir, 'img.gz'), labels: join(dir, 'lab'), out: join(dir, 'rest'), classes: ['a', 'b', 'c'], skipPerClass: 2 });
  assert.deepEqual(rest.counts, [1, 0, 0]);
  assert.deepEqual(readdirSync(join(dir, 'rest', '00_a')), ['img_00005.png']);
  // a second call reuses the finished folder; other arguments or a foreign folder are refused
  const again = await idxToClassFolders({ images: join(dir, 'img.gz'), labels: join(dir, 'lab'), out, classes: ['a', 'b', 'c'], perClass: 2 });
  assert.equal(again.reused, true);
  await assert.rejects(idxToClassFolders({ images: join(dir, 'img.gz'), labels: join(dir, 'lab'), out, classes: ['a', 'b', 'c'], perClass: 1 }), /holds another conversion/);
  const foreign = join(dir, 'foreign');
  mkdirSync(foreign);
  writeFileSync(join(foreign, 'mine.txt'), 'keep');
  await assert.rejects(idxToClassFolders({ images: join(dir, 'img.gz'), labels: join(dir, 'lab'), out: foreign, classes: ['a', 'b', 'c'] }), /was not written by the IDX conversion/);
  assert.equal(readFileSync(join(foreign, 'mine.txt'), 'utf8'), 'keep');
  // a label outside the classes, and mismatched counts
  await assert.rejects(idxToClassFolders({ images: join(dir, 'img.gz'), labels: join(dir, 'lab'), out: join(dir, 'two'), classes: ['a', 'b'] }), /label 2 at 3 is not one of the 2 classes/);
  writeFileSync(join(dir, 'lab6'), idx([6], labels.slice(0, 6)));
  await assert.rejects(idxToClassFolders({ images: join(dir, 'img.gz'), labels: join(dir, 'lab6'), out: join(dir, 'six'), classes: ['a', 'b', 'c'] }), /has 7 images but .* has 6 labels/);
  assert.equal(existsSync(join(dir, 'six')), false);
  await assert.rejects(readIdx(join(dir, 'missing.gz')), /cannot read IDX file .*missing\.gz/);
});

test("Debian's Fashion-MNIST reads as torchvision reads it", { skip: !existsSync(FASHION_MNIST_DIR) || !hasOracle() ? 'needs dataset-fashion-mnist and the oracle' : false }, async () => {
  const t = fashionMnistFiles('t10k');
  const [img, lab] = await Promise.all([readIdx(t.images), readIdx(t.labels)]);
  assert.deepEqual(img.dims, [10000, 28, 28]);
  assert.deepEqual(lab.dims, [10000]);
  const dir = tmpdir('awty-idx-oracle-');
  try {
    const out = runPython(`
from torchvision.datasets.mnist import read_image_file, read_label_file
import gzip, shutil
for n in ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']:
    with gzip.open('${FASHION_MNIST_DIR}/' + n + '.gz') as f, open(OUT + '/' + n, 'wb') as g: shutil.copyfileobj(f, g)
x = read_image_file(OUT + '/t10k-images-idx3-ubyte'); y = read_label_file(OUT + '/t10k-labels-idx1-ubyte')
print(json.dumps({'shape': list(x.shape), 'sum': int(x.to(torch.int64).sum()), 'first': x[0].flatten().tolist(), 'last': x[-1].flatten().tolist(), 'labels': y[:50].tolist(), 'hist': torch.bincount(y).tolist()}))
`, dir);
    const o = JSON.parse(out) as { shape: number[]; sum: number; first: number[]; last: number[]; labels: number[]; hist: number[] };
    assert.deepEqual(o.shape, img.dims);
    assert.equal(img.data.reduce((a, b) => a + b, 0), o.sum);
    assert.deepEqual([...img.data.subarray(0, 784)], o.first);
    assert.deepEqual([...img.data.subarray(9999 * 784)], o.last);
    assert.deepEqual([...lab.data.subarray(0, 50)], o.labels);
    const hist = new Array<number>(10).fill(0);
    for (const v of lab.data) hist[v]!++;
    assert.deepEqual(hist, o.hist);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const s = await idxToClassFolders({ ...t, out: join(root, 'fm'), perClass: 3 });
  assert.deepEqual(s.counts, new Array(10).fill(3));
  assert.ok(existsSync(join(root, 'fm', IDX_MANIFEST)));
  assert.ok(readdirSync(join(root, 'fm')).includes('09_ankle_boot'));
});
