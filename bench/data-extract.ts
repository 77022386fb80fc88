// Extraction benchmark: seconds of video processed per wall-clock second, `awty extract` against the
// original reader's method (OpenCV: decode every frame, keep every k-th, cubic resize, crop, JPEG) on
// the same video, in one run. usage: node dist/bench/data-extract.js [--seconds 40] [--size 640x480]
import { execFileSync } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { extract } from '../src/data/index.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '40' }, size: { type: 'string', default: '640x480' } } });
const seconds = Number(values.seconds);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'awty-bench-extract-'));
try {
  const vids = path.join(tmp, 'videos');
  await fsp.mkdir(vids);
  execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', `testsrc2=size=${values.size}:rate=30`, '-t', String(seconds), '-c:v', 'libx264',
    '-preset', 'veryfast', '-pix_fmt', 'yuv420p', path.join(vids, 'video.mp4')]);
  const runs: Record<string, number> = {};
  for (const sampling of ['seed', 'exact'] as const) {
    const t0 = performance.now();
    const s = await extract({ videoDirs: [vids], saveDir: path.join(tmp, `ours-${sampling}`), fps: 5, segLen: 288, sampling });
    const wall = (performance.now() - t0) / 1000;
    runs[sampling] = seconds / wall;
    console.log(`awty --sampling ${sampling}: ${s.frames} frames in ${wall.toFixed(2)} s = ${(seconds / wall).toFixed(1)} s of video per s`);
  }
  const out = JSON.parse(execFileSync('/usr/bin/python3', [path.join(repo, 'bench', 'data_opencv_reader.py'), vids, path.join(tmp, 'opencv'),
    '--fps', '5', '--seg-len', '288']).toString()) as { frames: number; seconds: number };
  const cv = seconds / out.seconds;
  console.log(`OpenCV reader: ${out.frames} frames in ${out.seconds.toFixed(2)} s = ${cv.toFixed(1)} s of video per s`);
  console.log(`extract: ${seconds} s of ${values.size} 30 fps H.264 at --fps 5, ${os.availableParallelism()} cores: awty (seed sampling) ${runs.seed!.toFixed(1)}, ` +
    `awty (exact) ${runs.exact!.toFixed(1)}, OpenCV ${cv.toFixed(1)} s of video per s; ratio ${(runs.seed! / cv).toFixed(2)}x (seed), ${(runs.exact! / cv).toFixed(2)}x (exact)`);
} finally {
  await fsp.rm(tmp, { recursive: true, force: true });
}
