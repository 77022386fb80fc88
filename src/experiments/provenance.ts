// Provenance of a run: versions, and what the extraction manifest of each data folder says (fps,
// episode length, source videos), from which the hours of video of the kept episodes are computed.
import { readFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as torch from '../torch/index.js';
import { MANIFEST, SHARD_LIST } from '../data/index.js';
import type { Dataset } from '../data/index.js';
import type { ExtractProvenance } from '../io/run-record.js';
import { awtyVersion } from './version.js';

export { awtyVersion } from './version.js';

export function versions(): { awty: string; libtorch: string; node: string } {
  return { awty: awtyVersion(), libtorch: torch.version, node: process.versions.node };
}

export function hostName(): string {
  return os.hostname();
}

interface ManifestFile {
  settings?: { fps?: number; segLen?: number; sampling?: string; format?: string };
  videos?: { name: string; bytes: number; frames: number; seconds: number; skipped?: string }[];
  nextFrame?: number;
}

/** The extraction manifest of a data folder, or undefined when the folder was not made by `awty extract`. */
export async function readExtractProvenance(dir: string): Promise<ExtractProvenance | undefined> {
  let m: ManifestFile;
  try {
    m = JSON.parse(await readFile(path.join(dir, MANIFEST), 'utf8')) as ManifestFile;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`${path.join(dir, MANIFEST)}: cannot read the extraction manifest (${(e as Error).message})`);
  }
  const fps = m.settings?.fps;
  const segLen = m.settings?.segLen;
  if (typeof fps !== 'number' || !(fps > 0) || typeof segLen !== 'number' || !(segLen > 0)) {
    throw new Error(`${path.join(dir, MANIFEST)}: no valid settings.fps / settings.segLen`);
  }
  const frames = m.nextFrame ?? 0;
  const perEpisode = Math.round(segLen * fps);
  return {
    dir, fps, segLen, secondsPerEpisode: segLen, frames, episodes: Math.ceil(frames / perEpisode), sampling: m.settings?.sampling ?? 'exact',
    videos: (m.videos ?? []).map((v) => ({ name: v.name, bytes: v.bytes, seconds: v.seconds, frames: v.frames, ...(v.skipped ? { skipped: v.skipped } : {}) })),
  };
}

/** True when `dir` holds episodes packed by `awty extract --format shards`. */
export async function isShardFolder(dir: string): Promise<boolean> {
  return readFile(path.join(dir, SHARD_LIST)).then(() => true, () => false);
}

/**
 * Hours of video in the kept episodes of `dataset`: for each data folder, its kept frames ÷ the
 * manifest's fps ÷ 3600. Class names are `root/episode` paths (MultirootImageFolder, ShardDataset).
 * `hours` is null, with the reason, when a folder holding kept episodes has no manifest.
 */
export function hoursOfDataset(dataset: Dataset, dirs: string[], extracts: (ExtractProvenance | undefined)[]): { hours: number | null; method: string; frames: number } {
  const classRoot = dataset.classes.map((c) => {
    let best = -1;
    for (let d = 0; d < dirs.length; d++) {
      const r = dirs[d]!;
      if ((c.startsWith(r.endsWith('/') ? r : `${r}/`)) && (best < 0 || r.length > dirs[best]!.length)) best = d;
    }
    return best;
  });
  const framesPerDir = new Array<number>(dirs.length).fill(0);
  for (let i = 0; i < dataset.length; i++) {
    const d = classRoot[dataset.label(i)]!;
    if (d >= 0) framesPerDir[d]! += 1;
  }
  let seconds = 0;
  const parts: string[] = [];
  for (let d = 0; d < dirs.length; d++) {
    if (framesPerDir[d] === 0) continue;
    const ex = extracts[d];
    if (!ex) return { hours: null, method: `unknown: ${dirs[d]} has no extraction manifest (${MANIFEST}); give finetune --hours`, frames: dataset.length };
    seconds += framesPerDir[d]! / ex.fps;
    parts.push(`${framesPerDir[d]} frames / ${ex.fps} fps in ${dirs[d]}`);
  }
  if (!(seconds > 0)) return { hours: null, method: 'unknown: no frames kept', frames: dataset.length };
  return { hours: seconds / 3600, method: `kept frames / fps / 3600 (${parts.join('; ')})`, frames: dataset.length };
}
