// awty demo --size tiny from a clean state: the corpus from opencv-doc, episodes, the TC grid, the
// Fashion-MNIST evaluations with the random-trunk baseline, both figures and report.html, which is
// opened in headless Chromium (figures rendered at their size, every run in the table, no network,
// a screenshot); the grid and its evaluations ran through awty sweep (its sweep.json, summary.csv
// and run folders in the demo's folder; awty sweep on that configuration skips every run); a rerun
// skips every finished stage; an --out the demo did not make is refused.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { runDemo, demoPurpose, DEMO_CONDITIONS, DEMO_PLANS, FASHION_MNIST_HUMAN, type DemoSummary } from '../src/experiments/demo.js';
import { ensureOwnedDir, ownedMarker } from '../src/io/owned.js';
import { OPENCV_DATA_DIR } from '../src/data/corpus.js';
import { FASHION_MNIST_DIR } from '../src/data/idx.js';
import { readResults } from '../src/scaling/index.js';
import { readConfig } from '../src/experiments/sweep.js';
import { inspectPage } from './helpers/chromium.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'awty-demo-'));
after(() => rmSync(root, { recursive: true, force: true }));
const missing = [OPENCV_DATA_DIR, FASHION_MNIST_DIR, '/usr/bin/chromium'].filter((p) => !existsSync(p));
const skip = missing.length > 0 ? `needs ${missing.join(', ')} (scripts/setup.sh installs them)` : false;

const out = join(root, 'demo');
let first: DemoSummary | undefined;
const plan = DEMO_PLANS.tiny;

test('awty demo --size tiny: every stage from a clean state', { skip, timeout: 1_800_000 }, async () => {
  const lines: string[] = [];
  // what the run writes to stderr (warnings), kept to check below
  const warnings: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
    warnings.push(String(chunk));
    return (write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
  }) as typeof process.stderr.write;
  let s: Awaited<ReturnType<typeof runDemo>>;
  try {
    s = await runDemo({ out, size: 'tiny', threads: 1, device: 'cpu', log: (l) => lines.push(l) });
  } finally {
    process.stderr.write = write;
  }
  // the random-trunk baselines have no hours by design: no warning about a missing results file
  assert.doesNotMatch(warnings.join(''), /no --resume and no --hours/);
  first = s;
  assert.equal((await ownedMarker(out))?.purpose, demoPurpose('tiny'));
  // corpus: the real footage and one camera path per photograph, described exactly
  const footage = s.corpus.videos.filter((v) => v.kind === 'footage');
  assert.deepEqual(footage.map((v) => v.source.split('/').pop()), plan.corpus.videos);
  assert.ok(footage.every((v) => v.seconds > 5), footage.map((v) => v.seconds).join(', '));
  assert.equal(s.corpus.videos.filter((v) => v.kind === 'camera-path').length, plan.corpus.photos);
  assert.equal(s.corpus.pathSeconds, plan.corpus.photos! * plan.corpus.pathSeconds);
  for (const v of s.corpus.videos) assert.ok(statSync(v.file).size > 0, v.file);
  assert.ok(lines.some((l) => l.includes(`${s.corpus.footageSeconds.toFixed(1)} s`) && l.includes('camera paths')));
  // episodes
  const eps = readdirSync(join(out, 'episodes')).filter((n) => n.startsWith('class_'));
  assert.equal(eps.length, s.episodes.episodes);
  assert.equal(s.episodes.framesPerEpisode, plan.extract.fps * plan.extract.segLen);
  // TC grid: every fraction x seed, fewer frames for smaller fractions, hours = frames / fps
  assert.equal(s.tcRuns.length, plan.tc.classFractions.length * plan.tc.seeds.length);
  for (const r of s.tcRuns) {
    assert.equal(r.hours, r.frames / plan.extract.fps / 3600);
    assert.equal(r.acc1List.length, plan.tc.epochs);
    assert.ok(existsSync(r.checkpoint), r.checkpoint);
  }
  const hours = [...new Set(s.tcRuns.map((r) => r.hours))].sort((a, b) => a - b);
  assert.equal(hours.length, plan.tc.classFractions.length);
  // evaluations: both conditions on every trunk, and on a random trunk per seed
  assert.equal(s.evals.length, (s.tcRuns.length + plan.tc.seeds.length) * DEMO_CONDITIONS.length);
  for (const e of s.evals) assert.ok(e.top1 >= 0 && e.top1 <= 100);
  assert.equal(s.evals.filter((e) => e.trunk === 'random').length, plan.tc.seeds.length * 2);
  const few = s.evals.find((e) => e.condition === 'few-shot')!;
  assert.equal(few.trainImages, plan.labelled.fewShotPerClass * 10);
  const read = await readResults(join(out, 'eval'));
  assert.equal(read.runs.length, s.tcRuns.length * 2);
  assert.deepEqual([...new Set(read.runs.map((r) => r.condition))].sort(), [...DEMO_CONDITIONS].sort());
  // the grid went through awty sweep: its configuration, summary and run folders are in the demo's folder
  const cfg = await readConfig(join(out, 'sweep.json'));
  assert.equal(cfg.out, out);
  assert.equal(cfg.baseline, true);
  assert.deepEqual(cfg.classFractions, plan.tc.classFractions);
  assert.deepEqual(cfg.conditions.map((c) => [c.name, c.perClass, c.epochs]), [['few-shot', plan.labelled.fewShotPerClass, plan.eval.fewShotEpochs], ['linear-probe', undefined, plan.eval.linearProbeEpochs]]);
  assert.deepEqual(cfg.targets, [FASHION_MNIST_HUMAN]);
  const [head, ...csv] = readFileSync(join(out, 'summary.csv'), 'utf8').trim().split('\n');
  const col = head!.split(',');
  const rowsCsv = csv.map((l) => Object.fromEntries(l.split(',').map((v, i) => [col[i], v])));
  assert.equal(rowsCsv.length, s.evals.length);
  for (const e of s.evals) {
    const row = rowsCsv.find((r) => r.trunk === e.trunk && r.condition === e.condition && Number(r.seed) === e.seed && (e.trunk === 'random' || Number(r.classFraction) === e.classFraction));
    assert.ok(row, `${e.trunk} ${e.condition} ${e.classFraction} ${e.seed} in summary.csv`);
    assert.equal(Number(row.top1), e.top1);
    assert.ok(existsSync(join(out, row.result!)), row.result);
  }
  for (const r of s.tcRuns) assert.ok(r.checkpoint.startsWith(join(out, 'tc') + '/'), r.checkpoint);
  assert.equal(lines.filter((l) => /^ {6}awty train-tc /.test(l)).length, s.tcRuns.length);
  assert.equal(lines.filter((l) => /^ {6}awty finetune .*--per-class 3 /.test(l)).length, s.tcRuns.length + plan.tc.seeds.length);
  // figures: ours on Fashion-MNIST top-1 with the human line, and the paper's
  const fig = JSON.parse(readFileSync(join(out, 'figure1.json'), 'utf8')) as { assumptions: { targets: { value: number }[] }; conditions: { condition: string }[] };
  assert.deepEqual(fig.assumptions.targets.map((t) => t.value), [FASHION_MNIST_HUMAN.value]);
  const svg = readFileSync(join(out, 'figure1.svg'), 'utf8');
  assert.match(svg, /Fashion-MNIST top-1 accuracy/);
  assert.doesNotMatch(svg, /ImageNet/);
  assert.ok(statSync(join(out, 'paper', 'figure1.png')).size > 10_000);
  // the reading
  assert.equal(s.readings.length, 2);
  for (const r of s.readings) assert.ok(['beats', 'overlaps', 'below'].includes(r.largest.verdict));
  assert.ok(lines.some((l) => l.includes('What this run says')));
  assert.ok(lines.some((l) => /linear probe: at the most video/.test(l)));
  assert.ok(lines.some((l) => l.includes('[7/7]')));
});

test('report.html opens from disk in headless Chromium: figures rendered, every run listed, nothing fetched', { skip, timeout: 120_000 }, async () => {
  assert.ok(first, 'the demo ran');
  const shot = join(root, 'report.png');
  const p = await inspectPage(join(out, 'report.html'), { screenshot: shot });
  assert.equal(p.title, 'awty demo report');
  assert.deepEqual(p.images.map((i) => i.id).sort(), ['img-accuracy', 'img-figure1', 'img-figure1-paper', 'img-learning-curves']);
  for (const i of p.images) {
    assert.ok(i.complete && i.naturalWidth > 200 && i.naturalHeight > 100, `${i.id} rendered ${i.naturalWidth}x${i.naturalHeight}`);
    assert.equal(i.naturalWidth, i.expectedWidth, i.id);
    assert.equal(i.naturalHeight, i.expectedHeight, i.id);
  }
  const rows = p.tables.runs!;
  assert.equal(rows.length, first.tcRuns.length + plan.tc.seeds.length);
  for (const r of first.tcRuns) assert.ok(rows.some((row) => row[0] === `TC ${r.classFraction} seed ${r.seed}`), `run ${r.classFraction}/${r.seed}`);
  assert.equal(rows.filter((row) => row[0]!.startsWith('random seed')).length, plan.tc.seeds.length);
  assert.equal(p.tables.corpus!.length, first.corpus.videos.length);
  assert.deepEqual(p.externalRequests, []);
  assert.deepEqual(p.consoleErrors, []);
  assert.ok(statSync(shot).size > 20_000, 'screenshot written');
});

test('a rerun skips every finished stage; an --out the demo did not make is refused and left alone', { skip, timeout: 300_000 }, async () => {
  assert.ok(first, 'the demo ran');
  const againLines: string[] = [];
  const again = await runDemo({ out, size: 'tiny', threads: 1, device: 'cpu', log: (l) => againLines.push(l) });
  assert.ok(again.skipped.includes('corpus') && again.skipped.includes('labelled set'), again.skipped.join(', '));
  // the sweep's own skip logic: every run found finished, none started
  const nRuns = first.tcRuns.length + first.evals.length;
  assert.equal(againLines.filter((l) => new RegExp(`^ {2}\\[\\d+/${nRuns}\\] .*: finished \\(.*\\), skipped$`).test(l)).length, nRuns, againLines.join('\n'));
  assert.ok(!againLines.some((l) => /awty (train-tc|finetune) /.test(l)), 'no run started');
  assert.equal(again.skipped.filter((x) => x.startsWith('tc ')).length, first.tcRuns.length);
  assert.equal(again.skipped.filter((x) => x.startsWith('eval ')).length, first.evals.length);
  assert.deepEqual(again.evals.map((e) => e.top1), first.evals.map((e) => e.top1));

  const foreign = join(root, 'mine');
  mkdirSync(foreign);
  writeFileSync(join(foreign, 'thesis.tex'), 'precious');
  await assert.rejects(runDemo({ out: foreign, size: 'tiny', log: () => undefined }), /was not made by awty demo .*left untouched/);
  assert.equal(readFileSync(join(foreign, 'thesis.tex'), 'utf8'), 'precious');
  assert.deepEqual(readdirSync(foreign), ['thesis.tex']);
  await assert.rejects(runDemo({ out, size: 'full', log: () => undefined }), /holds a demo of size tiny/);
  // an output folder awty made for something else is not the demo's either
  const other = await ensureOwnedDir(join(root, 'figure1-out'), 'figure1 output');
  writeFileSync(join(other, 'figure1.json'), '{}');
  await assert.rejects(runDemo({ out: other, size: 'tiny', log: () => undefined }), /made for figure1 output, not by awty demo; it is left untouched/);
  assert.deepEqual(readdirSync(other).sort(), ['.awty-created', 'figure1.json']);
  // a demo folder of an earlier awty (its own marker file) is still the demo's: a wrong size is refused
  // without a change, the same size continues it (every stage skipped) and gets today's marker
  rmSync(join(out, '.awty-created'));
  writeFileSync(join(out, '.awty-demo.json'), JSON.stringify({ schema: 'awty.demo/1', size: 'tiny', createdAt: '2026-01-01T00:00:00Z' }));
  await assert.rejects(runDemo({ out, size: 'full', log: () => undefined }), /holds a demo of size tiny/);
  assert.ok(!existsSync(join(out, '.awty-created')));
  const adopted = await runDemo({ out, size: 'tiny', threads: 1, device: 'cpu', log: () => undefined });
  assert.equal(adopted.skipped.filter((x) => x.startsWith('eval ')).length, first.evals.length);
  assert.match(readFileSync(join(out, '.awty-created'), 'utf8'), /"purpose":"awty demo --size tiny"/);
});

test('awty sweep on the demo\'s sweep.json finds every run finished', { skip, timeout: 300_000 }, () => {
  assert.ok(first, 'the demo ran');
  const r = spawnSync(process.execPath, [join(repo, 'dist', 'src', 'cli', 'main.js'), 'sweep', join(out, 'sweep.json')], { encoding: 'utf8', maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const n = first.tcRuns.length + first.evals.length;
  assert.equal(r.stdout.match(/: finished \(.*\), skipped$/gm)?.length, n, r.stdout);
  assert.doesNotMatch(r.stdout, /^ {4}awty (train-tc|finetune) /m);
});

test('awty demo is a CLI command with its flags', () => {
  const r = spawnSync(process.execPath, [join(repo, 'dist', 'src', 'cli', 'main.js'), 'demo', '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  for (const flag of ['--out', '--size', '--threads', '--device']) assert.ok(r.stdout.includes(flag), flag);
  const bad = spawnSync(process.execPath, [join(repo, 'dist', 'src', 'cli', 'main.js'), 'demo', '--size', 'huge', '--out', join(root, 'bad')], { encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--size must be full or tiny/);
  assert.equal(existsSync(join(root, 'bad')), false);
});
