// awty demo end to end at its smallest size: synthetic videos -> episodes -> two TC runs -> the labelled
// stand-in -> linear probe and few-shot results files -> figure1.{json,svg,png}; every stage's files
// exist and the results folder yields a Figure 1 analysis of the demo's two conditions.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { runDemo, DEMO_CONDITIONS } from '../src/experiments/demo.js';
import { analyze, readResults } from '../src/scaling/index.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const root = await mkdtemp(join(tmpdir(), 'awty-demo-'));
after(() => rm(root, { recursive: true, force: true }));

async function nonEmpty(file: string): Promise<void> {
  const s = await stat(file);
  assert.ok(s.isFile() && s.size > 0, `${file} is a non-empty file`);
}

test('awty demo runs every stage on data it makes itself', { timeout: 240_000 }, async () => {
  const out = join(root, 'demo');
  const lines: string[] = [];
  const s = await runDemo({ out, seed: 1, threads: 2, size: 'tiny', log: (l) => lines.push(l) });

  // 1. videos
  const videos = (await readdir(join(out, 'videos'))).sort();
  assert.equal(videos.length, 2);
  for (const v of videos) await nonEmpty(join(out, 'videos', v));
  // 2. episodes: class_NNNN folders of JPEGs
  const episodes = (await readdir(join(out, 'episodes'))).filter((n) => n.startsWith('class_')).sort();
  assert.equal(episodes.length, s.episodes);
  assert.ok(s.episodes >= 4, `${s.episodes} episodes`);
  assert.ok((await readdir(join(out, 'episodes', episodes[0]!))).some((f) => f.endsWith('.jpeg')));
  // 3. TC checkpoints at two class fractions, the smaller one on fewer frames
  const tcs = (await readdir(join(out, 'runs'))).filter((f) => /^TC_DEMO_resnet18_(1\.0|0\.5)_1_epoch_\d+\.tar$/.test(f));
  assert.ok(tcs.some((f) => f.includes('_1.0_')) && tcs.some((f) => f.includes('_0.5_')), tcs.join(', '));
  assert.equal(s.tcRuns.length, 2);
  assert.ok(s.tcRuns[1]!.hours < s.tcRuns[0]!.hours && s.tcRuns[1]!.hours > 0);
  assert.equal(s.tcRuns[0]!.hours, s.frames / 2 / 3600);
  // 4. labelled stand-in: same classes in train and val
  const classDirs = async (d: string): Promise<string[]> => (await readdir(d)).filter((n) => !n.startsWith('.')).sort();
  const trainClasses = await classDirs(join(out, 'labelled', 'train'));
  assert.deepEqual(await classDirs(join(out, 'labelled', 'val')), trainClasses);
  assert.ok(trainClasses.length >= 6);
  // 5. results files: 2 conditions x 2 video lengths
  assert.equal(s.results.length, 4);
  for (const f of s.results) await nonEmpty(f);
  const read = await readResults(join(out, 'results'));
  assert.equal(read.runs.length, 4);
  const analysis = analyze(read.runs, { bootstrap: 0 });
  assert.deepEqual(analysis.conditions.map((c) => c.condition).sort(), [...DEMO_CONDITIONS].sort());
  for (const c of analysis.conditions) {
    assert.deepEqual([...new Set(read.runs.filter((r) => r.condition === c.condition).map((r) => r.hours))].sort(),
      s.tcRuns.map((t) => t.hours).sort());
  }
  // 6. Figure 1 outputs
  for (const f of ['figure1.json', 'figure1.svg', 'figure1.png']) await nonEmpty(join(out, f));
  const fig = JSON.parse(await readFile(join(out, 'figure1.json'), 'utf8')) as { schema: string; conditions: { condition: string }[] };
  assert.equal(fig.schema, 'awty.figure1/1');
  assert.deepEqual(fig.conditions.map((c) => c.condition).sort(), [...DEMO_CONDITIONS].sort());
  assert.deepEqual(s.conditions.slice().sort(), [...DEMO_CONDITIONS].sort());
  // progress and the closing summary
  assert.ok(lines.some((l) => l.includes('[1/6]')) && lines.some((l) => l.includes('[6/6]')));
  assert.ok(lines.some((l) => l.includes('demo finished') && l.includes(out)));
});

test('awty demo is a CLI command with its flags', () => {
  const r = spawnSync(process.execPath, [join(repo, 'dist', 'src', 'cli', 'main.js'), 'demo', '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  for (const flag of ['--out', '--seed', '--threads', '--size']) assert.ok(r.stdout.includes(flag), flag);
  const bad = spawnSync(process.execPath, [join(repo, 'dist', 'src', 'cli', 'main.js'), 'demo', '--size', 'huge', '--out', join(root, 'bad')], { encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--size must be small or tiny/);
});
