// awty sweep end to end on tiny data: a synthetic video cut into 8 episodes by extract, resnet18 at
// 32 px, 3 class fractions x 2 seeds of train-tc and 2 evaluation conditions on a 3-class labelled
// set. The summary, the figure and the hours (equal to those computed from the extract manifest);
// a sweep killed at a random moment and rerun gives the same results and redoes nothing finished;
// --dry-run, --init and configuration errors; train-tc on shards gives the loss curve of files.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { extract, MANIFEST } from '../src/data/index.js';
import * as io from '../src/io/index.js';
import { readConfig, resolveConfig } from '../src/experiments/sweep.js';
import { main as trainTc, TC_DEFAULTS } from '../src/experiments/tc.js';
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
