// Benchmark: load a resnext101_32x8d checkpoint made by PyTorch (about 350 MB) with io.load, against
// torch.load in Python in the same run. Reports wall time and peak resident memory over the
// process's baseline (each loader in its own fresh process), relative to the tensors' size.
//
//   node dist/bench/io-load.js [checkpoint.pt]     (made with /usr/bin/python3 if not given)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PY = '/usr/bin/python3';

async function child(path: string): Promise<void> {
  const torch = await import('../src/torch/index.js');
  const io = await import('../src/io/index.js');
  void torch.version;
  const base = process.resourceUsage().maxRSS * 1024;
  const t0 = performance.now();
  const ckpt = await io.load(path);
  const ms = performance.now() - t0;
  let bytes = 0;
  const seen = new Set<unknown>();
  const walk = (v: unknown): void => {
    if (typeof v !== 'object' || v === null || seen.has(v)) return;
    seen.add(v);
    if (v instanceof torch.Tensor) { bytes += v.numel() * torch.elementSize(v.dtype); return; }
    for (const x of v instanceof Map ? v.values() : Object.values(v)) walk(x);
  };
  walk(ckpt);
  const peak = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(JSON.stringify({ ms, peakOverBase: peak - base, tensorBytes: bytes }) + '\n');
}

function main(): void {
  let path = process.argv[2];
  let dir: string | undefined;
  if (!path) {
    dir = mkdtempSync(join(tmpdir(), 'awty-bench-io-'));
    path = join(dir, 'resnext101_32x8d.pt');
    const r = spawnSync(PY, ['-c', 'import sys, torch, torchvision; m = torchvision.models.resnext101_32x8d(); torch.save({"model_state_dict": m.state_dict()}, sys.argv[1])', path], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('could not make the checkpoint with Python');
  }
  if (!existsSync(path)) throw new Error(`no such file: ${path}`);
  const self = fileURLToPath(import.meta.url);
  const awty = spawnSync(process.execPath, [self, '--child', path], { encoding: 'utf8' });
  if (awty.status !== 0) throw new Error(`awty load failed:\n${awty.stderr}`);
  const a = JSON.parse(awty.stdout.trim().split('\n').pop()!) as { ms: number; peakOverBase: number; tensorBytes: number };
  const py = spawnSync(PY, ['-c', `
import sys, time, json, resource, torch
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
t0 = time.perf_counter(); c = torch.load(sys.argv[1]); ms = (time.perf_counter() - t0) * 1000
print(json.dumps({'ms': ms, 'peakOverBase': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base}))
`, path], { encoding: 'utf8' });
  if (py.status !== 0) throw new Error(`torch.load failed:\n${py.stderr}`);
  const p = JSON.parse(py.stdout.trim().split('\n').pop()!) as { ms: number; peakOverBase: number };
  const mb = (b: number): string => (b / 2 ** 20).toFixed(0);
  console.log(`checkpoint ${path}: ${mb(statSync(path).size)} MB file, ${mb(a.tensorBytes)} MB of tensors`);
  console.log(`awty io.load:     ${a.ms.toFixed(0)} ms, peak memory +${mb(a.peakOverBase)} MB (${(a.peakOverBase / a.tensorBytes).toFixed(2)}x tensors)`);
  console.log(`torch.load (py):  ${p.ms.toFixed(0)} ms, peak memory +${mb(p.peakOverBase)} MB (${(p.peakOverBase / a.tensorBytes).toFixed(2)}x tensors)`);
  console.log(`time ratio awty/torch: ${(a.ms / p.ms).toFixed(2)} (target <= 1.5); memory target <= 1.2x tensors`);
  if (dir) rmSync(dir, { recursive: true, force: true });
}

if (process.argv[2] === '--child') await child(process.argv[3]!);
else main();
