// Loader benchmark: images/s of TC-augmented 224x224 float32 batches from 256x256 JPEG frames, ours
// against torchvision's ImageFolder + DataLoader (PIL) with the same number of workers, same files,
// in one run. usage: node dist/bench/data-loader.js [--images 1200] [--workers 2] [--batch-size 64] [--epochs 2]
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ImageFolder, DataLoader, tcAugmentation } from '../src/data/index.js';

const { values } = parseArgs({ options: { images: { type: 'string', default: '1200' }, workers: { type: 'string', default: '2' },
  'batch-size': { type: 'string', default: '64' }, epochs: { type: 'string', default: '2' } } });
const images = Number(values.images), workers = Number(values.workers), bs = Number(values['batch-size']), epochs = Number(values.epochs);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'awty-bench-loader-'));
try {
  // frames as `awty extract` writes them: 256x256-ish JPEGs of a moving test pattern, 10 episodes
  const per = Math.ceil(images / 10);
  for (let c = 0; c < 10; c++) {
    const dir = path.join(tmp, `class_${String(c).padStart(4, '0')}`);
    await fsp.mkdir(dir);
    execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `testsrc2=size=256x256:rate=25,hue=h=${c * 30}`, '-frames:v', String(per),
      '-q:v', '2', '-start_number', '0', path.join(dir, 'img_%04d.jpeg')]);
  }
  const ds = await ImageFolder.open(tmp, { cachePath: false });
  const rates: number[] = [];
  const dl = new DataLoader(ds, { batchSize: bs, transform: tcAugmentation(), workers, shuffle: true, seed: 1 });
  for (let e = 0; e < epochs; e++) {
    const t0 = performance.now();
    let n = 0;
    for await (const b of dl.epoch(e)) n += b.shape[0];
    const s = (performance.now() - t0) / 1000;
    rates.push(n / s);
    console.log(`awty        epoch ${e}: ${n} images in ${s.toFixed(2)} s = ${(n / s).toFixed(1)} images/s`);
  }
  await dl.close();
  const out = execFileSync('/usr/bin/python3', [path.join(repo, 'bench', 'data_torchvision_loader.py'), tmp, '--workers', String(workers),
    '--batch-size', String(bs), '--epochs', String(epochs)]).toString();
  const tv = out.trim().split('\n').map((l) => JSON.parse(l) as { images: number; seconds: number });
  tv.forEach((r, e) => console.log(`torchvision epoch ${e}: ${r.images} images in ${r.seconds.toFixed(2)} s = ${(r.images / r.seconds).toFixed(1)} images/s`));
  const ours = Math.max(...rates), theirs = Math.max(...tv.map((r) => r.images / r.seconds));
  console.log(`loader: ${images} frames 256x256, TC augmentation to 224, batch ${bs}, ${workers} workers, ${os.availableParallelism()} cores: ` +
    `awty ${ours.toFixed(1)} images/s, torchvision ${theirs.toFixed(1)} images/s, ratio ${(ours / theirs).toFixed(2)}x (best epoch of ${epochs})`);
} finally {
  await fsp.rm(tmp, { recursive: true, force: true });
}
