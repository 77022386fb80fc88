// awty sweep on tiny data (a synthetic video cut into 8 episodes of 2 frames, resnet18 at 32 px, a
// 3-class labelled set): an evaluation stopped in its middle continues from the checkpoint finetune
// wrote, and ends with the top-1, top-5 and parameters of an uninterrupted sweep; with
// --nproc-per-node 2 every train-tc and finetune run is launched as 2 data-parallel processes on
// loopback, and the summary and results files are those of the run plan.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { extract } from '../src/data/index.js';
import * as torch from '../src/torch/index.js';
import * as io from '../src/io/index.js';
import { planSweep, resolveConfig, runSweep, tcRunState, type SweepConfig } from '../src/experiments/sweep.js';
import { InterruptedError, StopRequest } from '../src/experiments/interrupt.js';
import type { RunResultFile } from '../src/scaling/results.js';
import { tmpdir } from './helpers/oracle.js';
import { writeNoisyImage } from './helpers/images.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = path.join(repo, 'dist', 'src', 'cli', 'main.js');
const tmp = tmpdir('awty-sweep-continue-');
after(() => rmSync(tmp, { recursive: true, force: true }));
const threads = Number(process.env.AWTY_NUM_THREADS ?? '1');
const episodes = path.join(tmp, 'episodes');
const labelled = path.join(tmp, 'labelled');

before(async () => {
  const videos = path.join(tmp, 'videos');
  mkdirSync(videos, { recursive: true });
  const ff = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=64x48:rate=10', '-t', '8',
    '-pix_fmt', 'yuv420p', path.join(videos, 'a.mp4')], { encoding: 'utf8' });
  assert.equal(ff.status, 0, ff.stderr);
  await extract({ videoDirs: [videos], fps: 2, segLen: 1, resizeMinor: 40, size: 32, cropOffsetY: 0, rotate: 0, quality: 90, saveDir: episodes });
  const colours = [[220, 30, 30], [30, 200, 40], [40, 50, 230]];
  for (const [split, n] of [['train', 4], ['val', 2]] as const) {
    for (let c = 0; c < 3; c++) {
      const d = path.join(labelled, split, `n0000000${c}`);
      mkdirSync(d, { recursive: true });
      for (let i = 0; i < n; i++) await writeNoisyImage(path.join(d, `img_${i}.JPEG`), colours[c]!, c * 100 + i + (split === 'val' ? 50 : 0));
    }
  }
});

// one train-tc run (16 frames, 4 batches, 1 epoch), fine-tuned for 2 epochs of 3 batches with a decay after the first
const raw = (out: string, o: Record<string, unknown> = {}): Record<string, unknown> => ({
  dataDirs: [episodes], model: 'resnet18', classFractions: [1], seeds: [1], imageSize: 32,
  tc: { epochs: 1, batchSize: 4, workers: 0, printFreq: 100 }, trainDir: path.join(labelled, 'train'), valDir: path.join(labelled, 'val'),
  conditions: [{ name: 'few-shot', fracRetained: 1 }], eval: { epochs: 2, batchSize: 4, workers: 0, schedule: [1], printFreq: 100 },
  threads, bootstrap: 0, out: path.join(tmp, out), ...o,
});

function evalCheckpoint(c: SweepConfig): string {
  const dir = path.join(c.out, 'eval', 'few-shot', 'frac1.0_seed1');
  return path.join(dir, readdirSync(dir).find((n) => n.startsWith('IMGNET_') && n.endsWith('.tar') && !/_epoch_\d+(_batch_\d+)?\.tar$/.test(n))!);
}

async function maxDiff(a: string, b: string): Promise<number> {
  const ta = (await io.load(a)) as Record<string, unknown>;
  const tb = (await io.load(b)) as Record<string, unknown>;
  const sa = io.asStateDict(ta.model_state_dict);
  const sb = io.asStateDict(tb.model_state_dict);
  assert.deepEqual(Object.keys(sa).sort(), Object.keys(sb).sort());
  let m = 0;
  for (const k of Object.keys(sa)) m = Math.max(m, torch.tidy(() => sa[k]!.double().sub(sb[k]!.double()).abs().max().item()));
  io.disposeTree(ta);
  io.disposeTree(tb);
  return m;
}

test('an evaluation stopped in its second epoch continues from its checkpoint when the sweep is run again: the results of an uninterrupted sweep', async () => {
  const quiet = { log: (): void => undefined };
  const ref = resolveConfig(raw('ref'));
  const a = await runSweep(ref, quiet);
  assert.equal(a.rows.length, 1);

  const c = resolveConfig(raw('int'));
  const stop = new StopRequest();
  // train-tc has one epoch: epoch 1 is the evaluation's second
  await assert.rejects(runSweep(c, { ...quiet, stop, onStep: (st) => { if (st.epoch === 1 && st.iteration === 1) stop.signal = 'SIGTERM'; } }), (e: unknown) => {
    assert.ok(e instanceof InterruptedError);
    assert.match(path.basename(e.checkpoint!), /^IMGNET_.*_epoch_1_batch_2\.tar$/);
    assert.ok(existsSync(`${e.checkpoint!}.interrupted.json`));
    return true;
  });
  const lines: string[] = [];
  const b = await runSweep(c, { log: (l) => lines.push(l), runLog: (l) => lines.push(l) });
  assert.deepEqual([b.ran, b.skipped], [{ tc: 0, eval: 1, baseline: 0 }, { tc: 1, eval: 0, baseline: 0 }]);
  assert.ok(lines.some((l) => /continuing from .*_epoch_1_batch_2\.tar/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /--continue .*_epoch_1_batch_2\.tar/.test(l)), 'the printed command continues');
  assert.ok(!lines.some((l) => /^Epoch: \[0\]/.test(l)), 'the finished epoch is not redone');
  assert.ok(Math.abs(b.rows[0]!.top1 - a.rows[0]!.top1) <= 1e-6 && Math.abs(b.rows[0]!.top5 - a.rows[0]!.top5) <= 1e-6);
  const ra = JSON.parse(readFileSync(path.join(ref.out, a.rows[0]!.result), 'utf8')) as RunResultFile;
  const rb = JSON.parse(readFileSync(path.join(c.out, b.rows[0]!.result), 'utf8')) as RunResultFile;
  for (const k of ['valLossPerEpoch', 'trainLossPerEpoch', 'trainTop1PerEpoch'] as const) {
    (ra[k] as number[]).forEach((v, i) => assert.ok(Math.abs(v - (rb[k] as number[])[i]!) <= 1e-6, `${k}[${i}]`));
  }
  assert.ok((await maxDiff(evalCheckpoint(c), evalCheckpoint(ref))) <= 1e-6);
  const left = readdirSync(path.dirname(evalCheckpoint(c)));
  assert.ok(!left.some((n) => n.includes('_batch_') || n.endsWith('.interrupted.json')), left.join(' '));
});

test('nprocPerNode must divide both global batches', () => {
  assert.throws(() => resolveConfig(raw('x', { nprocPerNode: 3 })), /tc\.batchSize: 4 is the global batch and must divide evenly among the nprocPerNode 3 processes/);
  assert.throws(() => resolveConfig(raw('x', { nprocPerNode: 0 })), /nprocPerNode: must be an integer >= 1/);
});

test('--nproc-per-node 2: every train-tc and finetune run of the sweep runs as 2 data-parallel processes on loopback; the results are those of the plan', async () => {
  const cfg = raw('dp', {
    classFractions: [1, 0.5], conditions: [{ name: 'linear-probe', fracRetained: 1, freezeTrunk: true }],
    eval: { epochs: 1, batchSize: 6, workers: 0, schedule: [], printFreq: 100 }, threads: 2,
  });
  writeFileSync(path.join(tmp, 'dp.json'), JSON.stringify(cfg));
  const r = spawnSync(process.execPath, [cli, 'sweep', path.join(tmp, 'dp.json'), '--nproc-per-node', '2'], { encoding: 'utf8', maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  // 2 train-tc and 2 finetune runs, each through the launcher with one thread per process
  assert.equal(r.stdout.match(/awty launch --nproc-per-node 2 --threads 1 -- train-tc /g)?.length, 2, r.stdout);
  assert.equal(r.stdout.match(/awty launch --nproc-per-node 2 --threads 1 -- finetune /g)?.length, 2);
  assert.equal(r.stdout.match(/^\[0\] distributed: 2 processes \(gloo\)/gm)?.length, 4, r.stdout);
  assert.equal(r.stderr.match(/awty launch: rank 1 started/g)?.length, 4);
  const plan = await planSweep(resolveConfig({ ...cfg, nprocPerNode: 2 }));
  const csv = readFileSync(path.join(tmp, 'dp', 'summary.csv'), 'utf8').trim().split('\n');
  assert.equal(csv.length - 1, plan.evalRuns.length);
  for (const [i, e] of plan.evalRuns.entries()) {
    const st = await tcRunState(e.tc);
    assert.equal(st.state, 'done');
    assert.equal(st.record!.threads, 1);
    const row = csv[i + 1]!.split(',');
    assert.equal(Number(row[0]), e.tc.classFraction);
    assert.equal(row[4], 'linear-probe');
    const res = JSON.parse(readFileSync(path.join(tmp, 'dp', row[9]!), 'utf8')) as RunResultFile;
    assert.equal(path.dirname(path.join(tmp, 'dp', row[9]!)), e.dir);
    assert.equal(res.complete, true);
    assert.equal(res.checkpoint, st.checkpoint);
    assert.equal(res.trainImages, e.trainImages);
    assert.equal(res.hours, st.record!.hours);
    assert.equal(Number(row[5]), res.top1);
  }
});
