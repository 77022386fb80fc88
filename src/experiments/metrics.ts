// Training metrics as JSON lines, one file per run: a `step` line every `logFreq` iterations and an
// `epoch` line after every epoch, so curves can be plotted without scraping stdout.
//   {"type":"step","epoch":0,"iteration":10,"step":10,"loss":..,"acc1":..,"acc5":..,"lr":..,"imagesPerSecond":..,"dataSeconds":..,"time":"..."}
//   {"type":"epoch","epoch":0,"loss":..,"acc1":..,"acc5":..,"images":..,"imagesPerSecond":..,"seconds":..,"lr":..,"time":"..."}
// The epoch line carries exactly the run record's per-epoch entry (plus type, lr and time; finetune's
// also valLoss, valAcc1, valAcc5 after a validation). The same lines go to a CSV file beside it
// (`X.jsonl` -> `X.csv`, one row per line, the columns of METRICS_CSV_COLUMNS, empty where a line has
// no such field), for spreadsheets and plotting tools that read CSV.
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { writeTextAtomic } from '../io/atomic.js';
import type { EpochRecord } from '../io/run-record.js';
import type { StepInfo } from './common.js';

export interface StepLine {
  type: 'step';
  epoch: number;
  iteration: number;
  /** global step: epoch x batches per epoch + iteration */
  step: number;
  loss: number;
  acc1: number;
  acc5: number;
  lr: number;
  imagesPerSecond: number;
  dataSeconds: number;
  time: string;
}

export interface EpochLine extends EpochRecord {
  type: 'epoch';
  lr: number;
  time: string;
  /** finetune, after an epoch it validated */
  valLoss?: number;
  valAcc1?: number;
  valAcc5?: number;
}

/** The CSV file's columns, in order (its header line). */
export const METRICS_CSV_COLUMNS = ['type', 'epoch', 'iteration', 'step', 'loss', 'acc1', 'acc5', 'lr', 'imagesPerSecond', 'dataSeconds',
  'images', 'seconds', 'valLoss', 'valAcc1', 'valAcc5', 'time'] as const;

/** The CSV file beside a metrics file: `.jsonl` replaced by `.csv` (or `.csv` appended). */
export function metricsCsvPath(file: string): string {
  return file.endsWith('.jsonl') ? `${file.slice(0, -'.jsonl'.length)}.csv` : `${file}.csv`;
}

function csvRow(line: Record<string, unknown>): string {
  return METRICS_CSV_COLUMNS.map((k) => {
    const v = line[k];
    if (v === undefined || v === null) return '';
    const t = String(v);
    return /[",\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
  }).join(',') + '\n';
}

export class MetricsLog {
  private dataSeconds = 0;

  /**
   * Opens `file` for appending. `keepBefore` (a resume) first drops the lines of the epochs and
   * iterations that are about to be run again, so the file never holds a step twice.
   */
  /** the CSV file beside `file` (metricsCsvPath) */
  readonly csv: string;

  private constructor(readonly file: string, readonly logFreq: number) {
    this.csv = metricsCsvPath(file);
  }

  static async open(file: string, logFreq: number, keepBefore?: { epoch: number; iteration: number }): Promise<MetricsLog> {
    mkdirSync(path.dirname(file), { recursive: true });
    let kept: string[] = [];
    if (existsSync(file)) {
      kept = readFileSync(file, 'utf8').split('\n').filter((l) => {
        if (!l.trim()) return false;
        if (!keepBefore) return false;
        try {
          const j = JSON.parse(l) as { type?: string; epoch?: number; iteration?: number };
          if (j.epoch === undefined) return false;
          if (j.epoch < keepBefore.epoch) return true;
          return j.epoch === keepBefore.epoch && j.type === 'step' && (j.iteration ?? Infinity) < keepBefore.iteration;
        } catch {
          return false;
        }
      });
      await writeTextAtomic(file, kept.map((l) => `${l}\n`).join(''));
    }
    const log = new MetricsLog(file, logFreq);
    // the CSV holds the same lines: written again from those kept
    await writeTextAtomic(log.csv, METRICS_CSV_COLUMNS.join(',') + '\n' + kept.map((l) => csvRow(JSON.parse(l) as Record<string, unknown>)).join(''));
    return log;
  }

  /** Records a step; writes a line every `logFreq` iterations (and at iteration 0). */
  step(s: StepInfo): void {
    this.dataSeconds += s.dataSeconds;
    if (this.logFreq <= 0 || s.iteration % this.logFreq !== 0) return;
    const line: StepLine = {
      type: 'step', epoch: s.epoch, iteration: s.iteration, step: s.epoch * s.batches + s.iteration, loss: s.loss, acc1: s.acc1, acc5: s.acc5,
      lr: s.lr, imagesPerSecond: s.imagesPerSecond, dataSeconds: this.dataSeconds, time: new Date().toISOString(),
    };
    this.dataSeconds = 0;
    this.append(line);
  }

  epoch(e: EpochRecord, lr: number, val?: { loss: number; top1: number; top5: number }): void {
    const line: EpochLine = { type: 'epoch', ...e, lr, ...(val ? { valLoss: val.loss, valAcc1: val.top1, valAcc5: val.top5 } : {}), time: new Date().toISOString() };
    this.append(line);
  }

  private append(line: StepLine | EpochLine): void {
    appendFileSync(this.file, JSON.stringify(line) + '\n');
    appendFileSync(this.csv, csvRow(line as unknown as Record<string, unknown>));
  }
}

/** Parses a metrics file (every line must be JSON). */
export function readMetrics(file: string): (StepLine | EpochLine)[] {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).map((l, i) => {
    try {
      return JSON.parse(l) as StepLine | EpochLine;
    } catch (e) {
      throw new Error(`${file}:${i + 1}: not JSON (${(e as Error).message})`);
    }
  });
}
