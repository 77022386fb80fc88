// awty extract under faults: a full or read-only disk, a folder that refuses new folders, a run
// killed in its first video and resumed with other settings, reordered inputs, a truncated MP4,
// leftovers past a gap, and bad numeric flags. Nothing is lost, mixed or blamed on the wrong thing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { promises as fsp, existsSync, readdirSync, readFileSync, truncateSync, statSync, mkdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { extract } from '../src/data/index.js';
import { ff, treeHashes } from './helpers/files.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.join(here, '..', 'src', 'cli', 'main.js');
let tmp = '';
const mounts: string[] = [];

const tree = (dir: string): Map<string, string> => treeHashes(dir);
const jpegTree = (dir: string): Map<string, string> => new Map([...tree(dir)].filter(([k]) => k.endsWith('.jpeg')));

/** Mounts a tmpfs of `size` at a new folder (tests run as root); unmounted in `after`. */
function tmpfs(name: string, options: string): string | null {
  const dir = path.join(tmp, name);
  mkdirSync(dir);
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  mounts.push(dir);
  return dir;
}

const canMount = ((): boolean => {
  if (process.getuid?.() !== 0) return false;
  return spawnSync('mount', ['--version']).status === 0;
})();

let videos = '';
before(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'awty-extract-faults-'));
  videos = path.join(tmp, 'videos');
  await fsp.mkdir(videos);
  ff('-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-t', '2.4', '-pix_fmt', 'yuv420p', path.join(videos, 'a.mp4'));
  ff('-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25', '-t', '1.2', '-pix_fmt', 'yuv420p', path.join(videos, 'b.mp4'));
});

after(async () => {
  for (const m of mounts.reverse()) spawnSync('umount', ['-l', m]);
  if (tmp) await fsp.rm(tmp, { recursive: true, force: true });
});

test('a full disk stops the run (exit 1, nothing skipped, nothing partial); a rerun with space redoes the video', { skip: canMount ? false : 'needs root to mount a tmpfs' }, async () => {
  const clean = path.join(tmp, 'full-clean');
  await extract({ videoDirs: [videos], saveDir: clean, fps: 5, segLen: 1, concurrency: 2 });
  const bytes = [...jpegTree(clean).keys()].reduce((a, k) => a + statSync(path.join(clean, k)).size, 0);
  // room for about half of the first video's frames
  const disk = tmpfs('full', `size=${Math.max(16384, Math.floor(bytes * 0.3 / 4096) * 4096)}`);
  assert.ok(disk, 'tmpfs mounted');
  const out = path.join(disk, 'out');
  for (const format of ['shards', 'files'] as const) {
    await fsp.rm(out, { recursive: true, force: true });
    await assert.rejects(extract({ videoDirs: [videos], saveDir: out, fps: 5, segLen: 1, onBadVideo: 'skip', format, concurrency: 2 }), (e: Error) => {
      assert.match(e.message, /cannot write the frames of .*a\.mp4 into --save-dir .*: no space left on the device \(ENOSPC\)/);
      assert.match(e.message, /a\.mp4 is extracted again on the next run/);
      return true;
    }, format);
    const manifest = JSON.parse(readFileSync(path.join(out, '.awty-extract.json'), 'utf8')) as { videos: unknown[]; nextFrame: number };
    assert.deepEqual(manifest.videos, [], `${format}: the video is not recorded as skipped`);
    assert.equal(manifest.nextFrame, 0);
    const left = [...tree(out).keys()].filter((k) => k !== '.awty-extract.json');
    assert.deepEqual(left, [], `${format}: nothing partial is left`);
    assert.deepEqual(readdirSync(out).filter((n) => n !== '.awty-extract.json'), [], `${format}: no episode folders left`);
  }
  // more space, the same command (the failed files run is left in place): the same tree as a clean run
  assert.equal(spawnSync('mount', ['-o', 'remount,size=64m', disk]).status, 0);
  const s = await extract({ videoDirs: [videos], saveDir: out, fps: 5, segLen: 1, onBadVideo: 'skip', concurrency: 2 });
  assert.equal(s.skipped.length, 0);
  assert.deepEqual(jpegTree(out), jpegTree(clean));
});

test('a read-only disk and a folder that refuses new folders are found before any work, named plainly', { skip: canMount ? false : 'needs root to mount a tmpfs' }, async () => {
  const ro = tmpfs('ro', 'size=1m,ro');
  assert.ok(ro);
  const t0 = Date.now();
  await assert.rejects(extract({ videoDirs: [videos], saveDir: path.join(ro, 'out') }), /--save-dir .*ro\/out: cannot create the folder .*: the file system is read-only \(EROFS\)/);
  await assert.rejects(extract({ videoDirs: [videos], saveDir: ro }), /--save-dir .*ro: cannot write into it: the file system is read-only \(EROFS\)/);
  await assert.rejects(extract({ videoDirs: [videos], saveDir: '/proc/awty-test/x' }), /--save-dir \/proc\/awty-test\/x: cannot create the folder \/proc\/awty-test: \/proc does not accept new folders/);
  assert.ok(Date.now() - t0 < 5000, 'at once');
});

test('a run killed in its first video refuses a rerun with other settings', async () => {
  const long = path.join(tmp, 'long');
  await fsp.mkdir(long);
  ff('-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-t', '8', '-pix_fmt', 'yuv420p', path.join(long, 'v.mp4'));
  const out = path.join(tmp, 'killed');
  const child = spawn('node', [cli, 'extract', long, '--save-dir', out, '--fps', '15', '--seg-len', '1', '--jobs', '1', '--no-progress'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const t0 = Date.now();
  while (Date.now() - t0 < 60_000 && !existsSync(path.join(out, 'class_0001')) && child.exitCode === null) await new Promise((r) => setTimeout(r, 10));
  child.kill('SIGKILL');
  await exited;
  assert.ok(existsSync(path.join(out, 'class_0001')), 'the kill came after the first frames');
  const manifest = JSON.parse(readFileSync(path.join(out, '.awty-extract.json'), 'utf8')) as { videos: unknown[]; settings: { fps: number } };
  assert.deepEqual(manifest.videos, [], 'killed during the first video');
  assert.equal(manifest.settings.fps, 15);
  await assert.rejects(extract({ videoDirs: [long], saveDir: out, fps: 5, segLen: 3 }), /holds an extraction with other settings/);
  // the same settings resume and give a clean run's frames
  const s = await extract({ videoDirs: [long], saveDir: out, fps: 15, segLen: 1 });
  assert.equal(s.frames, 120);
  assert.equal([...jpegTree(out).keys()].length, 120);
});

test('resuming with other inputs (same names, other folders or order) is refused, naming the first difference', async () => {
  const A = path.join(tmp, 'A'), B = path.join(tmp, 'B');
  await fsp.mkdir(A);
  await fsp.mkdir(B);
  await fsp.copyFile(path.join(videos, 'a.mp4'), path.join(A, 'video.mp4'));
  await fsp.copyFile(path.join(videos, 'b.mp4'), path.join(B, 'video.mp4'));
  const out = path.join(tmp, 'reorder');
  await extract({ videoDirs: [A], saveDir: out, fps: 5, segLen: 1 });
  await assert.rejects(extract({ videoDirs: [B, A], saveDir: out, fps: 5, segLen: 1 }), (e: Error) => {
    assert.match(e.message, /the input videos changed since the extraction in .* began: video 1 was .*\/A\/video\.mp4 \(\d+ bytes, modified .*\), now .*\/B\/video\.mp4/);
    return true;
  });
  // the same path with other content (size or time) is a change too
  await fsp.utimes(path.join(A, 'video.mp4'), new Date(), new Date(Date.now() + 5000));
  await assert.rejects(extract({ videoDirs: [A], saveDir: out, fps: 5, segLen: 1 }), /video 1 was .*A\/video\.mp4/);
});

test('half of a faststart MP4 is a bad video (named, skippable); hours count decoded frames only', async () => {
  const d = path.join(tmp, 'trunc');
  await fsp.mkdir(d);
  const full = path.join(d, 'half.mp4');
  ff('-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-t', '4', '-pix_fmt', 'yuv420p', '-movflags', '+faststart', full);
  truncateSync(full, Math.floor(statSync(full).size / 2));
  await fsp.copyFile(path.join(videos, 'b.mp4'), path.join(d, 'ok.mp4'));
  await assert.rejects(extract({ videoDirs: [d], saveDir: path.join(tmp, 'trunc-fail'), fps: 5, segLen: 1 }),
    /bad video .*half\.mp4: decoded only [\d.]+ s of its 4\.00 s \(truncated or damaged/);
  const s = await extract({ videoDirs: [d], saveDir: path.join(tmp, 'trunc-skip'), fps: 5, segLen: 1, onBadVideo: 'skip' });
  assert.deepEqual(s.skipped.map((k) => k.video), ['half.mp4']);
  assert.equal(s.frames, 6);
  assert.ok(Math.abs(s.hours * 3600 - 1.2) < 0.05, `hours ${s.hours * 3600} s`);
  assert.deepEqual([...jpegTree(path.join(tmp, 'trunc-skip')).keys()].length, 6);
});

test('leftovers past a gap in the episode folders are cleaned on resume', async () => {
  const out = path.join(tmp, 'gap');
  const s = await extract({ videoDirs: [videos], saveDir: out, fps: 5, segLen: 1 });
  const before = jpegTree(out);
  // what a killed run may leave: episodes written out of order past a missing folder, temp files
  for (const c of [s.episodes + 1, s.episodes + 3]) {
    const dir = path.join(out, `class_${String(c).padStart(4, '0')}`);
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'img_0000.jpeg'), 'partial');
    writeFileSync(path.join(dir, '.img_0001.jpeg.1.deadbeef.tmp'), 'partial');
  }
  const last = path.join(out, `class_${String(s.episodes - 1).padStart(4, '0')}`);
  writeFileSync(path.join(last, `img_${String(s.lastEpisodeFrames).padStart(4, '0')}.jpeg`), 'partial');
  await extract({ videoDirs: [videos], saveDir: out, fps: 5, segLen: 1 });
  assert.deepEqual(jpegTree(out), before);
  assert.deepEqual(readdirSync(out).filter((n) => n.startsWith('class_')).length, s.episodes);
});

test('bad numeric flags are refused up front, naming the flag; an all-skipped run does not print a last episode', async () => {
  const out = path.join(tmp, 'flags');
  for (const [o, re] of [
    [{ size: 0 }, /--size must be a positive whole number, got 0/],
    [{ size: -8 }, /--size must be a positive whole number, got -8/],
    [{ size: 47.5 }, /--size must be a positive whole number, got 47\.5/],
    [{ resizeMinor: 0 }, /--resize-minor must be a positive whole number, got 0/],
    [{ shardSize: 0 }, /--shard-size must be a positive whole number, got 0/],
    [{ cropOffsetY: 200 }, /--crop-offset-y 200 puts the 224-px crop outside a frame resized to 256 px/],
    [{ cropOffsetY: -17 }, /--crop-offset-y -17 puts the 224-px crop outside/],
    [{ fps: 0 }, /--fps must be a positive number, got 0/],
    [{ quality: 90.5 }, /--quality must be a whole number in 1\.\.100/],
    [{ concurrency: 0 }, /--encodes must be a positive whole number, got 0/],
    [{ jobs: 0 }, /--jobs must be a positive whole number, got 0/],
    [{ jobs: 1.5 }, /--jobs must be a positive whole number, got 1\.5/],
    [{ encoderNice: 20 }, /--encoder-nice must be 'idle' or a whole number 0\.\.19, got 20/],
  ] as const) {
    await assert.rejects(extract({ videoDirs: [videos], saveDir: out, onBadVideo: 'skip', ...o }), re, JSON.stringify(o));
  }
  assert.ok(!existsSync(out), 'nothing was created');
  const bad = path.join(tmp, 'onlybad');
  await fsp.mkdir(bad);
  await fsp.writeFile(path.join(bad, 'x.mp4'), Buffer.alloc(5000, 7));
  const r = spawnSync('node', [cli, 'extract', bad, '--save-dir', path.join(tmp, 'onlybad-out'), '--on-bad-video', 'skip', '--no-progress'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /from 0 video\(s\): no frames, .*skipped 1: x\.mp4/);
  assert.doesNotMatch(r.stdout, /last:/);
});
