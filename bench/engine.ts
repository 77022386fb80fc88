// Engine benchmark: training (forward + backward + Adam step) and inference images/s and peak resident
// memory, awty against Python PyTorch on the same machine, model, batch and thread count, in one run;
// PyTorch both on glibc's malloc (as Debian ships it) and with jemalloc preloaded (PyTorch's CPU
// performance guide's advice and settings), the stronger anchor.
// node dist/bench/engine.js [--steps 5] [--warmup 2] [--quick]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { existsSync } from 'node:fs';
import os from 'node:os';

const args = process.argv.slice(2);
const opt = (name: string, dflt: string): string => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
};
const steps = opt('--steps', '5');
const warmup = opt('--warmup', '2');
const here = path.dirname(fileURLToPath(import.meta.url));
const srcBench = path.join(here, '..', '..', 'bench');

interface Result {
  imagesPerSec: number;
  peakRssMiB: number;
}
function run(cmd: string, argv: string[], env: Record<string, string> = {}): Result {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: undefined, ...env } });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Result;
}

const JEMALLOC = '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2';
const jemalloc = { LD_PRELOAD: JEMALLOC, MALLOC_CONF: 'oversize_threshold:1,background_thread:true,metadata_thp:auto,dirty_decay_ms:9000000000,muzzy_decay_ms:9000000000' };
if (!existsSync(JEMALLOC)) throw new Error(`${JEMALLOC} missing: apt-get install libjemalloc2 (scripts/setup.sh does)`);

const configs: [string, number][] = args.includes('--quick') ? [['resnet18', 32]] : [['resnet18', 32], ['resnext50_32x4d', 16]];
const rows: string[] = [];
// "glibc" columns: awty with its caching CPU allocator turned off, i.e. on the same allocator as
// Python PyTorch, which isolates what the TypeScript layer itself costs.
rows.push('| model | batch | threads | mode | awty img/s | PyTorch img/s | ratio | PyTorch+jemalloc img/s | ratio | awty (glibc) img/s | ratio (glibc) | awty peak RSS MiB | PyTorch peak RSS MiB | ratio | PyTorch+jemalloc MiB | ratio | ratio (glibc) | load |');
rows.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const [arch, batch] of configs) {
  for (const threads of [1, 2]) {
    for (const mode of ['train', 'infer']) {
      const a = [arch, String(batch), '112', String(threads), mode, steps, warmup];
      const ours = run(process.execPath, [path.join(here, 'engine-worker.js'), ...a]);
      const theirs = run('/usr/bin/python3', [path.join(srcBench, 'engine_torch.py'), ...a]);
      const je = run('/usr/bin/python3', [path.join(srcBench, 'engine_torch.py'), ...a], jemalloc);
      const glibc = run(process.execPath, [path.join(here, 'engine-worker.js'), ...a], { AWTY_CPU_CACHING_ALLOCATOR: '0' });
      const r = (x: number, y: number): string => (x / y).toFixed(3);
      const row = `| ${arch} | ${batch} | ${threads} | ${mode} | ${ours.imagesPerSec.toFixed(2)} | ${theirs.imagesPerSec.toFixed(2)} | ${r(ours.imagesPerSec, theirs.imagesPerSec)} | ${je.imagesPerSec.toFixed(2)} | ${r(ours.imagesPerSec, je.imagesPerSec)} | ${glibc.imagesPerSec.toFixed(2)} | ${r(glibc.imagesPerSec, theirs.imagesPerSec)} | ${ours.peakRssMiB.toFixed(0)} | ${theirs.peakRssMiB.toFixed(0)} | ${r(ours.peakRssMiB, theirs.peakRssMiB)} | ${je.peakRssMiB.toFixed(0)} | ${r(ours.peakRssMiB, je.peakRssMiB)} | ${r(glibc.peakRssMiB, theirs.peakRssMiB)} | ${os.loadavg()[0]!.toFixed(1)} |`;
      rows.push(row);
      process.stdout.write(row + '\n');
    }
  }
}
process.stdout.write('\n' + rows.join('\n') + '\n');
