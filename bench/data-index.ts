// Index benchmark: build time, bytes per file and reload time of the compact index for 1 M files,
// from synthetic listings (SAYCam-like episodes of 1440 frames; ImageNet-like names), plus a real
// folder tree of --disk files walked from disk. usage: node --expose-gc dist/bench/data-index.js [--files 1000000] [--disk 50000]
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { FileIndex, ImageFolder } from '../src/data/index.js';

const { values } = parseArgs({ options: { files: { type: 'string', default: '1000000' }, disk: { type: 'string', default: '50000' } } });
const N = Number(values.files), D = Number(values.disk);
const gc = (globalThis as { gc?: () => void }).gc ?? ((): void => undefined);
const heap = (): number => { gc(); gc(); return process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers; };
const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'awty-bench-index-'));
try {
  const kinds: [string, () => { classes: string[]; listings: { dirs: { dir: string; names: string[] }[] }[] }][] = [
    ['saycam-like', () => {
      const per = 1440, n = Math.ceil(N / per);
      const names = Array.from({ length: per }, (_, i) => `img_${String(i).padStart(4, '0')}.jpeg`);
      const classes = Array.from({ length: n }, (_, c) => `/data/saycam/class_${String(c).padStart(4, '0')}`);
      return { classes, listings: classes.map((d, c) => ({ dirs: [{ dir: d, names: c < n - 1 ? names : names.slice(0, N - per * (n - 1)) }] })) };
    }],
    ['imagenet-like', () => {
      const per = Math.ceil(N / 1000);
      const classes = Array.from({ length: 1000 }, (_, c) => `/data/imagenet/train/n${String(1440764 + c * 97).padStart(8, '0')}`);
      return { classes, listings: classes.map((d) => {
        const wn = path.basename(d);
        const names = Array.from({ length: per }, (_, i) => `${wn}_${(i * 7919) % 99991}.JPEG`).sort();
        return { dirs: [{ dir: d, names }] };
      }) };
    }],
  ];
  for (const [kind, make] of kinds) {
    const h0 = heap();
    const { classes, listings } = make();
    const t0 = performance.now();
    const ix = FileIndex.fromListing(kind, classes, listings);
    const build = performance.now() - t0;
    const file = path.join(tmp, `${kind}.bin`);
    await fsp.writeFile(file, ix.serialize());
    const size = (await fsp.stat(file)).size;
    const t1 = performance.now();
    const back = FileIndex.deserialize(await fsp.readFile(file));
    const reload = performance.now() - t1;
    listings.length = 0;
    const kept = heap() - h0;
    if (back.path(back.length - 1) !== ix.path(ix.length - 1)) throw new Error('round trip failed');
    console.log(`index ${kind}: ${ix.length} files in ${classes.length} classes: build ${build.toFixed(0)} ms (from an in-memory listing), ` +
      `${(size / ix.length).toFixed(2)} bytes/file on disk, ${(ix.byteSize() / ix.length).toFixed(2)} bytes/file in per-file arrays, ` +
      `heap+buffers of both indexes ${(kept / ix.length).toFixed(2)} bytes/file, reload from cache ${reload.toFixed(0)} ms`);
  }
  // a real tree on disk: walk, build, cache, reload
  const root = path.join(tmp, 'tree');
  const per = 1000;
  for (let c = 0; c < Math.ceil(D / per); c++) {
    const dir = path.join(root, `class_${String(c).padStart(4, '0')}`);
    await fsp.mkdir(dir, { recursive: true });
    await Promise.all(Array.from({ length: Math.min(per, D - c * per) }, (_, i) => fsp.writeFile(path.join(dir, `img_${String(i).padStart(4, '0')}.jpeg`), '')));
  }
  const cache = path.join(tmp, 'tree.bin');
  let t0 = performance.now();
  const a = await ImageFolder.open(root, { cachePath: cache });
  const walk = performance.now() - t0;
  t0 = performance.now();
  const b = await ImageFolder.open(root, { cachePath: cache });
  const re = performance.now() - t0;
  if (a.length !== b.length) throw new Error('cache mismatch');
  console.log(`index on disk: ${a.length} files in ${a.classes.length} folders: walk + build + write cache ${walk.toFixed(0)} ms, reload with freshness check ${re.toFixed(0)} ms`);
} finally {
  await fsp.rm(tmp, { recursive: true, force: true });
}
