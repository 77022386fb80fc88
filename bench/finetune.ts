// End-to-end evaluation benchmark, as a user runs it: `awty finetune` against the original
// finetune_imgnet.py loop (bench/finetune_torch.py: its model, trunk freezing, optimizer,
// augmentation, ImageFolder and DataLoader, with utils.train, on the CPU) on the same class folders,
// model, batch, threads and loader workers, as a linear probe (--freeze-trunk) and as few-shot
// fine-tuning (the whole network). Runs alternate (awty, PyTorch, for each mode, then again), each a
// fresh process tree for one training epoch; each run reports images/s over the epoch, the time spent
// waiting for data, and the peak PSS of its process tree.
// usage: node dist/bench/finetune.js [--classes 4] [--per-class 16] [--repeats 2] [--model resnext50_32x4d]
//        [--batch 16] [--modes probe,fewshot] [--workers 2] [--threads 2]
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { median, runOne, spread, type Run } from './proc.js';

const { values } = parseArgs({ options: {
  classes: { type: 'string', default: '4' }, 'per-class': { type: 'string', default: '16' }, repeats: { type: 'string', default: '2' },
  model: { type: 'string', default: 'resnext50_32x4d' }, batch: { type: 'string', default: '16' }, modes: { type: 'string', default: 'probe,fewshot' },
  workers: { type: 'string', default: '2' }, threads: { type: 'string', default: '2' },
} });
const classes = Number(values.classes), perClass = Number(values['per-class']), repeats = Number(values.repeats);
const modes = values.modes.split(',') as ('probe' | 'fewshot')[];
for (const m of modes) if (m !== 'probe' && m !== 'fewshot') throw new Error(`--modes: unknown mode ${m} (probe, fewshot)`);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'awty-bench-finetune-'));
try {
  // ImageNet-like class folders: JPEGs of 500x375 and 375x500 (the common ImageNet sizes), noisy patterns
  const train = path.join(tmp, 'train'), val = path.join(tmp, 'val');
  for (let c = 0; c < classes; c++) {
    for (const [root, n] of [[train, perClass], [val, 2]] as const) {
      const dir = path.join(root, `n${String(c).padStart(8, '0')}`);
      await fsp.mkdir(dir, { recursive: true });
      const size = c % 2 ? '375x500' : '500x375';
      execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=25,hue=h=${c * 40},noise=alls=12:allf=t`,
        '-frames:v', String(n), '-q:v', '3', '-start_number', root === train ? '0' : '1000', path.join(dir, 'img_%04d.JPEG')]);
    }
  }
  const nImages = classes * perClass;
  const out = path.join(tmp, 'out');
  await fsp.mkdir(out, { recursive: true });
  const env = { ...process.env, OMP_NUM_THREADS: undefined, MKL_NUM_THREADS: undefined };
  const loads: number[] = [];
  const results = new Map<string, Run[]>();
  for (let r = 0; r < repeats; r++) {
    for (const mode of modes) {
      for (const side of ['awty', 'torch'] as const) {
        loads.push(os.loadavg()[0]!);
        const freeze = mode === 'probe' ? ['--freeze-trunk'] : [];
        const run = side === 'awty'
          ? await runOne(process.execPath, [path.join(repo, 'dist', 'src', 'cli', 'main.js'), 'finetune', '--imgnet-traindir', train, '--imgnet-valdir', val,
            '--model', values.model, '--epochs', '1', '-b', values.batch, '-j', values.workers, '--threads', values.threads, '--out', out, '--overwrite',
            '--metrics', '', ...freeze], env, (s) => {
            const m = /epoch 0: trained on (\d+) images \(([\d.]+) img\/s, [^,]+, data wait ([\d.]+) s\)/.exec(s);
            if (!m) throw new Error(`no epoch line in:\n${s}`);
            const ips = Number(m[2]);
            return { imagesPerSec: ips, seconds: Number(m[1]) / ips, dataSeconds: Number(m[3]) };
          })
          : await runOne('/usr/bin/python3', [path.join(repo, 'bench', 'finetune_torch.py'), '--traindir', train, '--model', values.model,
            '--batch-size', values.batch, '--workers', values.workers, '--threads', values.threads, '--out', out, ...freeze], env, (s) => {
            const j = JSON.parse(s.trim().split('\n').pop()!) as { images: number; seconds: number; data_seconds: number };
            return { imagesPerSec: j.images / j.seconds, seconds: j.seconds, dataSeconds: j.data_seconds };
          });
        const key = `${mode}:${side}`;
        results.set(key, [...(results.get(key) ?? []), run]);
        console.log(`repeat ${r} ${mode.padEnd(7)} ${side.padEnd(5)}: ${run.imagesPerSec.toFixed(2)} img/s, epoch ${run.seconds.toFixed(1)} s ` +
          `(data wait ${run.dataSeconds.toFixed(1)} s), process ${run.wallSeconds.toFixed(1)} s, peak PSS ${run.peakPssMiB.toFixed(0)} MiB, load ${os.loadavg()[0]!.toFixed(2)}`);
      }
    }
  }
  console.log(`\n${nImages} training images (${classes} classes x ${perClass}, 500x375 / 375x500 JPEG), ${values.model}, batch ${values.batch}, 1 epoch per run, ` +
    `${values.workers} loader workers, ${values.threads} threads, ${repeats} interleaved repeats, ${os.availableParallelism()} cores; ` +
    `load average (1 min) during the runs ${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)}`);
  console.log('| mode | side | images/s median (min–max) | data wait % of epoch | peak PSS MiB of the process tree | speed ratio awty/original per repeat | memory ratio awty/original per repeat |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const mode of modes) {
    const ours = results.get(`${mode}:awty`)!, theirs = results.get(`${mode}:torch`)!;
    for (const [side, rs] of [['awty finetune', ours], ['finetune_imgnet.py loop', theirs]] as const) {
      const ratio = (f: (x: Run) => number): string => (rs === ours ? '' : spread(ours.map((x, i) => f(x) / f(theirs[i]!)), 2));
      console.log(`| ${mode === 'probe' ? 'linear probe' : 'few-shot (whole network)'} | ${side} | ${spread(rs.map((x) => x.imagesPerSec), 2)} | ` +
        `${spread(rs.map((x) => (100 * x.dataSeconds) / x.seconds), 0)} | ${spread(rs.map((x) => x.peakPssMiB), 0)} | ${ratio((x) => x.imagesPerSec)} | ${ratio((x) => x.peakPssMiB)} |`);
    }
    console.log(`${mode}: awty/original images/s median ${median(ours.map((x, i) => x.imagesPerSec / theirs[i]!.imagesPerSec)).toFixed(2)} (target >= 1.2)`);
  }
} finally {
  await fsp.rm(tmp, { recursive: true, force: true });
}
