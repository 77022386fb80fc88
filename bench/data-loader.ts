// Loader benchmark: images/s of TC-augmented 224x224 float32 batches from 256x256 JPEG frames, ours
// against torchvision's ImageFolder + DataLoader (PIL) with the same number of workers, same files,
// in one run, epochs alternating (ours with and without `release`). usage: node dist/bench/data-loader.js [--images 1200] [--workers 2] [--batch-size 64] [--epochs 2]
import { execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
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
  // Epochs alternate: ours handing each batch back with `release` once counted (as a training loop
  // does after copying it into tensors), ours keeping every batch (a fresh array per batch), then
  // torchvision's (a Python process told by a line on stdin to run its next epoch), so that all
  // three see the same machine load; each side's best epoch is compared.
  const tvProc = spawn('/usr/bin/python3', [path.join(repo, 'bench', 'data_torchvision_loader.py'), tmp, '--workers', String(workers),
    '--batch-size', String(bs), '--epochs', String(epochs), '--interleave'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const tvLines = createInterface({ input: tvProc.stdout })[Symbol.asyncIterator]();
  const tvLine = async (): Promise<Record<string, number>> => {
    const r = await tvLines.next();
    if (r.done) throw new Error('the torchvision baseline stopped early');
    return JSON.parse(r.value) as Record<string, number>;
  };
  await tvLine(); // ready
  const loaders = [true, false].map((release) => ({
    release, rates: [] as number[],
    dl: new DataLoader(ds, { batchSize: bs, transform: tcAugmentation(), workers, shuffle: true, seed: 1 }),
  }));
  const tvRates: number[] = [];
  for (let e = 0; e < epochs; e++) {
    for (const l of loaders) {
      const t0 = performance.now();
      let n = 0;
      for await (const b of l.dl.epoch(e)) {
        n += b.shape[0];
        if (l.release) l.dl.release(b);
      }
      const s = (performance.now() - t0) / 1000;
      l.rates.push(n / s);
      console.log(`awty (${l.release ? 'release' : 'fresh'}) epoch ${e}: ${n} images in ${s.toFixed(2)} s = ${(n / s).toFixed(1)} images/s`);
    }
    tvProc.stdin.write('go\n');
    const r = await tvLine();
    tvRates.push(r.images! / r.seconds!);
    console.log(`torchvision     epoch ${e}: ${r.images} images in ${r.seconds!.toFixed(2)} s = ${(r.images! / r.seconds!).toFixed(1)} images/s`);
  }
  tvProc.stdin.end();
  await new Promise((res) => tvProc.on('close', res));
  for (const l of loaders) await l.dl.close();
  const ours = Math.max(...loaders[0]!.rates), fresh = Math.max(...loaders[1]!.rates);
  const theirs = Math.max(...tvRates);
  console.log(`loader: ${images} frames 256x256, TC augmentation to 224, batch ${bs}, ${workers} workers, ${os.availableParallelism()} cores, ` +
    `load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}: awty ${ours.toFixed(1)} images/s (${fresh.toFixed(1)} keeping every batch), ` +
    `torchvision ${theirs.toFixed(1)} images/s, ratio ${(ours / theirs).toFixed(2)}x (${(fresh / theirs).toFixed(2)}x) (best epoch of ${epochs}, epochs alternating)`);
} finally {
  await fsp.rm(tmp, { recursive: true, force: true });
}
