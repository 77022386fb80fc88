// Memory format and mixed precision on CPU: resnet18 training step (forward + backward + Adam) and
// inference images/s with fp32, channels_last, bfloat16 autocast, and both, awty against Python
// PyTorch with the same settings, model, batch and threads. Each repeat runs every variant of both
// sides in turn (awty, PyTorch, awty, PyTorch, ...), so load changes hit both alike; the table gives
// the median over repeats and the range (min-max), the speed-up of each variant over fp32 on each
// side, and the load average during the run.
// node dist/bench/amp.js [--repeats 3] [--steps 5] [--warmup 2] [--size 112] [--batch 32] [--threads 2] [--arch resnet18]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import os from 'node:os';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};
const repeats = Number(opt('--repeats', '3'));
const steps = opt('--steps', '5');
const warmup = opt('--warmup', '2');
const size = opt('--size', '112');
const batch = opt('--batch', '32');
const threads = opt('--threads', '2');
const arch = opt('--arch', 'resnet18');
const here = path.dirname(fileURLToPath(import.meta.url));
const srcBench = path.join(here, '..', '..', 'bench');

interface Result { imagesPerSec: number; peakRssMiB: number }
function run(cmd: string, argv: string[]): Result {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: undefined } });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Result;
}

const variants = ['fp32', 'cl', 'amp', 'cl+amp'] as const;
const modes = ['train', 'infer'] as const;
type Key = `${(typeof modes)[number]} ${(typeof variants)[number]}`;
const got = new Map<Key, { awty: number[]; torch: number[]; awtyRss: number[]; torchRss: number[] }>();
const loads: number[] = [];
for (let r = 0; r < repeats; r++) {
  for (const mode of modes) {
    for (const v of variants) {
      const a = [arch, batch, size, threads, mode, v, steps, warmup];
      const ours = run(process.execPath, [path.join(here, 'amp-worker.js'), ...a]);
      const theirs = run('/usr/bin/python3', [path.join(srcBench, 'amp_torch.py'), ...a]);
      const k: Key = `${mode} ${v}`;
      const e = got.get(k) ?? { awty: [], torch: [], awtyRss: [], torchRss: [] };
      e.awty.push(ours.imagesPerSec);
      e.torch.push(theirs.imagesPerSec);
      e.awtyRss.push(ours.peakRssMiB);
      e.torchRss.push(theirs.peakRssMiB);
      got.set(k, e);
      loads.push(os.loadavg()[0]!);
      process.stderr.write(`repeat ${r} ${k}: awty ${ours.imagesPerSec.toFixed(2)} img/s, PyTorch ${theirs.imagesPerSec.toFixed(2)} img/s (load ${os.loadavg()[0]!.toFixed(1)})\n`);
    }
  }
}
const median = (xs: number[]): number => {
  const s = [...xs].sort((p, q) => p - q);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const range = (xs: number[]): string => `${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)}`;
const rows = [
  `${arch}, batch ${batch}, ${size} px, ${threads} threads, ${steps} timed steps after ${warmup}, ${repeats} interleaved repeats; load average ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}`,
  '',
  '| mode | variant | awty img/s median (range) | PyTorch img/s median (range) | awty / PyTorch (median of pairs) | awty vs its fp32 | PyTorch vs its fp32 | awty peak RSS MiB | PyTorch peak RSS MiB |',
  '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
];
for (const mode of modes) {
  const base = got.get(`${mode} fp32`)!;
  for (const v of variants) {
    const e = got.get(`${mode} ${v}`)!;
    const pairs = e.awty.map((x, i) => x / e.torch[i]!);
    rows.push(`| ${mode} | ${v} | ${median(e.awty).toFixed(2)} (${range(e.awty)}) | ${median(e.torch).toFixed(2)} (${range(e.torch)}) | ${median(pairs).toFixed(3)} | ${(median(e.awty) / median(base.awty)).toFixed(2)}x | ${(median(e.torch) / median(base.torch)).toFixed(2)}x | ${median(e.awtyRss).toFixed(0)} | ${median(e.torchRss).toFixed(0)} |`);
  }
}
process.stdout.write(rows.join('\n') + '\n');
