// awty sweep end to end on tiny data: a synthetic video cut into 8 episodes by extract, resnet18 at
// 32 px, 3 class fractions x 2 seeds of train-tc and 2 evaluation conditions on a 3-class labelled
// set. The summary, the figure and the hours (equal to those computed from the extract manifest);
// a sweep killed at a random moment and rerun gives the same results and redoes nothing finished;
// --dry-run, --init and configuration errors; train-tc on shards gives the loss curve of files; the
// random-trunk baseline, per-condition images per class and epochs, targets and figure options.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { extract, MANIFEST } from '../src/data/index.js';
import * as io from '../src/io/index.js';
import { BASELINE_RECORD, planSweep, readConfig, resolveConfig, runSweep, type BaselineRecord } from '../src/experiments/sweep.js';
import { main as trainTc, TC_DEFAULTS } from '../src/experiments/tc.js';
import { main as finetune } from '../src/experiments/finetune.js';
import type { RunResultFile } from '../src/scaling/index.js';
import { tmpdir } from './helpers/oracle.js';
import { writeNoisyImage } from './helpers/images.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = path.join(repo, 'dist', 'src', 'cli', 'main.js');
const tmp = tmpdir('awty-sweep-');
after(() => rmSync(tmp, { recursive: true, force: true }));
const threads = process.env.AWTY_NUM_THREADS ?? '1';

const episodes = path.join(tmp, 'episodes');
const shards = path.join(tmp, 'shards');
const labelled = path.join(tmp, 'labelled');

const jpeg = (file: string, rgb: number[], seed: number): Promise<void> => writeNoisyImage(file, rgb, seed);

before(async () => {
  const videos = path.join(tmp, 'videos');
  mkdirSync(videos, { recursive: true });
  const ff = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=64x48:rate=10', '-t', '8',
    '-pix_fmt', 'yuv420p', path.join(videos, 'a.mp4')], { encoding: 'utf8' });
  assert.equal(ff.status, 0, ff.stderr);
  const common = { videoDirs: [videos], fps: 2, segLen: 1, resizeMinor: 40, size: 32, cropOffsetY: 0, rotate: 0 as const, quality: 90 };
  await extract({ ...common, saveDir: episodes });
  await extract({ ...common, saveDir: shards, format: 'shards' });
  const colours = [[220, 30, 30], [30, 200, 40], [40, 50, 230]];
  for (const [split, n] of [['train', 6], ['val', 3]] as const) {
    for (let c = 0; c < 3; c++) {
      const d = path.join(labelled, split, `n0000000${c}`);
      mkdirSync(d, { recursive: true });
      for (let i = 0; i < n; i++) await jpeg(path.join(d, `img_${i}.JPEG`), colours[c]!, c * 100 + i + (split === 'val' ? 50 : 0));
    }
  }
});

function config(out: string): string {
  return `// a tiny sweep
{
  "dataDirs": ["episodes"], "model": "resnet18", "classFractions": [1, 0.5, 0.25], "seeds": [1, 2], "imageSize": 32,
  "tc": { "epochs": 2, "batchSize": 4, "workers": 0, "printFreq": 100 },
  "trainDir": "labelled/train", "valDir": "labelled/val",
  "conditions": [{ "name": "linear-probe", "freezeTrunk": true, "fracRetained": 1 }, { "name": "few-shot", "fracRetained": 0.5 }],
  "eval": { "epochs": 1, "batchSize": 6, "workers": 0, "schedule": [], "printFreq": 100 },
  "threads": ${threads}, "bootstrap": 50, "out": "${out}"
}
`;
}

function awty(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('node', [cli, ...args], { encoding: 'utf8', maxBuffer: 1 << 26, cwd: tmp });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Row { classFraction: string; episodes: string; hours: string; seed: string; condition: string; top1: string; top5: string; result: string }
function summary(out: string): Row[] {
  const [head, ...lines] = readFileSync(path.join(tmp, out, 'summary.csv'), 'utf8').trim().split('\n');
  const keys = head!.split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [keys[i], v])) as unknown as Row);
}

/** Every finished run's files (run records of final checkpoints, results files) with their contents. */
function finished(out: string): Map<string, string> {
  const m = new Map<string, string>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.json') && !e.name.startsWith('.')) {
        const j = JSON.parse(readFileSync(p, 'utf8')) as { status?: string; complete?: boolean };
        if (j.status === 'complete' || j.complete === true) m.set(path.relative(tmp, p), `${readFileSync(p, 'utf8')}@${statSync(p).mtimeMs}`);
      }
    }
  };
  if (existsSync(path.join(tmp, out))) walk(path.join(tmp, out));
  return m;
}

let reference: Row[] = [];
let referenceSeconds = 0;

test('a sweep of 3 fractions x 2 seeds x 2 conditions runs end to end: summary, figure, hours from the manifest', () => {
  writeFileSync(path.join(tmp, 'a.json'), config('out-a'));
  const t0 = performance.now();
  const r = awty(['sweep', 'a.json']);
  referenceSeconds = (performance.now() - t0) / 1000;
  assert.equal(r.status, 0, r.stderr + r.stdout);
  reference = summary('out-a');
  assert.equal(reference.length, 12);
  assert.deepEqual([...new Set(reference.map((x) => x.condition))], ['linear-probe', 'few-shot']);
  for (const f of ['figure1.json', 'figure1.svg', 'figure1.png', 'sweep.json']) assert.ok(existsSync(path.join(tmp, 'out-a', f)), f);
  assert.match(r.stdout, /fraction\s+episodes\s+hours\s+seed\s+condition\s+top-1\s+top-5/);
  // the hours, computed here from the manifest: frames in the kept episodes / fps / 3600
  const manifest = JSON.parse(readFileSync(path.join(episodes, MANIFEST), 'utf8')) as { settings: { fps: number } };
  for (const row of reference) {
    const dir = path.join(tmp, 'out-a', 'tc', `frac${Number(row.classFraction) === 1 ? '1.0' : row.classFraction}_seed${row.seed}`);
    const rec = readdirSync(dir).filter((n) => n.endsWith('.tar.json')).map((n) => JSON.parse(readFileSync(path.join(dir, n), 'utf8')) as io.RunRecord)
      .find((x) => x.status === 'complete')!;
    const frames = rec.data.episodeNames.reduce((a, e) => a + readdirSync(e).filter((n) => n.endsWith('.jpeg')).length, 0);
    assert.equal(Number(row.hours), frames / manifest.settings.fps / 3600);
    assert.equal(Number(row.episodes), rec.data.episodeNames.length);
    const res = JSON.parse(readFileSync(path.join(tmp, 'out-a', row.result), 'utf8')) as { hours: number; tcSeed: number };
    assert.equal(res.hours, frames / manifest.settings.fps / 3600);
    assert.equal(res.tcSeed, Number(row.seed));
  }
  // run again: nothing is redone
  const before = finished('out-a');
  const again = awty(['sweep', 'a.json']);
  assert.equal(again.status, 0, again.stderr);
  assert.equal((again.stdout.match(/skipped/g) ?? []).length, 18);
  assert.deepEqual(finished('out-a'), before);
});

test('killed (SIGKILL) at a random moment and rerun, the sweep ends with the same results and redoes nothing that had finished', async () => {
  writeFileSync(path.join(tmp, 'b.json'), config('out-b'));
  const delay = 1500 + Math.random() * Math.max(500, referenceSeconds * 1000 * 0.8 - 1500);
  const child = spawn('node', [cli, 'sweep', 'b.json'], { cwd: tmp, stdio: 'ignore' });
  const timer = setTimeout(() => child.kill('SIGKILL'), delay);
  const code = await new Promise<number | null>((res) => child.on('close', (c) => res(c)));
  clearTimeout(timer);
  const done = finished('out-b');
  const r = awty(['sweep', 'b.json']);
  assert.equal(r.status, 0, `killed after ${delay.toFixed(0)} ms (exit ${code}); rerun:\n${r.stderr}${r.stdout}`);
  const after = finished('out-b');
  for (const [file, content] of done) assert.equal(after.get(file), content, `${file} finished before the kill and was not redone`);
  const rows = summary('out-b');
  const key = (x: Row): string => `${x.classFraction} ${x.seed} ${x.condition} ${x.hours} ${x.top1} ${x.top5}`;
  assert.deepEqual(rows.map(key), reference.map(key), `killed after ${delay.toFixed(0)} ms`);
});

test('--dry-run prints every run with its command and a cost estimate and runs nothing; --init writes a config that parses', async () => {
  writeFileSync(path.join(tmp, 'c.json'), config('out-c'));
  const r = awty(['sweep', 'c.json', '--dry-run']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal((r.stdout.match(/^\[\d+\/18\]/gm) ?? []).length, 18);
  assert.equal((r.stdout.match(/^ {4}awty train-tc /gm) ?? []).length, 6);
  assert.equal((r.stdout.match(/^ {4}awty finetune /gm) ?? []).length, 12);
  assert.match(r.stdout, /ms per image trained/);
  assert.match(r.stdout, /total: about \d+:\d\d:\d\d/);
  assert.ok(!existsSync(path.join(tmp, 'out-c')));
  const init = awty(['sweep', '--init', 'init.json']);
  assert.equal(init.status, 0, init.stderr);
  const c = await readConfig(path.join(tmp, 'init.json'));
  assert.deepEqual(c.classFractions, [1, 0.1, 0.01, 0.001]);
  assert.deepEqual(c.conditions.map((x) => x.name), ['few-shot-1pct', 'few-shot-2pct', 'linear-probe']);
  assert.equal(c.out, path.join(tmp, 'sweep-out'));
  const again = awty(['sweep', '--init', 'init.json']);
  assert.equal(again.status, 2);
  assert.match(again.stderr, /init\.json exists/);
});

test('configuration errors name the key; usage errors exit with status 2', () => {
  const base = { dataDirs: ['e'], trainDir: 't', valDir: 'v', out: 'o' };
  assert.throws(() => resolveConfig({ ...base, tc: { epoch: 3 } }), /tc\.epoch: unknown key/);
  assert.throws(() => resolveConfig({ ...base, classFractions: [0.5, 2] }), /classFractions\[1\]: must be numbers in \(0, 1\]/);
  assert.throws(() => resolveConfig({ ...base, conditions: [{ name: 'a b' }] }), /conditions\[0\]\.name/);
  assert.throws(() => resolveConfig({ ...base, eval: { lr: -1 } }), /eval\.lr: must be a positive number/);
  assert.throws(() => resolveConfig({ ...base, model: 'resnet7' }), /model: unknown architecture 'resnet7'/);
  assert.throws(() => resolveConfig({ trainDir: 't', valDir: 'v', out: 'o' }), /dataDirs: required/);
  writeFileSync(path.join(tmp, 'bad.json'), JSON.stringify({ ...base, seeds: [1, 1] }));
  const r = awty(['sweep', 'bad.json']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /bad\.json: seeds: has repeated values/);
  const flag = awty(['train-tc', '--data-dirs', episodes, '--epochs', 'x']);
  assert.equal(flag.status, 2, flag.stderr);
  const v = awty(['--version']);
  assert.equal(v.status, 0);
  assert.equal(v.stdout.trim(), (JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')) as { version: string }).version);
});

test('baseline, perClass and per-condition epochs, targets and figure options: the untrained-trunk rows, the runs as configured, a rerun skips all', async () => {
  const raw = {
    dataDirs: ['episodes'], model: 'resnet18', classFractions: [1, 0.5], seeds: [1, 2], imageSize: 32,
    tc: { epochs: 2, batchSize: 3, workers: 0, printFreq: 100, dropLast: true, saveEvery: 2 },
    trainDir: 'labelled/train', valDir: 'labelled/val',
    conditions: [{ name: 'linear-probe', freezeTrunk: true, fracRetained: 1, epochs: 2 }, { name: 'few-shot', fracRetained: 1, perClass: 2, epochs: 1 }],
    eval: { epochs: 3, batchSize: 6, workers: 0, schedule: [], printFreq: 100, valEvery: 2, saveCheckpoint: false },
    baseline: true, targets: [{ metric: 'top1', value: 90, source: 'a level for the test' }],
    figure: { dataset: 'Toy set', metrics: ['top1'], bands: 20, chance: true, title: 'a toy Figure 1' },
    threads: Number(threads), bootstrap: 50, out: 'out-f',
  };
  const c = resolveConfig(raw, tmp);
  const out = path.join(tmp, 'out-f');
  const lines: string[] = [];
  const dry = await runSweep(c, { dryRun: true, log: (l) => lines.push(l) });
  assert.equal(dry.plan.baselineRuns.length, 4);
  assert.equal(lines.filter((l) => /^\[\d+\/16\] baseline (linear-probe|few-shot) seed \d \(untrained trunk\)/.test(l)).length, 4, lines.join('\n'));
  assert.ok(lines.some((l) => / {4}awty finetune .*--n_out 3 --resume '' .*--per-class 2 --epochs 1 /.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => / {4}awty train-tc .* --drop-last --save-every 2 /.test(l)), lines.join('\n'));
  assert.ok(!existsSync(out));

  const s = await runSweep(c, { log: () => undefined });
  assert.deepEqual(s.ran, { tc: 4, eval: 8, baseline: 4 });
  assert.equal(s.rows.length, 12);
  const rnd = s.rows.filter((r) => r.trunk === 'random');
  assert.deepEqual(rnd.map((r) => `${r.condition} ${r.seed} ${r.classFraction} ${r.hours} ${r.episodes}`).sort(),
    ['few-shot 1 0 0 0', 'few-shot 2 0 0 0', 'linear-probe 1 0 0 0', 'linear-probe 2 0 0 0']);
  for (const r of rnd) {
    const rec = JSON.parse(readFileSync(path.join(out, r.result), 'utf8')) as BaselineRecord;
    assert.equal(path.basename(r.result), BASELINE_RECORD);
    assert.equal(rec.complete, true);
    assert.equal(rec.top1, r.top1);
    assert.equal(rec.identity.resume, '');
    assert.equal(rec.identity.nOut, 3);
  }
  // every condition with its own epochs, few-shot on the first 2 images of each of the 3 classes, one validation per run (valEvery)
  for (const r of s.rows) {
    assert.equal(r.trainImages, r.condition === 'few-shot' ? 6 : 18, `${r.trunk} ${r.condition}`);
    assert.equal(r.epochs, r.condition === 'few-shot' ? 1 : 2);
    if (r.trunk !== 'tc') continue;
    const res = JSON.parse(readFileSync(path.join(out, r.result), 'utf8')) as RunResultFile;
    assert.equal(res.epochs, r.epochs);
    assert.equal(res.perClass, r.condition === 'few-shot' ? 2 : undefined);
    assert.equal(res.valTop1PerEpoch!.length, 1);
    // no fine-tuned checkpoint written (saveCheckpoint false)
    assert.deepEqual(readdirSync(path.dirname(path.join(out, r.result))).filter((n) => n.endsWith('.tar')), []);
  }
  // train-tc: the last incomplete batch dropped, one checkpoint (saveEvery = epochs)
  for (const d of s.tcDone) {
    assert.deepEqual(readdirSync(d.run.dir).filter((n) => n.endsWith('.tar')), [path.basename(d.checkpoint)]);
    assert.equal(d.record.config.dropLast, true);
    assert.equal(d.record.epochs[0]!.images, Math.floor(d.record.data.frames / 3) * 3);
    assert.ok(d.record.data.frames % 3 !== 0, `${d.record.data.frames} frames: dropLast would drop nothing`);
  }
  const [head, ...csv] = readFileSync(path.join(out, 'summary.csv'), 'utf8').trim().split('\n');
  assert.equal(head, 'classFraction,episodes,hours,seed,condition,top1,top5,tcWallSeconds,evalWallSeconds,result,trunk,trainImages,epochs');
  assert.equal(csv.filter((l) => l.split(',')[10] === 'random').length, 4);
  // the figure: the given target and panels, the baselines and chance drawn
  const fig = JSON.parse(readFileSync(path.join(out, 'figure1.json'), 'utf8')) as { assumptions: { targets: { value: number }[] }; conditions: { metrics: { metric: string }[] }[] };
  assert.deepEqual(fig.assumptions.targets.map((t) => t.value), [90]);
  assert.equal(s.analysis?.assumptions.targets[0]?.source, 'a level for the test');
  const svg = readFileSync(path.join(out, 'figure1.svg'), 'utf8');
  for (const want of ['Toy set top-1 accuracy', 'a toy Figure 1', 'linear-probe, random-weight trunk', 'chance 33.33%']) assert.ok(svg.includes(want), want);
  assert.doesNotMatch(svg, /top-5/);

  // again: every run skipped, the same rows
  const again = await runSweep(resolveConfig(raw, tmp), { log: () => undefined });
  assert.deepEqual(again.skipped, { tc: 4, eval: 8, baseline: 4 });
  assert.ok(again.runs.every((r) => r.skipped) && again.runs.length === 16);
  assert.deepEqual(again.rows.map((r) => r.top1), s.rows.map((r) => r.top1));
  // a baseline of other options is not reused: one more epoch of linear-probe reruns its evaluations and baselines only
  const more = await runSweep(resolveConfig({ ...raw, conditions: [{ ...raw.conditions[0], epochs: 3 }, raw.conditions[1]] }, tmp), { log: () => undefined });
  assert.deepEqual(more.ran, { tc: 0, eval: 4, baseline: 2 });

  // perClass asks for more images than a class has: an error naming the class, before anything runs
  await assert.rejects(planSweep(resolveConfig({ ...raw, conditions: [{ name: 'few-shot', perClass: 7 }] }, tmp)),
    /conditions: few-shot: perClass 7: .*class n00000000 has 6 image\(s\), fewer than the 7 per class asked for/);
});

test('finetune --per-class N trains exactly as on a folder of the first N images of each class', async () => {
  const few = path.join(tmp, 'labelled-first2');
  for (const cls of readdirSync(path.join(labelled, 'train'), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort()) {
    mkdirSync(path.join(few, cls), { recursive: true });
    for (const n of readdirSync(path.join(labelled, 'train', cls)).sort().slice(0, 2)) copyFileSync(path.join(labelled, 'train', cls, n), path.join(few, cls, n));
  }
  const o = { imgnetValdir: path.join(labelled, 'val'), model: 'resnet18', nOut: 3, resume: '', epochs: 2, batchSize: 4, workers: 0, imageSize: 32, schedule: [],
    printFreq: 100, threads: Number(threads), saveCheckpoint: false, baseline: true, metrics: '', log: () => undefined };
  const a = await finetune({ ...o, imgnetTraindir: path.join(labelled, 'train'), perClass: 2, out: path.join(tmp, 'pc-a') });
  const b = await finetune({ ...o, imgnetTraindir: few, out: path.join(tmp, 'pc-b') });
  assert.equal(a.trainImages, 6);
  assert.equal(a.trainTotal, 6);
  assert.deepEqual(a.acc1List, b.acc1List);
  assert.deepEqual(a.valAcc1List, b.valAcc1List);
  assert.deepEqual(a.valAcc5List, b.valAcc5List);
  assert.equal(a.condition, 'few-shot-2-per-class');
  await assert.rejects(finetune({ ...o, imgnetTraindir: path.join(labelled, 'train'), perClass: 0, out: path.join(tmp, 'pc-c') }), /--per-class must be a positive integer/);
});

test('configuration errors of the baseline, condition, target and figure keys name the key', () => {
  const base = { dataDirs: ['e'], trainDir: 't', valDir: 'v', out: 'o' };
  assert.throws(() => resolveConfig({ ...base, conditions: [{ name: 'a', perClass: 0 }] }), /conditions\[0\]\.perClass: must be an integer >= 1/);
  assert.throws(() => resolveConfig({ ...base, conditions: [{ name: 'a', epochs: 1.5 }] }), /conditions\[0\]\.epochs: must be an integer >= 1/);
  assert.throws(() => resolveConfig({ ...base, baseline: 'yes' }), /baseline: must be true or false/);
  assert.throws(() => resolveConfig({ ...base, targets: [{ metric: 'top3', value: 50, source: 's' }] }), /targets\[0\]\.metric: must be top1 or top5/);
  assert.throws(() => resolveConfig({ ...base, targets: [{ metric: 'top1', value: 150, source: 's' }] }), /targets\[0\]\.value: must be an accuracy in percent/);
  assert.throws(() => resolveConfig({ ...base, figure: { metrics: ['top2'] } }), /figure\.metrics: must be a non-empty list of top1 and \/ or top5/);
  assert.throws(() => resolveConfig({ ...base, figure: { colour: 'red' } }), /figure\.colour: unknown key/);
  assert.throws(() => resolveConfig({ ...base, eval: { valEvery: 0 } }), /eval\.valEvery: must be an integer >= 1/);
  assert.throws(() => resolveConfig({ ...base, tc: { dropLast: 1 } }), /tc\.dropLast: must be true or false/);
  const d = resolveConfig(base);
  assert.equal(d.baseline, false);
  assert.equal(d.targets, undefined);
  assert.deepEqual(d.figure, { bands: 0, chance: false });
});

test('train-tc on --format shards episodes gives the loss curve of the same episodes as files (augmentation off)', async () => {
  const o = { ...TC_DEFAULTS, model: 'resnet18', nOut: 8, epochs: 2, batchSize: 4, workers: 0, imageSize: 32, augmentation: false, threads: Number(threads), keepCheckpoints: 'final' as const, metrics: '', log: () => undefined };
  const files = await trainTc({ ...o, dataDirs: [episodes], out: path.join(tmp, 'tc-files') });
  const sh = await trainTc({ ...o, dataDirs: [shards], out: path.join(tmp, 'tc-shards') });
  assert.equal(sh.samples, files.samples);
  assert.equal(sh.hours, files.hours);
  assert.ok(files.hours! > 0);
  assert.deepEqual(sh.epochs.map((e) => e.loss), files.epochs.map((e) => e.loss));
  const rec = (await io.readRunRecord(sh.checkpoints.at(-1)!))!;
  assert.equal(rec.data.format, 'shards');
  assert.equal(rec.status, 'complete');
  assert.deepEqual(rec.epochs.map((e) => e.loss), files.epochs.map((e) => e.loss));
});
