// Engine benchmark: training (forward + backward + Adam step) and inference images/s and peak resident
// memory, awty against Python PyTorch on the same machine, model, batch and thread count, in one run.
// node dist/bench/engine.js [--steps 5] [--warmup 2] [--quick]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

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
function run(cmd: string, argv: string[]): Result {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: undefined } });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Result;
}

const configs: [string, number][] = args.includes('--quick') ? [['resnet18', 32]] : [['resnet18', 32], ['resnext50_32x4d', 16]];
const rows: string[] = [];
rows.push('| model | batch | threads | mode | awty img/s | PyTorch img/s | ratio | awty peak RSS MiB | PyTorch peak RSS MiB | ratio |');
rows.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const [arch, batch] of configs) {
  for (const threads of [1, 2]) {
    for (const mode of ['train', 'infer']) {
      const a = [arch, String(batch), '112', String(threads), mode, steps, warmup];
      const ours = run(process.execPath, [path.join(here, 'engine-worker.js'), ...a]);
      const theirs = run('/usr/bin/python3', [path.join(srcBench, 'engine_torch.py'), ...a]);
      const row = `| ${arch} | ${batch} | ${threads} | ${mode} | ${ours.imagesPerSec.toFixed(2)} | ${theirs.imagesPerSec.toFixed(2)} | ${(ours.imagesPerSec / theirs.imagesPerSec).toFixed(3)} | ${ours.peakRssMiB.toFixed(0)} | ${theirs.peakRssMiB.toFixed(0)} | ${(ours.peakRssMiB / theirs.peakRssMiB).toFixed(3)} |`;
      rows.push(row);
      process.stdout.write(row + '\n');
    }
  }
}
process.stdout.write('\n' + rows.join('\n') + '\n');
