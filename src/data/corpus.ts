// A small natural-video corpus from what Debian ships: the real footage in opencv-doc's examples
// data folder (vtest.avi, a street scene; tree.avi; Megamind.avi), lengthened by slow camera paths
// (pan, zoom and a small rotation, as a head-mounted camera drifts) over the real photographs of the
// same folder, rendered with ffmpeg. The real videos are linked, not copied.
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import sharp from 'sharp';
import { probeVideo } from './ffmpeg.js';
import { compareCodePoints } from './names.js';
import { Rng } from './rng.js';

/** Where Debian's opencv-doc puts its examples' data. */
export const OPENCV_DATA_DIR = '/usr/share/doc/opencv-doc/examples/data';
/** The real footage there (Megamind_bugy.avi is a damaged copy of Megamind.avi, left out). */
export const OPENCV_VIDEOS = ['vtest.avi', 'tree.avi', 'Megamind.avi'] as const;

export interface CorpusOptions {
  /** the corpus folder (created): the videos in out/videos, the description in out/corpus.json */
  out: string;
  /** default OPENCV_DATA_DIR */
  sourceDir?: string;
  /** the real videos to use, by name in sourceDir (default OPENCV_VIDEOS) */
  videos?: readonly string[];
  /** at most this many photographs, in name order (default: all of them) */
  photos?: number;
  /** length of each camera path, seconds */
  pathSeconds: number;
  /** frame rate of the rendered paths */
  fps: number;
  /** size of the rendered paths (default 160x120) */
  width?: number;
  height?: number;
  /** photographs smaller than this on either side are left out (default 200 px) */
  minPhotoSide?: number;
  seed?: number;
  ffmpeg?: string;
  ffprobe?: string;
  /** camera paths rendered at once (default 2) */
  concurrency?: number;
  onLog?: (line: string) => void;
}

export interface CorpusVideo {
  file: string;
  kind: 'footage' | 'camera-path';
  /** the real video or photograph it comes from */
  source: string;
  seconds: number;
  width: number;
  height: number;
}

export interface CorpusSummary {
  /** the folder of the videos (give it to extract) */
  dir: string;
  videos: CorpusVideo[];
  footageSeconds: number;
  pathSeconds: number;
  photosUsed: number;
  /** photographs looked at and left out (too small or unreadable) */
  photosSkipped: string[];
}

/** The file written last into a finished corpus folder. */
export const CORPUS_MANIFEST = 'corpus.json';

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((res, rej) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-2000); });
    p.on('error', (e) => rej(new Error(`cannot run ${cmd}: ${e.message}`)));
    p.on('close', (code) => (code === 0 ? res() : rej(new Error(`${cmd} exited with ${code}: ${err.trim()}`))));
  });
}

/** A slow camera path's parameters, drawn from `rng`: zoom in or out, a pan across, a slow sway. */
export function cameraPath(rng: Rng): { z0: number; z1: number; x0: number; x1: number; y0: number; y1: number; angle: number; period: number } {
  const u = (a: number, b: number): number => a + (b - a) * rng.random();
  const zoomIn = rng.random() < 0.5;
  const [za, zb] = [u(1.15, 1.3), u(1.45, 1.7)];
  return {
    z0: zoomIn ? za : zb, z1: zoomIn ? zb : za,
    x0: u(0, 1), x1: u(0, 1), y0: u(0.2, 0.8), y1: u(0.2, 0.8),
    angle: u(0.01, 0.05), period: u(5, 10),
  };
}

/**
 * Renders one camera path over a photograph: the photo scaled to cover twice the output size, rotated
 * by a slow sway of at most `angle` radians, then a zoom/pan window moving linearly across it (the
 * zoom stays above 1.15 so the rotated corners never show), H.264.
 */
export async function renderCameraPath(photo: string, file: string, o: { seconds: number; fps: number; width: number; height: number; rng: Rng; ffmpeg?: string }): Promise<void> {
  const p = cameraPath(o.rng);
  const n = Math.max(1, Math.round(o.seconds * o.fps));
  const f = (v: number): string => v.toFixed(4);
  const lerp = (a: number, b: number): string => `(${f(a)}+${f(b - a)}*on/${n})`;
  const vf = [
    `scale=${2 * o.width}:${2 * o.height}:force_original_aspect_ratio=increase`,
    `crop=${2 * o.width}:${2 * o.height}`,
    `rotate=a='${f(p.angle)}*sin(2*PI*t/${f(p.period)})'`,
    `zoompan=z='${lerp(p.z0, p.z1)}':x='(iw-iw/zoom)*${lerp(p.x0, p.x1)}':y='(ih-ih/zoom)*${lerp(p.y0, p.y1)}':d=1:s=${o.width}x${o.height}:fps=${o.fps}`,
  ].join(',');
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.partial.mp4`);
  await run(o.ffmpeg ?? 'ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-loop', '1', '-framerate', String(o.fps), '-i', photo,
    '-vf', vf, '-frames:v', String(n), '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', tmp]);
  await fsp.rename(tmp, file);
}

/** A photograph's size from its header (sharp; ffprobe for what sharp cannot read), or undefined when neither can. */
async function imageSize(file: string, ffprobe: string): Promise<{ width: number; height: number } | undefined> {
  try {
    const m = await sharp(file).metadata();
    if (m.width && m.height) return { width: m.width, height: m.height };
  } catch {
    // not an image sharp reads: ask ffprobe
  }
  try {
    const i = await probeVideo(file, ffprobe);
    return { width: i.width, height: i.height };
  } catch {
    return undefined;
  }
}

/**
 * Builds the corpus into `out`: links to the real videos, then one camera-path video per photograph
 * (`videos/path_NNN_<photo>.mp4`), then `corpus.json` describing it. A finished corpus (corpus.json
 * present) is returned as it is; a partly rendered one continues where it stopped.
 */
export async function buildCorpus(o: CorpusOptions): Promise<CorpusSummary> {
  const dir = path.join(path.resolve(o.out), 'videos');
  const manifest = path.join(path.resolve(o.out), CORPUS_MANIFEST);
  if (existsSync(manifest)) return JSON.parse(await fsp.readFile(manifest, 'utf8')) as CorpusSummary;
  const src = o.sourceDir ?? OPENCV_DATA_DIR;
  const ffmpeg = o.ffmpeg ?? 'ffmpeg';
  const ffprobe = o.ffprobe ?? 'ffprobe';
  const width = o.width ?? 160;
  const height = o.height ?? 120;
  const log = o.onLog ?? (() => undefined);
  if (!existsSync(src)) throw new Error(`${src} does not exist: install Debian's opencv-doc (scripts/setup.sh does)`);
  await fsp.mkdir(dir, { recursive: true });

  const videos: CorpusVideo[] = [];
  for (const name of o.videos ?? OPENCV_VIDEOS) {
    const from = path.join(src, name);
    if (!existsSync(from)) throw new Error(`${from} is missing: the corpus needs opencv-doc's real videos`);
    const link = path.join(dir, `footage_${name}`);
    if (!existsSync(link)) await fsp.symlink(from, link);
    const info = await probeVideo(from, ffprobe);
    videos.push({ file: link, kind: 'footage', source: from, seconds: info.duration, width: info.width, height: info.height });
  }

  const minSide = o.minPhotoSide ?? 200;
  const names = (await fsp.readdir(src)).filter((n) => /\.(jpe?g|png)$/i.test(n)).sort(compareCodePoints);
  const used: string[] = [];
  const skipped: string[] = [];
  // in name order until enough are found
  for (const n of names) {
    if (o.photos !== undefined && used.length >= o.photos) break;
    const s = await imageSize(path.join(src, n), ffprobe);
    if (s && Math.min(s.width, s.height) >= minSide) used.push(n);
    else skipped.push(n);
  }
  const jobs = used.map((n, i) => ({ photo: path.join(src, n), file: path.join(dir, `path_${String(i).padStart(3, '0')}_${n.replace(/\.[^.]+$/, '')}.mp4`), r: new Rng(o.seed ?? 1, i) }));
  let done = 0;
  const conc = Math.max(1, o.concurrency ?? 2);
  const queue = [...jobs];
  await Promise.all(Array.from({ length: conc }, async () => {
    for (let j = queue.shift(); j; j = queue.shift()) {
      if (!existsSync(j.file)) await renderCameraPath(j.photo, j.file, { seconds: o.pathSeconds, fps: o.fps, width, height, rng: j.r, ffmpeg });
      done++;
      if (done % 10 === 0 || done === jobs.length) log(`camera paths: ${done}/${jobs.length}`);
    }
  }));
  for (const j of jobs) videos.push({ file: j.file, kind: 'camera-path', source: j.photo, seconds: o.pathSeconds, width, height });

  const summary: CorpusSummary = {
    dir, videos,
    footageSeconds: videos.filter((v) => v.kind === 'footage').reduce((a, v) => a + v.seconds, 0),
    pathSeconds: jobs.length * o.pathSeconds,
    photosUsed: used.length,
    photosSkipped: skipped,
  };
  const tmp = `${manifest}.partial`;
  await fsp.writeFile(tmp, JSON.stringify(summary, null, 2) + '\n');
  await fsp.rename(tmp, manifest);
  return summary;
}
