// Training metrics as JSON lines, one file per run: a `step` line every `logFreq` iterations and an
// `epoch` line after every epoch, so curves can be plotted without scraping stdout.
//   {"type":"step","epoch":0,"iteration":10,"step":10,"loss":..,"acc1":..,"acc5":..,"lr":..,"imagesPerSecond":..,"dataSeconds":..,"time":"..."}
//   {"type":"epoch","epoch":0,"loss":..,"acc1":..,"acc5":..,"images":..,"imagesPerSecond":..,"seconds":..,"lr":..,"time":"..."}
// The epoch line carries exactly the run record's per-epoch entry (plus type, lr and time).
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
}

export class MetricsLog {
  private dataSeconds = 0;

  /**
   * Opens `file` for appending. `keepBefore` (a resume) first drops the lines of the epochs and
   * iterations that are about to be run again, so the file never holds a step twice.
   */
  private constructor(readonly file: string, readonly logFreq: number) {}

  static async open(file: string, logFreq: number, keepBefore?: { epoch: number; iteration: number }): Promise<MetricsLog> {
    mkdirSync(path.dirname(file), { recursive: true });
    if (existsSync(file)) {
      const kept = readFileSync(file, 'utf8').split('\n').filter((l) => {
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
    return new MetricsLog(file, logFreq);
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
    appendFileSync(this.file, JSON.stringify(line) + '\n');
  }

  epoch(e: EpochRecord, lr: number): void {
    const line: EpochLine = { type: 'epoch', ...e, lr, time: new Date().toISOString() };
    appendFileSync(this.file, JSON.stringify(line) + '\n');
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
