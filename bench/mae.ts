// MAE pre-training step benchmark: awty's mae_vit_* (bench/mae-worker.ts, as train-mae steps) against
// the same model in Python PyTorch (bench/mae_torch.py: eminorhan/mae's models_mae.py with timm's
// blocks written out, the same sizes, AdamW as main_pretrain.py) on the same machine, batch, image
// size, masking ratio and threads. Each run is a fresh process; runs alternate awty, PyTorch, awty,
// PyTorch ... (per model, `--repeats` pairs), and every pair gives a speed and a peak-RSS ratio.
// usage: node dist/bench/mae.js [--configs mae_vit_small_patch16:4,mae_vit_base_patch16:4] [--size 224]
//        [--threads 2] [--steps 3] [--warmup 1] [--repeats 3] [--mask-ratio 0.75]
import { spawnSync } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: {
  configs: { type: 'string', default: 'mae_vit_small_patch16:4,mae_vit_base_patch16:4' }, size: { type: 'string', default: '224' },
  threads: { type: 'string', default: '2' }, steps: { type: 'string', default: '3' }, warmup: { type: 'string', default: '1' },
  repeats: { type: 'string', default: '3' }, 'mask-ratio': { type: 'string', default: '0.75' },
} });
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const configs = values.configs.split(',').map((c) => { const [m, b] = c.split(':'); return { model: m!, batch: b! }; });

interface Run { imagesPerSec: number; peakRssMiB: number; params: number; load: number; seconds: number }
function run(side: 'awty' | 'torch', model: string, batch: string): Run {
  const argv = [model, batch, values.size, values.threads, values.steps, values.warmup, values['mask-ratio']];
  const load = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  const t0 = performance.now();
  const r = side === 'awty'
    ? spawnSync(process.execPath, [path.join(here, 'mae-worker.js'), ...argv], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: undefined } })
    : spawnSync('/usr/bin/python3', [path.join(repo, 'bench', 'mae_torch.py'), ...argv], { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: undefined } });
  if (r.status !== 0) throw new Error(`${side} ${argv.join(' ')} failed:\n${r.stderr}`);
  return { ...(JSON.parse(r.stdout.trim().split('\n').pop()!) as Omit<Run, 'load' | 'seconds'>), load, seconds: (performance.now() - t0) / 1000 };
}

const med = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2; };
const span = (xs: number[], d: number): string => `${med(xs).toFixed(d)} (${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)})`;
const rows: string[] = [];
for (const { model, batch } of configs) {
  const ours: Run[] = [];
  const theirs: Run[] = [];
  for (let i = 0; i < Number(values.repeats); i++) {
    ours.push(run('awty', model, batch));
    theirs.push(run('torch', model, batch));
    const a = ours.at(-1)!, t = theirs.at(-1)!;
    if (a.params !== t.params) throw new Error(`${model}: awty has ${a.params} parameters, the PyTorch model ${t.params}: not the same model`);
    console.log(`${model} b${batch} pair ${i}: awty ${a.imagesPerSec.toFixed(3)} img/s ${a.peakRssMiB.toFixed(0)} MiB (load ${a.load.toFixed(2)}, ${a.seconds.toFixed(0)} s), ` +
      `PyTorch ${t.imagesPerSec.toFixed(3)} img/s ${t.peakRssMiB.toFixed(0)} MiB (load ${t.load.toFixed(2)}, ${t.seconds.toFixed(0)} s); ratio ${(a.imagesPerSec / t.imagesPerSec).toFixed(3)}`);
  }
  const speed = ours.map((a, i) => a.imagesPerSec / theirs[i]!.imagesPerSec);
  const mem = ours.map((a, i) => a.peakRssMiB / theirs[i]!.peakRssMiB);
  const loads = [...ours, ...theirs].map((r) => r.load);
  rows.push(`| ${model} | ${batch} | ${values.size} | ${values.threads} | ${(ours[0]!.params / 1e6).toFixed(1)} M | ${span(ours.map((r) => r.imagesPerSec), 3)} | ${span(theirs.map((r) => r.imagesPerSec), 3)} | ` +
    `${span(speed, 3)} | ${span(ours.map((r) => r.peakRssMiB), 0)} | ${span(theirs.map((r) => r.peakRssMiB), 0)} | ${span(mem, 3)} | ${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)} |`);
}
console.log(`\nmask ratio ${values['mask-ratio']}, ${values.steps} timed steps after ${values.warmup} warm-up per run, ${values.repeats} interleaved pairs (awty, PyTorch), ${os.availableParallelism()} cores`);
console.log('| model | batch | px | threads | parameters | awty img/s median (min–max) | PyTorch img/s | speed ratio awty/PyTorch per pair | awty peak RSS MiB | PyTorch peak RSS MiB | memory ratio per pair | load (1 min) |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows) console.log(r);
