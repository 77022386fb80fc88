// Video -> temporal episodes: the original reader's layout (class_NNNN/img_NNNN.jpeg, episode
// numbering running across videos), decoded by the system ffmpeg and JPEG-encoded (sharp's bytes: see jpeg.ts) in parallel
// off the main thread, by default on encoder threads in the idle scheduling class (--encoder-nice), which read the frames from ffmpeg's pipe.
// Resumable: a manifest in the output folder records the settings, the inputs and every finished
// video; frames reach the disk through an EpisodeWriter (episode folders or tar shards).
import { promises as fsp, existsSync, mkdirSync, openSync, writeSync, renameSync, closeSync, fsync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import * as os from 'node:os';
import { IDLE_FALLBACK_NICE, isEncoderPriority, rgbJpegEncoder, type EncoderPriority, type RgbJpegFileEncoder } from './jpeg.js';
import { decodeToReader, probeVideo, streamFrames, type FrameFilter, type PipeRead, type VideoInfo } from './ffmpeg.js';
import { ShardWriter, SHARD_LIST } from './shards.js';
import { syncDir, writeDataAtomic } from '../io/atomic.js';
import { describeFsError, ensureWritableDir, isOutputError } from '../io/outdir.js';
import { episodeName, frameName, compareCodePoints } from './names.js';
import { EXTRACT_DEFAULTS } from './extract-defaults.js';
export { EXTRACT_DEFAULTS } from './extract-defaults.js';

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
  /** JPEG encodes (and their writes) in flight, all videos together (default 2 x cores) */
  concurrency?: number;
  /**
   * Videos decoded at once (default 1). The output is the same as with 1, byte for byte: a video
   * decoded ahead of its turn keeps its JPEGs in a temporary file in --save-dir
   * (`.awty-stage-NNNNNN.tmp`) until the videos before it are finished and its frame numbers known.
   */
  jobs?: number;
  /**
   * Priority of the JPEG encoder's threads (default EXTRACT_DEFAULTS.encoderNice, 'idle'): 'idle'
   * (Linux's idle scheduling class) or a niceness 1..19 runs the encodes on threads of their own at
   * that lower priority, so that they fill the CPU that ffmpeg's decoding leaves idle instead of
   * taking it from the decoder; into episode folders those threads also read the frames from
   * ffmpeg's pipe and write the files. 0: libuv's pool at the process's priority, frames read on the
   * main thread. The output is the same.
   */
  encoderNice?: EncoderPriority;
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

/** One input video as the run found it: a changed path, size or modification time is a changed input. */
interface InputFile {
  path: string;
  bytes: number;
  mtimeMs: number;
}

interface ManifestVideo {
  name: string;
  /** absolute path (manifests of version 1 lack it) */
  path?: string;
  bytes: number;
  frames: number;
  seconds: number;
  skipped?: string;
}

interface Manifest {
  version: 1 | 2;
  settings: ExtractSettings;
  /** every input video of the run, in order (version 2) */
  inputs?: InputFile[];
  /** the finished (or skipped) videos, in order */
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

function settingsOf(o: ExtractOptions): ExtractSettings {
  const d = EXTRACT_DEFAULTS;
  const s: ExtractSettings = {
    fps: o.fps ?? d.fps,
    segLen: o.segLen ?? d.segLen,
    resizeMinor: o.resizeMinor ?? d.resizeMinor,
    size: o.size ?? d.size,
    cropOffsetY: o.cropOffsetY ?? d.cropOffsetY,
    rotate: o.rotate ?? d.rotate,
    quality: o.quality ?? d.quality,
    sampling: o.sampling ?? d.sampling,
    format: o.format ?? d.format,
    shardSize: o.shardSize ?? d.shardSize,
  };
  const positive = (flag: string, v: number, integer: boolean): void => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) {
      throw new Error(`${flag} must be a positive ${integer ? 'whole number' : 'number'}, got ${String(v)}`);
    }
  };
  positive('--fps', s.fps, false);
  positive('--seg-len', s.segLen, false);
  positive('--resize-minor', s.resizeMinor, true);
  positive('--size', s.size, true);
  positive('--shard-size', s.shardSize, true);
  if (!Number.isInteger(s.cropOffsetY)) throw new Error(`--crop-offset-y must be a whole number, got ${String(s.cropOffsetY)}`);
  if (!Number.isInteger(s.segLen * s.fps)) throw new Error(`--seg-len x --fps must be a whole number of frames, got ${s.segLen * s.fps}`);
  if (s.sampling !== 'exact' && s.sampling !== 'seed') throw new Error(`--sampling must be exact or seed, got ${String(s.sampling)}`);
  if (s.format !== 'files' && s.format !== 'shards') throw new Error(`--format must be files or shards, got ${String(s.format)}`);
  if (s.sampling === 'seed' && !Number.isInteger(s.fps)) throw new Error('--sampling seed needs an integer --fps (the original\'s arithmetic is integer)');
  if (s.size > s.resizeMinor) throw new Error(`--size ${s.size} is larger than --resize-minor ${s.resizeMinor}`);
  // the crop's rows on the shorter side (resize-minor pixels): trunc(m/2) - trunc(size/2) + offset, size rows
  const top = Math.floor(s.resizeMinor / 2) - Math.floor(s.size / 2) + s.cropOffsetY;
  if (top < 0 || top + s.size > s.resizeMinor) {
    throw new Error(`--crop-offset-y ${s.cropOffsetY} puts the ${s.size}-px crop outside a frame resized to ${s.resizeMinor} px (rows ${top}..${top + s.size - 1})`);
  }
  if (s.rotate !== 0 && s.rotate !== 180) throw new Error(`--rotate must be 0 or 180, got ${String(s.rotate)}`);
  if (!(Number.isInteger(s.quality) && s.quality >= 1 && s.quality <= 100)) throw new Error(`--quality must be a whole number in 1..100, got ${s.quality}`);
  return s;
}

/** Where a video's frames go: episode folders of JPEGs, or tar shards. One writer per video. */
interface EpisodeWriter {
  /** Queues frame `g` (global number) whose JPEG is being encoded; resolves once it is written. */
  add(g: number, jpeg: Promise<Buffer>): Promise<void>;
  /** The video is done: make its frames durable (fsync). */
  commit(): Promise<void>;
  /** The video failed: remove everything this writer wrote. */
  abort(): Promise<void>;
}

/** Frames whose files are written and still open, waiting for their fsync (then closed). */
const SYNC_BATCH = 64;

/**
 * class_NNNN/img_NNNN.jpeg. Each frame is written with plain synchronous calls on the main thread
 * (open `.img_NNNN.jpeg.tmp`, one write of the whole JPEG, rename into place: a JPEG page-cache write
 * takes tens of microseconds, less than handing the open, write, fsync, close and rename each to
 * libuv's pool, which the JPEG encodes also need); its descriptor stays open, and the fsyncs are made
 * off the main thread in batches of SYNC_BATCH and at `commit`. So a killed run leaves only whole
 * JPEGs under their names (and `.tmp` files, removed on resume), and a video is recorded in the
 * manifest only after `commit` has made every one of its frames and folders durable.
 */
class FolderWriter implements EpisodeWriter {
  private readonly dirs = new Set<string>();
  private last: number;
  /** written frames' descriptors not yet fsynced */
  private unsynced: number[] = [];
  /** the fsyncs under way (one batch after another); rejects with the first error */
  private syncing: Promise<void> = Promise.resolve();
  private syncError: unknown = null;

  constructor(private readonly saveDir: string, private readonly startFrame: number, private readonly perEpisode: number) {
    this.last = startFrame;
  }

  async add(g: number, jpeg: Promise<Buffer>): Promise<void> {
    this.last = Math.max(this.last, g + 1);
    const buf = await jpeg;
    if (this.syncError) throw this.syncError;
    const { tmp, final } = this.pathsOf(g);
    const fd = openSync(tmp, 'w', 0o644);
    try {
      for (let off = 0; off < buf.length;) off += writeSync(fd, buf, off, buf.length - off);
      renameSync(tmp, final);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    this.written(fd);
  }

  /** Frame `g` from its RGB pixels, encoded and written (temporary file, rename) by `encodeToFile` off the main thread. */
  async addRgb(g: number, rgb: Buffer, encodeToFile: RgbJpegFileEncoder): Promise<void> {
    this.last = Math.max(this.last, g + 1);
    if (this.syncError) throw this.syncError;
    const { tmp, final } = this.pathsOf(g);
    this.written(await encodeToFile(rgb, tmp, final));
  }

  /**
   * Frames startFrame .. startFrame + n - 1, begun by the compiled frame sink (which made their
   * folders and fsynced their files): theirs to commit (the folders' fsyncs) or to remove.
   */
  adopt(n: number): void {
    if (n <= 0) return;
    this.last = Math.max(this.last, this.startFrame + n);
    for (let c = Math.floor(this.startFrame / this.perEpisode); c <= Math.floor((this.startFrame + n - 1) / this.perEpisode); c++) {
      this.dirs.add(path.join(this.saveDir, episodeName(c)));
    }
  }

  /** Frame g's temporary and final paths, its episode folder made first. */
  private pathsOf(g: number): { tmp: string; final: string } {
    const dir = path.join(this.saveDir, episodeName(Math.floor(g / this.perEpisode)));
    if (!this.dirs.has(dir)) {
      try {
        mkdirSync(dir);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      this.dirs.add(dir);
    }
    const name = frameName(g % this.perEpisode);
    return { tmp: path.join(dir, `.${name}.tmp`), final: path.join(dir, name) };
  }

  /** A written frame's descriptor, fsynced (then closed) with its batch. */
  private written(fd: number): void {
    this.unsynced.push(fd);
    if (this.unsynced.length >= SYNC_BATCH) this.syncBatch();
  }

  /** fsyncs (and closes) the descriptors written so far, after the batches before them. */
  private syncBatch(): void {
    const fds = this.unsynced;
    this.unsynced = [];
    this.syncing = this.syncing.then(async () => {
      try {
        if (this.syncError === null) await syncAll(fds);
      } finally {
        for (const fd of fds) closeSync(fd);
      }
    }).catch((e: unknown) => { this.syncError ??= e; });
  }

  async commit(): Promise<void> {
    this.syncBatch();
    await this.syncing;
    if (this.syncError) throw this.syncError;
    for (const d of this.dirs) await syncDir(d);
    await syncDir(this.saveDir);
  }

  async abort(): Promise<void> {
    for (const fd of this.unsynced) closeSync(fd);
    this.unsynced = [];
    await this.syncing;
    await removeFrames(this.saveDir, this.startFrame, this.last, this.perEpisode);
  }
}

/** fsyncs the descriptors, two at a time on libuv's pool (the rest of the pool stays free for the encodes). */
async function syncAll(fds: number[]): Promise<void> {
  const one = (fd: number): Promise<void> => new Promise((resolve, reject) => fsync(fd, (e) => (e ? reject(e) : resolve())));
  for (let i = 0; i < fds.length; i += 2) await Promise.all(fds.slice(i, i + 2).map(one));
}

/** Tar shards (ShardWriter); a video's shards become permanent when the manifest lists it. */
class ShardEpisodeWriter implements EpisodeWriter {
  private readonly shards: ShardWriter;
  next: number;

  constructor(saveDir: string, firstShard: number, shardSize: number, perEpisode: number) {
    this.shards = new ShardWriter(saveDir, firstShard, shardSize, perEpisode);
    this.next = firstShard;
  }

  add(g: number, jpeg: Promise<Buffer>): Promise<void> {
    return this.shards.add(g, jpeg);
  }

  async commit(): Promise<void> {
    this.next = await this.shards.close();
  }

  abort(): Promise<void> {
    return this.shards.abort();
  }
}

function inputsOf(files: string[]): Promise<InputFile[]> {
  return Promise.all(files.map(async (f) => {
    const st = await fsp.stat(f).catch((e: Error) => { throw new Error(`cannot read video ${f}: ${e.message}`); });
    return { path: path.resolve(f), bytes: st.size, mtimeMs: st.mtimeMs };
  }));
}

function describeInput(v: InputFile | undefined): string {
  return v ? `${v.path} (${v.bytes} bytes, modified ${new Date(v.mtimeMs).toISOString()})` : 'nothing';
}

/** The first difference between the inputs a manifest recorded and today's, or null. */
function inputChange(old: Manifest, now: InputFile[]): string | null {
  if (old.inputs) {
    for (let i = 0; i < Math.max(old.inputs.length, now.length); i++) {
      const a = old.inputs[i], b = now[i];
      if (!a || !b || a.path !== b.path || a.bytes !== b.bytes || a.mtimeMs !== b.mtimeMs) {
        return `video ${i + 1} was ${describeInput(a)}, now ${describeInput(b)}`;
      }
    }
    return null;
  }
  // version 1 manifests recorded names and sizes of the finished videos only
  for (let i = 0; i < old.videos.length; i++) {
    const v = old.videos[i]!, b = now[i];
    if (!b || path.basename(b.path) !== v.name || b.bytes !== v.bytes) return `video ${i + 1} was ${v.name} (${v.bytes} bytes), now ${describeInput(b)}`;
  }
  return null;
}

/** A video whose decoded length falls short of its container's: why it is bad, or null. */
function shortfall(info: VideoInfo, decodedSeconds: number, secPerFrame: number, diagnostics: string): string | null {
  if (!(info.duration > 0)) return null;
  const missing = info.duration - decodedSeconds;
  const tolerance = diagnostics ? 2 * secPerFrame : Math.max(1, 0.05 * info.duration);
  if (missing <= tolerance) return null;
  const why = diagnostics ? `; ffmpeg: ${diagnostics.split('\n').slice(-2).join(' ')}` : '';
  return `decoded only ${decodedSeconds.toFixed(2)} s of its ${info.duration.toFixed(2)} s (truncated or damaged${why})`;
}

/** What decoding one video gave: its frames (in place, or staged), or why it failed. */
type Outcome =
  | { ok: true; frames: number; seconds: number; nextShard: number; stage: Stage | null }
  | { ok: false; error: unknown };

/** At most `max` holders at once; the others wait in order. */
class Limiter {
  private held = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly max: number) {}

  acquire(): Promise<void> | void {
    if (this.held < this.max) {
      this.held++;
      return;
    }
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const w = this.waiting.shift();
    if (w) w();
    else this.held--;
  }
}

export const STAGE_PREFIX = '.awty-stage-';

/**
 * The JPEGs of a video decoded ahead of its turn, in frame order, appended to one temporary file in
 * the output folder (`.awty-stage-NNNNNN.tmp`, removed once placed; a rerun removes leftovers).
 */
class Stage {
  readonly file: string;
  private readonly fh: Promise<FileHandle>;
  private readonly sizes: number[] = [];
  private tail: Promise<void> = Promise.resolve();
  private pos = 0;
  private error: unknown = null;

  constructor(saveDir: string, vi: number) {
    this.file = path.join(saveDir, `${STAGE_PREFIX}${String(vi).padStart(6, '0')}.tmp`);
    this.fh = fsp.open(this.file, 'w+', 0o644);
    this.fh.catch(() => undefined);
  }

  /** Appends the next frame's JPEG (in the order of the calls); resolves once it is written. */
  add(jpeg: Promise<Buffer>): Promise<void> {
    const p = Promise.all([this.tail, jpeg, this.fh]).then(async ([, buf, fh]) => {
      if (this.error) throw this.error;
      for (let off = 0; off < buf.length;) off += (await fh.write(buf, off, buf.length - off, this.pos + off)).bytesWritten;
      this.pos += buf.length;
      this.sizes.push(buf.length);
    });
    this.tail = p.catch((e: unknown) => { this.error ??= e; });
    return p;
  }

  /** All frames are added: waits for the last write. */
  async finish(): Promise<void> {
    await this.tail;
    if (this.error) throw this.error;
  }

  /** The frames back, in order, read in blocks of about 4 MB. */
  async *read(): AsyncGenerator<Buffer> {
    const fh = await this.fh;
    let pos = 0;
    for (let i = 0; i < this.sizes.length;) {
      let j = i, bytes = 0;
      while (j < this.sizes.length && (j === i || bytes + this.sizes[j]! <= 4 << 20)) bytes += this.sizes[j++]!;
      const block = Buffer.allocUnsafe(bytes);
      for (let off = 0; off < bytes;) {
        const { bytesRead } = await fh.read(block, off, bytes - off, pos + off);
        if (bytesRead === 0) throw new Error(`${this.file}: ended early`);
        off += bytesRead;
      }
      pos += bytes;
      for (let off = 0; i < j; i++) {
        yield block.subarray(off, off + this.sizes[i]!);
        off += this.sizes[i]!;
      }
    }
  }

  async remove(): Promise<void> {
    await this.tail;
    await (await this.fh.catch(() => null))?.close().catch(() => undefined);
    await fsp.rm(this.file, { force: true });
  }
}

/** Runs (or resumes) an extraction; returns the summary also written to `<save-dir>/awty-extract-summary.json`. */
export async function extract(opts: ExtractOptions): Promise<ExtractSummary> {
  const started = Date.now();
  const settings = settingsOf(opts);
  for (const [flag, v] of [['--encodes', opts.concurrency], ['--jobs', opts.jobs]] as const) {
    if (v !== undefined && !(Number.isInteger(v) && v > 0)) throw new Error(`${flag} must be a positive whole number, got ${String(v)}`);
  }
  const encoderPriority: unknown = opts.encoderNice ?? EXTRACT_DEFAULTS.encoderNice;
  if (!isEncoderPriority(encoderPriority)) throw new Error(`--encoder-nice must be 'idle' or a whole number 0..19, got ${String(encoderPriority)}`);
  const log = opts.onLog ?? ((): void => undefined);
  const perEpisode = settings.segLen * settings.fps;
  const videos = await listVideos(opts.videoDirs);
  if (!videos.length) throw new Error(`no videos found in ${opts.videoDirs.join(', ')}`);
  const inputs = await inputsOf(videos);
  await ensureWritableDir(opts.saveDir, '--save-dir');
  const manifestPath = path.join(opts.saveDir, MANIFEST);

  let manifest: Manifest = { version: 2, settings, inputs, videos: [], nextFrame: 0, nextShard: 0 };
  if (existsSync(manifestPath)) {
    const old = JSON.parse(await fsp.readFile(manifestPath, 'utf8')) as Manifest;
    if (JSON.stringify(old.settings) !== JSON.stringify(settings)) {
      throw new Error(`${opts.saveDir} holds an extraction with other settings (${JSON.stringify(old.settings)}); use another --save-dir`);
    }
    const change = inputChange(old, inputs);
    if (change) throw new Error(`the input videos changed since the extraction in ${opts.saveDir} began: ${change}; use another --save-dir (or restore the inputs)`);
    manifest = { ...old, version: 2, inputs };
    if (old.videos.length) log(`resuming after ${old.videos.length} finished video(s), at frame ${old.nextFrame}`);
  }
  // the settings and inputs are on disk before the first frame, so that a rerun after a kill is checked
  await writeDataAtomic(manifestPath, JSON.stringify(manifest, null, 1));
  await cleanPartial(opts.saveDir, settings, manifest, perEpisode);

  // the videos left are probed in the background, two at a time in order, while the first decodes
  // (a probe costs about as much as starting ffmpeg); the finished ones count with their decoded seconds
  let secondsTotal = manifest.videos.reduce((a, v) => a + v.seconds, 0);
  const probing = new Limiter(2);
  const probes = new Map<number, Promise<VideoInfo | string>>();
  for (let vi = manifest.videos.length; vi < videos.length; vi++) {
    probes.set(vi, (async (): Promise<VideoInfo | string> => {
      await probing.acquire();
      try {
        const info = await probeVideo(videos[vi]!, opts.ffprobe);
        secondsTotal += info.duration;
        return info;
      } catch (e) {
        return (e as Error).message;
      } finally {
        probing.release();
      }
    })());
  }
  let secondsDone = manifest.videos.reduce((a, v) => a + v.seconds, 0);
  const concurrency = Math.max(1, opts.concurrency ?? Math.max(2, os.availableParallelism() * 2));
  const jobs = opts.jobs ?? 1;
  const encodes = new Limiter(concurrency);
  const jpeg = await rgbJpegEncoder(settings.size, settings.size, settings.quality, encoderPriority);
  // once the idle-class threads have starved (other work keeps every core busy), the next videos
  // start at the niceness they fell back to rather than starve again
  const fallback = encoderPriority === 'idle' ? await rgbJpegEncoder(settings.size, settings.size, settings.quality, IDLE_FALLBACK_NICE) : jpeg;
  let starved = false;
  const makeWriter = (startFrame: number, firstShard: number): EpisodeWriter => (settings.format === 'shards'
    ? new ShardEpisodeWriter(opts.saveDir, firstShard, settings.shardSize, perEpisode)
    : new FolderWriter(opts.saveDir, startFrame, perEpisode));
  // frames (and seconds) decoded so far by the videos not yet in the manifest, for the progress report
  const decoded = new Map<number, { frames: number; seconds: number }>();
  let framesDone = manifest.nextFrame;

  /**
   * Decodes video `vi` and encodes its frames. The video whose predecessors are all in the manifest
   * writes its frames in place (numbered from `manifest.nextFrame`) and commits them; a video decoded
   * ahead of its turn (`--jobs` > 1) keeps its JPEGs in a Stage until its first frame number is known.
   */
  const runVideo = async (vi: number, direct: boolean, cancelled: () => boolean): Promise<Outcome> => {
    const file = videos[vi]!;
    const startFrame = manifest.nextFrame;
    const writer = direct ? makeWriter(startFrame, manifest.nextShard) : null;
    const stage = direct ? null : new Stage(opts.saveDir, vi);
    // into episode folders the compiled encoder reads the frames from ffmpeg's pipe itself (a frame
    // sink: no JS between decoder and encoder) and writes each JPEG, on its own threads
    const sinkEncoder = starved ? fallback : jpeg;
    const sink = writer instanceof FolderWriter && sinkEncoder.frameSink && sinkEncoder.pipe && encoderPriority !== 0
      ? { writer, frameSink: sinkEncoder.frameSink, pipe: sinkEncoder.pipe } : null;
    const folder = writer instanceof FolderWriter && jpeg.encodeToFile ? { writer, encodeToFile: jpeg.encodeToFile } : null;
    const addFrame = (k: number, frame: Buffer): Promise<void> => (folder ? folder.writer.addRgb(startFrame + k, frame, folder.encodeToFile)
      : writer ? writer.add(startFrame + k, jpeg.encode(frame)) : stage!.add(jpeg.encode(frame)));
    const inflight = new Set<Promise<void>>();
    let frames = 0;
    const progress = { frames: 0, seconds: 0 };
    decoded.set(vi, progress);
    try {
      const checked = (p: VideoInfo | string): VideoInfo => {
        if (typeof p === 'string') throw new Error(`not a readable video (${p})`);
        if (inputs[vi]!.bytes === 0) throw new Error('zero-length file');
        return p;
      };
      // --sampling seed needs the frame rate before decoding; 'exact' decodes while the probe runs
      let info: VideoInfo | null = settings.sampling === 'seed' || inputs[vi]!.bytes === 0 ? checked(await probes.get(vi)!) : null;
      const filter: FrameFilter = {
        sampling: settings.sampling, fps: settings.fps, resizeMinor: settings.resizeMinor, size: settings.size,
        cropOffsetY: settings.cropOffsetY, rotate: settings.rotate,
      };
      if (info && settings.sampling === 'seed') {
        if (!(info.fps > 0)) throw new Error('its frame rate is unknown, needed by --sampling seed');
        filter.step = seedStep(info.fps, settings.fps);
      }
      const secPerFrame = info && settings.sampling === 'seed' ? filter.step! / Math.trunc(info.fps) : 1 / settings.fps;
      let firstError: unknown = null;
      let diagnostics = '';
      const name = path.basename(file);
      let streamError: unknown = null;
      const report = (): void => {
        progress.frames = frames;
        progress.seconds = frames * secPerFrame;
        if (opts.onProgress) {
          let sec = secondsDone;
          for (const p of decoded.values()) sec += p.seconds;
          opts.onProgress({ video: name, videoIndex: vi, videos: videos.length, secondsDone: sec, secondsTotal, frames: framesDone });
        }
      };
      const streamOpts = { ffmpeg: opts.ffmpeg, onDiagnostics: (d: string): void => { diagnostics = d; } };
      const count = sink ? await decodeToReader(file, filter, sink.pipe, (fd, stop) => new Promise<PipeRead>((resolve, reject) => {
        let stopped: unknown = null;
        sink.frameSink(fd, { dir: opts.saveDir, startFrame, perEpisode, threads: os.availableParallelism() }, (ev) => {
          if (ev.done) {
            framesDone += ev.read - frames;
            frames = ev.read;
            // what it began is this writer's, to commit or to remove
            sink.writer.adopt(ev.read);
            if (ev.error) reject(ev.error);
            else if (stopped) reject(stopped);
            else resolve({ frames: ev.read, partial: ev.partial });
            if (ev.fallback) {
              starved = true;
              // told once settled, outside the addon's channel (the caller's onLog may throw)
              queueMicrotask(() => log(`${name}: the encoder's idle-class threads were starved (other work keeps every core busy); `
                + `threads at niceness ${IDLE_FALLBACK_NICE} took over, and the next videos start at that niceness`));
            }
            return undefined;
          }
          if (ev.error || stopped) { stop(); return true; }
          framesDone += ev.written - frames;
          frames = ev.written;
          try {
            if (cancelled()) throw new Error('cancelled');
            report();
          } catch (e) {
            // called from the addon's channel: a throw here would be an uncaught exception
            stopped = e;
            stop();
            return true;
          }
          return undefined;
        });
      }), streamOpts).catch((e: unknown) => { streamError = e; return 0; }) : await streamFrames(file, filter, async (frame) => {
        if (firstError) throw firstError;
        if (cancelled()) throw new Error('cancelled');
        await encodes.acquire();
        const k = frames++;
        // encoded (and written) off the main thread while ffmpeg decodes the next frames into the pipe
        const tracked: Promise<void> = addFrame(k, frame).catch((e: unknown) => { firstError ??= e; })
          .finally(() => { inflight.delete(tracked); encodes.release(); });
        inflight.add(tracked);
        framesDone++;
        report();
      }, streamOpts).catch((e: unknown) => { streamError = e; return 0; });
      // an unreadable video is named by the probe's message, whatever ffmpeg made of it
      info ??= checked(await probes.get(vi)!);
      if (streamError) throw streamError;
      await Promise.all(inflight);
      if (firstError) throw firstError;
      if (count === 0) throw new Error('no frames decoded (empty or unreadable video)');
      // hours are what was decoded, not what the container claims
      const seconds = info.duration > 0 ? Math.min(info.duration, count * secPerFrame) : count * secPerFrame;
      const short = shortfall(info, count * secPerFrame, secPerFrame, diagnostics);
      if (short) throw new Error(short);
      if (writer) await writer.commit();
      else await stage!.finish();
      return { ok: true, frames, seconds, nextShard: writer instanceof ShardEpisodeWriter ? writer.next : 0, stage };
    } catch (e) {
      await Promise.all(inflight);
      framesDone -= frames;
      decoded.delete(vi);
      if (writer) await writer.abort();
      else await stage!.remove();
      return { ok: false, error: e };
    }
  };

  /** A staged video's turn: its JPEGs, in order, written under their frame numbers from `manifest.nextFrame`. */
  const place = async (stage: Stage): Promise<number> => {
    const startFrame = manifest.nextFrame;
    const writer = makeWriter(startFrame, manifest.nextShard);
    const inflight = new Set<Promise<void>>();
    let firstError: unknown = null;
    try {
      let g = startFrame;
      for await (const jpeg of stage.read()) {
        if (firstError) break;
        await encodes.acquire();
        const tracked: Promise<void> = writer.add(g++, Promise.resolve(jpeg)).catch((e: unknown) => { firstError ??= e; })
          .finally(() => { inflight.delete(tracked); encodes.release(); });
        inflight.add(tracked);
      }
      await Promise.all(inflight);
      if (firstError) throw firstError;
      await writer.commit();
      return writer instanceof ShardEpisodeWriter ? writer.next : 0;
    } catch (e) {
      await Promise.all(inflight);
      await writer.abort();
      throw e;
    } finally {
      await stage.remove();
    }
  };

  // up to `jobs` videos decode at once, and at most 2 x jobs - 1 are begun and not yet in the manifest
  // (so --jobs 1 decodes each video in place after the previous one is recorded, as a sequential run)
  const tasks = new Map<number, Promise<Outcome>>();
  let next = manifest.videos.length;
  let head = next;
  let running = 0;
  let stopping = false;
  const launch = (): void => {
    while (!stopping && next < videos.length && running < jobs && next - head < 2 * jobs - 1) {
      const vi = next++;
      running++;
      tasks.set(vi, runVideo(vi, vi === head, () => stopping).finally(() => { running--; launch(); }));
    }
  };
  try {
    launch();
    for (let vi = head; vi < videos.length; vi++) {
      const file = videos[vi]!;
      const name = path.basename(file);
      const bytes = inputs[vi]!.bytes;
      const out = await tasks.get(vi)!;
      tasks.delete(vi);
      let failure: unknown = out.ok ? null : out.error;
      let nextShard = out.ok ? out.nextShard : 0;
      // placing staged frames reads and writes only our own files: whatever fails there is never the video's fault
      let placing = false;
      if (out.ok && out.stage) nextShard = await place(out.stage).catch((e: unknown) => { failure = e; placing = true; return 0; });
      decoded.delete(vi);
      if (failure !== null) {
        if (out.ok) framesDone -= out.frames;
        if (isOutputError(failure) || placing) {
          // the disk, not the video: stop, with the manifest unchanged for this video, so a rerun redoes it
          throw new Error(`cannot write the frames of ${file} into --save-dir ${opts.saveDir}: ${describeFsError(failure)}; `
            + `the ${manifest.videos.length} finished video(s) are kept and ${name} is extracted again on the next run`, { cause: failure });
        }
        const reason = (failure as Error).message ?? String(failure);
        if ((opts.onBadVideo ?? EXTRACT_DEFAULTS.onBadVideo) === 'fail') {
          throw new Error(`bad video ${file}: ${reason} (finished videos are kept; rerun with --on-bad-video skip to pass over it)`);
        }
        log(`skipping bad video ${file}: ${reason}`);
        manifest.videos.push({ name, path: inputs[vi]!.path, bytes, frames: 0, seconds: 0, skipped: reason });
      } else if (out.ok) {
        manifest.videos.push({ name, path: inputs[vi]!.path, bytes, frames: out.frames, seconds: out.seconds });
        manifest.nextFrame += out.frames;
        if (settings.format === 'shards') manifest.nextShard = nextShard;
        secondsDone += out.seconds;
      }
      await writeDataAtomic(manifestPath, JSON.stringify(manifest, null, 1));
      head = vi + 1;
      launch();
    }
  } finally {
    // on an error: no new videos; those decoding ahead stop, and their staged frames are removed
    stopping = true;
    await Promise.all(probes.values());
    await Promise.all([...tasks.values()].map(async (t) => {
      const o = await t;
      if (o.ok) await o.stage?.remove();
    }));
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
    lastEpisodeFrames: episodes ? total - (episodes - 1) * perEpisode : 0,
    seconds: (Date.now() - started) / 1000,
    format: settings.format,
    settings,
  };
  await writeDataAtomic(path.join(opts.saveDir, SUMMARY), JSON.stringify(summary, null, 1));
  return summary;
}

/**
 * Removes what an interrupted run left past the manifest's last finished video: temporary files,
 * frames numbered from `nextFrame` on in every episode folder (not only up to the first gap), the
 * episode folders left empty, and shards past `nextShard`.
 */
async function cleanPartial(saveDir: string, s: ExtractSettings, m: Manifest, perEpisode: number): Promise<void> {
  const names = await fsp.readdir(saveDir);
  if (s.format === 'shards') {
    for (const n of names) {
      const mm = /^shard-(\d+)\.(tar|idx)(\..*tmp)?$/.exec(n);
      if (n.endsWith('.tmp') || (mm && Number(mm[1]) >= m.nextShard) || n === SHARD_LIST) await fsp.rm(path.join(saveDir, n), { force: true });
    }
    return;
  }
  for (const n of names) if (n.startsWith(STAGE_PREFIX) && n.endsWith('.tmp')) await fsp.rm(path.join(saveDir, n), { force: true });
  const first = Math.floor(m.nextFrame / perEpisode);
  for (const n of names) {
    const mm = /^class_(\d{4,})$/.exec(n);
    if (!mm || Number(mm[1]) < first) continue;
    const c = Number(mm[1]);
    const dir = path.join(saveDir, n);
    let files: string[];
    try {
      files = await fsp.readdir(dir);
    } catch {
      continue;
    }
    for (const f of files) {
      const fm = /^img_(\d{4,})\.jpeg$/.exec(f);
      if (f.endsWith('.tmp') || (fm && c * perEpisode + Number(fm[1]) >= m.nextFrame)) await fsp.rm(path.join(dir, f), { force: true });
    }
    if (c * perEpisode >= m.nextFrame) await fsp.rmdir(dir).catch(() => undefined);
  }
}

async function removeFrames(saveDir: string, from: number, to: number, perEpisode: number): Promise<void> {
  for (let g = from; g < to; g++) {
    await fsp.rm(path.join(saveDir, episodeName(Math.floor(g / perEpisode)), frameName(g % perEpisode)), { force: true });
  }
  // temporary files of this video's frames, and the episode folders it began when nothing else is in them
  for (let c = Math.floor(from / perEpisode); c <= Math.floor(Math.max(from, to - 1) / perEpisode); c++) {
    const dir = path.join(saveDir, episodeName(c));
    const left = await fsp.readdir(dir).catch(() => [] as string[]);
    for (const f of left) if (f.endsWith('.tmp')) await fsp.rm(path.join(dir, f), { force: true });
    if (c * perEpisode >= from) await fsp.rmdir(dir).catch(() => undefined);
  }
}
