// Run records: a JSON sidecar beside each train-tc and train-mae checkpoint (`<checkpoint>.json`), so that the
// checkpoint itself keeps the original scripts' layout while everything later steps need travels
// with it: the full configuration, versions, the episodes kept, the hours of video computed from the
// extraction manifest, and the per-epoch metrics. This module is the one owner of the format.
//
// Schema "awty.tc-run/1":
//   {
//     "schema": "awty.tc-run/1",
//     "status": "running" | "complete" | "interrupted",   // complete: the last epoch is done
//     "checkpoint": "TC_..._epoch_3.tar",                 // the file this record sits beside
//     "createdAt", "updatedAt": ISO times,
//     "config": { every flag of train-tc, resolved },
//     "versions": { "awty", "libtorch", "node" }, "device", "threads", "host",
//     "data": { "dirs", "format": "files" | "shards", "episodes": N, "episodeNames": [...], "frames": N,
//               "extract": [ { "dir", "fps", "segLen", "secondsPerEpisode", "episodes", "frames",
//                              "sampling", "videos": [{ "name", "bytes", "seconds", "frames" }] } ] },
//     "hours": 1.23 | null,      // hours of video the trunk saw (kept frames / fps / 3600); null: unknown
//     "hoursMethod": "...",      // how the hours were found (or why they are unknown)
//     "epochs": [ { "epoch", "loss", "acc1", "acc5", "imagesPerSecond", "seconds", "images" } ],
//     "position": { "epoch", "batch" } | undefined,     // a mid-epoch checkpoint: batches done in that epoch
//     "wallSeconds": total seconds of training so far
//   }
//
// Schema "awty.mae-run/1" (train-mae): the same fields, with "config" train-mae's flags, "data" its
// --data_path folders (every episode kept, "format": "files") and "epochs" entries
// { "epoch", "loss", "lr", "images", "imagesPerSecond", "seconds" } (no accuracies).
import { readFile } from 'node:fs/promises';
import { writeTextAtomic } from './atomic.js';

export const RUN_RECORD_SCHEMA = 'awty.tc-run/1';
export const MAE_RUN_RECORD_SCHEMA = 'awty.mae-run/1';
const SCHEMAS: readonly string[] = [RUN_RECORD_SCHEMA, MAE_RUN_RECORD_SCHEMA];

export interface ExtractProvenance {
  dir: string;
  fps: number;
  segLen: number;
  secondsPerEpisode: number;
  episodes: number;
  frames: number;
  sampling: string;
  videos: { name: string; bytes: number; seconds: number; frames: number; skipped?: string }[];
}

export interface EpochRecord {
  epoch: number;
  loss: number;
  acc1: number;
  acc5: number;
  images: number;
  imagesPerSecond: number;
  seconds: number;
}

/** An epoch of train-mae: the loss and the learning rate at its last step (no accuracies). */
export interface MaeEpochRecord {
  epoch: number;
  loss: number;
  lr: number;
  images: number;
  imagesPerSecond: number;
  seconds: number;
}

export interface RunRecord {
  schema: typeof RUN_RECORD_SCHEMA | typeof MAE_RUN_RECORD_SCHEMA;
  status: 'running' | 'complete' | 'interrupted';
  checkpoint: string;
  createdAt: string;
  updatedAt: string;
  config: Record<string, unknown>;
  versions: { awty: string; libtorch: string; node: string };
  device: string;
  threads: number;
  host: string;
  data: {
    dirs: string[];
    format: 'files' | 'shards';
    episodes: number;
    episodeNames: string[];
    frames: number;
    extract: ExtractProvenance[];
  };
  hours: number | null;
  hoursMethod: string;
  epochs: (EpochRecord | MaeEpochRecord)[];
  position?: { epoch: number; batch: number; batches: number };
  wallSeconds: number;
}

/** The sidecar of a checkpoint: the checkpoint's path with `.json` appended. */
export function runRecordPath(checkpoint: string): string {
  return `${checkpoint}.json`;
}

export async function writeRunRecord(checkpoint: string, record: RunRecord): Promise<string> {
  const file = runRecordPath(checkpoint);
  await writeTextAtomic(file, JSON.stringify(record, null, 1) + '\n');
  return file;
}

/**
 * Reads the run record beside `checkpoint`; undefined when there is none (e.g. a checkpoint of the
 * original scripts). A record that exists but is not valid throws an error naming the file.
 */
export async function readRunRecord(checkpoint: string): Promise<RunRecord | undefined> {
  const file = runRecordPath(checkpoint);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`cannot read the run record ${file}: ${(e as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const o = v as Partial<RunRecord> | null;
  if (typeof o !== 'object' || o === null || !SCHEMAS.includes(o.schema as string)) {
    throw new Error(`${file}: not an awty run record (expected "schema": ${SCHEMAS.map((x) => `"${x}"`).join(' or ')})`);
  }
  if (!(o.hours === null || (typeof o.hours === 'number' && o.hours > 0))) throw new Error(`${file}: "hours" must be a positive number or null`);
  if (!Array.isArray(o.epochs)) throw new Error(`${file}: "epochs" must be a list`);
  return o as RunRecord;
}

/** The hours of video recorded beside a checkpoint: a number, null (recorded as unknown) or undefined (no record). */
export async function readHours(checkpoint: string): Promise<number | null | undefined> {
  const r = await readRunRecord(checkpoint);
  return r === undefined ? undefined : r.hours;
}
