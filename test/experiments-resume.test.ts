// Runs that survive interruption: N epochs in one run equal N-k epochs plus a resume, at an epoch
// boundary and in the middle of an epoch (a stop request after a given step, and a real SIGINT to
// the command line); --resume of a finished run does nothing; the metrics file's last epoch line
// equals the run record; --save-every and --keep-last.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import * as torch from '../src/torch/index.js';
import * as io from '../src/io/index.js';
import { main, TC_DEFAULTS, type TcOptions } from '../src/experiments/tc.js';
import { InterruptedError, StopRequest } from '../src/experiments/interrupt.js';
import { METRICS_CSV_COLUMNS, readMetrics, type EpochLine, type StepLine } from '../src/experiments/metrics.js';
import { tmpdir } from './helpers/oracle.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = path.join(repo, 'dist', 'src', 'cli', 'main.js');
const tmp = tmpdir('awty-resume-');
after(() => rmSync(tmp, { recursive: true, force: true }));
const data = path.join(tmp, 'data');
const threads = Number(process.env.AWTY_NUM_THREADS ?? '1');
const COLOURS: [number, number, number][] = [[230, 20, 20], [20, 200, 40], [30, 40, 220], [240, 230, 30], [200, 30, 220]];

before(async () => {
  for (let c = 0; c < COLOURS.length; c++) {
    const d = path.join(data, `class_${String(c).padStart(4, '0')}`);
    mkdirSync(d, { recursive: true });
    for (let i = 0; i < 4; i++) {
      const px = Buffer.alloc(32 * 32 * 3);
      for (let k = 0; k < px.length; k++) px[k] = Math.max(0, Math.min(255, COLOURS[c]![k % 3]! + ((k * 7919 + i * 104729) % 21) - 10));
      await sharp(px, { raw: { width: 32, height: 32, channels: 3 } }).jpeg({ quality: 95 }).toFile(path.join(d, `img_${String(i).padStart(4, '0')}.jpeg`));
    }
  }
});

// augmentation on: its randomness must also be continued exactly
const opts = (out: string, o: Partial<TcOptions> = {}): TcOptions => ({
  ...TC_DEFAULTS, dataDirs: [data], model: 'resnet18', nOut: 5, epochs: 3, batchSize: 4, workers: 0, imageSize: 32, threads, out,
  subject: 'T', cachePath: path.join(tmp, 'index.bin'), log: () => undefined, ...o,
});
const ckpt = (out: string, epoch: number): string => path.join(out, `TC_T_resnet18_1.0_1_epoch_${epoch}.tar`);

async function maxDiff(a: string, b: string): Promise<number> {
  const sa = io.asStateDict(((await io.load(a)) as Record<string, unknown>).model_state_dict);
  const sb = io.asStateDict(((await io.load(b)) as Record<string, unknown>).model_state_dict);
  assert.deepEqual(Object.keys(sa).sort(), Object.keys(sb).sort());
  let m = 0;
  for (const k of Object.keys(sa)) {
    m = Math.max(m, torch.tidy(() => (sa[k]!.dtype === 'int64' ? sa[k]!.sub(sb[k]!).abs().max().item() : sa[k]!.double().sub(sb[k]!.double()).abs().max().item())));
  }
  return m;
}

const full = path.join(tmp, 'full');
test('3 epochs in one run: metrics lines parse, the last epoch line equals the run record', async () => {
  const r = await main(opts(full));
  assert.equal(r.checkpoints.length, 3);
  const rec = (await io.readRunRecord(ckpt(full, 2)))!;
  assert.equal(rec.status, 'complete');
  assert.equal(rec.epochs.length, 3);
  const lines = readMetrics(path.join(full, 'TC_T_resnet18_1.0_1.metrics.jsonl'));
  const epochs = lines.filter((l): l is EpochLine => l.type === 'epoch');
  assert.equal(epochs.length, 3);
  const { type, lr, time, ...last } = epochs.at(-1)!;
  assert.equal(type, 'epoch');
  assert.equal(lr, 0.0005);
  assert.ok(!Number.isNaN(Date.parse(time)));
  assert.deepEqual(last, rec.epochs.at(-1));
  const steps = lines.filter((l): l is StepLine => l.type === 'step');
  assert.deepEqual(steps.map((s) => s.step), [0, 5, 10]); // --log-freq 50: iteration 0 of each epoch
  for (const s of steps) for (const k of ['loss', 'acc1', 'acc5', 'lr', 'imagesPerSecond', 'dataSeconds'] as const) assert.equal(typeof s[k], 'number', k);
});

test('2 epochs + resume for the 3rd gives the parameters of 3 epochs in one run (max abs diff <= 1e-6); the record carries all epochs', async () => {
  const out = path.join(tmp, 'split');
  await main(opts(out, { epochs: 2 }));
  const r = await main(opts(out, { resume: ckpt(out, 1) }));
  assert.equal(r.startEpoch, 2);
  assert.ok((await maxDiff(ckpt(out, 2), ckpt(full, 2))) <= 1e-6);
  const rec = (await io.readRunRecord(ckpt(out, 2)))!;
  assert.deepEqual(rec.epochs.map((e) => e.epoch), [0, 1, 2]);
  assert.equal(rec.status, 'complete');
});

test('a stop request in the middle of epoch 1 writes a mid-epoch checkpoint; resuming it gives the parameters of the uninterrupted run', async () => {
  const out = path.join(tmp, 'mid');
  const stop = new StopRequest();
  await assert.rejects(main(opts(out, { stop, onStep: (s) => { if (s.epoch === 1 && s.iteration === 2) stop.signal = 'SIGTERM'; } })), (e: unknown) => {
    assert.ok(e instanceof InterruptedError);
    assert.equal(e.exitCode, 143);
    assert.equal(path.basename(e.checkpoint!), 'TC_T_resnet18_1.0_1_epoch_1_batch_3.tar');
    return true;
  });
  const mid = path.join(out, 'TC_T_resnet18_1.0_1_epoch_1_batch_3.tar');
  const rec = (await io.readRunRecord(mid))!;
  assert.equal(rec.status, 'interrupted');
  assert.deepEqual(rec.position, { epoch: 1, batch: 3, batches: 5 });
  const r = await main(opts(out, { resume: mid }));
  assert.equal(r.startEpoch, 1);
  assert.ok((await maxDiff(ckpt(out, 2), ckpt(full, 2))) <= 1e-6);
  // the epoch's averages were continued, not restarted
  const a = ((await io.load(ckpt(out, 2))) as { acc1_list: number[] }).acc1_list;
  const b = ((await io.load(ckpt(full, 2))) as { acc1_list: number[] }).acc1_list;
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(Number(a[i]) - Number(b[i])) <= 1e-6, `acc1_list[${i}]`);
  assert.ok(!existsSync(mid), 'the superseded mid-epoch checkpoint is removed');
  const steps = readMetrics(path.join(out, 'TC_T_resnet18_1.0_1.metrics.jsonl')).filter((l) => l.type === 'step').map((l) => `${l.epoch}/${(l as StepLine).iteration}`);
  assert.equal(new Set(steps).size, steps.length, 'no step logged twice');
  // the CSV beside it holds the same lines after the resume (its rows rewritten from those kept, then appended)
  const jsonl = readMetrics(path.join(out, 'TC_T_resnet18_1.0_1.metrics.jsonl'));
  const csv = readFileSync(path.join(out, 'TC_T_resnet18_1.0_1.metrics.csv'), 'utf8').trim().split('\n');
  assert.equal(csv[0], METRICS_CSV_COLUMNS.join(','));
  assert.deepEqual(csv.slice(1).map((r) => r.split(',').slice(0, 5).join(',')),
    jsonl.map((l) => [l.type, l.epoch, l.type === 'step' ? l.iteration : '', l.type === 'step' ? l.step : '', l.loss].join(',')));
});

test('SIGINT to train-tc: finishes the step, saves, prints the resume command, exits 130; the command finishes the run exactly; --resume of a finished run exits 0', async () => {
  const out = path.join(tmp, 'cli');
  const args = ['train-tc', '--data-dirs', data, '--model', 'resnet18', '--n_out', '5', '--epochs', '3', '-b', '4', '-j', '0', '--image-size', '32',
    '--threads', String(threads), '--subject', 'T', '--cache-path', path.join(tmp, 'index.bin'), '-p', '1', '--out', out];
  const child = spawn('node', [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let sent = false;
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    // early in the run: the child may run several steps ahead of the pipe on a loaded machine, and must not finish first
    if (!sent && /Epoch: \[0\]\[\s*1\/5\]/.test(stdout)) { sent = true; child.kill('SIGINT'); }
  });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
  assert.equal(code, 130, stderr + stdout);
  const m = /resume with:\n\s+(.+)\n/.exec(stderr);
  assert.ok(m, stderr);
  const cmd = m[1]!.split(' ');
  assert.equal(cmd[0], 'awty');
  const mid = cmd.at(-1)!;
  // mid-epoch as a rule (the step after the signal); at an epoch's end if the signal came in its last step
  assert.match(path.basename(mid), /^TC_T_resnet18_1\.0_1_epoch_[01](_batch_\d)?\.tar$/);
  const r = spawnSync('node', [cli, ...cmd.slice(1)], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.ok((await maxDiff(ckpt(out, 2), ckpt(full, 2))) <= 1e-6);
  const files = readdirSync(out).sort();
  const again = spawnSync('node', [cli, ...args, '--resume', ckpt(out, 2)], { encoding: 'utf8' });
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, /nothing to do: .*already finished/);
  assert.doesNotMatch(again.stdout, /Epoch: \[/);
  assert.deepEqual(readdirSync(out).sort(), files);
});

test('--save-every 2 --keep-last 1: checkpoints after epochs 1 and 2 (the last), only the newest kept', async () => {
  const out = path.join(tmp, 'keep');
  const r = await main(opts(out, { saveEvery: 2, keepLast: 1, metrics: '' }));
  assert.deepEqual(r.checkpoints.map((f) => path.basename(f)), ['TC_T_resnet18_1.0_1_epoch_1.tar', 'TC_T_resnet18_1.0_1_epoch_2.tar']);
  assert.deepEqual(readdirSync(out).filter((n) => !n.startsWith('.')).sort(), ['TC_T_resnet18_1.0_1_epoch_2.tar', 'TC_T_resnet18_1.0_1_epoch_2.tar.json']);
  assert.equal((await io.readRunRecord(ckpt(out, 2)))!.epochs.length, 3);
});

test('keepCheckpoints with --save-every / --keep-last: \'last\' keeps the newest of those saved, \'final\' with --keep-last removes older ones, contradictions are refused', async () => {
  const name = (e: number): string => `TC_T_resnet18_1.0_1_epoch_${e}.tar`;
  const listing = (d: string): string[] => readdirSync(d).filter((n) => !n.startsWith('.')).sort();
  // 'last' + --save-every 2 over 3 epochs: saved after epochs 1 and 2, only the last kept, the parameters of the run that kept all
  const last = path.join(tmp, 'keep-last-every');
  const r = await main(opts(last, { keepCheckpoints: 'last', saveEvery: 2, metrics: '' }));
  assert.deepEqual(r.checkpoints.map((f) => path.basename(f)), [name(1), name(2)]);
  assert.deepEqual(listing(last), [name(2), `${name(2)}.json`]);
  assert.ok((await maxDiff(ckpt(last, 2), ckpt(full, 2))) <= 1e-6);
  // 'final' + --keep-last 1, resuming a run that saved every epoch: only the final checkpoint is written, the older ones go
  const fin = path.join(tmp, 'keep-final');
  await main(opts(fin, { epochs: 2, metrics: '' }));
  assert.deepEqual(listing(fin), [name(0), `${name(0)}.json`, name(1), `${name(1)}.json`]);
  const f = await main(opts(fin, { resume: ckpt(fin, 1), keepCheckpoints: 'final', keepLast: 1, metrics: '' }));
  assert.deepEqual(f.checkpoints.map((x) => path.basename(x)), [name(2)]);
  assert.deepEqual(listing(fin), [name(2), `${name(2)}.json`]);
  assert.deepEqual((await io.readRunRecord(ckpt(fin, 2)))!.epochs.map((e) => e.epoch), [0, 1, 2]);
  // contradictions: refused before anything is written
  const bad = path.join(tmp, 'keep-bad');
  await assert.rejects(main(opts(bad, { keepCheckpoints: 'last', keepLast: 2 })), /keepCheckpoints 'last' keeps one checkpoint; --keep-last 2/);
  await assert.rejects(main(opts(bad, { keepCheckpoints: 'final', saveEvery: 2 })), /keepCheckpoints 'final' saves only after the last epoch; --save-every 2/);
  assert.ok(!existsSync(bad));
});
