// End-to-end training benchmark, as a user runs it: `awty train-tc` against the original train_tc.py
// loop (bench/train_tc_torch.py: its loop, augmentation and DataLoader on the CPU), on PyTorch as
// Debian ships it (glibc malloc) and with jemalloc preloaded (as PyTorch's CPU performance guide
// recommends), on the same frames, model, batch, threads and loader workers. Runs alternate
// (awty, PyTorch, PyTorch + jemalloc, then again), each a fresh process tree for one epoch; each run
// reports images/s over the epoch, the time spent waiting for data, and the peak PSS of its whole
// process tree (main process + loader worker processes), sampled every 100 ms.
// Data-parallel sides (`--sides awty,awty-ddp,torch-ddp`): `awty launch --nproc-per-node N` and the
// same loop as N PyTorch DistributedDataParallel processes (gloo on loopback), each with threads / N
// threads and workers / N loader workers (at least 1), on the same global batch; awty's epoch line
// also gives the time waiting for the gradients' allreduce.
// usage: node dist/bench/train-tc.js [--frames 384] [--episodes 8] [--repeats 3] [--configs resnet18:32,resnext50_32x4d:16]
//        [--workers 2] [--threads 2] [--sides awty,torch,jemalloc,awty-ddp,torch-ddp] [--nproc 2] [--awty-args "--channels-last"]
import { execFileSync } from 'node:child_process';
import { existsSync, promises as fsp, readdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';
import { parseArgs } from 'node:util';
import { runOne, spread, type Run } from './proc.js';

const { values } = parseArgs({ options: {
  frames: { type: 'string', default: '384' }, episodes: { type: 'string', default: '8' }, repeats: { type: 'string', default: '3' },
  configs: { type: 'string', default: 'resnet18:32,resnext50_32x4d:16' }, workers: { type: 'string', default: '2' },
  threads: { type: 'string', default: '2' }, sides: { type: 'string', default: 'awty,torch,jemalloc' }, 'awty-args': { type: 'string', default: '' },
  data: { type: 'string', default: '' }, nproc: { type: 'string', default: '2' },
} });
const nproc = Number(values.nproc);
const frames = Number(values.frames), episodes = Number(values.episodes), repeats = Number(values.repeats);
const workers = values.workers, threads = values.threads;
const configs = values.configs.split(',').map((c) => { const [m, b] = c.split(':'); return { model: m!, batch: Number(b) }; });
const sides = values.sides.split(',');
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const JEMALLOC = '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2';
// PyTorch's CPU performance guide's jemalloc settings
const MALLOC_CONF = 'oversize_threshold:1,background_thread:true,metadata_thp:auto,dirty_decay_ms:9000000000,muzzy_decay_ms:9000000000';
if (sides.includes('jemalloc') && !existsSync(JEMALLOC)) throw new Error(`${JEMALLOC} missing: apt-get install libjemalloc2 (scripts/setup.sh does)`);

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'awty-bench-train-tc-'));
try {
  // frames as `awty extract` writes them (224x224 JPEG episodes), moving noisy test patterns
  let data = values.data;
  if (!data) {
    data = path.join(tmp, 'episodes');
    const per = Math.ceil(frames / episodes);
    for (let c = 0; c < episodes; c++) {
      const dir = path.join(data, `class_${String(c).padStart(4, '0')}`);
      await fsp.mkdir(dir, { recursive: true });
      execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `testsrc2=size=224x224:rate=25,hue=h=${c * 40},noise=alls=12:allf=t`,
        '-frames:v', String(per), '-q:v', '3', '-start_number', '0', path.join(dir, 'img_%04d.jpeg')]);
    }
  }
  const nClasses = readdirSync(data).length;
  const nFrames = readdirSync(data).reduce((n, d) => n + readdirSync(path.join(data, d)).length, 0);
  const out = path.join(tmp, 'out');
  await fsp.mkdir(out, { recursive: true });
  const baseEnv = { ...process.env, OMP_NUM_THREADS: undefined, MKL_NUM_THREADS: undefined };
  const awtyArgs = values['awty-args'].split(' ').filter(Boolean);
  const loads: number[] = [];
  const results = new Map<string, Run[]>();
  const key = (model: string, batch: number, side: string): string => `${model}:${batch}:${side}`;

  for (let r = 0; r < repeats; r++) {
    for (const { model, batch } of configs) {
      for (const side of sides) {
        loads.push(os.loadavg()[0]!);
        let run: Run;
        const ddp = side.endsWith('-ddp');
        const procThreads = ddp ? String(Math.max(1, Math.floor(Number(threads) / nproc))) : threads;
        const procWorkers = ddp ? String(Math.max(1, Math.floor(Number(workers) / nproc))) : workers;
        if (side === 'awty' || side === 'awty-ddp') {
          const cli = path.join(repo, 'dist', 'src', 'cli', 'main.js');
          const launch = ddp ? ['launch', '--nproc-per-node', String(nproc), '--threads', procThreads, '--master-port', String(await freePort()), '--'] : [];
          run = await runOne(process.execPath, [cli, ...launch, 'train-tc', '--data-dirs', data, '--model', model,
            '--n_out', String(nClasses), '--epochs', '1', '-b', String(batch), '-j', procWorkers, ...(ddp ? [] : ['--threads', threads]), '--out', out,
            '--print-freq', '1000000', '--cache-path', path.join(tmp, 'index'), ...awtyArgs], baseEnv, (s) => {
            const m = /Epoch 0: .*? ([\d.]+) img\/s .*?\(data wait ([\d.]+) s(?:, allreduce ([\d.]+) s)?\)/.exec(s);
            if (!m) throw new Error(`no epoch line in:\n${s}`);
            const ips = Number(m[1]);
            return { imagesPerSec: ips, seconds: nFrames / ips, dataSeconds: Number(m[2]), ...(m[3] !== undefined ? { commSeconds: Number(m[3]) } : {}) };
          });
        } else {
          const env = side === 'jemalloc' ? { ...baseEnv, LD_PRELOAD: JEMALLOC, MALLOC_CONF } : baseEnv;
          const dp = ddp ? ['--nproc', String(nproc), '--port', String(await freePort())] : [];
          run = await runOne('/usr/bin/python3', [path.join(repo, 'bench', 'train_tc_torch.py'), '--data-dirs', data, '--model', model,
            '--n_out', String(nClasses), '--batch-size', String(batch), '--workers', procWorkers, '--threads', procThreads, '--out', out, ...dp], env, (s) => {
            const j = JSON.parse(s.trim().split('\n').pop()!) as { images: number; seconds: number; data_seconds: number };
            return { imagesPerSec: j.images / j.seconds, seconds: j.seconds, dataSeconds: j.data_seconds };
          });
        }
        const list = results.get(key(model, batch, side)) ?? [];
        list.push(run);
        results.set(key(model, batch, side), list);
        console.log(`repeat ${r} ${model} b${batch} ${side.padEnd(8)}: ${run.imagesPerSec.toFixed(2)} img/s, epoch ${run.seconds.toFixed(1)} s ` +
          `(data wait ${run.dataSeconds.toFixed(1)} s${run.commSeconds !== undefined ? `, allreduce ${run.commSeconds.toFixed(1)} s` : ''}), process ${run.wallSeconds.toFixed(1)} s, peak PSS ${run.peakPssMiB.toFixed(0)} MiB, load ${os.loadavg()[0]!.toFixed(2)}`);
      }
    }
  }

  const span = spread;
  console.log(`\n${nFrames} frames 224x224 in ${nClasses} episodes, 1 epoch per run, ${workers} loader workers, ${threads} threads, ${repeats} interleaved repeats, ` +
    `${os.availableParallelism()} cores; load average (1 min) during the runs ${Math.min(...loads).toFixed(2)}–${Math.max(...loads).toFixed(2)}` +
    (awtyArgs.length ? `; awty with ${awtyArgs.join(' ')}` : ''));
  console.log('| model | batch | side | images/s median (min–max) | data wait % of epoch | peak PSS MiB of the process tree | speed ratio awty/side per repeat | memory ratio awty/side per repeat |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const { model, batch } of configs) {
    const ours = results.get(key(model, batch, 'awty'));
    for (const side of sides) {
      const rs = results.get(key(model, batch, side))!;
      const ratio = (f: (x: Run) => number): string => !ours || side === 'awty' ? '' : span(rs.map((x, i) => f(ours[i]!) / f(x)), 2);
      console.log(`| ${model} | ${batch} | ${side} | ${span(rs.map((x) => x.imagesPerSec), 2)} | ${span(rs.map((x) => (100 * x.dataSeconds) / x.seconds), 0)} | ` +
        `${span(rs.map((x) => x.peakPssMiB), 0)} | ${ratio((x) => x.imagesPerSec)} | ${ratio((x) => x.peakPssMiB)} |`);
    }
  }
  // data-parallel pairs, per repeat
  const pairs: [string, string][] = [['awty-ddp', 'torch-ddp'], ['awty-ddp', 'awty'], ['torch-ddp', 'torch']];
  const present = pairs.filter(([a, b]) => sides.includes(a) && sides.includes(b));
  if (present.length || sides.includes('awty-ddp')) {
    console.log(`\ndata-parallel sides: ${nproc} processes x ${Math.max(1, Math.floor(Number(threads) / nproc))} thread(s), ${Math.max(1, Math.floor(Number(workers) / nproc))} loader worker(s) each`);
    console.log('| model | batch | ratio | images/s ratio per repeat, median (min–max) | awty-ddp allreduce wait % of epoch |');
    console.log('| --- | --- | --- | --- | --- |');
    for (const { model, batch } of configs) {
      const dd = results.get(key(model, batch, 'awty-ddp'));
      const commPct = dd && dd.every((x) => x.commSeconds !== undefined) ? span(dd.map((x) => (100 * x.commSeconds!) / x.seconds), 0) : '';
      for (const [a, b] of present) {
        const ra = results.get(key(model, batch, a))!, rb = results.get(key(model, batch, b))!;
        console.log(`| ${model} | ${batch} | ${a} / ${b} | ${span(ra.map((x, i) => x.imagesPerSec / rb[i]!.imagesPerSec), 2)} | ${commPct} |`);
      }
    }
  }
} finally {
  await fsp.rm(tmp, { recursive: true, force: true });
}
