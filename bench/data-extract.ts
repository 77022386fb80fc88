// Extraction benchmark, in one run, repeats interleaved:
// - one video: `awty extract` against its decode floor (ffmpeg decoding and filtering the same video
//   with the same filter graph into raw frames on /dev/null), with the stages between them (frames
//   read from the pipe and dropped; read and JPEG-encoded with extract's encoder, not written) and CPU seconds of ffmpeg and
//   of node, so that where the time goes shows;
// - several videos: --jobs 1 against --jobs 2;
// - the video at 1x and 4x its length (cost should grow linearly);
// - optionally the original reader's method (OpenCV) on the one video (--opencv).
// usage: node dist/bench/data-extract.js [--seconds 60] [--size 640x480] [--repeats 3] [--videos 3]
//   [--source FILE] [--opencv] [--only one,jobs,length] [--nice idle|N (the encoder's priority; default extract's)]
//   [--rm-each (remove each run's output right after it instead of at the end of the section)]
import { execFileSync, spawn } from 'node:child_process';
import { promises as fsp, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { extract, EXTRACT_DEFAULTS } from '../src/data/extract.js';
import { decodeArgs, streamFrames, type FrameFilter } from '../src/data/ffmpeg.js';
import { rgbJpegEncoder, type EncoderPriority } from '../src/data/jpeg.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' }, size: { type: 'string', default: '640x480' }, repeats: { type: 'string', default: '3' },
    videos: { type: 'string', default: '3' }, source: { type: 'string' }, opencv: { type: 'boolean', default: false },
    only: { type: 'string', default: 'one,jobs,length' }, 'rm-each': { type: 'boolean', default: false }, nice: { type: 'string', default: String(EXTRACT_DEFAULTS.encoderNice) },
  },
});
const seconds = Number(values.seconds);
const repeats = Number(values.repeats);
const only = new Set(values.only.split(','));
/** the encoder's priority for `extract` and the encode stage (extract's default unless --nice) */
const nice: EncoderPriority = values.nice === 'idle' ? 'idle' : Number(values.nice);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'awty-bench-extract-'));
const opts = { fps: 5, segLen: 288 };
const filter: FrameFilter = { sampling: 'exact', fps: 5, resizeMinor: 256, size: 224, cropOffsetY: -16, rotate: 180 };

const load = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ')[0]!;
/** CPU seconds of this process's reaped children (ffmpeg, ffprobe) so far. */
function childCpu(): number {
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[13]) + Number(f[14])) / 100;
}
const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

interface Sample { wall: number; node: number; ffmpeg: number; load: string }
async function timed(fn: () => Promise<unknown>): Promise<Sample> {
  const c0 = process.cpuUsage(), f0 = childCpu(), t0 = performance.now();
  await fn();
  const c = process.cpuUsage(c0);
  const s = { wall: (performance.now() - t0) / 1000, node: (c.user + c.system) / 1e6, ffmpeg: childCpu() - f0, load: load() };
  // the outputs are kept until the end of the section (removeOutputs): files deleted moments before
  // make ext4 (without a journal, as here) skip their recently freed inodes on every file it creates
  // next, a cost of the benchmark's own clean-up that an extraction into a fresh folder does not pay
  // (--rm-each: removed after each run, outside its timing, as before)
  if (values['rm-each']) await removeOutputs();
  return s;
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}: ${err}`))));
  });
}

function makeVideo(file: string, secs: number, pattern = 'testsrc2'): void {
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', `${pattern}=size=${values.size}:rate=30`, '-t', String(secs), '-c:v', 'libx264',
    '-preset', 'veryfast', '-pix_fmt', 'yuv420p', file]);
}

let outN = 0;
const outs: string[] = [];
async function extractOnce(dir: string, jobs = 1, encoderNice: EncoderPriority = nice): Promise<void> {
  const out = path.join(tmp, `out-${outN++}`);
  outs.push(out);
  await extract({ videoDirs: [dir], saveDir: out, ...opts, jobs, encoderNice });
}
/** The extractions' outputs so far, removed (between sections, not between repeats). */
async function removeOutputs(): Promise<void> {
  for (const o of outs.splice(0)) await fsp.rm(o, { recursive: true, force: true });
}

const fmt = (s: Sample): string => `${s.wall.toFixed(2)} s (cpu node ${s.node.toFixed(2)}, ffmpeg ${s.ffmpeg.toFixed(2)}; load ${s.load})`;

try {
  const one = path.join(tmp, 'one');
  await fsp.mkdir(one);
  let video = path.join(one, 'video.mp4');
  if (values.source) {
    video = path.join(one, path.basename(values.source));
    await fsp.copyFile(values.source, video);
  } else {
    makeVideo(video, seconds);
  }
  const label = values.source ? path.basename(values.source) : `${seconds} s of ${values.size} 30 fps H.264`;
  const jpeg = await rgbJpegEncoder(224, 224, 95, nice);
  console.log(`${os.availableParallelism()} cores, load ${load()}; --fps 5, 224 px, quality 95; JPEG encoder: ${jpeg.name} at priority ${nice}`);

  if (only.has('one')) {
    const stages: Record<string, () => Promise<unknown>> = {
      floor: () => run('ffmpeg', [...decodeArgs(video, filter, '/dev/null'), '-y']),
      pipe: () => streamFrames(video, filter, () => undefined),
      encode: async () => {
        const inflight = new Set<Promise<unknown>>();
        await streamFrames(video, filter, async (fr) => {
          const p: Promise<unknown> = jpeg.encode(fr).finally(() => inflight.delete(p));
          inflight.add(p);
          if (inflight.size >= 4) await Promise.race(inflight);
        });
        await Promise.all(inflight);
      },
      extract: () => extractOnce(one),
      // the frame sink's threads at niceness 10 instead of the idle class
      nice10: () => extractOnce(one, 1, 10),
      // the encoder on libuv's pool at the process's priority, frames read on the main thread
      nice0: () => extractOnce(one, 1, 0),
    };
    const res: Record<string, Sample[]> = {};
    const ratios: number[] = [];
    const ratios10: number[] = [];
    const ratios0: number[] = [];
    for (let r = 0; r < repeats; r++) {
      for (const [name, fn] of Object.entries(stages)) {
        const s = await timed(fn);
        (res[name] ??= []).push(s);
        console.log(`one video, repeat ${r + 1}, ${name.padEnd(7)} ${fmt(s)}`);
      }
      ratios.push(res.floor![r]!.wall / res.extract![r]!.wall);
      ratios10.push(res.floor![r]!.wall / res.nice10![r]!.wall);
      ratios0.push(res.floor![r]!.wall / res.nice0![r]!.wall);
    }
    for (const [name, s] of Object.entries(res)) {
      console.log(`one video ${name.padEnd(7)}: median ${median(s.map((x) => x.wall)).toFixed(2)} s, cpu node ${median(s.map((x) => x.node)).toFixed(2)} s, ffmpeg ${median(s.map((x) => x.ffmpeg)).toFixed(2)} s`);
    }
    console.log(`one video (${label}): extraction / decode floor speed = ${ratios.map((x) => x.toFixed(2)).join(', ')} (median ${median(ratios).toFixed(2)}); loads ${res.extract!.map((s) => s.load).join(', ')}`);
    console.log(`one video, the frame sink at niceness 10: extraction / decode floor speed = ${ratios10.map((x) => x.toFixed(2)).join(', ')} (median ${median(ratios10).toFixed(2)})`);
    console.log(`one video, encoder at niceness 0 on libuv's pool: extraction / decode floor speed = ${ratios0.map((x) => x.toFixed(2)).join(', ')} (median ${median(ratios0).toFixed(2)})`);
    if (values.opencv) {
      const t0 = performance.now();
      execFileSync('/usr/bin/python3', [path.join(repo, 'bench', 'data_opencv_reader.py'), one, path.join(tmp, 'opencv'), '--fps', '5', '--seg-len', '288']);
      const cv = (performance.now() - t0) / 1000;
      console.log(`OpenCV reader: ${cv.toFixed(2)} s; awty extract median ${median(res.extract!.map((s) => s.wall)).toFixed(2)} s: ${(cv / median(res.extract!.map((s) => s.wall))).toFixed(2)}x`);
    }
    await removeOutputs();
  }

  if (only.has('jobs')) {
    const n = Number(values.videos);
    const many = path.join(tmp, 'many');
    await fsp.mkdir(many);
    for (let i = 0; i < n; i++) makeVideo(path.join(many, `v${i}.mp4`), seconds, i % 2 ? 'testsrc' : 'testsrc2');
    const res: Record<string, Sample[]> = { 'jobs 1': [], 'jobs 2': [] };
    for (let r = 0; r < repeats; r++) {
      for (const jobs of [1, 2]) {
        const s = await timed(() => extractOnce(many, jobs));
        res[`jobs ${jobs}`]!.push(s);
        console.log(`${n} videos, repeat ${r + 1}, --jobs ${jobs}: ${fmt(s)}`);
      }
    }
    const sp = res['jobs 1']!.map((s, i) => s.wall / res['jobs 2']![i]!.wall);
    console.log(`${n} videos of ${seconds} s: --jobs 1 median ${median(res['jobs 1']!.map((s) => s.wall)).toFixed(2)} s, --jobs 2 median ${median(res['jobs 2']!.map((s) => s.wall)).toFixed(2)} s; `
      + `speed-up ${sp.map((x) => x.toFixed(2)).join(', ')} (median ${median(sp).toFixed(2)})`);
    await removeOutputs();
  }

  if (only.has('length')) {
    const dirs = { '1x': path.join(tmp, 'len1'), '4x': path.join(tmp, 'len4') };
    await fsp.mkdir(dirs['1x']);
    await fsp.mkdir(dirs['4x']);
    makeVideo(path.join(dirs['1x'], 'v.mp4'), seconds);
    makeVideo(path.join(dirs['4x'], 'v.mp4'), 4 * seconds);
    const res: Record<string, Sample[]> = { '1x': [], '4x': [] };
    for (let r = 0; r < repeats; r++) {
      for (const k of ['1x', '4x'] as const) {
        const s = await timed(() => extractOnce(dirs[k]));
        res[k]!.push(s);
        console.log(`length ${k} (${k === '1x' ? seconds : 4 * seconds} s), repeat ${r + 1}: ${fmt(s)}`);
      }
    }
    const g = res['1x']!.map((s, i) => res['4x']![i]!.wall / s.wall);
    console.log(`length: 1x median ${median(res['1x']!.map((s) => s.wall)).toFixed(2)} s, 4x median ${median(res['4x']!.map((s) => s.wall)).toFixed(2)} s; `
      + `4x / 1x time = ${g.map((x) => x.toFixed(2)).join(', ')} (median ${median(g).toFixed(2)}; 4.00 is linear)`);
    await removeOutputs();
  }
} finally {
  await fsp.rm(tmp, { recursive: true, force: true });
}
