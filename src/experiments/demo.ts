// The paper's question in miniature, on real video and a real labelled set: a natural-video corpus
// from what Debian ships (opencv-doc's real footage plus slow camera paths over its photographs) ->
// episodes (extract) -> temporal classification with resnet18 at low resolution at several amounts of
// video, two seeds each (train-tc) -> Fashion-MNIST (dataset-fashion-mnist) few-shot fine-tuning and
// linear probe of every trunk and of untrained trunks as the baseline (finetune) -> the user's own
// Figure 1 beside the paper's (figure1) -> report.html. Everything lives under one folder; a rerun
// skips what is finished.
import { existsSync, promises as fsp } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import * as torch from '../torch/index.js';
import type { Device } from '../torch/index.js';
import { buildCorpus, type CorpusSummary } from '../data/corpus.js';
import { extract, type ExtractSummary } from '../data/extract.js';
import { FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, fashionMnistFiles, idxToClassFolders } from '../data/idx.js';
import { formatSummary, resolveConfig, runSweep } from './sweep.js';
import {
  analyze, formatReport, paperRuns, PAPER_SOURCE, writeFigure1,
  type Figure1Analysis, type Figure1Outputs, type Target,
} from '../scaling/index.js';
import { writeDemoReport } from './demo-report.js';
import { writeTextAtomic } from '../io/atomic.js';
import { adoptOwnedDir, ensureOwnedDir, ownedMarker, OwnershipError } from '../io/owned.js';

export type DemoSize = 'tiny' | 'full';

/** Human accuracy on Fashion-MNIST: the dataset's authors' crowd-sourced evaluation (the demo's human-level line). */
export const FASHION_MNIST_HUMAN: Target = {
  metric: 'top1',
  value: 83.5,
  source: 'crowd-sourced human accuracy on Fashion-MNIST (1000 test images, 3 labels each, majority vote; Xiao et al. 2017, the dataset\'s benchmark table)',
};

export interface DemoOptions {
  /** output folder: created, or one this demo made before (anything else is refused) */
  out: string;
  size?: DemoSize;
  threads?: number;
  /** default: cuda when torch.cuda.isAvailable(), else cpu */
  device?: Device;
  ffmpeg?: string;
  ffprobe?: string;
  /** where opencv-doc's examples data and Fashion-MNIST are (Debian's places by default) */
  opencvDataDir?: string;
  fashionMnistDir?: string;
  log?: (line: string) => void;
}

/** The grid and every setting of one demo size. */
export interface DemoPlan {
  corpus: { videos: string[]; photos?: number; pathSeconds: number; renderFps: number };
  extract: { fps: number; segLen: number; frameSize: number };
  tc: { model: string; imageSize: number; classFractions: number[]; seeds: number[]; epochs: number; batchSize: number; lr: number; workers: number };
  labelled: { trainPerClass: number; fewShotPerClass: number; valPerClass: number };
  eval: { linearProbeEpochs: number; fewShotEpochs: number; batchSize: number; lr: number };
  bootstrap: number;
}

export const DEMO_PLANS: Record<DemoSize, DemoPlan> = {
  full: {
    corpus: { videos: ['vtest.avi', 'tree.avi', 'Megamind.avi'], pathSeconds: 8, renderFps: 8 },
    extract: { fps: 2, segLen: 4, frameSize: 64 },
    tc: { model: 'resnet18', imageSize: 32, classFractions: [0.06, 0.15, 0.4, 1.0], seeds: [1, 2], epochs: 5, batchSize: 32, lr: 0.0005, workers: 0 },
    labelled: { trainPerClass: 50, fewShotPerClass: 10, valPerClass: 100 },
    eval: { linearProbeEpochs: 8, fewShotEpochs: 15, batchSize: 50, lr: 0.001 },
    bootstrap: 1000,
  },
  tiny: {
    corpus: { videos: ['tree.avi', 'Megamind.avi'], photos: 6, pathSeconds: 4, renderFps: 4 },
    extract: { fps: 2, segLen: 4, frameSize: 48 },
    tc: { model: 'resnet18', imageSize: 32, classFractions: [0.25, 1.0], seeds: [1, 2], epochs: 1, batchSize: 16, lr: 0.0005, workers: 0 },
    labelled: { trainPerClass: 10, fewShotPerClass: 3, valPerClass: 10 },
    eval: { linearProbeEpochs: 2, fewShotEpochs: 2, batchSize: 20, lr: 0.001 },
    bootstrap: 200,
  },
};

/** The two evaluations, in the order shown. */
export const DEMO_CONDITIONS = ['few-shot', 'linear-probe'] as const;
export type DemoCondition = (typeof DEMO_CONDITIONS)[number];

export interface TcRunRecord {
  classFraction: number;
  seed: number;
  episodes: number;
  /** size of the TC head (the corpus's number of episodes, the same for every fraction) */
  nOut: number;
  frames: number;
  /** hours of video the run saw: frames / extraction fps / 3600 */
  hours: number;
  /** average training top-1 of temporal classification per epoch */
  acc1List: number[];
  /** loss per epoch where this invocation trained it (resumed epochs have none) */
  lossList: (number | null)[];
  checkpoint: string;
  seconds: number;
}

export interface EvalRecord {
  trunk: 'tc' | 'random';
  condition: DemoCondition;
  seed: number;
  classFraction: number | null;
  hours: number | null;
  top1: number;
  top5: number;
  trainImages: number;
  epochs: number;
  seconds: number;
}

export interface ConditionReading {
  condition: DemoCondition;
  label: string;
  /** TC at each amount of video: mean, min, max over seeds */
  bySize: { classFraction: number; hours: number; mean: number; min: number; max: number; n: number }[];
  random: { mean: number; min: number; max: number; n: number };
  largest: { tcMean: number; tcMin: number; tcMax: number; gain: number; verdict: 'beats' | 'overlaps' | 'below' };
  slope: { value: number; low: number; high: number };
}

export interface DemoSummary {
  out: string;
  size: DemoSize;
  plan: DemoPlan;
  device: Device;
  corpus: CorpusSummary;
  episodes: { dir: string; episodes: number; frames: number; framesPerEpisode: number; hours: number };
  tcRuns: TcRunRecord[];
  evals: EvalRecord[];
  chance: number;
  target: Target;
  analysis: Figure1Analysis;
  paper: Figure1Analysis;
  figure: Figure1Outputs;
  paperFigure: Figure1Outputs;
  readings: ConditionReading[];
  reading: string[];
  report: string;
  seconds: number;
  /** stages skipped because a previous run finished them */
  skipped: string[];
}

/** The purpose the demo records in its --out folder's ownership marker (io/owned.ts), with the size. */
export const demoPurpose = (size: DemoSize): string => `awty demo --size ${size}`;

export const CONDITION_LABELS: Record<DemoCondition, string> = { 'few-shot': 'few-shot fine-tuning', 'linear-probe': 'linear probe' };

async function writeJson(file: string, value: unknown): Promise<void> {
  await writeTextAtomic(file, JSON.stringify(value, null, 2) + '\n');
}

/**
 * Claims `out` for the demo through awty's ownership marker (io/owned.ts): a missing or empty folder
 * is created or marked; a folder an earlier demo of the same size marked is reused; anything else
 * (another size, another awty output, a folder of the user's) is refused and never touched.
 */
/** The marker file of demo folders made before the demo used io/owned's marker: `{ schema: 'awty.demo/1', size }`. */
export const LEGACY_DEMO_MARKER = '.awty-demo.json';

async function legacyDemoSize(out: string): Promise<string | undefined> {
  try {
    const m = JSON.parse(await fsp.readFile(join(out, LEGACY_DEMO_MARKER), 'utf8')) as { schema?: unknown; size?: unknown };
    return m.schema === 'awty.demo/1' && typeof m.size === 'string' ? m.size : undefined;
  } catch {
    return undefined;
  }
}

async function claimOut(out: string, size: DemoSize): Promise<void> {
  let m = await ownedMarker(out);
  const legacy = m ? undefined : await legacyDemoSize(out);
  if (legacy !== undefined) {
    // a demo folder of an earlier awty: still the demo's; at the same size it gets today's marker
    if (legacy !== size) throw new Error(`--out ${out} holds a demo of size ${legacy}, not ${size}; choose another --out (or rerun with --size ${legacy})`);
    await adoptOwnedDir(out, demoPurpose(size));
    m = await ownedMarker(out);
  }
  if (m) {
    const made = /^awty demo --size (\w+)$/.exec(m.purpose)?.[1];
    if (made === undefined) throw new Error(`--out ${out} is an awty output folder made for ${m.purpose}, not by awty demo; it is left untouched: choose another --out`);
    if (made !== size) throw new Error(`--out ${out} holds a demo of size ${made}, not ${size}; choose another --out (or rerun with --size ${made})`);
    return;
  }
  try {
    await ensureOwnedDir(out, demoPurpose(size));
  } catch (e) {
    if (!(e instanceof OwnershipError)) throw e;
    throw new Error(`--out ${out} ${e.problem}: it was not made by awty demo and is left untouched; choose another --out or an empty folder`, { cause: e });
  }
}

const stats = (v: readonly number[]): { mean: number; min: number; max: number; n: number } => ({
  mean: v.reduce((a, b) => a + b, 0) / v.length, min: Math.min(...v), max: Math.max(...v), n: v.length,
});

/** Reads the grid: per condition, TC accuracy by amount of video against the random trunk. */
export function readGrid(tcRuns: readonly TcRunRecord[], evals: readonly EvalRecord[], analysis: Figure1Analysis): ConditionReading[] {
  return DEMO_CONDITIONS.map((condition) => {
    const fractions = [...new Set(tcRuns.map((r) => r.classFraction))].sort((a, b) => a - b);
    const bySize = fractions.map((cf) => {
      const e = evals.filter((x) => x.trunk === 'tc' && x.condition === condition && x.classFraction === cf);
      return { classFraction: cf, hours: e[0]?.hours ?? 0, ...stats(e.map((x) => x.top1)) };
    });
    const random = stats(evals.filter((x) => x.trunk === 'random' && x.condition === condition).map((x) => x.top1));
    const big = bySize.at(-1)!;
    const verdict = big.min > random.max ? 'beats' : big.max < random.min ? 'below' : 'overlaps';
    const m = analysis.conditions.find((c) => c.condition === condition)?.metrics.find((mm) => mm.metric === 'top1');
    const b = m?.estimates[0]?.bootstrap?.slope;
    return {
      condition, label: CONDITION_LABELS[condition], bySize, random,
      largest: { tcMean: big.mean, tcMin: big.min, tcMax: big.max, gain: big.mean - random.mean, verdict },
      slope: { value: m?.fit.slope ?? NaN, low: b?.low ?? NaN, high: b?.high ?? NaN },
    };
  });
}

/** The closing reading, in plain sentences; it says what the numbers are, whatever they are. */
export function honestReading(readings: readonly ConditionReading[], s: { hours: number; chance: number; target: Target; analysis: Figure1Analysis; seeds: number }): string[] {
  const f = (v: number): string => v.toFixed(1);
  const lines: string[] = [];
  for (const r of readings) {
    const l = r.largest;
    const what = l.verdict === 'beats'
      ? `beats the random-weight trunk: ${f(l.tcMean)}% (seeds ${f(l.tcMin)}-${f(l.tcMax)}) against ${f(r.random.mean)}% (${f(r.random.min)}-${f(r.random.max)}), +${f(l.gain)} points, every TC seed above every random seed`
      : l.verdict === 'below'
        ? `is BELOW the random-weight trunk: ${f(l.tcMean)}% (seeds ${f(l.tcMin)}-${f(l.tcMax)}) against ${f(r.random.mean)}% (${f(r.random.min)}-${f(r.random.max)}), ${f(l.gain)} points`
        : `does not separate from the random-weight trunk: ${f(l.tcMean)}% (seeds ${f(l.tcMin)}-${f(l.tcMax)}) against ${f(r.random.mean)}% (${f(r.random.min)}-${f(r.random.max)}), ${l.gain >= 0 ? '+' : ''}${f(l.gain)} points, the seeds' ranges overlap`;
    lines.push(`${r.label}: at the most video (${(s.hours * 60).toFixed(1)} min), temporal classification ${what}.`);
    const slopeCi = Number.isFinite(r.slope.low) ? ` (bootstrap 95% ${f(r.slope.low)} to ${f(r.slope.high)})` : '';
    const grows = r.slope.low > 0 ? 'grows' : r.slope.high < 0 ? 'falls' : 'shows no clear trend';
    lines.push(`  accuracy ${grows} with the amount of video: ${f(r.slope.value)} points per tenfold more video${slopeCi}.`);
    const e = s.analysis.conditions.find((c) => c.condition === r.condition)?.metrics.find((m) => m.metric === 'top1')?.estimates[0];
    if (e) {
      const b = e.bootstrap;
      const interval = b ? ` (bootstrap 95% of log10 hours: ${b.low === null ? 'never' : b.low.toFixed(1)} to ${b.high === null ? 'never' : b.high.toFixed(1)})` : '';
      lines.push(e.log10Hours === null
        ? `  extrapolated, the fit never reaches the ${s.target.value}% human line (${e.reason ?? 'no crossing'}).`
        : `  extrapolated log-linearly, it would reach the ${s.target.value}% human line after 10^${e.log10Hours.toFixed(1)} h of such video${interval}.`);
    }
  }
  lines.push(`Chance is ${s.chance}% (10 classes). ${s.seeds} seeds per cell: the spreads are ranges over seeds, not confidence intervals; ` +
    `with so few seeds and minutes of video the extrapolation says little: it shows the pipeline, not a forecast about children.`);
  lines.push('The random-weight trunk is the same resnet18 untrained, evaluated by the same few-shot and linear-probe runs; ' +
    'the gap between the two is what the video taught the network.');
  return lines;
}

/**
 * The `awty sweep` configuration of a demo plan (relative paths are the demo folder's): the TC grid
 * with a head of every episode (`nOut`, the same for every fraction), the two evaluations (few-shot
 * on the first images of each class, linear probe on all of them) each with its own epochs and
 * validated once at the end, the random-trunk baseline, and Figure 1 on top-1 with the human line,
 * chance and bootstrap bands.
 */
export function demoSweepConfig(plan: DemoPlan, w: { episodesDir: string; nOut: number; labelledDir: string; device: Device; threads?: number | undefined }): Record<string, unknown> {
  const { tc, eval: ev, labelled: lb } = plan;
  return {
    dataDirs: [w.episodesDir], model: tc.model, classFractions: tc.classFractions, seeds: tc.seeds, imageSize: tc.imageSize, subject: 'DEMO',
    // one checkpoint per run, at its end
    tc: { epochs: tc.epochs, batchSize: tc.batchSize, workers: tc.workers, lr: tc.lr, weightDecay: 0, augmentation: true, printFreq: 100000, nOut: w.nOut, dropLast: true, saveEvery: tc.epochs },
    trainDir: join(w.labelledDir, 'train'), valDir: join(w.labelledDir, 'val'),
    conditions: [
      { name: 'few-shot', fracRetained: 1, freezeTrunk: false, perClass: lb.fewShotPerClass, epochs: ev.fewShotEpochs },
      { name: 'linear-probe', fracRetained: 1, freezeTrunk: true, epochs: ev.linearProbeEpochs },
    ],
    eval: {
      epochs: Math.max(ev.fewShotEpochs, ev.linearProbeEpochs), batchSize: ev.batchSize, workers: 0, lr: ev.lr, weightDecay: 0, schedule: [], printFreq: 100000,
      valEvery: Math.max(ev.fewShotEpochs, ev.linearProbeEpochs), saveCheckpoint: false,
    },
    baseline: true,
    targets: [FASHION_MNIST_HUMAN],
    figure: {
      title: 'Temporal classification on minutes of natural video: Fashion-MNIST top-1 against hours of video', dataset: 'Fashion-MNIST', metrics: ['top1'],
      bands: Math.min(plan.bootstrap, 500), chance: true,
    },
    ...(w.threads !== undefined ? { threads: w.threads } : {}),
    device: w.device, bootstrap: plan.bootstrap, out: '.',
  };
}

/** Runs (or continues) the demo; returns where everything is and what it found. */
export async function runDemo(opts: DemoOptions): Promise<DemoSummary> {
  const t0 = performance.now();
  const out = resolve(opts.out);
  const size = opts.size ?? 'full';
  const plan = DEMO_PLANS[size];
  if (!plan) throw new Error(`unknown demo size ${String(size)} (use full or tiny)`);
  const device: Device = opts.device ?? (torch.cuda.isAvailable() ? 'cuda' : 'cpu');
  if (device !== 'cpu' && !torch.cuda.isAvailable()) throw new Error(`--device ${device}: CUDA is not available in this libtorch build or on this machine`);
  const say = opts.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const elapsed = (): string => `${((performance.now() - t0) / 1000).toFixed(0)} s`;
  const N = 7;
  const stage = (n: number, what: string, why: string): void => say(`\n== [${n}/${N}] ${what} (${elapsed()})\n   ${why}`);
  const skipped: string[] = [];
  if (opts.threads !== undefined) torch.setNumThreads(opts.threads);

  await claimOut(out, size);
  say(`awty demo (--size ${size}) into ${out}, device ${device}, ${torch.getNumThreads()} thread(s)`);

  // 1. corpus
  stage(1, 'natural-video corpus', 'real footage from opencv-doc, lengthened by slow camera paths (pan, zoom, small rotation) over its real photographs');
  const corpusDir = join(out, 'corpus');
  if (existsSync(join(corpusDir, 'corpus.json'))) skipped.push('corpus');
  const corpus = await buildCorpus({
    out: corpusDir, videos: plan.corpus.videos, pathSeconds: plan.corpus.pathSeconds, fps: plan.corpus.renderFps,
    ...(plan.corpus.photos !== undefined ? { photos: plan.corpus.photos } : {}),
    ...(opts.opencvDataDir ? { sourceDir: opts.opencvDataDir } : {}), ...(opts.ffmpeg ? { ffmpeg: opts.ffmpeg } : {}), ...(opts.ffprobe ? { ffprobe: opts.ffprobe } : {}),
    onLog: (l) => say(`  ${l}`),
  });
  const footage = corpus.videos.filter((v) => v.kind === 'footage');
  say(`  ${footage.length} real videos, ${corpus.footageSeconds.toFixed(1)} s (${footage.map((v) => `${basename(v.source)} ${v.seconds.toFixed(1)} s`).join(', ')}); ` +
    `${corpus.photosUsed} camera paths of ${plan.corpus.pathSeconds} s = ${corpus.pathSeconds} s; ` +
    `${(corpus.footageSeconds + corpus.pathSeconds).toFixed(1)} s in all`);

  // 2. episodes
  const ex = plan.extract;
  stage(2, `episodes (awty extract --fps ${ex.fps} --seg-len ${ex.segLen}, ${ex.frameSize} px frames)`,
    `each episode is ${ex.segLen} s of consecutive video (${ex.fps * ex.segLen} frames): temporal classification learns to tell which episode a frame came from`);
  const episodesDir = join(out, 'episodes');
  const exSummary: ExtractSummary = await extract({
    videoDirs: [corpus.dir], saveDir: episodesDir, fps: ex.fps, segLen: ex.segLen, resizeMinor: ex.frameSize, size: ex.frameSize,
    cropOffsetY: 0, rotate: 0, quality: 90, ...(opts.ffmpeg ? { ffmpeg: opts.ffmpeg } : {}), ...(opts.ffprobe ? { ffprobe: opts.ffprobe } : {}),
    onLog: (l) => say(`  extract: ${l}`),
  });
  const episodes = { dir: episodesDir, episodes: exSummary.episodes, frames: exSummary.frames, framesPerEpisode: exSummary.framesPerEpisode, hours: exSummary.frames / ex.fps / 3600 };
  say(`  ${episodes.frames} frames in ${episodes.episodes} episodes (${episodes.framesPerEpisode} frames each) = ${(episodes.hours * 60).toFixed(2)} min of video at ${ex.fps} frames/s`);

  // 3. labelled set
  const lb = plan.labelled;
  stage(3, `labelled set: Fashion-MNIST (${FASHION_MNIST_CLASSES.length} classes)`,
    `the object-recognition test: ${lb.trainPerClass} training images per class for the linear probe, the first ${lb.fewShotPerClass} of them per class for few-shot fine-tuning, ${lb.valPerClass} test images per class`);
  const fm = opts.fashionMnistDir ?? FASHION_MNIST_DIR;
  if (!existsSync(fm)) throw new Error(`${fm} does not exist: install Debian's dataset-fashion-mnist (scripts/setup.sh does)`);
  const labelledDir = join(out, 'fashion-mnist');
  await fsp.mkdir(labelledDir, { recursive: true });
  const train = fashionMnistFiles('train', fm);
  const test = fashionMnistFiles('t10k', fm);
  const splits = {
    train: await idxToClassFolders({ ...train, out: join(labelledDir, 'train'), perClass: lb.trainPerClass }),
    val: await idxToClassFolders({ ...test, out: join(labelledDir, 'val'), perClass: lb.valPerClass }),
  };
  if (splits.train.reused && splits.val.reused) skipped.push('labelled set');
  say(`  ${splits.train.images} training images (the first of each class in the training file; few-shot: the first ${lb.fewShotPerClass} per class of them), ${splits.val.images} test images, under ${labelledDir}`);

  // 4.-6. the grid of temporal classification runs, their evaluations, the random-trunk baseline and Figure 1: awty sweep
  const tc = plan.tc;
  const ev = plan.eval;
  const sweepConfig = resolveConfig(demoSweepConfig(plan, { episodesDir, nOut: episodes.episodes, labelledDir, device, threads: opts.threads }), out);
  stage(4, `temporal classification (awty sweep, ${join(out, 'sweep.json')}): ${tc.model} at ${tc.imageSize} px, ${tc.epochs} epoch(s), ${tc.classFractions.length} amounts of video x ${tc.seeds.length} seeds`,
    'self-supervised training: the only label is which episode a frame came from; more episodes = more video');
  const quiet = (l: string): void => { if (/^(Epoch \d+:|epoch \d+:.*validation|resumed|continuing)/.test(l)) say(`      ${l}`); };
  let sweepSummary = false;
  const sweep = await runSweep(sweepConfig, {
    log: (l) => { if (!sweepSummary) for (const line of l.split('\n')) say(`  ${line}`); },
    runLog: quiet,
    onStage: (st) => {
      if (st === 'eval') {
        stage(5, `evaluation on Fashion-MNIST: few-shot fine-tuning (${lb.fewShotPerClass} images per class, whole network, ${ev.fewShotEpochs} epochs) and linear probe (${lb.trainPerClass} per class, frozen trunk, ${ev.linearProbeEpochs} epochs)`,
          'few-shot: fine-tune the whole network on a handful of labelled images; linear probe: train only a linear classifier on the frozen features; both also on untrained (random-weight) trunks as the baseline');
      }
      if (st === 'summary') {
        stage(6, 'Figure 1: accuracy against hours of video, fitted and extrapolated to the human line, beside the paper\'s',
          `the paper's analysis on these runs: a log-linear fit per evaluation, bootstrap over seeds, the human level (${FASHION_MNIST_HUMAN.value}% top-1) as the target`);
        // the table and the analysis are printed below, once
        sweepSummary = true;
      }
    },
  }).catch((err: Error) => {
    throw new Error(`awty sweep ${join(out, 'sweep.json')}: ${err.message}`, { cause: err });
  });
  for (const r of sweep.runs) if (r.skipped) skipped.push(r.kind === 'tc' ? `tc ${r.what}` : `eval ${r.what}`);
  const tcRuns: TcRunRecord[] = sweep.tcDone.map((d) => {
    const epochs = d.record.epochs as { acc1?: number; loss: number }[];
    return {
      classFraction: d.run.classFraction, seed: d.run.seed, episodes: d.record.data.episodes, nOut: d.run.options.nOut, frames: d.record.data.frames,
      hours: d.record.hours ?? d.record.data.frames / ex.fps / 3600, acc1List: epochs.map((e) => e.acc1 ?? NaN), lossList: epochs.map((e) => e.loss),
      checkpoint: d.checkpoint, seconds: d.record.wallSeconds,
    };
  });
  const evals: EvalRecord[] = sweep.rows.map((r) => ({
    trunk: r.trunk, condition: r.condition as DemoCondition, seed: r.seed, classFraction: r.trunk === 'tc' ? r.classFraction : null, hours: r.trunk === 'tc' ? r.hours : null,
    top1: r.top1, top5: r.top5, trainImages: r.trainImages, epochs: r.epochs, seconds: r.evalWallSeconds,
  }));
  if (!sweep.analysis || !sweep.figure) throw new Error(`awty sweep ${join(out, 'sweep.json')} made no Figure 1: ${sweep.figureError ?? 'unknown reason'}`);
  const analysis = sweep.analysis;
  const figure = sweep.figure;
  const chance = 100 / FASHION_MNIST_CLASSES.length;
  const paper = analyze(paperRuns(), { bootstrap: plan.bootstrap, seed: 1, source: PAPER_SOURCE });
  const paperFigure = await writeFigure1(paper, join(out, 'paper'), { bands: { n: Math.min(plan.bootstrap, 500), seed: 1 } });
  say(formatSummary(sweep.rows));
  say(formatReport(analysis));

  // 7. report
  const readings = readGrid(tcRuns, evals, analysis);
  const seeds = tc.seeds.length;
  const reading = honestReading(readings, { hours: Math.max(...tcRuns.map((r) => r.hours)), chance, target: FASHION_MNIST_HUMAN, analysis, seeds });
  stage(7, 'report', 'report.html: both figures, learning curves, accuracy against hours with the baseline, every run, the corpus, the configuration');
  const seconds = (performance.now() - t0) / 1000;
  const summary: DemoSummary = {
    out, size, plan, device, corpus, episodes, tcRuns, evals, chance, target: FASHION_MNIST_HUMAN, analysis, paper, figure, paperFigure,
    readings, reading, report: join(out, 'report.html'), seconds, skipped,
  };
  await writeDemoReport(summary);
  await writeJson(join(out, 'demo-summary.json'), { ...summary, analysis: undefined, paper: undefined });

  say('\nWhat this run says:');
  for (const l of reading) say(`  ${l}`);
  say([
    '',
    `demo finished in ${seconds.toFixed(0)} s${skipped.length ? ` (${skipped.length} finished steps of an earlier run reused)` : ''}; everything is under ${out}:`,
    `  report     ${summary.report}`,
    `  figure 1   ${figure.png} (the paper's: ${paperFigure.png})`,
    `  corpus     ${corpus.dir}; episodes ${episodesDir}; labelled set ${labelledDir}`,
    `  sweep      ${join(out, 'sweep.json')} (rerun alone: awty sweep ${join(out, 'sweep.json')}); summary ${sweep.csv}`,
    `  TC runs    ${join(out, 'tc')}; results ${join(out, 'eval')}; random-trunk baseline ${join(out, 'baseline')}`,
  ].join('\n'));
  return summary;
}
