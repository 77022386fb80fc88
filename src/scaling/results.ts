// Results files: one JSON file per evaluation run, written by `awty finetune` (and `awty knn`) through
// writeResult() and read back by `awty figure1 --results DIR` through readResults(). This module is
// the one owner of the format.
//
// Schema "awty.run-result/1" (one run per file, any file name ending in .json, anywhere under DIR):
//   {
//     "schema": "awty.run-result/1",  // written by writeResult(); a file without "schema" is still read
//                                     // as a result when it has a "condition" field
//     "condition": "few-shot-1pct",   // evaluation condition: "few-shot-1pct", "few-shot-2pct",
//                                     // "linear-probe", or any other non-empty label
//     "hours": 13.01,                 // hours of video the self-supervised trunk was trained on (> 0)
//     "seed": 1,                      // integer seed of the run (a condition/hours/seed triple is unique)
//     "top1": 14.3,                   // validation top-1 accuracy after the final epoch, percent [0, 100]
//     "top5": 31.1,                   // validation top-5 accuracy after the final epoch, percent [0, 100]
//     // optional, read by the joint analysis (awty scaling); a file without them is still a result:
//     "modelParams": 11181642,        // parameters of the trunk (every parameter but the classification head), integer > 0
//     "imageSize": 224,               // image side in px the trunk was evaluated at, integer > 0
//     "objective": "tc",              // how the trunk was trained: "tc" (temporal classification), "mae"
//                                     // (masked autoencoder), "random" (untrained), or another label
//     // optional provenance, carried through untouched:
//     "episodes": 163, "classFraction": 0.01, "fracRetained": 0.010147, "freezeTrunk": false,
//     "model": "resnext101_32x8d", "epochs": 50, "checkpoint": "path/to/tc.tar",
//     "valTop1PerEpoch": [..], "valTop5PerEpoch": [..], "createdAt": "2024-01-01T00:00:00.000Z",
//     // written by awty finetune besides: "complete": true, "tcSeed", "tcModel", "tcRecord" (the TC
//     // run record the hours came from), "hoursFrom", "config" (every flag), "versions", "device",
//     // "threads", "host", "trainLossPerEpoch", "trainTop1PerEpoch", "trainTop5PerEpoch",
//     // "valLossPerEpoch", "trainImages", "wallSeconds", "evalCheckpoint"
//   }
// JSON files whose "schema" is something else (e.g. figure1.json, "awty.figure1/1") are skipped, as
// are JSON files with neither "schema" nor "condition".

import { mkdir, readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';

export const RESULT_SCHEMA = 'awty.run-result/1';

/** One evaluation run: the fields every analysis needs. */
export interface RunResult {
  condition: string;
  hours: number;
  seed: number;
  top1: number;
  top5: number;
  /** parameters of the trunk (all but the classification head); the joint analysis's model size */
  modelParams?: number;
  /** image side (px) the trunk was evaluated at; the joint analysis's resolution */
  imageSize?: number;
  /** how the trunk was trained: 'tc', 'mae', 'random' (untrained) or another label */
  objective?: string;
  /** Where the run was read from (set by readResults; not written). */
  source?: string;
}

/** The objectives the evaluation commands write. */
export const KNOWN_OBJECTIVES = ['tc', 'mae', 'random'] as const;

/** What finetune writes: the required fields plus optional provenance. */
export interface RunResultFile extends RunResult {
  schema?: typeof RESULT_SCHEMA;
  episodes?: number;
  classFraction?: number;
  fracRetained?: number;
  /** finetune --per-class: the first N images of each class were the training set (before fracRetained) */
  perClass?: number;
  freezeTrunk?: boolean;
  model?: string;
  epochs?: number;
  checkpoint?: string;
  valTop1PerEpoch?: number[];
  valTop5PerEpoch?: number[];
  createdAt?: string;
  // further provenance written by finetune: the evaluation's configuration, versions, per-epoch
  // training metrics, wall time, and the TC run the trunk came from
  complete?: boolean;
  tcSeed?: number;
  tcModel?: string;
  tcRecord?: string;
  hoursFrom?: string;
  config?: Record<string, unknown>;
  versions?: Record<string, string>;
  device?: string;
  threads?: number;
  host?: string;
  trainLossPerEpoch?: number[];
  trainTop1PerEpoch?: number[];
  trainTop5PerEpoch?: number[];
  valLossPerEpoch?: number[];
  trainImages?: number;
  wallSeconds?: number;
  evalCheckpoint?: string;
}

export type Metric = 'top1' | 'top5';
export const METRICS: readonly Metric[] = ['top1', 'top5'];

/** The paper's evaluation conditions, in the order they are shown, with their display names. */
export const KNOWN_CONDITIONS: Readonly<Record<string, string>> = {
  'few-shot-1pct': 'few-shot (~1%)',
  'few-shot-2pct': 'few-shot (2%)',
  'linear-probe': 'linear probe',
};

export function conditionLabel(condition: string): string {
  return KNOWN_CONDITIONS[condition] ?? condition;
}

/** Orders conditions: the paper's three first, then the rest alphabetically. */
export function sortConditions(conditions: Iterable<string>): string[] {
  const known = Object.keys(KNOWN_CONDITIONS);
  return [...new Set(conditions)].sort((a, b) => {
    const ia = known.indexOf(a);
    const ib = known.indexOf(b);
    if (ia >= 0 || ib >= 0) return (ia < 0 ? known.length : ia) - (ib < 0 ? known.length : ib);
    return a < b ? -1 : a > b ? 1 : 0;
  });
}

/**
 * Checks one parsed record and returns the run it describes; throws an Error naming `where` and the
 * offending field otherwise.
 */
export function validateResult(value: unknown, where = 'result'): RunResult {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${where}: a result must be a JSON object`);
  }
  const o = value as Record<string, unknown>;
  if (o.schema !== undefined && o.schema !== RESULT_SCHEMA) {
    throw new Error(`${where}: unknown schema ${JSON.stringify(o.schema)} (expected "${RESULT_SCHEMA}")`);
  }
  if (typeof o.condition !== 'string' || o.condition.trim() === '') {
    throw new Error(`${where}: "condition" must be a non-empty string`);
  }
  const num = (key: string): number => {
    const v = o[key];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new Error(`${where}: "${key}" must be a finite number (got ${JSON.stringify(v)})`);
    }
    return v;
  };
  const hours = num('hours');
  if (hours <= 0) throw new Error(`${where}: "hours" must be positive (got ${hours}); a log-scale fit needs hours > 0`);
  const seed = num('seed');
  if (!Number.isInteger(seed)) throw new Error(`${where}: "seed" must be an integer (got ${seed})`);
  const acc = (key: Metric): number => {
    const v = num(key);
    if (v < 0 || v > 100) throw new Error(`${where}: "${key}" is an accuracy in percent and must lie in [0, 100] (got ${v})`);
    return v;
  };
  const run: RunResult = { condition: o.condition, hours, seed, top1: acc('top1'), top5: acc('top5') };
  // optional: what the joint analysis needs beside hours (older files do not have them)
  for (const key of ['modelParams', 'imageSize'] as const) {
    if (o[key] === undefined) continue;
    const v = num(key);
    if (!(Number.isInteger(v) && v > 0)) throw new Error(`${where}: "${key}" must be a positive integer (got ${v})`);
    run[key] = v;
  }
  if (o.objective !== undefined) {
    if (typeof o.objective !== 'string' || o.objective.trim() === '') throw new Error(`${where}: "objective" must be a non-empty string (e.g. ${KNOWN_OBJECTIVES.join(', ')})`);
    run.objective = o.objective;
  }
  return run;
}

/** What makes a run unique among the results: condition, hours, seed, and model size, image size and objective where given. */
export function runKey(r: RunResult): string {
  return [r.condition, r.hours, r.seed, r.modelParams ?? '', r.imageSize ?? '', r.objective ?? ''].join('\u0000');
}

function describeRun(r: RunResult): string {
  const extra = [r.modelParams !== undefined ? `${r.modelParams} parameters` : '', r.imageSize !== undefined ? `${r.imageSize} px` : '', r.objective ? `objective ${r.objective}` : '']
    .filter((s) => s).join(', ');
  return `condition ${r.condition}, ${r.hours} h, seed ${r.seed}${extra ? `, ${extra}` : ''}`;
}

/** A file name that sorts well and is unique per condition, hours and seed. */
export function resultFileName(r: Pick<RunResult, 'condition' | 'hours' | 'seed' | 'modelParams' | 'imageSize' | 'objective'>): string {
  const safe = (v: string): string => v.replace(/[^A-Za-z0-9._-]+/g, '_');
  const extra = `${r.objective ? `_${safe(r.objective)}` : ''}${r.modelParams !== undefined ? `_${r.modelParams}p` : ''}${r.imageSize !== undefined ? `_${r.imageSize}px` : ''}`;
  return `${safe(r.condition)}_${r.hours}h_seed${r.seed}${extra}.json`;
}

/**
 * Writes one run's result. `path` is a file (ending in .json) or a folder, in which case the file is
 * named by resultFileName(). The write is atomic (io/atomic.ts: temporary file, fsync, rename). Returns the path.
 */
export async function writeResult(path: string, result: RunResultFile): Promise<string> {
  const run = validateResult(result, 'writeResult');
  const file = path.endsWith('.json') ? path : join(path, resultFileName(run));
  const record: RunResultFile = {
    schema: RESULT_SCHEMA,
    ...result,
    createdAt: result.createdAt ?? new Date().toISOString(),
  };
  delete record.source;
  await mkdir(dirname(file), { recursive: true });
  const text = JSON.stringify(record, null, 2) + '\n';
  await writeFileAtomic(file, async (fh) => { await fh.writeFile(text); });
  return file;
}

async function listJson(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true });
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listJson(p)));
    else if (e.isFile() && e.name.endsWith('.json')) out.push(p);
  }
  return out;
}

export interface ReadResults {
  runs: RunResult[];
  /** JSON files that were not results (other schema, or no schema and no condition). */
  skipped: string[];
}

/** Reads every result under `dir` (recursively). Throws when there is none, or on a bad record. */
export async function readResults(dir: string): Promise<ReadResults> {
  let files: string[];
  try {
    files = (await listJson(dir)).sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`results folder ${dir} does not exist`);
    if (code === 'ENOTDIR') throw new Error(`--results ${dir} is not a folder`);
    throw err;
  }
  const runs: RunResult[] = [];
  const skipped: string[] = [];
  const byKey = new Map<string, string>();
  for (const file of files) {
    const where = relative(process.cwd(), file) || file;
    let value: unknown;
    try {
      value = JSON.parse(await readFile(file, 'utf8'));
    } catch (err) {
      throw new Error(`${where}: not valid JSON (${(err as Error).message})`);
    }
    const o = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
    const isResult = o.schema === RESULT_SCHEMA || (o.schema === undefined && 'condition' in o);
    if (!isResult) {
      skipped.push(file);
      continue;
    }
    const run = validateResult(value, where);
    const key = runKey(run);
    const prior = byKey.get(key);
    if (prior !== undefined) {
      throw new Error(`${where}: duplicate run (${describeRun(run)}) also in ${prior}`);
    }
    byKey.set(key, where);
    runs.push({ ...run, source: file });
  }
  if (runs.length === 0) {
    const extra = skipped.length > 0 ? ` (${skipped.length} other JSON file(s) skipped)` : '';
    throw new Error(`no results found in ${dir}: expected *.json files with "schema": "${RESULT_SCHEMA}" as written by awty finetune${extra}`);
  }
  return { runs, skipped };
}
