// Benchmark: load a resnext101_32x8d checkpoint made by PyTorch (about 350 MB) with io.load, against
// torch.load in Python in the same run. Reports wall time and peak resident memory over the
// process's baseline (each loader in its own fresh process), relative to the tensors' size.
//
//   node dist/bench/io-load.js [checkpoint.pt] [--repeats N]   (made with /usr/bin/python3 if not given; N = 5)
//
// Each repeat runs both loaders once, each in a fresh process, alternating which goes first; the
// summary gives the median and range of the per-repeat ratios.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
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
  const args = process.argv.slice(2);
  const at = args.indexOf('--repeats');
  const repeats = at >= 0 ? Number(args.splice(at, 2)[1]) : 5;
  if (!Number.isInteger(repeats) || repeats < 1) throw new Error('--repeats: expected a whole number >= 1');
  let path = args[0];
  let dir: string | undefined;
  if (!path) {
    dir = mkdtempSync(join(tmpdir(), 'awty-bench-io-'));
    path = join(dir, 'resnext101_32x8d.pt');
    const r = spawnSync(PY, ['-c', 'import sys, torch, torchvision; m = torchvision.models.resnext101_32x8d(); torch.save({"model_state_dict": m.state_dict()}, sys.argv[1])', path], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('could not make the checkpoint with Python');
  }
  if (!existsSync(path)) throw new Error(`no such file: ${path}`);
  const self = fileURLToPath(import.meta.url);
  const runAwty = (): { ms: number; peakOverBase: number; tensorBytes: number } => {
    const awty = spawnSync(process.execPath, [self, '--child', path], { encoding: 'utf8' });
    if (awty.status !== 0) throw new Error(`awty load failed:\n${awty.stderr}`);
    return JSON.parse(awty.stdout.trim().split('\n').pop()!) as { ms: number; peakOverBase: number; tensorBytes: number };
  };
  const runTorch = (): { ms: number; peakOverBase: number } => {
    const py = spawnSync(PY, ['-c', `
import sys, time, json, resource, torch
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
t0 = time.perf_counter(); c = torch.load(sys.argv[1]); ms = (time.perf_counter() - t0) * 1000
print(json.dumps({'ms': ms, 'peakOverBase': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base}))
`, path], { encoding: 'utf8' });
    if (py.status !== 0) throw new Error(`torch.load failed:\n${py.stderr}`);
    return JSON.parse(py.stdout.trim().split('\n').pop()!) as { ms: number; peakOverBase: number };
  };
  const mb = (b: number): string => (b / 2 ** 20).toFixed(0);
  const med = (xs: number[]): number => {
    const s = [...xs].sort((x, y) => x - y);
    return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  const ratios: number[] = [];
  const memRatios: number[] = [];
  let tensorBytes = 0;
  for (let r = 1; r <= repeats; r++) {
    // alternate which side goes first, so that neither always follows the other
    const p0 = r % 2 ? undefined : runTorch();
    const a = runAwty();
    const p = p0 ?? runTorch();
    tensorBytes = a.tensorBytes;
    ratios.push(a.ms / p.ms);
    memRatios.push(a.peakOverBase / p.peakOverBase);
    console.log(`repeat ${r}: awty io.load ${a.ms.toFixed(0)} ms (+${mb(a.peakOverBase)} MB, ${(a.peakOverBase / a.tensorBytes).toFixed(2)}x tensors), ` +
      `torch.load ${p.ms.toFixed(0)} ms (+${mb(p.peakOverBase)} MB, ${(p.peakOverBase / a.tensorBytes).toFixed(2)}x tensors), ` +
      `time ratio ${(a.ms / p.ms).toFixed(2)}, load average ${loadavg()[0]!.toFixed(2)}`);
  }
  console.log(`checkpoint ${path}: ${mb(statSync(path).size)} MB file, ${mb(tensorBytes)} MB of tensors`);
  console.log(`time awty/torch.load: median ${med(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}) over ${repeats} repeats (target <= 1.0); ` +
    `peak memory awty/torch.load: median ${med(memRatios).toFixed(2)} (${Math.min(...memRatios).toFixed(2)}-${Math.max(...memRatios).toFixed(2)}) (target <= 1.05)`);
  if (dir) rmSync(dir, { recursive: true, force: true });
}

if (process.argv[2] === '--child') await child(process.argv[3]!);
else main();
