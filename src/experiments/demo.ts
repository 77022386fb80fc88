// The whole study end to end on data made on the spot: synthetic videos (ffmpeg lavfi sources) ->
// episodes (extract) -> temporal classification at two class fractions (train-tc) -> a tiny labelled
// "ImageNet" of generated colour/pattern classes -> linear probe and few-shot fine-tuning of each TC
// checkpoint with the hours of video it saw (finetune, results files) -> the Figure 1 analysis
// (figure1.json, .svg, .png). Small enough for a couple of CPU cores in a few minutes.
import { spawn } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { extract } from '../data/extract.js';
import { main as trainTc } from './tc.js';
import { main as finetune } from './finetune.js';
import { analyze, formatReport, HUMAN_TOP5_A1, readResults, writeFigure1, type Figure1Outputs } from '../scaling/index.js';

export type DemoSize = 'tiny' | 'small';

export interface DemoOptions {
  /** output folder (created; an existing one is emptied first) */
  out: string;
  seed?: number;
  threads?: number;
  /** 'small' (default): 30 s and 24 s videos, 2 TC epochs; 'tiny': 14 s and 12 s, 1 TC epoch (for tests) */
  size?: DemoSize;
  ffmpeg?: string;
  log?: (line: string) => void;
}

export interface DemoSummary {
  out: string;
  videos: string[];
  episodesDir: string;
  episodes: number;
  frames: number;
  tcRuns: { classFraction: number; frames: number; hours: number; checkpoint: string }[];
  labelledDir: string;
  results: string[];
  figure: Figure1Outputs;
  conditions: string[];
  seconds: number;
}

/** The conditions the demo writes results for. */
export const DEMO_CONDITIONS = ['linear-probe', 'few-shot'] as const;

const FPS = 2;
const SEG_LEN = 3;
const IMAGE = 32;
const CLASS_FRACTIONS = [1.0, 0.5];

interface SizeParams { videoSeconds: [number, number]; tcEpochs: number; ftEpochs: number; trainPerClass: number; valPerClass: number }
const SIZES: Record<DemoSize, SizeParams> = {
  small: { videoSeconds: [30, 24], tcEpochs: 2, ftEpochs: 3, trainPerClass: 12, valPerClass: 6 },
  tiny: { videoSeconds: [14, 12], tcEpochs: 1, ftEpochs: 2, trainPerClass: 6, valPerClass: 3 },
};

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((res, rej) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-2000); });
    p.on('error', (e) => rej(new Error(`cannot run ${cmd}: ${e.message}`)));
    p.on('close', (code) => (code === 0 ? res() : rej(new Error(`${cmd} exited with ${code}: ${err.trim()}`))));
  });
}

/** Two synthetic videos of different sources, sizes and frame rates (H.264 in MP4). */
async function makeVideos(dir: string, seconds: [number, number], ffmpeg: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const specs = [
    { name: 'a_testsrc2.mp4', src: `testsrc2=size=160x120:rate=25:duration=${seconds[0]}` },
    { name: 'b_mandelbrot.mp4', src: `mandelbrot=size=128x96:rate=15,trim=duration=${seconds[1]}` },
  ];
  const files: string[] = [];
  for (const s of specs) {
    const file = join(dir, s.name);
    await run(ffmpeg, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', s.src,
      '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', file]);
    files.push(file);
  }
  return files;
}

/** A deterministic 32-bit generator (LCG). */
function lcg(seed: number): () => number {
  let s = (seed * 2654435761) >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 4294967296; };
}

// 8 classes: 4 close colours x 2 stripe orientations, under heavy noise (so that top-5 of 8 is not trivially 100%).
type Pattern = 'hstripes' | 'vstripes';
const COLOURS: [string, [number, number, number]][] = [['red', [190, 70, 60]], ['orange', [200, 120, 50]], ['olive', [150, 150, 60]], ['teal', [60, 140, 140]]];
const CLASSES: { name: string; rgb: [number, number, number]; pattern: Pattern }[] = COLOURS.flatMap(([n, rgb], i) =>
  (['hstripes', 'vstripes'] as const).map((pattern, j) => ({ name: `n${String(2 * i + j).padStart(8, '0')}_${n}_${pattern}`, rgb, pattern })));

/** A noisy patterned image of one class. */
async function classImage(file: string, c: (typeof CLASSES)[number], seed: number): Promise<void> {
  const rnd = lcg(seed);
  const px = Buffer.alloc(IMAGE * IMAGE * 3);
  const period = 4 + Math.floor(rnd() * 4);
  const phase = Math.floor(rnd() * period);
  for (let y = 0; y < IMAGE; y++) {
    for (let x = 0; x < IMAGE; x++) {
      const on = Math.floor(((c.pattern === 'hstripes' ? y : x) + phase) / period) % 2 === 0;
      for (let k = 0; k < 3; k++) {
        const base = on ? c.rgb[k]! : c.rgb[k]! * 0.7;
        px[(y * IMAGE + x) * 3 + k] = Math.max(0, Math.min(255, Math.round(base + (rnd() - 0.5) * 140)));
      }
    }
  }
  await sharp(px, { raw: { width: IMAGE, height: IMAGE, channels: 3 } }).jpeg({ quality: 90 }).toFile(file);
}

/** The labelled stand-in for ImageNet: train/ and val/ in class-folder layout. */
async function makeLabelled(dir: string, p: SizeParams, seed: number): Promise<void> {
  for (const [split, n, off] of [['train', p.trainPerClass, 0], ['val', p.valPerClass, 1000]] as const) {
    for (let c = 0; c < CLASSES.length; c++) {
      const d = join(dir, split, CLASSES[c]!.name);
      await mkdir(d, { recursive: true });
      for (let i = 0; i < n; i++) await classImage(join(d, `img_${i}.JPEG`), CLASSES[c]!, seed * 100003 + c * 10007 + off + i);
    }
  }
}

/** Runs the demo; returns where everything is. */
export async function runDemo(opts: DemoOptions): Promise<DemoSummary> {
  const t0 = performance.now();
  const out = resolve(opts.out);
  const seed = opts.seed ?? 1;
  const size = SIZES[opts.size ?? 'small'];
  const ffmpeg = opts.ffmpeg ?? 'ffmpeg';
  const say = opts.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const elapsed = (): string => `${((performance.now() - t0) / 1000).toFixed(0)} s`;
  const stage = (n: number, what: string): void => say(`\n== [${n}/6] ${what} (${elapsed()})`);
  const quiet = (prefix: string) => (l: string): void => { if (!/^Epoch: \[\d+\]\[\s*[1-9]/.test(l)) say(`  ${prefix}${l}`); };

  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });

  stage(1, `making 2 synthetic videos (${size.videoSeconds.join(' s and ')} s)`);
  const videos = await makeVideos(join(out, 'videos'), size.videoSeconds, ffmpeg);
  for (const v of videos) say(`  ${v}`);

  stage(2, `extracting episodes (--fps ${FPS}, --seg-len ${SEG_LEN})`);
  const episodesDir = join(out, 'episodes');
  const ex = await extract({
    videoDirs: [join(out, 'videos')], saveDir: episodesDir, fps: FPS, segLen: SEG_LEN, resizeMinor: 48, size: 48,
    cropOffsetY: 0, rotate: 0, quality: 90, ffmpeg, onLog: (l) => say(`  extract: ${l}`),
  });
  say(`  ${ex.frames} frames in ${ex.episodes} episodes from ${ex.hours.toFixed(4)} h of video`);

  const runsDir = join(out, 'runs');
  await mkdir(runsDir, { recursive: true });
  const tcRuns: DemoSummary['tcRuns'] = [];
  stage(3, `temporal classification: resnet18 at ${IMAGE} px, ${size.tcEpochs} epoch(s), class fractions ${CLASS_FRACTIONS.join(' and ')}`);
  for (const cf of CLASS_FRACTIONS) {
    const r = await trainTc({
      dataDirs: [episodesDir], model: 'resnet18', nOut: ex.episodes, classFraction: cf, epochs: size.tcEpochs, startEpoch: 0,
      batchSize: 16, lr: 0.0005, weightDecay: 0, seed, workers: 0, printFreq: 1000, resume: '', augmentation: true,
      subject: 'DEMO', cachePath: join(runsDir, `.awty-index-tc-${cf}.bin`), out: runsDir, device: 'cpu', imageSize: IMAGE,
      ...(opts.threads !== undefined ? { threads: opts.threads } : {}), log: quiet(`tc ${cf}: `),
    });
    const hours = r.samples / FPS / 3600;
    tcRuns.push({ classFraction: cf, frames: r.samples, hours, checkpoint: r.checkpoints.at(-1)! });
    say(`  class fraction ${cf}: ${r.classes} episodes, ${r.samples} frames = ${hours.toExponential(3)} h of video`);
  }

  stage(4, `making the labelled stand-in for ImageNet (${CLASSES.length} classes, ${size.trainPerClass} train + ${size.valPerClass} val per class)`);
  const labelledDir = join(out, 'labelled');
  await makeLabelled(labelledDir, size, seed);
  say(`  ${join(labelledDir, 'train')}, ${join(labelledDir, 'val')}`);

  stage(5, 'ImageNet evaluation of each TC checkpoint: linear probe and few-shot fine-tuning');
  const resultsDir = join(out, 'results');
  const results: string[] = [];
  for (const tc of tcRuns) {
    for (const condition of DEMO_CONDITIONS) {
      const s = await finetune({
        imgnetTraindir: join(labelledDir, 'train'), imgnetValdir: join(labelledDir, 'val'), model: 'resnet18', nOut: ex.episodes,
        resume: tc.checkpoint, freezeTrunk: condition === 'linear-probe', fracRetained: condition === 'few-shot' ? 0.5 : 1.0,
        epochs: size.ftEpochs, batchSize: 8, lr: 0.001, schedule: [size.ftEpochs], seed, workers: 0, printFreq: 1000,
        out: resultsDir, device: 'cpu', imageSize: IMAGE, hours: tc.hours, condition,
        ...(opts.threads !== undefined ? { threads: opts.threads } : {}), log: quiet(`${condition} ${tc.classFraction}: `),
      });
      results.push(s.resultFile!);
    }
  }

  stage(6, 'Figure 1 analysis of the results');
  const read = await readResults(resultsDir);
  const analysis = analyze(read.runs, { targets: [HUMAN_TOP5_A1], bootstrap: 200, seed, source: `results in ${resultsDir}` });
  const figure = await writeFigure1(analysis, out);
  say(formatReport(analysis));
  const conditions = analysis.conditions.map((c) => c.condition);

  const seconds = (performance.now() - t0) / 1000;
  say([
    '',
    `demo finished in ${seconds.toFixed(0)} s; everything is under ${out}:`,
    `  videos     ${join(out, 'videos')} (${videos.length})`,
    `  episodes   ${episodesDir} (${ex.episodes} episodes, ${ex.frames} frames)`,
    `  TC runs    ${runsDir} (${tcRuns.map((t) => `fraction ${t.classFraction}: ${t.hours.toExponential(2)} h`).join(', ')})`,
    `  labelled   ${labelledDir}`,
    `  results    ${resultsDir} (${results.length} files)`,
    `  figure 1   ${figure.json}, ${figure.svg}, ${figure.png}`,
    'The numbers are those of a toy run (seconds of synthetic video), not estimates about children or ImageNet.',
  ].join('\n'));
  return { out, videos, episodesDir, episodes: ex.episodes, frames: ex.frames, tcRuns, labelledDir, results, figure, conditions, seconds };
}
