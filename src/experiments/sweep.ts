// The paper's grid in one call: temporal classification at every class fraction x seed, then every
// evaluation condition on each run's final checkpoint, then the Figure 1 analysis of the results and
// a summary table. Runs one after another; every run's outputs live in its own folder, written
// atomically, so a sweep killed at any moment continues where it stopped when it is run again:
// finished runs are skipped, an interrupted train-tc run resumes from its last checkpoint.
//
//   OUT/sweep.json                          the resolved configuration of the sweep
//   OUT/tc/frac<f>_seed<s>/TC_....tar(.json) train-tc checkpoints and their run records
//   OUT/eval/<condition>/frac<f>_seed<s>/   finetune checkpoint and results file
//   OUT/summary.csv                         one row per evaluation
//   OUT/figure1.{json,svg,png}              the Figure 1 analysis of OUT/eval
import { readdir, readFile, mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import * as net from 'node:net';
import os from 'node:os';
import stripJsonComments from 'strip-json-comments';
import * as torch from '../torch/index.js';
import { isDevice } from '../torch/tensor.js';
import * as optim from '../optim/index.js';
import * as models from '../models/index.js';
import * as io from '../io/index.js';
import type { RunRecord } from '../io/index.js';
import { ImageFolder, fewShotIndices, perClassIndices } from '../data/index.js';
import { analyze, HUMAN_TOP5_A1, type Figure1Analysis, type Target } from '../scaling/analysis.js';
import { formatReport } from '../scaling/report.js';
import { readResults, RESULT_SCHEMA, type Metric, type RunResultFile } from '../scaling/results.js';
import { writeFigure1, type Figure1Outputs } from '../scaling/outputs.js';
import type { Baseline, PlotOptions } from '../scaling/plot.js';
import { main as trainTc, openEpisodes, TC_DEFAULTS, type TcOptions } from './tc.js';
import { main as finetune, readInterruptRecord, type FinetuneOptions } from './finetune.js';
import { formatDuration, pyFloat } from './common.js';
import { UsageError } from './errors.js';
import { InterruptedError, StopRequest } from './interrupt.js';
import { launch } from '../dist/launch.js';
import type { StepInfo } from './common.js';

export interface SweepCondition {
  /** the condition's label in the results and Figure 1 (few-shot-1pct, few-shot-2pct, linear-probe, ...) */
  name: string;
  fracRetained: number;
  freezeTrunk: boolean;
  /** the first N images of each class of trainDir (finetune --per-class), before fracRetained: few-shot with a fixed number per class */
  perClass?: number;
  /** this condition's epochs and learning-rate schedule (default: those of `eval`) */
  epochs?: number;
  schedule?: number[];
}

export interface SweepTcConfig {
  epochs: number;
  batchSize: number;
  workers: number;
  lr: number;
  weightDecay: number;
  /** false: ToTensor + Normalize only (the original's --augmentation flag) */
  augmentation: boolean;
  printFreq: number;
  /** size of the episode head; 'auto': the number of episodes kept (the paper's 16279 / 1628 / 163 / 17) */
  nOut: number | 'auto';
  /** drop the last incomplete batch of every epoch (train-tc --drop-last) */
  dropLast: boolean;
  /** train-tc --save-every and --keep-last: a checkpoint every N epochs (and after the last), the newest K kept (0: all) */
  saveEvery: number;
  keepLast: number;
}

export interface SweepEvalConfig {
  epochs: number;
  batchSize: number;
  workers: number;
  lr: number;
  weightDecay: number;
  schedule: number[];
  strongAugment: boolean;
  bnEval: boolean;
  printFreq: number;
  /** validate every N epochs and after the last (finetune --val-every) */
  valEvery: number;
  /** write each evaluation's fine-tuned checkpoint (false: only its results file) */
  saveCheckpoint: boolean;
}

/** How OUT/figure1.* is drawn (scaling's PlotOptions); unset keys keep the paper's figure. */
export interface SweepFigureConfig {
  title?: string;
  /** the labelled set named on the y axes (default ImageNet) */
  dataset?: string;
  /** the panels drawn (default top-1 and top-5) */
  metrics?: Metric[];
  /** bootstrap replicates of the band drawn around each fit (0: none) */
  bands: number;
  /** draw chance level of the labelled set (100 x k / classes for top-k) */
  chance: boolean;
}

export interface SweepConfig {
  /** folders of episode folders, or one folder of shards (`awty extract --format shards`) */
  dataDirs: string[];
  model: string;
  classFractions: number[];
  seeds: number[];
  imageSize: number;
  subject: string;
  tc: SweepTcConfig;
  /** the labelled set (ImageNet) in class-folder layout */
  trainDir: string;
  valDir: string;
  conditions: SweepCondition[];
  eval: SweepEvalConfig;
  threads?: number;
  device: torch.Device;
  /** output folder of the whole sweep */
  out: string;
  /** bootstrap replicates of the Figure 1 analysis */
  bootstrap: number;
  /**
   * also evaluate every condition on an untrained (random-weight) trunk, once per seed, into
   * OUT/baseline/{condition}/seed{s}/: the baseline drawn in Figure 1 and listed in the summary
   */
  baseline: boolean;
  /** the levels Figure 1 extrapolates to (the first is the main one; default the paper's, human top-5 on ImageNet) */
  targets?: Target[];
  figure: SweepFigureConfig;
  /**
   * processes per train-tc / finetune run (default 1): above 1, each run is data-parallel through
   * awty launch on this machine, `threads` (default: the cores) divided among the processes
   */
  nprocPerNode: number;
}

/** The paper's evaluation conditions. */
export const PAPER_CONDITIONS: readonly SweepCondition[] = [
  { name: 'few-shot-1pct', fracRetained: 0.010147, freezeTrunk: false },
  { name: 'few-shot-2pct', fracRetained: 0.02, freezeTrunk: false },
  { name: 'linear-probe', fracRetained: 1, freezeTrunk: true },
];

export const SWEEP_DEFAULTS = {
  model: TC_DEFAULTS.model,
  classFractions: [1, 0.1, 0.01, 0.001],
  seeds: [1, 2, 3],
  imageSize: 224,
  subject: TC_DEFAULTS.subject,
  tc: { epochs: TC_DEFAULTS.epochs, batchSize: 256, workers: 8, lr: 0.0005, weightDecay: 0, augmentation: true, printFreq: 10000, nOut: 'auto' as const,
    dropLast: false, saveEvery: TC_DEFAULTS.saveEvery, keepLast: TC_DEFAULTS.keepLast },
  eval: { epochs: 50, batchSize: 512, workers: 8, lr: 0.001, weightDecay: 0, schedule: [25, 45], strongAugment: false, bnEval: false, printFreq: 625, valEvery: 1, saveCheckpoint: true },
  conditions: PAPER_CONDITIONS,
  device: 'cpu' as torch.Device,
  bootstrap: 1000,
  nprocPerNode: 1,
  baseline: false,
  figure: { bands: 0, chance: false },
};

// ---- configuration: parse and validate, every error naming its key ----

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkKeys(o: Json, allowed: readonly string[], where: string): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new UsageError(`${where}${k}: unknown key (known: ${allowed.join(', ')})`);
  }
}

function num(o: Json, key: string, where: string, def: number | undefined, check: (v: number) => boolean, what: string): number {
  const v = o[key];
  if (v === undefined) {
    if (def === undefined) throw new UsageError(`${where}${key}: required (${what})`);
    return def;
  }
  if (typeof v !== 'number' || !Number.isFinite(v) || !check(v)) throw new UsageError(`${where}${key}: must be ${what}, got ${JSON.stringify(v)}`);
  return v;
}
const intAtLeast = (min: number) => (v: number): boolean => Number.isInteger(v) && v >= min;

function bool(o: Json, key: string, where: string, def: boolean): boolean {
  const v = o[key];
  if (v === undefined) return def;
  if (typeof v !== 'boolean') throw new UsageError(`${where}${key}: must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

function str(o: Json, key: string, where: string, def?: string): string {
  const v = o[key];
  if (v === undefined) {
    if (def === undefined) throw new UsageError(`${where}${key}: required (a string)`);
    return def;
  }
  if (typeof v !== 'string' || v === '') throw new UsageError(`${where}${key}: must be a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

function numList(o: Json, key: string, where: string, def: readonly number[], check: (v: number) => boolean, what: string, nonEmpty = true): number[] {
  const v = o[key];
  if (v === undefined) return [...def];
  if (!Array.isArray(v) || (nonEmpty && v.length === 0)) throw new UsageError(`${where}${key}: must be a ${nonEmpty ? 'non-empty ' : ''}list of ${what}`);
  v.forEach((x, i) => {
    if (typeof x !== 'number' || !Number.isFinite(x) || !check(x)) throw new UsageError(`${where}${key}[${i}]: must be ${what}, got ${JSON.stringify(x)}`);
  });
  if (new Set(v).size !== v.length) throw new UsageError(`${where}${key}: has repeated values`);
  return v as number[];
}

const TOP_KEYS = ['dataDirs', 'model', 'classFractions', 'seeds', 'imageSize', 'subject', 'tc', 'trainDir', 'valDir', 'conditions', 'eval', 'threads', 'device', 'out', 'bootstrap',
  'nprocPerNode', 'baseline', 'targets', 'figure'] as const;
const TC_KEYS = ['epochs', 'batchSize', 'workers', 'lr', 'weightDecay', 'augmentation', 'printFreq', 'nOut', 'dropLast', 'saveEvery', 'keepLast'] as const;
const EVAL_KEYS = ['epochs', 'batchSize', 'workers', 'lr', 'weightDecay', 'schedule', 'strongAugment', 'bnEval', 'printFreq', 'valEvery', 'saveCheckpoint'] as const;
const COND_KEYS = ['name', 'fracRetained', 'freezeTrunk', 'perClass', 'epochs', 'schedule'] as const;
const TARGET_KEYS = ['metric', 'value', 'source'] as const;
const FIGURE_KEYS = ['title', 'dataset', 'metrics', 'bands', 'chance'] as const;
const METRICS: readonly Metric[] = ['top1', 'top5'];

/**
 * Checks a parsed configuration and fills in the defaults. Relative paths are resolved against
 * `baseDir` (the configuration file's folder for `awty sweep CONFIG`). Throws a UsageError naming
 * the key at fault.
 */
export function resolveConfig(raw: unknown, baseDir = process.cwd()): SweepConfig {
  if (!isObject(raw)) throw new UsageError('the sweep configuration must be a JSON object');
  checkKeys(raw, TOP_KEYS, '');
  const d = SWEEP_DEFAULTS;
  const dirs = raw.dataDirs;
  if (!Array.isArray(dirs) || dirs.length === 0 || dirs.some((x) => typeof x !== 'string' || x === '')) {
    throw new UsageError('dataDirs: required, a non-empty list of folders holding episode folders (or one folder of shards)');
  }
  const model = str(raw, 'model', '', d.model);
  if (!models.isModelName(model)) throw new UsageError(`model: unknown architecture '${model}'; known: ${Object.keys(models.architectures).join(', ')}`);
  const tcRaw = raw.tc ?? {};
  if (!isObject(tcRaw)) throw new UsageError('tc: must be an object');
  checkKeys(tcRaw, TC_KEYS, 'tc.');
  let nOut: number | 'auto' = 'auto';
  if (tcRaw.nOut !== undefined && tcRaw.nOut !== 'auto') nOut = num(tcRaw, 'nOut', 'tc.', undefined, intAtLeast(1), 'an integer >= 1 or "auto"');
  const tc: SweepTcConfig = {
    epochs: num(tcRaw, 'epochs', 'tc.', d.tc.epochs, intAtLeast(1), 'an integer >= 1'),
    batchSize: num(tcRaw, 'batchSize', 'tc.', d.tc.batchSize, intAtLeast(1), 'an integer >= 1'),
    workers: num(tcRaw, 'workers', 'tc.', d.tc.workers, intAtLeast(0), 'an integer >= 0'),
    lr: num(tcRaw, 'lr', 'tc.', d.tc.lr, (v) => v > 0, 'a positive number'),
    weightDecay: num(tcRaw, 'weightDecay', 'tc.', d.tc.weightDecay, (v) => v >= 0, 'a number >= 0'),
    augmentation: bool(tcRaw, 'augmentation', 'tc.', d.tc.augmentation),
    printFreq: num(tcRaw, 'printFreq', 'tc.', d.tc.printFreq, intAtLeast(1), 'an integer >= 1'),
    nOut,
    dropLast: bool(tcRaw, 'dropLast', 'tc.', d.tc.dropLast),
    saveEvery: num(tcRaw, 'saveEvery', 'tc.', d.tc.saveEvery, intAtLeast(1), 'an integer >= 1'),
    keepLast: num(tcRaw, 'keepLast', 'tc.', d.tc.keepLast, intAtLeast(0), 'an integer >= 0'),
  };
  const evRaw = raw.eval ?? {};
  if (!isObject(evRaw)) throw new UsageError('eval: must be an object');
  checkKeys(evRaw, EVAL_KEYS, 'eval.');
  const ev: SweepEvalConfig = {
    epochs: num(evRaw, 'epochs', 'eval.', d.eval.epochs, intAtLeast(1), 'an integer >= 1'),
    batchSize: num(evRaw, 'batchSize', 'eval.', d.eval.batchSize, intAtLeast(1), 'an integer >= 1'),
    workers: num(evRaw, 'workers', 'eval.', d.eval.workers, intAtLeast(0), 'an integer >= 0'),
    lr: num(evRaw, 'lr', 'eval.', d.eval.lr, (v) => v > 0, 'a positive number'),
    weightDecay: num(evRaw, 'weightDecay', 'eval.', d.eval.weightDecay, (v) => v >= 0, 'a number >= 0'),
    schedule: numList(evRaw, 'schedule', 'eval.', d.eval.schedule, intAtLeast(0), 'epochs (integers >= 0)', false),
    strongAugment: bool(evRaw, 'strongAugment', 'eval.', d.eval.strongAugment),
    bnEval: bool(evRaw, 'bnEval', 'eval.', d.eval.bnEval),
    printFreq: num(evRaw, 'printFreq', 'eval.', d.eval.printFreq, intAtLeast(1), 'an integer >= 1'),
    valEvery: num(evRaw, 'valEvery', 'eval.', d.eval.valEvery, intAtLeast(1), 'an integer >= 1'),
    saveCheckpoint: bool(evRaw, 'saveCheckpoint', 'eval.', d.eval.saveCheckpoint),
  };
  let conditions: SweepCondition[] = [...d.conditions];
  if (raw.conditions !== undefined) {
    if (!Array.isArray(raw.conditions) || raw.conditions.length === 0) throw new UsageError('conditions: must be a non-empty list of {name, fracRetained, freezeTrunk}');
    conditions = raw.conditions.map((c: unknown, i) => {
      const w = `conditions[${i}].`;
      if (!isObject(c)) throw new UsageError(`conditions[${i}]: must be an object {name, fracRetained, freezeTrunk}`);
      checkKeys(c, COND_KEYS, w);
      const name = str(c, 'name', w);
      if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new UsageError(`${w}name: letters, digits, '.', '_' and '-' only (it names folders), got ${JSON.stringify(name)}`);
      const cond: SweepCondition = { name, fracRetained: num(c, 'fracRetained', w, 1, (v) => v > 0 && v <= 1, 'a number in (0, 1]'), freezeTrunk: bool(c, 'freezeTrunk', w, false) };
      if (c.perClass !== undefined) cond.perClass = num(c, 'perClass', w, undefined, intAtLeast(1), 'an integer >= 1 (images per class)');
      if (c.epochs !== undefined) cond.epochs = num(c, 'epochs', w, undefined, intAtLeast(1), 'an integer >= 1');
      if (c.schedule !== undefined) cond.schedule = numList(c, 'schedule', w, [], intAtLeast(0), 'epochs (integers >= 0)', false);
      return cond;
    });
    const names = conditions.map((c) => c.name);
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup !== undefined) throw new UsageError(`conditions: the name ${dup} is used twice`);
  }
  const device = str(raw, 'device', '', d.device);
  if (!isDevice(device)) throw new UsageError(`device: must be cpu, cuda or cuda:N, got ${JSON.stringify(device)}`);
  const threads = raw.threads === undefined ? undefined : num(raw, 'threads', '', undefined, intAtLeast(1), 'an integer >= 1');
  const nprocPerNode = num(raw, 'nprocPerNode', '', d.nprocPerNode, intAtLeast(1), 'an integer >= 1');
  for (const [key, b] of [['tc.batchSize', tc.batchSize], ['eval.batchSize', ev.batchSize]] as const) {
    if (b % nprocPerNode !== 0) throw new UsageError(`${key}: ${b} is the global batch and must divide evenly among the nprocPerNode ${nprocPerNode} processes`);
  }
  let targets: Target[] | undefined;
  if (raw.targets !== undefined) {
    if (!Array.isArray(raw.targets) || raw.targets.length === 0) throw new UsageError('targets: must be a non-empty list of {metric, value, source}');
    targets = raw.targets.map((t: unknown, i) => {
      const w = `targets[${i}].`;
      if (!isObject(t)) throw new UsageError(`targets[${i}]: must be an object {metric, value, source}`);
      checkKeys(t, TARGET_KEYS, w);
      const metric = str(t, 'metric', w);
      if (!METRICS.includes(metric as Metric)) throw new UsageError(`${w}metric: must be top1 or top5, got ${JSON.stringify(metric)}`);
      return { metric: metric as Metric, value: num(t, 'value', w, undefined, (v) => v > 0 && v <= 100, 'an accuracy in percent, in (0, 100]'), source: str(t, 'source', w) };
    });
  }
  const figRaw = raw.figure ?? {};
  if (!isObject(figRaw)) throw new UsageError('figure: must be an object');
  checkKeys(figRaw, FIGURE_KEYS, 'figure.');
  const figure: SweepFigureConfig = { bands: num(figRaw, 'bands', 'figure.', d.figure.bands, intAtLeast(0), 'an integer >= 0'), chance: bool(figRaw, 'chance', 'figure.', d.figure.chance) };
  if (figRaw.title !== undefined) figure.title = str(figRaw, 'title', 'figure.');
  if (figRaw.dataset !== undefined) figure.dataset = str(figRaw, 'dataset', 'figure.');
  if (figRaw.metrics !== undefined) {
    const m = figRaw.metrics;
    if (!Array.isArray(m) || m.length === 0 || m.some((x) => !METRICS.includes(x as Metric)) || new Set(m).size !== m.length) {
      throw new UsageError(`figure.metrics: must be a non-empty list of top1 and / or top5, got ${JSON.stringify(m)}`);
    }
    figure.metrics = m as Metric[];
  }
  const abs = (p: string): string => path.resolve(baseDir, p);
  return {
    dataDirs: (dirs as string[]).map(abs),
    model,
    classFractions: numList(raw, 'classFractions', '', d.classFractions, (v) => v > 0 && v <= 1, 'numbers in (0, 1]'),
    seeds: numList(raw, 'seeds', '', d.seeds, Number.isInteger, 'integers'),
    imageSize: num(raw, 'imageSize', '', d.imageSize, intAtLeast(1), 'an integer >= 1'),
    subject: str(raw, 'subject', '', d.subject),
    tc,
    trainDir: abs(str(raw, 'trainDir', '')),
    valDir: abs(str(raw, 'valDir', '')),
    conditions,
    eval: ev,
    ...(threads !== undefined ? { threads } : {}),
    device,
    out: abs(str(raw, 'out', '')),
    bootstrap: num(raw, 'bootstrap', '', d.bootstrap, intAtLeast(0), 'an integer >= 0'),
    nprocPerNode,
    baseline: bool(raw, 'baseline', '', d.baseline),
    ...(targets ? { targets } : {}),
    figure,
  };
}

/**
 * Reads a configuration file (JSON; `//` and block comments allowed) and resolves it against its
 * folder. `override` replaces keys of the file (the command line's `--nproc-per-node`).
 */
export async function readConfig(file: string, override: Record<string, unknown> = {}): Promise<SweepConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read the sweep configuration ${file}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(stripJsonComments(text));
  } catch (e) {
    throw new UsageError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  try {
    return resolveConfig(typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? { ...raw, ...override } : raw, path.dirname(path.resolve(file)));
  } catch (e) {
    if (e instanceof UsageError) throw new UsageError(`${file}: ${e.message}`);
    throw e;
  }
}

/** The commented example `awty sweep --init` writes: a small grid to adapt. */
export function exampleConfig(): string {
  return `// awty sweep configuration: the paper's grid of train-tc runs and their ImageNet evaluations.
// JSON with comments; keys are the flags' names in camelCase; relative paths are taken from this
// file's folder. Every key but dataDirs, trainDir, valDir and out has the default shown.
{
  // folders of episode folders written by awty extract (or one folder of --format shards)
  "dataDirs": ["episodes"],
  "model": "resnext101_32x8d",
  // fractions of the episodes kept for temporal classification (the paper's 100%, 10%, 1%, 0.1%)
  "classFractions": [1, 0.1, 0.01, 0.001],
  "seeds": [1, 2, 3],
  "imageSize": 224,
  "subject": "SAYAVAKEPICUT",
  // train-tc; nOut "auto" is the number of episodes kept; saveEvery / keepLast: which epoch checkpoints are kept
  "tc": { "epochs": ${SWEEP_DEFAULTS.tc.epochs}, "batchSize": 256, "workers": 8, "lr": 0.0005, "weightDecay": 0, "augmentation": true, "printFreq": 10000, "nOut": "auto",
          "dropLast": false, "saveEvery": 1, "keepLast": 0 },
  // the labelled set in class-folder layout
  "trainDir": "imagenet/train",
  "valDir": "imagenet/val",
  // evaluation conditions: any list of fracRetained x freezeTrunk, each with a name; a condition may
  // also have "perClass": N (the first N images of each class), its own "epochs" and "schedule"
  "conditions": [
    { "name": "few-shot-1pct", "fracRetained": 0.010147, "freezeTrunk": false },
    { "name": "few-shot-2pct", "fracRetained": 0.02, "freezeTrunk": false },
    { "name": "linear-probe", "fracRetained": 1, "freezeTrunk": true }
  ],
  // finetune; the learning rate is multiplied by 0.2 at each epoch of the schedule
  "eval": { "epochs": 50, "batchSize": 512, "workers": 8, "lr": 0.001, "weightDecay": 0, "schedule": [25, 45], "strongAugment": false, "bnEval": false, "printFreq": 625,
            "valEvery": 1, "saveCheckpoint": true },
  // also evaluate every condition on an untrained (random-weight) trunk per seed: the baseline
  "baseline": false,
  // the level Figure 1 extrapolates to (default: human top-5 on ImageNet, annotator A1)
  // "targets": [{ "metric": "top5", "value": 94.9, "source": "Russakovsky et al. 2015, annotator A1" }],
  // how Figure 1 is drawn: "title", "dataset" (y axes), "metrics" (["top1", "top5"]), "bands"
  // (bootstrap replicates of a band around each fit, 0: none), "chance" (draw chance level)
  "figure": { "bands": 0, "chance": false },
  // "threads": 8,
  // processes per run: above 1, each train-tc and finetune run is data-parallel (awty launch), the threads divided among them
  "nprocPerNode": 1,
  "device": "cpu",
  // bootstrap replicates of the Figure 1 analysis
  "bootstrap": 1000,
  "out": "sweep-out"
}
`;
}

// ---- the plan ----

export interface TcRunPlan {
  classFraction: number;
  seed: number;
  dir: string;
  episodes: number;
  frames: number;
  options: TcOptions;
  command: string;
}

export interface EvalRunPlan {
  tc: TcRunPlan;
  condition: SweepCondition;
  dir: string;
  trainImages: number;
  command: string;
}

/** An evaluation of an untrained (random-weight) trunk: the baseline of one condition and seed. */
export interface BaselineRunPlan {
  condition: SweepCondition;
  seed: number;
  dir: string;
  trainImages: number;
  options: FinetuneOptions;
  command: string;
}

export interface SweepPlan {
  config: SweepConfig;
  tcRuns: TcRunPlan[];
  evalRuns: EvalRunPlan[];
  /** empty unless `baseline` */
  baselineRuns: BaselineRunPlan[];
  labelled: { train: number; val: number; classes: number };
}

function quote(a: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

function tcCommand(o: TcOptions, nproc = 1): string {
  return launchPrefix(nproc, o.threads) + tcArgs(o).map(quote).join(' ');
}

/** `awty launch --nproc-per-node N --threads T -- ` before a run's command when the sweep runs it data-parallel. */
function launchPrefix(nproc: number, threads: number | undefined): string {
  return nproc > 1 ? `awty launch --nproc-per-node ${nproc}${threads !== undefined ? ` --threads ${threads}` : ''} -- ` : 'awty ';
}

function tcArgs(o: TcOptions): string[] {
  return ['train-tc', '--data-dirs', ...o.dataDirs, '--model', o.model, '--n_out', String(o.nOut), '--class-fraction', String(o.classFraction),
    '--epochs', String(o.epochs), '-b', String(o.batchSize), '--lr', String(o.lr), '--weight-decay', String(o.weightDecay), '--seed', String(o.seed),
    '-j', String(o.workers), '-p', String(o.printFreq), '--subject', o.subject, '--image-size', String(o.imageSize), '--device', o.device, '--out', o.out,
    ...(o.augmentation ? [] : ['--augmentation']), ...(o.dropLast ? ['--drop-last'] : []),
    ...(o.saveEvery !== undefined && o.saveEvery !== TC_DEFAULTS.saveEvery ? ['--save-every', String(o.saveEvery)] : []),
    ...(o.keepLast !== undefined && o.keepLast !== TC_DEFAULTS.keepLast ? ['--keep-last', String(o.keepLast)] : []),
    ...(o.threads !== undefined ? ['--threads', String(o.threads)] : []),
    ...(o.resume ? ['--resume', o.resume] : [])];
}

/** The epochs of a condition's evaluations (its own, else eval's). */
export const conditionEpochs = (c: SweepConfig, cond: SweepCondition): number => cond.epochs ?? c.eval.epochs;

/**
 * finetune's options for one evaluation: of the TC run's final `checkpoint` (head of `nOut`), or
 * with `checkpoint` '' of an untrained trunk (the baseline: no hours, no results file).
 */
function evalOptions(c: SweepConfig, nOut: number, seed: number, cond: SweepCondition, dir: string, checkpoint: string): FinetuneOptions {
  return {
    imgnetTraindir: c.trainDir, imgnetValdir: c.valDir, model: c.model, nOut, resume: checkpoint,
    freezeTrunk: cond.freezeTrunk, fracRetained: cond.fracRetained, ...(cond.perClass !== undefined ? { perClass: cond.perClass } : {}),
    epochs: conditionEpochs(c, cond), batchSize: c.eval.batchSize, lr: c.eval.lr,
    weightDecay: c.eval.weightDecay, schedule: cond.schedule ?? c.eval.schedule, strongAugment: c.eval.strongAugment, seed, workers: c.eval.workers,
    printFreq: c.eval.printFreq, out: dir, device: c.device, imageSize: c.imageSize, bnEval: c.eval.bnEval, condition: cond.name,
    valEvery: c.eval.valEvery, saveCheckpoint: c.eval.saveCheckpoint, ...(checkpoint ? {} : { baseline: true }),
    // the folder is the sweep's own: an evaluation runs only when it holds no complete result of it, so what is there is stale
    overwrite: true,
    ...runThreads(c),
  };
}

function evalCommand(o: FinetuneOptions, nproc = 1): string {
  return launchPrefix(nproc, o.threads) + evalArgs(o).map(quote).join(' ');
}

function evalArgs(o: FinetuneOptions): string[] {
  return ['finetune', '--imgnet-traindir', o.imgnetTraindir, '--imgnet-valdir', o.imgnetValdir, '--model', o.model!, '--n_out', String(o.nOut),
    '--resume', o.resume!, ...(o.freezeTrunk ? ['--freeze-trunk'] : []), '--frac-retained', String(o.fracRetained),
    ...(o.perClass !== undefined ? ['--per-class', String(o.perClass)] : []), '--epochs', String(o.epochs),
    '-b', String(o.batchSize), '--lr', String(o.lr), '--weight-decay', String(o.weightDecay), '--schedule', ...o.schedule!.map(String),
    ...(o.strongAugment ? ['--strong-augment'] : []), ...(o.bnEval ? ['--bn-eval'] : []), '--seed', String(o.seed), '-j', String(o.workers),
    '-p', String(o.printFreq), '--image-size', String(o.imageSize), '--device', o.device!, '--condition', o.condition!, '--out', o.out!,
    ...(o.valEvery !== undefined && o.valEvery !== 1 ? ['--val-every', String(o.valEvery)] : []),
    ...(o.saveCheckpoint === false ? ['--no-save-checkpoint'] : []),
    ...(o.overwrite ? ['--overwrite'] : []), ...(o.threads !== undefined ? ['--threads', String(o.threads)] : []),
    ...(o.continue ? ['--continue', o.continue] : [])];
}

/** The --threads of each run: the configured threads, or with nprocPerNode > 1 those of each process (workerThreads). */
function runThreads(c: SweepConfig): { threads?: number } {
  if (c.nprocPerNode > 1) return { threads: workerThreads(c) };
  return c.threads !== undefined ? { threads: c.threads } : {};
}

const runName = (classFraction: number, seed: number): string => `frac${pyFloat(classFraction)}_seed${seed}`;

/** The grid: one train-tc run per class fraction x seed, one evaluation per run x condition. Reads the data folders' listings. */
export async function planSweep(c: SweepConfig, log: (l: string) => void = () => undefined): Promise<SweepPlan> {
  const tcRuns: TcRunPlan[] = [];
  for (const cf of c.classFractions) {
    const { dataset } = await openEpisodes({ dataDirs: c.dataDirs, classFraction: cf, cachePath: '', seed: c.seeds[0]! }, log);
    const episodes = dataset.classes.length;
    if (c.tc.nOut !== 'auto' && c.tc.nOut < episodes) throw new UsageError(`tc.nOut: ${c.tc.nOut} is smaller than the ${episodes} episodes kept at class fraction ${cf}; use "auto"`);
    for (const seed of c.seeds) {
      const dir = path.join(c.out, 'tc', runName(cf, seed));
      const options: TcOptions = {
        ...TC_DEFAULTS, dataDirs: c.dataDirs, model: c.model, nOut: c.tc.nOut === 'auto' ? episodes : c.tc.nOut, classFraction: cf,
        epochs: c.tc.epochs, batchSize: c.tc.batchSize, lr: c.tc.lr, weightDecay: c.tc.weightDecay, seed, workers: c.tc.workers,
        printFreq: c.tc.printFreq, resume: '', augmentation: c.tc.augmentation, subject: c.subject, cachePath: '', out: dir,
        device: c.device, imageSize: c.imageSize, dropLast: c.tc.dropLast, saveEvery: c.tc.saveEvery, keepLast: c.tc.keepLast, ...runThreads(c),
      };
      tcRuns.push({ classFraction: cf, seed, dir, episodes, frames: dataset.length, options, command: tcCommand(options, c.nprocPerNode) });
    }
  }
  const train = await ImageFolder.open(c.trainDir);
  const val = await ImageFolder.open(c.valDir);
  // the images each condition trains on: its share of the training folder (or of its first perClass per class)
  const pool = new Map<SweepCondition, number>();
  for (const cond of c.conditions) {
    if (cond.perClass === undefined) {
      pool.set(cond, train.length);
      continue;
    }
    try {
      pool.set(cond, perClassIndices(train, cond.perClass).length);
    } catch (e) {
      throw new UsageError(`conditions: ${cond.name}: perClass ${cond.perClass}: ${c.trainDir}: ${(e as Error).message}`);
    }
  }
  const images = (cond: SweepCondition, seed: number): number => {
    const n = fewShotIndices(pool.get(cond)!, cond.fracRetained, seed).length;
    if (n === 0) throw new UsageError(`conditions: ${cond.name} keeps none of the ${pool.get(cond)} training images (fracRetained ${cond.fracRetained})`);
    return n;
  };
  const evalRuns: EvalRunPlan[] = [];
  for (const tc of tcRuns) {
    for (const cond of c.conditions) {
      const dir = path.join(c.out, 'eval', cond.name, runName(tc.classFraction, tc.seed));
      const finalCkpt = path.join(tc.dir, '<final checkpoint>');
      evalRuns.push({ tc, condition: cond, dir, trainImages: images(cond, tc.seed), command: evalCommand(evalOptions(c, tc.options.nOut, tc.seed, cond, dir, finalCkpt), c.nprocPerNode) });
    }
  }
  const baselineRuns: BaselineRunPlan[] = [];
  if (c.baseline) {
    for (const seed of c.seeds) {
      for (const cond of c.conditions) {
        const dir = path.join(c.out, 'baseline', cond.name, `seed${seed}`);
        // an untrained trunk has no episode head to load: its head is the labelled set's from the start
        const options = evalOptions(c, train.classes.length, seed, cond, dir, '');
        // in the sweep's own process (see execute): the configured threads, not those of one of N processes
        if (c.nprocPerNode > 1) {
          delete options.threads;
          if (c.threads !== undefined) options.threads = c.threads;
        }
        baselineRuns.push({ condition: cond, seed, dir, trainImages: images(cond, seed), options, command: evalCommand(options, c.nprocPerNode) });
      }
    }
  }
  return { config: c, tcRuns, evalRuns, baselineRuns, labelled: { train: train.length, val: val.length, classes: train.classes.length } };
}

// ---- where each run stands ----

export interface TcRunState {
  state: 'done' | 'partial' | 'new';
  /** the newest checkpoint with a run record (the one to resume from, or the final one) */
  checkpoint?: string;
  record?: RunRecord;
}

/** Settings that must not change between a run and its resumption. */
const TC_IDENTITY = ['dataDirs', 'model', 'nOut', 'classFraction', 'batchSize', 'lr', 'weightDecay', 'seed', 'augmentation', 'subject', 'imageSize', 'dropLast'] as const;
/** The value a run record without the key had (records written before the option existed). */
const TC_IDENTITY_DEFAULTS: Partial<Record<(typeof TC_IDENTITY)[number], unknown>> = { dropLast: false };

export async function tcRunState(run: TcRunPlan): Promise<TcRunState> {
  let names: string[];
  try {
    names = await readdir(run.dir);
  } catch {
    return { state: 'new' };
  }
  let best: { checkpoint: string; record: RunRecord; done: number } | undefined;
  for (const n of names) {
    if (!n.endsWith('.tar.json')) continue;
    const ckpt = path.join(run.dir, n.slice(0, -'.json'.length));
    let record: RunRecord | undefined;
    try {
      record = await io.readRunRecord(ckpt);
    } catch {
      continue; // a record being written when the sweep was killed is never half-written (atomic), but be lenient
    }
    if (!record || !names.includes(path.basename(ckpt))) continue;
    for (const k of TC_IDENTITY) {
      if (JSON.stringify(record.config[k] ?? TC_IDENTITY_DEFAULTS[k]) !== JSON.stringify(run.options[k] ?? TC_IDENTITY_DEFAULTS[k])) {
        throw new UsageError(`${run.dir} holds a train-tc run with another ${k} (${JSON.stringify(record.config[k])}, the sweep has ${JSON.stringify(run.options[k])}); use another out folder`);
      }
    }
    const last = record.epochs.at(-1);
    const done = (last ? last.epoch + 1 : 0) + (record.position ? record.position.batch / Math.max(1, record.position.batches) : 0);
    if (!best || done > best.done) best = { checkpoint: ckpt, record, done };
  }
  if (!best) return { state: 'new' };
  const last = best.record.epochs.at(-1);
  const state = !best.record.position && last !== undefined && last.epoch + 1 >= run.options.epochs ? 'done' : 'partial';
  return { state, checkpoint: best.checkpoint, record: best.record };
}

/** The complete results file of an evaluation of `checkpoint` in `dir`, if there is one. */
export async function evalResult(dir: string, checkpoint: string, epochs: number): Promise<{ file: string; result: RunResultFile } | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return undefined;
  }
  for (const n of names.filter((x) => x.endsWith('.json')).sort()) {
    const file = path.join(dir, n);
    let r: RunResultFile;
    try {
      r = JSON.parse(await readFile(file, 'utf8')) as RunResultFile;
    } catch {
      continue;
    }
    if (r.schema === RESULT_SCHEMA && r.complete === true && r.checkpoint === checkpoint && r.epochs === epochs) return { file, result: r };
  }
  return undefined;
}

/** Options of an evaluation that must match those of an interrupted one for it to be continued (finetune's identity). */
const EVAL_IDENTITY = ['model', 'nOut', 'freezeTrunk', 'fracRetained', 'perClass', 'batchSize', 'lr', 'weightDecay', 'schedule', 'strongAugment', 'seed', 'imageSize', 'bnEval', 'condition'] as const;

/**
 * The checkpoint an interrupted evaluation of `checkpoint` in `dir` left to continue from (the one
 * furthest on, with finetune's sidecar, for the same options and epochs), if any.
 */
export async function evalInterrupted(dir: string, o: FinetuneOptions): Promise<string | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return undefined;
  }
  let best: { file: string; done: number } | undefined;
  for (const n of names.filter((x) => x.endsWith('.tar.interrupted.json')).sort()) {
    const file = path.join(dir, n.slice(0, -'.interrupted.json'.length));
    const rec = await readInterruptRecord(file);
    if (!rec || !names.includes(path.basename(file)) || rec.resume !== o.resume || rec.epochs !== o.epochs) continue;
    if (EVAL_IDENTITY.some((k) => JSON.stringify(rec.identity[k]) !== JSON.stringify(o[k]))) continue;
    const done = rec.position.epoch + rec.position.batch / Math.max(1, rec.position.batches);
    if (!best || done > best.done) best = { file, done };
  }
  return best?.file;
}

// ---- cost estimate ----

export interface StepTiming {
  /** seconds per image of forward + backward + Adam step */
  trainPerImage: number;
  /** seconds per image of a forward pass without gradients */
  forwardPerImage: number;
  probeImages: number;
}

/** Times a few training steps and forward passes of `model` with an `nOut` head on random images. */
export function timeStep(model: string, nOut: number, imageSize: number, device: torch.Device, probeImages = 4): StepTiming {
  return torch.tidy(() => {
    torch.manualSeed(0);
    const m = models.create(model as models.ModelName, { numClasses: nOut });
    if (device !== 'cpu') m.to(device);
    const opt = new optim.Adam(m.parameters(), { lr: 1e-4 });
    const x0 = torch.randn([probeImages, 3, imageSize, imageSize]);
    const x = device === 'cpu' ? x0 : x0.to(device);
    const y0 = torch.zeros([probeImages], { dtype: 'int64' });
    const y = device === 'cpu' ? y0 : y0.to(device);
    const step = (): void => torch.tidy(() => {
      opt.zeroGrad();
      const l = torch.crossEntropy(m.forward(x), y);
      l.backward();
      opt.step();
      l.item();
    });
    const fwd = (): void => torch.tidy(() => torch.noGrad(() => { m.forward(x).sum().item(); }));
    step();
    let t = performance.now();
    for (let i = 0; i < 2; i++) step();
    const trainPerImage = (performance.now() - t) / 1000 / (2 * probeImages);
    m.eval();
    fwd();
    t = performance.now();
    for (let i = 0; i < 2; i++) fwd();
    const forwardPerImage = (performance.now() - t) / 1000 / (2 * probeImages);
    opt.dispose();
    m.dispose();
    return { trainPerImage, forwardPerImage, probeImages };
  });
}

export interface CostEstimate { tcSeconds: number[]; evalSeconds: number[]; baselineSeconds: number[]; totalSeconds: number; timing: StepTiming }

/** Compute time of every run from a timed step on this machine (data loading not included). */
export function estimateCost(plan: SweepPlan, timing?: StepTiming): CostEstimate {
  const c = plan.config;
  const t = timing ?? timeStep(c.model, Math.max(...plan.tcRuns.map((r) => r.options.nOut)), c.imageSize, c.device);
  const tcSeconds = plan.tcRuns.map((r) => r.frames * c.tc.epochs * t.trainPerImage);
  const evalCost = (e: { condition: SweepCondition; trainImages: number }): number => conditionEpochs(c, e.condition) *
    (e.trainImages * (e.condition.freezeTrunk ? t.forwardPerImage : t.trainPerImage) + plan.labelled.val * t.forwardPerImage);
  const evalSeconds = plan.evalRuns.map(evalCost);
  const baselineSeconds = plan.baselineRuns.map(evalCost);
  const totalSeconds = [...tcSeconds, ...evalSeconds, ...baselineSeconds].reduce((a, b) => a + b, 0);
  return { tcSeconds, evalSeconds, baselineSeconds, totalSeconds, timing: t };
}

// ---- running it ----

export interface SummaryRow {
  /** 'tc': an evaluation of a train-tc run's final checkpoint; 'random': of an untrained trunk (the baseline: fraction, episodes and hours 0) */
  trunk: 'tc' | 'random';
  classFraction: number;
  episodes: number;
  hours: number;
  seed: number;
  condition: string;
  top1: number;
  top5: number;
  tcWallSeconds: number;
  evalWallSeconds: number;
  /** the evaluation's results file (the baseline's record), relative to the sweep's folder */
  result: string;
  /** images trained on in the evaluation's last epoch, and its epochs */
  trainImages: number;
  epochs: number;
}

/** What became of one run of the plan. */
export interface RunOutcome {
  kind: 'tc' | 'eval' | 'baseline';
  /** e.g. `train-tc fraction 0.5 seed 1`, `linear-probe of fraction 0.5 seed 1`, `baseline linear-probe seed 1` */
  what: string;
  /** finished before this call: skipped */
  skipped: boolean;
}

/** A train-tc run of the plan with its final checkpoint and run record. */
export interface TcRunDone {
  run: TcRunPlan;
  checkpoint: string;
  record: RunRecord;
}

/** The record the sweep writes of a baseline evaluation (finetune writes no results file for an untrained trunk). */
export interface BaselineRecord {
  schema: typeof BASELINE_SCHEMA;
  complete: true;
  condition: string;
  seed: number;
  top1: number;
  top5: number;
  epochs: number;
  trainImages: number;
  valTop1PerEpoch: number[];
  valTop5PerEpoch: number[];
  trainTop1PerEpoch: number[];
  /** finetune's options that make the evaluation what it is (EVAL_IDENTITY) */
  identity: Record<string, unknown>;
  wallSeconds: number;
  createdAt: string;
}

export const BASELINE_SCHEMA = 'awty.sweep-baseline/1';
/** The baseline record's name in its folder. */
export const BASELINE_RECORD = 'baseline.json';

export interface SweepOptions {
  /** print the plan, commands and cost estimate; run nothing */
  dryRun?: boolean;
  log?: (line: string) => void;
  /** lines of the train-tc / finetune runs (default: `log`) */
  runLog?: (line: string) => void;
  /** called after every training step of every run (progress bars) */
  onStep?: (s: StepInfo) => void;
  /** called when the sweep starts its train-tc runs, its evaluations, its baselines and its summary, in that order */
  onStage?: (stage: 'tc' | 'eval' | 'baseline' | 'summary') => void;
  /** SIGINT / SIGTERM: the running train-tc or finetune run writes a checkpoint to continue from, then InterruptedError is thrown */
  handleSignals?: boolean;
  /**
   * a stop request of the caller's (its signal set: the running run stops after its current step, as
   * on a signal); with nprocPerNode > 1 the launched processes see signals only
   */
  stop?: StopRequest;
}

export interface SweepSummary {
  plan: SweepPlan;
  rows: SummaryRow[];
  /** runs executed now and runs found finished */
  ran: { tc: number; eval: number; baseline: number };
  skipped: { tc: number; eval: number; baseline: number };
  /** every run of the plan in order, and whether it was skipped */
  runs: RunOutcome[];
  /** the train-tc runs with their final checkpoints */
  tcDone: TcRunDone[];
  csv?: string;
  /** the Figure 1 analysis of OUT/eval (absent when it could not be made: figureError) */
  analysis?: Figure1Analysis;
  figure?: Figure1Outputs;
  /** why there is no figure (e.g. fewer than two amounts of video) */
  figureError?: string;
  estimate?: CostEstimate;
  seconds: number;
}

const CSV_HEADER = ['classFraction', 'episodes', 'hours', 'seed', 'condition', 'top1', 'top5', 'tcWallSeconds', 'evalWallSeconds', 'result', 'trunk', 'trainImages', 'epochs'] as const;

function csvCell(v: string | number): string {
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The summary as a table for the terminal. */
export function formatSummary(rows: readonly SummaryRow[]): string {
  const head = ['fraction', 'episodes', 'hours', 'seed', 'condition', 'top-1', 'top-5', 'tc time', 'eval time'];
  const body = rows.map((r) => [r.trunk === 'random' ? 'random' : pyFloat(r.classFraction), String(r.episodes), r.trunk === 'random' ? '0' : r.hours.toPrecision(4), String(r.seed), r.condition,
    r.top1.toFixed(2), r.top5.toFixed(2), formatDuration(r.tcWallSeconds), formatDuration(r.evalWallSeconds)]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 4 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ');
  return [line(head), line(w.map((n) => '-'.repeat(n))), ...body.map(line)].join('\n');
}

/**
 * Runs the sweep described by `config` (see resolveConfig): every train-tc run not finished yet
 * (resuming interrupted ones), every evaluation without a complete results file, then the summary
 * (OUT/summary.csv) and the Figure 1 analysis of OUT/eval (OUT/figure1.{json,svg,png}).
 */
export async function runSweep(config: SweepConfig, opts: SweepOptions = {}): Promise<SweepSummary> {
  const t0 = performance.now();
  const log = opts.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  const runLog = opts.runLog ?? log;
  const plan = await planSweep(config, () => undefined);
  const c = config;
  const nRuns = plan.tcRuns.length + plan.evalRuns.length + plan.baselineRuns.length;
  log(`sweep: ${plan.tcRuns.length} train-tc run(s) (${c.classFractions.length} class fraction(s) x ${c.seeds.length} seed(s)), ` +
    `${plan.evalRuns.length} evaluation(s) (${c.conditions.map((x) => x.name).join(', ')})` +
    `${plan.baselineRuns.length ? `, ${plan.baselineRuns.length} of an untrained trunk (the baseline)` : ''} into ${c.out}`);

  if (opts.dryRun) {
    const est = estimateCost(plan);
    log(`cost estimate from a timed step of ${est.timing.probeImages} images on this machine (${torch.getNumThreads()} thread(s), ${c.device}): ` +
      `${(est.timing.trainPerImage * 1000).toFixed(1)} ms per image trained, ${(est.timing.forwardPerImage * 1000).toFixed(1)} ms per image evaluated; data loading not included`);
    let k = 0;
    for (const [i, r] of plan.tcRuns.entries()) {
      const st = await tcRunState(r);
      log(`[${++k}/${nRuns}] train-tc fraction ${pyFloat(r.classFraction)} seed ${r.seed}: ${r.episodes} episodes, ${r.frames} frames, ${c.tc.epochs} epoch(s), ` +
        `about ${formatDuration(est.tcSeconds[i]!)}${st.state === 'done' ? ' (finished: skipped)' : st.state === 'partial' ? ` (interrupted: resumes from ${st.checkpoint})` : ''}`);
      log(`    ${r.command}`);
    }
    for (const [i, e] of plan.evalRuns.entries()) {
      log(`[${++k}/${nRuns}] ${e.condition.name} of fraction ${pyFloat(e.tc.classFraction)} seed ${e.tc.seed}: ${e.trainImages} training images, ${conditionEpochs(c, e.condition)} epoch(s), about ${formatDuration(est.evalSeconds[i]!)}`);
      log(`    ${e.command}`);
    }
    for (const [i, b] of plan.baselineRuns.entries()) {
      log(`[${++k}/${nRuns}] baseline ${b.condition.name} seed ${b.seed} (untrained trunk): ${b.trainImages} training images, ${conditionEpochs(c, b.condition)} epoch(s), about ${formatDuration(est.baselineSeconds[i]!)}`);
      log(`    ${b.command}`);
    }
    log(`total: about ${formatDuration(est.totalSeconds)} of compute`);
    return { plan, rows: [], ran: { tc: 0, eval: 0, baseline: 0 }, skipped: { tc: 0, eval: 0, baseline: 0 }, runs: [], tcDone: [], estimate: est, seconds: (performance.now() - t0) / 1000 };
  }

  await mkdir(c.out, { recursive: true });
  await io.writeTextAtomic(path.join(c.out, 'sweep.json'), JSON.stringify(c, null, 2) + '\n');
  const stop = (opts.stop ?? new StopRequest()).install(opts.handleSignals ?? false);
  try {
    return await execute(plan, stop, opts, log, runLog, t0);
  } finally {
    stop.uninstall();
  }
}

/** A free TCP port on the loopback interface for a launched run's rendezvous. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Libtorch threads of each of the N processes of a launched run: the configured threads (else the machine's cores) divided among them, as awty launch does. */
export function workerThreads(c: Pick<SweepConfig, 'threads' | 'nprocPerNode'>): number {
  return Math.max(1, Math.floor((c.threads ?? os.availableParallelism?.() ?? os.cpus().length) / c.nprocPerNode));
}

/**
 * Runs an awty command as `nprocPerNode` data-parallel processes on this machine (awty launch's
 * launcher, on a free loopback port), their lines prefixed with the rank. SIGINT / SIGTERM reach the
 * workers (each saves a checkpoint to continue from; a second signal ends them at once), and an
 * interrupted run throws InterruptedError; a failed one an error naming the rank.
 */
async function launched(c: SweepConfig, args: string[], what: string, stop: StopRequest, log: (l: string) => void): Promise<void> {
  // the workers take the signals (the launcher forwards every one of them): the sweep only learns the outcome
  const had = stop.uninstallSignals();
  try {
    const r = await launch({ nprocPerNode: c.nprocPerNode, masterPort: await freePort(), threads: workerThreads(c), args, out: log });
    if (r.exitCode === 0) return;
    const signal = r.exitCode === 130 ? 'SIGINT' : r.exitCode === 143 ? 'SIGTERM' : undefined;
    if (signal || stop.requested) throw new InterruptedError(stop.signal ?? signal ?? 'SIGTERM');
    throw new Error(`${what}: awty launch --nproc-per-node ${c.nprocPerNode}: ${r.message}`);
  } finally {
    if (had) stop.install(true);
  }
}

async function execute(plan: SweepPlan, stop: StopRequest, opts: SweepOptions, log: (l: string) => void, runLog: (l: string) => void, t0: number): Promise<SweepSummary> {
  const c = plan.config;
  const nRuns = plan.tcRuns.length + plan.evalRuns.length + plan.baselineRuns.length;
  const live = { stop, ...(opts.onStep ? { onStep: opts.onStep } : {}) };
  const ran = { tc: 0, eval: 0, baseline: 0 };
  const skipped = { tc: 0, eval: 0, baseline: 0 };
  const runs: RunOutcome[] = [];
  const finals = new Map<TcRunPlan, { checkpoint: string; record: RunRecord }>();
  let k = 0;
  opts.onStage?.('tc');
  for (const r of plan.tcRuns) {
    k++;
    const st = await tcRunState(r);
    const what = `train-tc fraction ${pyFloat(r.classFraction)} seed ${r.seed}`;
    if (st.state === 'done') {
      log(`[${k}/${nRuns}] ${what}: finished (${st.checkpoint}), skipped`);
      skipped.tc++;
      runs.push({ kind: 'tc', what, skipped: true });
      finals.set(r, { checkpoint: st.checkpoint!, record: st.record! });
      continue;
    }
    const options: TcOptions = { ...r.options, resume: st.state === 'partial' ? st.checkpoint! : '', log: runLog, ...live };
    log(`[${k}/${nRuns}] ${what}${st.state === 'partial' ? ` (resuming from ${st.checkpoint})` : ''}\n    ${tcCommand(options, c.nprocPerNode)}`);
    let ckpt: string | undefined;
    if (c.nprocPerNode > 1) {
      await launched(c, tcArgs(options), what, stop, runLog);
      const now = await tcRunState(r);
      ckpt = now.state === 'done' ? now.checkpoint : undefined;
    } else {
      const res = await trainTc(options);
      ckpt = res.checkpoints.at(-1) ?? st.checkpoint;
    }
    ran.tc++;
    runs.push({ kind: 'tc', what, skipped: false });
    const record = ckpt ? await io.readRunRecord(ckpt) : undefined;
    if (!ckpt || !record) throw new Error(`${what} left no final checkpoint with a run record in ${r.dir}`);
    finals.set(r, { checkpoint: ckpt, record });
  }

  const rows: SummaryRow[] = [];
  opts.onStage?.('eval');
  for (const e of plan.evalRuns) {
    k++;
    const fin = finals.get(e.tc)!;
    const what = `${e.condition.name} of fraction ${pyFloat(e.tc.classFraction)} seed ${e.tc.seed}`;
    const epochs = conditionEpochs(c, e.condition);
    let found = await evalResult(e.dir, fin.checkpoint, epochs);
    runs.push({ kind: 'eval', what, skipped: found !== undefined });
    if (found) {
      log(`[${k}/${nRuns}] ${what}: finished (${found.file}), skipped`);
      skipped.eval++;
    } else {
      const base = evalOptions(c, e.tc.options.nOut, e.tc.seed, e.condition, e.dir, fin.checkpoint);
      // an evaluation interrupted by a signal continues from the checkpoint it wrote
      const cont = await evalInterrupted(e.dir, base);
      const options = { ...base, ...(cont ? { continue: cont } : {}), log: runLog, ...live };
      log(`[${k}/${nRuns}] ${what}${cont ? ` (continuing from ${cont})` : ''}\n    ${evalCommand(options, c.nprocPerNode)}`);
      let written: string | undefined;
      if (c.nprocPerNode > 1) await launched(c, evalArgs(options), what, stop, runLog);
      else written = (await finetune(options)).resultFile;
      ran.eval++;
      found = await evalResult(e.dir, fin.checkpoint, epochs);
      if (!found) throw new Error(`${what} wrote no complete results file in ${e.dir}${written ? ` (${written} does not match)` : ''}`);
    }
    rows.push({
      trunk: 'tc', classFraction: e.tc.classFraction, episodes: fin.record.data.episodes, hours: found.result.hours, seed: e.tc.seed, condition: e.condition.name,
      top1: found.result.top1, top5: found.result.top5, tcWallSeconds: fin.record.wallSeconds, evalWallSeconds: found.result.wallSeconds ?? 0,
      result: path.relative(c.out, found.file), trainImages: found.result.trainImages ?? 0, epochs,
    });
  }

  if (plan.baselineRuns.length) opts.onStage?.('baseline');
  for (const b of plan.baselineRuns) {
    k++;
    const what = `baseline ${b.condition.name} seed ${b.seed}`;
    const epochs = conditionEpochs(c, b.condition);
    const file = path.join(b.dir, BASELINE_RECORD);
    let rec = await baselineResult(b);
    if (rec) {
      log(`[${k}/${nRuns}] ${what} (untrained trunk): finished (${file}), skipped`);
      skipped.baseline++;
      runs.push({ kind: 'baseline', what, skipped: true });
    } else {
      const cont = await evalInterrupted(b.dir, b.options);
      const options = { ...b.options, ...(cont ? { continue: cont } : {}), log: runLog, ...live };
      // one process: finetune writes no results file for an untrained trunk, the sweep records what it returns
      log(`[${k}/${nRuns}] ${what} (untrained trunk)${cont ? ` (continuing from ${cont})` : ''}\n    ${evalCommand(options)}`);
      const ta = performance.now();
      const s = await finetune(options);
      const last = (l: number[]): number => {
        const v = l.at(-1);
        if (v === undefined) throw new Error(`${what}: the evaluation returned no validation accuracy`);
        return v;
      };
      rec = {
        schema: BASELINE_SCHEMA, complete: true, condition: b.condition.name, seed: b.seed, top1: last(s.valAcc1List), top5: last(s.valAcc5List), epochs,
        trainImages: s.trainImages, valTop1PerEpoch: s.valAcc1List, valTop5PerEpoch: s.valAcc5List, trainTop1PerEpoch: s.acc1List,
        identity: baselineIdentity(b.options), wallSeconds: (performance.now() - ta) / 1000, createdAt: new Date().toISOString(),
      };
      await io.writeTextAtomic(file, JSON.stringify(rec, null, 1) + '\n');
      ran.baseline++;
      runs.push({ kind: 'baseline', what, skipped: false });
    }
    rows.push({
      trunk: 'random', classFraction: 0, episodes: 0, hours: 0, seed: b.seed, condition: b.condition.name, top1: rec.top1, top5: rec.top5,
      tcWallSeconds: 0, evalWallSeconds: rec.wallSeconds, result: path.relative(c.out, file), trainImages: rec.trainImages, epochs,
    });
  }

  opts.onStage?.('summary');
  const csv = path.join(c.out, 'summary.csv');
  await io.writeTextAtomic(csv, [CSV_HEADER.join(','), ...rows.map((r) => CSV_HEADER.map((h) => csvCell(r[h])).join(','))].join('\n') + '\n');
  log(`\n${formatSummary(rows)}\n\nwrote ${csv}`);

  let analysis: Figure1Analysis | undefined;
  let figure: Figure1Outputs | undefined;
  let figureError: string | undefined;
  try {
    const read = await readResults(path.join(c.out, 'eval'));
    analysis = analyze(read.runs, {
      targets: c.targets ?? [HUMAN_TOP5_A1], ...(c.targets ? { sensitivityTargets: c.targets } : {}), bootstrap: c.bootstrap, seed: 1,
      source: `awty sweep results in ${path.join(c.out, 'eval')}`,
    });
    figure = await writeFigure1(analysis, c.out, figureOptions(c, rows, plan.labelled.classes));
    log(`\n${formatReport(analysis)}\n\nwrote ${figure.json}, ${figure.svg}, ${figure.png}`);
  } catch (err) {
    figureError = (err as Error).message;
    process.stderr.write(`warning: no Figure 1 analysis: ${figureError}\n`);
  }
  const tcDone = plan.tcRuns.map((run) => ({ run, ...finals.get(run)! }));
  return {
    plan, rows, ran, skipped, runs, tcDone, csv, ...(analysis ? { analysis } : {}), ...(figure ? { figure } : {}), ...(figureError ? { figureError } : {}),
    seconds: (performance.now() - t0) / 1000,
  };
}

/** The options of a baseline evaluation its record must match to be reused. */
function baselineIdentity(o: FinetuneOptions): Record<string, unknown> {
  return Object.fromEntries([...EVAL_IDENTITY, 'resume', 'epochs', 'valEvery', 'imgnetTraindir', 'imgnetValdir'].map((k) => [k, o[k as keyof FinetuneOptions] ?? null]));
}

/** The baseline's record in its folder when it is complete and of these options. */
export async function baselineResult(b: BaselineRunPlan): Promise<BaselineRecord | undefined> {
  let r: BaselineRecord;
  try {
    r = JSON.parse(await readFile(path.join(b.dir, BASELINE_RECORD), 'utf8')) as BaselineRecord;
  } catch {
    return undefined;
  }
  if (r.schema !== BASELINE_SCHEMA || r.complete !== true) return undefined;
  const want = baselineIdentity(b.options);
  return JSON.stringify(r.identity) === JSON.stringify(want) ? r : undefined;
}

/** Figure 1's drawing options from the configuration: title, axes, panels, bands, chance and the baselines found. */
function figureOptions(c: SweepConfig, rows: readonly SummaryRow[], classes: number): PlotOptions {
  const f = c.figure;
  const metrics = f.metrics ?? METRICS;
  const baselines: Baseline[] = [];
  for (const cond of c.conditions) {
    const rnd = rows.filter((r) => r.trunk === 'random' && r.condition === cond.name);
    if (rnd.length === 0) continue;
    for (const metric of metrics) {
      const v = rnd.map((r) => r[metric]);
      baselines.push({ condition: cond.name, metric, mean: v.reduce((a, b) => a + b, 0) / v.length, low: Math.min(...v), high: Math.max(...v), label: `${cond.name}, random-weight trunk` });
    }
  }
  const chance = (metric: Metric): number => Math.min(100, (100 * (metric === 'top1' ? 1 : 5)) / classes);
  return {
    ...(f.title !== undefined ? { title: f.title } : {}), ...(f.dataset !== undefined ? { dataset: f.dataset } : {}), ...(f.metrics ? { metrics: f.metrics } : {}),
    ...(f.bands > 0 ? { bands: { n: f.bands, seed: 1 } } : {}), ...(baselines.length ? { baselines } : {}),
    ...(f.chance ? { references: metrics.map((metric) => ({ metric, value: chance(metric), label: `chance ${Number(chance(metric).toFixed(2))}%` })) } : {}),
  };
}
