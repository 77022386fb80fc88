// Video -> temporal episodes: the original reader's layout (class_NNNN/img_NNNN.jpeg, episode
// numbering running across videos), decoded by the system ffmpeg and encoded in parallel by sharp.
// Resumable: a manifest in the output folder records every finished video.
import { promises as fsp, existsSync } from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import sharp from 'sharp';
import { probeVideo, streamFrames, type FrameFilter, type VideoInfo } from './ffmpeg.js';
import { ShardWriter, SHARD_LIST } from './shards.js';
import { episodeName, frameName, compareCodePoints } from './names.js';

export interface ExtractOptions {
  videoDirs: string[];
  saveDir: string;
  fps?: number;
  segLen?: number;
  resizeMinor?: number;
  size?: number;
  cropOffsetY?: number;
  rotate?: 0 | 180;
  quality?: number;
  sampling?: 'exact' | 'seed';
  format?: 'files' | 'shards';
  /** frames per shard at most (shards also end at every video's end) */
  shardSize?: number;
  onBadVideo?: 'skip' | 'fail';
  /** JPEG encodes in flight */
  concurrency?: number;
  ffmpeg?: string;
  ffprobe?: string;
  onProgress?: (p: ExtractProgress) => void;
  onLog?: (line: string) => void;
}

export interface ExtractProgress {
  video: string;
  videoIndex: number;
  videos: number;
  /** seconds of video finished (whole videos plus the current one's position) */
  secondsDone: number;
  secondsTotal: number;
  frames: number;
}

export interface ExtractSummary {
  videos: number;
  skipped: { video: string; reason: string }[];
  hours: number;
  frames: number;
  episodes: number;
  framesPerEpisode: number;
  lastEpisodeFrames: number;
  seconds: number;
  format: 'files' | 'shards';
  settings: ExtractSettings;
}

interface ExtractSettings {
  fps: number;
  segLen: number;
  resizeMinor: number;
  size: number;
  cropOffsetY: number;
  rotate: 0 | 180;
  quality: number;
  sampling: 'exact' | 'seed';
  format: 'files' | 'shards';
  shardSize: number;
}

interface ManifestVideo {
  name: string;
  bytes: number;
  frames: number;
  seconds: number;
  skipped?: string;
}

interface Manifest {
  version: 1;
  settings: ExtractSettings;
  videos: ManifestVideo[];
  nextFrame: number;
  nextShard: number;
}

export const MANIFEST = '.awty-extract.json';
export const SUMMARY = 'awty-extract-summary.json';


/** Videos in the given folders: each folder's regular files in sorted (code point) order. */
export async function listVideos(dirs: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const d of dirs) {
    let entries;
    try {
      entries = await fsp.readdir(d, { withFileTypes: true });
    } catch (e) {
      throw new Error(`cannot read video folder ${d}: ${(e as Error).message}`);
    }
    const names = entries.filter((e) => e.isFile() || e.isSymbolicLink()).map((e) => e.name).filter((n) => !n.startsWith('.'));
    names.sort(compareCodePoints);
    for (const n of names) out.push(path.join(d, n));
  }
  return out;
}


/** The original's sampling step: every (int(native_fps) // fps + 1)-th decoded frame. */
export function seedStep(nativeFps: number, fps: number): number {
  return Math.floor(Math.trunc(nativeFps) / fps) + 1;
}

async function writeAtomic(file: string, data: string | Buffer): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, data);
  await fsp.rename(tmp, file);
}

function settingsOf(o: ExtractOptions): ExtractSettings {
  const s: ExtractSettings = {
    fps: o.fps ?? 5,
    segLen: o.segLen ?? 288,
    resizeMinor: o.resizeMinor ?? 256,
    size: o.size ?? 224,
    cropOffsetY: o.cropOffsetY ?? -16,
    rotate: o.rotate ?? 180,
    quality: o.quality ?? 95,
    sampling: o.sampling ?? 'exact',
    format: o.format ?? 'files',
    shardSize: o.shardSize ?? 10000,
  };
  if (!(s.fps > 0)) throw new Error(`--fps must be positive, got ${s.fps}`);
  if (!(s.segLen > 0)) throw new Error(`--seg-len must be positive, got ${s.segLen}`);
  if (!Number.isInteger(s.segLen * s.fps)) throw new Error(`--seg-len x --fps must be a whole number of frames, got ${s.segLen * s.fps}`);
  if (s.sampling === 'seed' && !Number.isInteger(s.fps)) throw new Error('--sampling seed needs an integer --fps (the original\'s arithmetic is integer)');
  if (s.size > s.resizeMinor) throw new Error(`--size ${s.size} is larger than --resize-minor ${s.resizeMinor}`);
  if (s.rotate !== 0 && s.rotate !== 180) throw new Error(`--rotate must be 0 or 180, got ${String(s.rotate)}`);
  if (!(s.quality >= 1 && s.quality <= 100)) throw new Error(`--quality must be in 1..100, got ${s.quality}`);
  return s;
}

/** Runs (or resumes) an extraction; returns the summary also written to `<save-dir>/awty-extract-summary.json`. */
export async function extract(opts: ExtractOptions): Promise<ExtractSummary> {
  const started = Date.now();
  const settings = settingsOf(opts);
  const log = opts.onLog ?? ((): void => undefined);
  const perEpisode = settings.segLen * settings.fps;
  const videos = await listVideos(opts.videoDirs);
  if (!videos.length) throw new Error(`no videos found in ${opts.videoDirs.join(', ')}`);
  await fsp.mkdir(opts.saveDir, { recursive: true });
  const manifestPath = path.join(opts.saveDir, MANIFEST);

  let manifest: Manifest = { version: 1, settings, videos: [], nextFrame: 0, nextShard: 0 };
  if (existsSync(manifestPath)) {
    const old = JSON.parse(await fsp.readFile(manifestPath, 'utf8')) as Manifest;
    if (JSON.stringify(old.settings) !== JSON.stringify(settings)) {
      throw new Error(`${opts.saveDir} holds an extraction with other settings (${JSON.stringify(old.settings)}); use another --save-dir`);
    }
    for (let i = 0; i < old.videos.length; i++) {
      const v = old.videos[i]!;
      if (videos[i] === undefined || path.basename(videos[i]!) !== v.name) {
        throw new Error(`the videos changed since the extraction in ${opts.saveDir} began (expected ${v.name} at position ${i}); use another --save-dir`);
      }
    }
    manifest = old;
    if (old.videos.length) log(`resuming after ${old.videos.length} finished video(s), at frame ${old.nextFrame}`);
  }
  await cleanPartial(opts.saveDir, settings, manifest, perEpisode);

  const infos: (VideoInfo | null)[] = [];
  let secondsTotal = 0;
  for (const v of videos) {
    const info = await probeVideo(v, opts.ffprobe).catch(() => null);
    infos.push(info);
    secondsTotal += info?.duration ?? 0;
  }
  let secondsDone = manifest.videos.reduce((a, v) => a + v.seconds, 0);
  const concurrency = Math.max(1, opts.concurrency ?? Math.max(2, os.availableParallelism() * 2));

  for (let vi = manifest.videos.length; vi < videos.length; vi++) {
    const file = videos[vi]!;
    const name = path.basename(file);
    const info = infos[vi];
    const bytes = (await fsp.stat(file)).size;
    const startFrame = manifest.nextFrame;
    let reason: string | null = null;
    let frames = 0;
    const shardStart = manifest.nextShard;
    let shards: ShardWriter | null = null;
    try {
      if (!info) {
        const e = await probeVideo(file, opts.ffprobe).then(() => 'unknown error', (err: Error) => err.message);
        throw new Error(`not a readable video (${e})`);
      }
      if (bytes === 0) throw new Error('zero-length file');
      const filter: FrameFilter = {
        sampling: settings.sampling, fps: settings.fps, resizeMinor: settings.resizeMinor, size: settings.size,
        cropOffsetY: settings.cropOffsetY, rotate: settings.rotate,
      };
      if (settings.sampling === 'seed') {
        if (!(info.fps > 0)) throw new Error('its frame rate is unknown, needed by --sampling seed');
        filter.step = seedStep(info.fps, settings.fps);
      }
      const secPerFrame = settings.sampling === 'seed' ? filter.step! / Math.trunc(info.fps) : 1 / settings.fps;
      if (settings.format === 'shards') shards = new ShardWriter(opts.saveDir, shardStart, settings.shardSize, perEpisode);
      const inflight = new Set<Promise<void>>();
      let firstError: Error | null = null;
      const quality = settings.quality;
      const sz = settings.size;
      const count = await streamFrames(file, filter, async (frame) => {
        if (firstError) throw firstError;
        const g = startFrame + frames++;
        const encode = sharp(frame, { raw: { width: sz, height: sz, channels: 3 } }).jpeg({ quality }).toBuffer();
        let p: Promise<void>;
        if (shards) {
          p = shards.add(g, encode);
        } else {
          const dir = path.join(opts.saveDir, episodeName(Math.floor(g / perEpisode)));
          const target = path.join(dir, frameName(g % perEpisode));
          p = encode.then(async (jpeg) => {
            await fsp.mkdir(dir, { recursive: true });
            const tmp = `${target}.tmp`;
            await fsp.writeFile(tmp, jpeg);
            await fsp.rename(tmp, target);
          });
        }
        const tracked = p.catch((e: unknown) => { firstError ??= e instanceof Error ? e : new Error(String(e)); }).finally(() => inflight.delete(tracked));
        inflight.add(tracked);
        if (inflight.size >= concurrency) await Promise.race(inflight);
        opts.onProgress?.({ video: name, videoIndex: vi, videos: videos.length, secondsDone: secondsDone + frames * secPerFrame, secondsTotal, frames: startFrame + frames });
      }, { ffmpeg: opts.ffmpeg });
      await Promise.all(inflight);
      if (firstError) throw firstError;
      if (count === 0) throw new Error('no frames decoded (empty or unreadable video)');
      if (shards) manifest.nextShard = await shards.close();
    } catch (e) {
      reason = (e as Error).message;
      if (shards) await shards.abort();
    }
    if (reason !== null) {
      if ((opts.onBadVideo ?? 'fail') === 'fail') {
        throw new Error(`bad video ${file}: ${reason} (finished videos are kept; rerun with --on-bad-video skip to pass over it)`);
      }
      log(`skipping bad video ${file}: ${reason}`);
      if (settings.format === 'files') await removeFrames(opts.saveDir, startFrame, startFrame + frames, perEpisode);
      manifest.videos.push({ name, bytes, frames: 0, seconds: 0, skipped: reason });
    } else {
      const seconds = info?.duration ?? 0;
      manifest.videos.push({ name, bytes, frames, seconds });
      manifest.nextFrame = startFrame + frames;
      secondsDone += seconds;
    }
    await writeAtomic(manifestPath, JSON.stringify(manifest, null, 1));
  }

  const total = manifest.nextFrame;
  if (settings.format === 'shards') await ShardWriter.writeList(opts.saveDir, manifest.nextShard, perEpisode, total);
  const episodes = Math.ceil(total / perEpisode);
  const summary: ExtractSummary = {
    videos: manifest.videos.filter((v) => !v.skipped).length,
    skipped: manifest.videos.filter((v) => v.skipped).map((v) => ({ video: v.name, reason: v.skipped! })),
    hours: manifest.videos.reduce((a, v) => a + v.seconds, 0) / 3600,
    frames: total,
    episodes,
    framesPerEpisode: perEpisode,
    lastEpisodeFrames: total - (episodes - 1) * perEpisode,
    seconds: (Date.now() - started) / 1000,
    format: settings.format,
    settings,
  };
  await writeAtomic(path.join(opts.saveDir, SUMMARY), JSON.stringify(summary, null, 1));
  return summary;
}

/** Removes what an interrupted run may have left: temporary files, and shards past the manifest. */
async function cleanPartial(saveDir: string, s: ExtractSettings, m: Manifest, perEpisode: number): Promise<void> {
  if (s.format === 'shards') {
    for (const n of await fsp.readdir(saveDir)) {
      const mm = /^shard-(\d+)\.(tar|idx)(\..*tmp)?$/.exec(n);
      if (n.endsWith('.tmp') || (mm && Number(mm[1]) >= m.nextShard) || n === SHARD_LIST) await fsp.rm(path.join(saveDir, n), { force: true });
    }
    return;
  }
  for (let c = Math.floor(m.nextFrame / perEpisode); ; c++) {
    const dir = path.join(saveDir, episodeName(c));
    let names: string[];
    try {
      names = await fsp.readdir(dir);
    } catch {
      break;
    }
    for (const n of names) if (n.endsWith('.tmp')) await fsp.rm(path.join(dir, n), { force: true });
  }
}

async function removeFrames(saveDir: string, from: number, to: number, perEpisode: number): Promise<void> {
  for (let g = from; g < to; g++) {
    await fsp.rm(path.join(saveDir, episodeName(Math.floor(g / perEpisode)), frameName(g % perEpisode)), { force: true });
  }
  // episode folders this video began are removed when nothing else is in them
  for (let c = Math.floor(from / perEpisode); c <= Math.floor(Math.max(from, to - 1) / perEpisode); c++) {
    await fsp.rmdir(path.join(saveDir, episodeName(c))).catch(() => undefined);
  }
}
