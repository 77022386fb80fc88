// A miniature joint sweep end to end: a synthetic video cut into 8 episodes by extract; temporal
// classification (one epoch, one batch; its augmentation crops to the image size) with 2 model
// sizes (vit_micro_8 with 2 seeds, vit_tiny_16, 27 times larger, with 1) x 2 image sizes (16,
// 32 px) x 3 amounts of video (class fractions 1, 0.5, 0.25); awty knn of every trunk on a
// 3-class labelled set; the results files read back with model size, image size and objective
// beside hours; awty scaling on them: a joint fit and the frontier figure.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { extract } from '../src/data/index.js';
import { main as trainTc, TC_DEFAULTS } from '../src/experiments/tc.js';
import { main as knn } from '../src/experiments/knn.js';
import { readResults } from '../src/scaling/results.js';
import type { JointAnalysis } from '../src/scaling/joint-analysis.js';
import { tmpdir } from './helpers/oracle.js';
import { writeNoisyImage } from './helpers/images.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = path.join(repo, 'dist', 'src', 'cli', 'main.js');
const tmp = tmpdir('awty-joint-');
after(() => rmSync(tmp, { recursive: true, force: true }));
const threads = Number(process.env.AWTY_NUM_THREADS ?? '1');

const episodes = path.join(tmp, 'episodes');
const labelled = path.join(tmp, 'labelled');
const results = path.join(tmp, 'results');

before(async () => {
  const videos = path.join(tmp, 'videos');
  mkdirSync(videos, { recursive: true });
  const ff = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=64x48:rate=10', '-t', '8',
    '-pix_fmt', 'yuv420p', path.join(videos, 'a.mp4')], { encoding: 'utf8' });
  assert.equal(ff.status, 0, ff.stderr);
  await extract({ videoDirs: [videos], fps: 2, segLen: 1, resizeMinor: 40, size: 32, cropOffsetY: 0, rotate: 0, quality: 90, saveDir: episodes });
  // close colours under heavy noise, so that accuracy is neither chance nor 100% everywhere
  const colours = [[120, 110, 100], [100, 120, 110], [110, 100, 120]];
  for (const [split, n] of [['train', 6], ['val', 4]] as const) {
    for (let c = 0; c < 3; c++) {
      const d = path.join(labelled, split, `n0000000${c}`);
      mkdirSync(d, { recursive: true });
      for (let i = 0; i < n; i++) await writeNoisyImage(path.join(d, `img_${i}.JPEG`), colours[c]!, c * 100 + i + (split === 'val' ? 50 : 0), { spread: 60 });
    }
  }
});

// seeds: the small model's cells hold two runs (the bootstrap resamples them), the larger one's one
const MODELS: Record<string, number[]> = { vit_micro_8: [1, 2], vit_tiny_16: [1] };
const SIZES = [16, 32];
const FRACTIONS = [1, 0.5, 0.25];
const RUNS = 2 * 3 * 2 + 2 * 3 * 1;

test('a 2 model sizes x 2 image sizes x 3 amounts of video sweep gives results with model size, image size and objective, a joint fit and a frontier figure', async () => {
  const t0 = performance.now();
  for (const [model, seeds] of Object.entries(MODELS)) {
    for (const imageSize of SIZES) {
      for (const classFraction of FRACTIONS) {
        for (const seed of seeds) {
          const out = path.join(tmp, 'tc', `${model}_${imageSize}`);
          const tc = await trainTc({
            ...TC_DEFAULTS, dataDirs: [episodes], model, nOut: 8, classFraction, seed, epochs: 1, batchSize: 16, workers: 0, imageSize,
            augmentation: true, threads, keepCheckpoints: 'final', metrics: '', out, log: () => undefined,
          });
          assert.ok(tc.hours! > 0);
          const r = await knn({
            imgnetTraindir: path.join(labelled, 'train'), imgnetValdir: path.join(labelled, 'val'), model, nOut: 8, resume: tc.checkpoints.at(-1)!,
            k: 3, batchSize: 24, workers: 0, imageSize, seed, threads, out: path.join(results, `${model}_${imageSize}`), log: () => undefined,
          });
          assert.ok(r.resultFile && existsSync(r.resultFile));
        }
      }
    }
  }
  const trainSeconds = (performance.now() - t0) / 1000;

  const { runs } = await readResults(results);
  assert.equal(runs.length, RUNS);
  for (const r of runs) {
    assert.equal(r.objective, 'tc');
    assert.ok(SIZES.includes(r.imageSize!), `image size ${r.imageSize}`);
    assert.ok(r.modelParams! > 0);
  }
  // two model sizes (the position embedding makes each image size's count differ a little), three lengths of video
  const params = [...new Set(runs.map((r) => r.modelParams!))].sort((a, b) => a - b);
  assert.equal(params.length, 4, `parameter counts ${params.join(', ')}`);
  assert.ok(params[2]! > 10 * params[1]!, `vit_tiny_16 is over ten times vit_micro_8: ${params.join(', ')}`);
  assert.equal(new Set(runs.map((r) => r.hours)).size, 3);

  const out = path.join(tmp, 'scaling-out');
  const cmd = spawnSync(process.execPath, [cli, 'scaling', '--results', results, '--target', 'top1=99', '--bootstrap', '50', '--out', out], { encoding: 'utf8' });
  assert.equal(cmd.status, 0, cmd.stderr);
  assert.match(cmd.stdout, /knn-k3 \(tc\): 18 runs in 12 settings/);
  const a = JSON.parse(readFileSync(path.join(out, 'scaling.json'), 'utf8')) as JointAnalysis;
  assert.equal(a.schema, 'awty.scaling/1');
  const m = a.groups[0]!.metrics[0]!;
  const fit = m.fits.loglinear!;
  assert.equal(fit.n, RUNS);
  assert.deepEqual(fit.fixed, {});
  for (const f of ['params', 'hours', 'imageSize'] as const) assert.ok(Number.isFinite(fit.slopes[f]), `${f} slope ${fit.slopes[f]}`);
  assert.ok(fit.r2Accuracy >= 0 && fit.r2Accuracy <= 1);
  assert.equal(m.frontier.rows.length > 0, true);
  assert.deepEqual([...new Set(m.frontier.rows.map((r) => r.imageSize))], SIZES);
  const csv = readFileSync(path.join(out, 'frontier.csv'), 'utf8').trim().split('\n');
  assert.equal(csv.length, 1 + m.frontier.rows.length);
  // the figure: a PNG of the size reported, twice the SVG's width
  const png = readFileSync(path.join(out, 'scaling.png'));
  assert.equal(png.subarray(1, 4).toString(), 'PNG');
  const svg = readFileSync(path.join(out, 'scaling.svg'), 'utf8');
  const svgWidth = Number(/<svg[^>]*\bwidth="([\d.]+)"/.exec(svg)![1]);
  assert.equal(png.readUInt32BE(16), Math.round(svgWidth * 2));
  assert.ok(png.readUInt32BE(16) > 1000 && png.readUInt32BE(20) > 500, `PNG ${png.readUInt32BE(16)}x${png.readUInt32BE(20)}`);
  assert.ok(statSync(path.join(out, 'scaling.png')).size > 20000);
  assert.match(cmd.stderr, new RegExp(`scaling\\.png \\(${png.readUInt32BE(16)}×${png.readUInt32BE(20)} px\\)`));
  process.stderr.write(`# ${RUNS} TC runs and kNN evaluations: ${trainSeconds.toFixed(1)} s\n`);
});
