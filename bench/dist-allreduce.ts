// Allreduce benchmark: 100 MB of float32 between 2 processes on loopback, awty (c10d Gloo from Node)
// against torch.distributed (gloo) in Python on the same machine, interleaved A B A B.
// node dist/bench/dist-allreduce.js [--mb 100] [--iters 10] [--warmup 2] [--rounds 3]
import { spawn } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? Number(args[i + 1]) : dflt;
};
const mb = opt('--mb', 100);
const iters = opt('--iters', 10);
const warmup = opt('--warmup', 2);
const rounds = opt('--rounds', 3);
const here = path.dirname(fileURLToPath(import.meta.url));
const srcBench = path.join(here, '..', '..', 'bench');

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** Runs the command as ranks 0 and 1; returns rank 0's median seconds per allreduce. */
async function pair(cmd: string, argv: string[]): Promise<number> {
  const port = await freePort();
  const outs = await Promise.all([0, 1].map((rank) => new Promise<string>((resolve, reject) => {
    const c = spawn(cmd, argv, {
      env: { ...process.env, MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), WORLD_SIZE: '2', RANK: String(rank), AWTY_NUM_THREADS: '1', OMP_NUM_THREADS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    c.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    c.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} rank ${rank} failed (${code}):\n${err}`))));
  })));
  const secs = (JSON.parse(outs[0]!.trim().split('\n').pop()!) as { seconds: number[] }).seconds.sort((a, b) => a - b);
  return secs[Math.floor(secs.length / 2)]!;
}

const a: number[] = [];
const b: number[] = [];
const load0 = os.loadavg()[0]!;
for (let r = 0; r < rounds; r++) {
  a.push(await pair(process.execPath, [path.join(here, 'dist-allreduce-worker.js'), String(mb), String(iters), String(warmup)]));
  b.push(await pair('/usr/bin/python3', [path.join(srcBench, 'dist_allreduce_torch.py'), String(mb), String(iters), String(warmup)]));
}
const gbps = (s: number): number => (mb / 1000) / s;
const fmt = (xs: number[]): string => xs.map((s) => gbps(s).toFixed(2)).join(', ');
const ratios = a.map((s, i) => b[i]! / s);
const med = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
console.log(`allreduce ${mb} MB float32, 2 processes on loopback, ${iters} timed allreduces per run (median), ${rounds} rounds interleaved`);
console.log(`| awty GB/s (per round) | torch.distributed GB/s (per round) | ratio awty/PyTorch (median, min-max) | load average (start, end) |`);
console.log(`| --- | --- | --- | --- |`);
console.log(`| ${fmt(a)} | ${fmt(b)} | ${med(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}) | ${load0.toFixed(1)}, ${os.loadavg()[0]!.toFixed(1)} |`);
