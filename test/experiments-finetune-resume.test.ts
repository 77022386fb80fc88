// finetune that survives interruption: a stop after a given step (mid-epoch, and during an epoch's
// last step) writes a checkpoint that --continue finishes with the parameters, Adam state, schedule
// and results of the uninterrupted run (max abs difference <= 1e-6, same threads, CPU, fine-tuning
// the whole resnet18 with augmentation on and a learning-rate decay in the middle); a real SIGINT
// to the command line prints the command that continues and exits 130; --continue of a finished run
// does nothing and exits 0; changed flags are refused; PyTorch loads the interrupted checkpoint as
// the original's layout; the metrics file has a CSV twin with the same rows.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import * as torch from '../src/torch/index.js';
import * as models from '../src/models/index.js';
import * as io from '../src/io/index.js';
import { main, interruptRecordPath, readInterruptRecord, type FinetuneOptions } from '../src/experiments/finetune.js';
import { InterruptedError, StopRequest } from '../src/experiments/interrupt.js';
import { METRICS_CSV_COLUMNS, readMetrics, type StepLine } from '../src/experiments/metrics.js';
import type { RunResultFile } from '../src/scaling/results.js';
import { runPython } from './helpers/oracle.js';
import { writeNoisyImage } from './helpers/images.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const mainJs = join(repo, 'dist', 'src', 'cli', 'main.js');
const root = await mkdtemp(join(tmpdir(), 'awty-finetune-resume-'));
after(() => rm(root, { recursive: true, force: true }));
const threads = Number(process.env.AWTY_NUM_THREADS ?? '1');

const train = join(root, 'train');
const val = join(root, 'val');
const tc = join(root, 'tc.tar');
const COLOURS = [[220, 30, 30], [30, 200, 40], [40, 50, 230]];
const NAME = 'IMGNET_tc_finetune-1_resnet18_1.0_1_1h';

before(async () => {
  for (const [dir, n] of [[train, 6], [val, 2]] as const) {
    for (let c = 0; c < 3; c++) {
      const d = join(dir, `n0000000${c}`);
      await mkdir(d, { recursive: true });
      for (let i = 0; i < n; i++) await writeNoisyImage(join(d, `img_${i}.JPEG`), COLOURS[c]!, c * 100 + i + (dir === val ? 50 : 0));
    }
  }
  torch.manualSeed(7);
  const m = models.create('resnet18', { numClasses: 5 });
  await io.save({ acc1_list: [1.5], model_state_dict: io.modelStateDict(m, { prefix: 'module.' }) }, tc);
  m.dispose();
});

// 18 images, -b 4: 5 batches per epoch (the last of 2); the learning rate decays after epoch 0
const opts = (out: string, o: Partial<FinetuneOptions> = {}): FinetuneOptions => ({
  imgnetTraindir: train, imgnetValdir: val, model: 'resnet18', nOut: 5, resume: tc, imageSize: 32, batchSize: 4, epochs: 3, workers: 0,
  schedule: [1], threads, printFreq: 100, out, hours: 1, log: () => undefined, ...o,
});
const final = (out: string): string => join(out, `${NAME}.tar`);

async function maxDiff(a: string, b: string, key = 'model_state_dict'): Promise<number> {
  const ta = (await io.load(a)) as Record<string, unknown>;
  const tb = (await io.load(b)) as Record<string, unknown>;
  try {
    if (key === 'optimizer_state_dict') {
      const sa = io.optimizerStateFromPickle(ta[key]);
      const sb = io.optimizerStateFromPickle(tb[key]);
      assert.deepEqual(sa.param_groups, sb.param_groups);
      assert.deepEqual([...Object.keys(sa.state)].sort(), [...Object.keys(sb.state)].sort());
      let m = 0;
      for (const [k, st] of Object.entries(sa.state)) {
        for (const [name, v] of Object.entries(st)) {
          const w = sb.state[Number(k)]![name];
          m = Math.max(m, v instanceof torch.Tensor ? torch.tidy(() => v.double().sub((w as torch.Tensor).double()).abs().max().item()) : Math.abs(Number(v) - Number(w)));
        }
      }
      return m;
    }
    const sa = io.asStateDict(ta[key]);
    const sb = io.asStateDict(tb[key]);
    assert.deepEqual(Object.keys(sa).sort(), Object.keys(sb).sort());
    let m = 0;
    for (const k of Object.keys(sa)) m = Math.max(m, torch.tidy(() => sa[k]!.double().sub(sb[k]!.double()).abs().max().item()));
    return m;
  } finally {
    io.disposeTree(ta);
    io.disposeTree(tb);
  }
}

const result = (out: string): RunResultFile => JSON.parse(readFileSync(join(out, `${NAME}.json`), 'utf8')) as RunResultFile;

function sameResults(a: RunResultFile, b: RunResultFile): void {
  for (const k of ['valTop1PerEpoch', 'valTop5PerEpoch', 'valLossPerEpoch', 'trainLossPerEpoch', 'trainTop1PerEpoch', 'trainTop5PerEpoch'] as const) {
    const x = a[k] as number[];
    const y = b[k] as number[];
    assert.equal(x.length, 3, k);
    x.forEach((v, i) => assert.ok(Math.abs(v - y[i]!) <= 1e-6, `${k}[${i}]: ${v} vs ${y[i]}`));
  }
  assert.equal(a.trainImages, b.trainImages);
}

const full = join(root, 'full');
test('3 epochs in one run: the final checkpoint, results file, and metrics as JSON lines with a CSV of the same rows', async () => {
  const s = await main(opts(full));
  assert.equal(s.valAcc1List.length, 3);
  assert.ok(existsSync(final(full)));
  const lines = readMetrics(join(full, `${NAME}.metrics.jsonl`));
  const csv = readFileSync(join(full, `${NAME}.metrics.csv`), 'utf8').trim().split('\n');
  assert.equal(csv[0], METRICS_CSV_COLUMNS.join(','));
  assert.equal(csv.length - 1, lines.length);
  assert.deepEqual(lines.map((l) => l.type), ['step', 'epoch', 'step', 'epoch', 'step', 'epoch']);
  lines.forEach((l, i) => {
    const row = csv[i + 1]!.split(',');
    const rec = l as unknown as Record<string, unknown>;
    METRICS_CSV_COLUMNS.forEach((c, k) => assert.equal(row[k], rec[c] === undefined ? '' : String(rec[c]), `row ${i + 1} ${c}`));
  });
  const epochs = lines.filter((l) => l.type === 'epoch');
  assert.deepEqual(epochs.map((e) => e.valAcc1), result(full).valTop1PerEpoch);
  assert.deepEqual(epochs.map((e) => e.lr), [0.001, 0.001 * 0.2, 0.001 * 0.2], 'the lr each epoch trained with (--schedule 1)');
});

test('a stop after step 3 of epoch 1: a checkpoint to continue from; --continue ends with the uninterrupted run\'s parameters, Adam state and results', async () => {
  const out = join(root, 'mid');
  const stop = new StopRequest();
  let file = '';
  await assert.rejects(main(opts(out, { stop, onStep: (st) => { if (st.epoch === 1 && st.iteration === 2) stop.signal = 'SIGTERM'; } })), (e: unknown) => {
    assert.ok(e instanceof InterruptedError);
    assert.equal(e.exitCode, 143);
    file = e.checkpoint!;
    return true;
  });
  assert.equal(file, join(out, `${NAME}_epoch_1_batch_3.tar`));
  assert.ok(!existsSync(final(out)), 'no final checkpoint yet');
  const rec = (await readInterruptRecord(file))!;
  assert.deepEqual(rec.position, { epoch: 1, batch: 3, batches: 5 });
  // the original's keys, as torch.load gives them, plus awty's entry
  const py = JSON.parse(runPython(`
import torchvision
ck = torch.load(${JSON.stringify(file)}, weights_only=False)
m = torch.nn.DataParallel(torchvision.models.resnet18(num_classes=3))
m.load_state_dict(ck['model_state_dict'])
o = torch.optim.Adam(m.parameters(), 0.001)
o.load_state_dict(ck['optimizer_state_dict'])
print(json.dumps({'keys': sorted(ck), 'acc1': len(ck['acc1_list']), 'val': len(ck['val_acc1_list']), 'lr': o.param_groups[0]['lr'], 'resume': json.loads(ck['awty_resume'])['batch']}))
`, await mkdtemp(join(root, 'py-'))).trim().split('\n').at(-1)!) as { keys: string[]; acc1: number; val: number; lr: number; resume: number };
  assert.deepEqual(py.keys, ['acc1_list', 'awty_resume', 'model_state_dict', 'optimizer_state_dict', 'val_acc1_list']);
  assert.deepEqual([py.acc1, py.val, py.resume], [1, 1, 3]);
  assert.ok(Math.abs(py.lr - 0.0002) < 1e-12, 'the decayed learning rate of epoch 1');
  const s = await main(opts(out, { continue: file }));
  assert.equal(s.valAcc1List.length, 3);
  assert.ok((await maxDiff(final(out), final(full))) <= 1e-6);
  assert.ok((await maxDiff(final(out), final(full), 'optimizer_state_dict')) <= 1e-6);
  sameResults(result(out), result(full));
  assert.ok(!existsSync(file) && !existsSync(interruptRecordPath(file)), 'the superseded checkpoint and its record are removed');
  const steps = readMetrics(join(out, `${NAME}.metrics.jsonl`)).filter((l): l is StepLine => l.type === 'step').map((l) => `${l.epoch}/${l.iteration}`);
  assert.deepEqual(steps, ['0/0', '1/0', '2/0'], 'no step logged twice');
});

test('a stop during the last step of epoch 0: the epoch is validated, then an end-of-epoch checkpoint; --continue gives the same parameters', async () => {
  const out = join(root, 'end');
  const stop = new StopRequest();
  let file = '';
  await assert.rejects(main(opts(out, { stop, onStep: (st) => { if (st.epoch === 0 && st.iteration === 4) stop.signal = 'SIGINT'; } })), (e: unknown) => {
    assert.ok(e instanceof InterruptedError);
    assert.equal(e.exitCode, 130);
    file = e.checkpoint!;
    return true;
  });
  assert.equal(file, join(out, `${NAME}_epoch_0.tar`));
  assert.deepEqual((await readInterruptRecord(file))!.position, { epoch: 1, batch: 0, batches: 5 });
  await main(opts(out, { continue: file }));
  assert.ok((await maxDiff(final(out), final(full))) <= 1e-6);
  sameResults(result(out), result(full));
});

test('SIGINT to finetune: saves, prints the command that continues, exits 130; that command finishes exactly; --continue of the finished run exits 0; other flags are refused', async () => {
  const out = join(root, 'cli');
  const args = ['finetune', '--imgnet-traindir', train, '--imgnet-valdir', val, '--model', 'resnet18', '--n_out', '5', '--resume', tc, '--image-size', '32',
    '-b', '4', '--epochs', '3', '--schedule', '1', '-j', '0', '--threads', String(threads), '-p', '1', '--out', out, '--hours', '1'];
  const child = spawn(process.execPath, [mainJs, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
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
  assert.deepEqual(cmd.slice(0, -1), ['awty', ...args, '--continue'], 'the same flags, --resume kept');
  // mid-epoch as a rule (the step after the signal); at an epoch's end if the signal came in its last step
  assert.match(cmd.at(-1)!, new RegExp(`${NAME}_epoch_[01](_batch_\\d)?\\.tar$`));
  // another learning rate: refused before anything runs, naming the flag
  const bad = spawnSync(process.execPath, [mainJs, ...cmd.slice(1), '--lr', '0.01'], { encoding: 'utf8' });
  assert.equal(bad.status, 2, bad.stderr);
  assert.match(bad.stderr, /written by a run with --lr 0\.001, this one has 0\.01/);
  const r = spawnSync(process.execPath, [mainJs, ...cmd.slice(1)], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.ok((await maxDiff(final(out), final(full))) <= 1e-6);
  sameResults(result(out), result(full));
  const files = readdirSync(out).sort();
  const mtime = statSync(final(out)).mtimeMs;
  const again = spawnSync(process.execPath, [mainJs, ...args, '--continue', final(out)], { encoding: 'utf8' });
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, /nothing to do: .* already finished \(3 epoch\(s\) done, --epochs 3\)/);
  assert.doesNotMatch(again.stdout, /Epoch: \[/);
  assert.deepEqual(readdirSync(out).sort(), files);
  assert.equal(statSync(final(out)).mtimeMs, mtime);
  // a train-tc checkpoint is not one to continue
  const tcAsContinue = spawnSync(process.execPath, [mainJs, ...args, '--continue', tc], { encoding: 'utf8' });
  assert.equal(tcAsContinue.status, 2);
  assert.match(tcAsContinue.stderr, /cannot continue from .*tc\.tar: it has no awty_resume entry of awty finetune/);
});
