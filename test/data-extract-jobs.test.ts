// awty extract's pipeline: frames read from ffmpeg's pipe are exactly ffmpeg's raw output, the JPEGs
// exactly sharp's encoding of them; --jobs N (videos decoded at once) gives the same bytes, names,
// manifest and shards as --jobs 1, also with a bad video among them and after a kill mid-way.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { promises as fsp, existsSync, readdirSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { extract } from '../src/data/index.js';
import { decodeArgs, streamFrames, type FrameFilter } from '../src/data/ffmpeg.js';
import { ff, treeHashes } from './helpers/files.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.join(here, '..', 'src', 'cli', 'main.js');
let tmp = '';
let videos = '';

/**
 * Every file under dir (relative path -> sha256), the run's summary (it holds the run's time) left out;
 * in the manifest, the addresses in ffprobe's messages (`[mov,mp4,... @ 0x55f3f2cd6cc0]`, new in every run) are blanked.
 */
const tree = (dir: string): Map<string, string> => treeHashes(dir, (name, bytes) =>
  name === '.awty-extract.json' ? bytes.toString('utf8').replace(/ @ 0x[0-9a-f]+\]/g, ' @ 0x]') : name === 'awty-extract-summary.json' ? undefined : bytes);

function assertSameTree(a: Map<string, string>, b: Map<string, string>, what: string): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort(), `${what}: the same files`);
  for (const [k, h] of b) assert.equal(a.get(k), h, `${what}: ${k}`);
}

before(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'awty-extract-jobs-'));
  videos = path.join(tmp, 'videos');
  await fsp.mkdir(videos);
  // three small videos of different lengths (the second the longest), so that later ones finish first
  ff('-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25', '-t', '1.6', '-pix_fmt', 'yuv420p', path.join(videos, 'a.mp4'));
  ff('-f', 'lavfi', '-i', 'testsrc2=size=352x288:rate=30', '-t', '3.1', '-pix_fmt', 'yuv420p', path.join(videos, 'b.mp4'));
  ff('-f', 'lavfi', '-i', 'testsrc=size=400x240:rate=25', '-t', '0.9', '-pix_fmt', 'yuv420p', path.join(videos, 'c.mkv'));
});

after(async () => {
  if (tmp) await fsp.rm(tmp, { recursive: true, force: true });
});

test('frames from the pipe are ffmpeg\'s raw output byte for byte; the JPEGs are sharp\'s encoding of them', async () => {
  // 224 px frames span several pipe reads; 40 px frames lie several in one read
  for (const size of [224, 40]) {
    const filter: FrameFilter = { sampling: 'exact', fps: 10, resizeMinor: 256, size, cropOffsetY: -16, rotate: 180 };
    const file = path.join(videos, 'b.mp4');
    const raw = path.join(tmp, `raw-${size}.rgb`);
    execFileSync('ffmpeg', [...decodeArgs(file, filter, raw), '-y']);
    const expected = readFileSync(raw);
    const frameBytes = size * size * 3;
    assert.equal(expected.length % frameBytes, 0);
    const got: Buffer[] = [];
    // a slow consumer: the pipe is paused and resumed many times
    const n = await streamFrames(file, filter, async (fr) => {
      got.push(fr);
      if (got.length % 3 === 0) await new Promise((r) => setTimeout(r, 5));
    }, { queue: 2 });
    assert.equal(n, expected.length / frameBytes, `${size} px: frame count`);
    assert.equal(n, 31, 'exactly 10 frames per second of 3.1 s');
    for (let i = 0; i < n; i++) assert.ok(got[i]!.equals(expected.subarray(i * frameBytes, (i + 1) * frameBytes)), `${size} px: frame ${i}`);
    // the extraction's JPEGs: sharp's encoding of exactly those frames, under the original's names
    const out = path.join(tmp, `bytes-${size}`);
    const one = path.join(tmp, 'only-b');
    await fsp.mkdir(one, { recursive: true });
    if (!existsSync(path.join(one, 'b.mp4'))) await fsp.copyFile(file, path.join(one, 'b.mp4'));
    await extract({ videoDirs: [one], saveDir: out, fps: 10, segLen: 1, size });
    for (let i = 0; i < n; i++) {
      const ref = await sharp(expected.subarray(i * frameBytes, (i + 1) * frameBytes), { raw: { width: size, height: size, channels: 3 } }).jpeg({ quality: 95 }).toBuffer();
      const name = path.join(out, `class_${String(Math.floor(i / 10)).padStart(4, '0')}`, `img_${String(i % 10).padStart(4, '0')}.jpeg`);
      assert.ok(readFileSync(name).equals(ref), `${size} px: ${name}`);
    }
  }
});

test('a consumer that throws stops ffmpeg and rejects with its error', async () => {
  const filter: FrameFilter = { sampling: 'exact', fps: 10, resizeMinor: 256, size: 224, cropOffsetY: -16, rotate: 180 };
  let seen = 0;
  await assert.rejects(streamFrames(path.join(videos, 'b.mp4'), filter, () => {
    if (++seen === 4) throw new Error('consumer gave up');
  }), /consumer gave up/);
  assert.equal(seen, 4, 'no frame after the error');
});

test('--jobs 3 gives the same files, bytes, numbering, manifest and shards as --jobs 1', async () => {
  for (const format of ['files', 'shards'] as const) {
    const runs = new Map<number, Map<string, string>>();
    for (const jobs of [1, 3, 2]) {
      const out = path.join(tmp, `jobs-${format}-${jobs}`);
      const s = await extract({ videoDirs: [videos], saveDir: out, fps: 10, segLen: 1, format, shardSize: 7, jobs });
      assert.equal(s.frames, 16 + 31 + 9, `${format}, --jobs ${jobs}: frames`);
      assert.equal(s.videos, 3);
      runs.set(jobs, tree(out));
    }
    const one = runs.get(1)!;
    assert.ok(one.has('.awty-extract.json'));
    if (format === 'files') {
      // numbering runs across the videos: 56 frames in episodes of 10
      assert.ok(one.has('class_0005/img_0005.jpeg') && !one.has('class_0005/img_0006.jpeg'));
    } else {
      // a shard ends with each video and at 7 frames: 16 -> 7+7+2, 31 -> 7x4+3, 9 -> 7+2
      assert.equal([...one.keys()].filter((k) => k.endsWith('.tar')).length, 3 + 5 + 2);
    }
    assert.ok(![...one.keys()].some((k) => k.includes('.awty-stage-')));
    assertSameTree(runs.get(3)!, one, `${format}, --jobs 3`);
    assertSameTree(runs.get(2)!, one, `${format}, --jobs 2`);
  }
});

test('the encoder at niceness 0 (libuv\'s pool), in the idle class (the default) and at nicenesses 10 and 19 gives the same tree, at --jobs 1 and 2; a bad priority is refused', async () => {
  const runs: Map<string, string>[] = [];
  const priorities = [0, 'idle', 10, 19] as const;
  for (const encoderNice of priorities) {
    for (const jobs of [1, 2]) {
      const out = path.join(tmp, `nice-${encoderNice}-${jobs}`);
      await extract({ videoDirs: [videos], saveDir: out, fps: 10, segLen: 1, encoderNice, jobs });
      runs.push(tree(out));
    }
  }
  assert.ok(runs[0]!.has('class_0005/img_0005.jpeg'));
  for (let i = 1; i < runs.length; i++) assertSameTree(runs[i]!, runs[0]!, `priority ${priorities[i >> 1]}, --jobs ${1 + (i & 1)}`);
  for (const bad of [-1, 20, 2.5, 'low']) {
    await assert.rejects(extract({ videoDirs: [videos], saveDir: path.join(tmp, 'nice-bad'), encoderNice: bad as number }),
      /--encoder-nice must be 'idle' or a whole number 0\.\.19/);
  }
  assert.ok(!existsSync(path.join(tmp, 'nice-bad')), 'nothing written for a refused niceness');
});

test('the CLI with --jobs 3: same tree as --jobs 1; a bad video among them is named (fail) or passed over (skip) as with --jobs 1', async () => {
  const run = (out: string, ...flags: string[]): { status: number | null; stderr: string } => {
    try {
      execFileSync('node', [cli, 'extract', videos, '--save-dir', out, '--fps', '10', '--seg-len', '1', '--no-progress', ...flags], { stdio: 'pipe' });
      return { status: 0, stderr: '' };
    } catch (e) {
      const err = e as { status: number | null; stderr: Buffer };
      return { status: err.status, stderr: err.stderr.toString() };
    }
  };
  assert.equal(run(path.join(tmp, 'cli-1'), '--jobs', '1').status, 0);
  assert.equal(run(path.join(tmp, 'cli-3'), '--jobs', '3').status, 0);
  assertSameTree(tree(path.join(tmp, 'cli-3')), tree(path.join(tmp, 'cli-1')), 'CLI --jobs 3');
  // a corrupt file between the videos (sorted: a, b, bb, c)
  const bad = path.join(tmp, 'with-bad');
  await fsp.cp(videos, bad, { recursive: true });
  await fsp.writeFile(path.join(bad, 'bb.mp4'), Buffer.from(Array.from({ length: 20000 }, (_, i) => (i * 7919) & 255)));
  const runBad = (out: string, ...flags: string[]): { status: number | null; stderr: string } => {
    try {
      execFileSync('node', [cli, 'extract', bad, '--save-dir', out, '--fps', '10', '--seg-len', '1', '--no-progress', ...flags], { stdio: 'pipe' });
      return { status: 0, stderr: '' };
    } catch (e) {
      const err = e as { status: number | null; stderr: Buffer };
      return { status: err.status, stderr: err.stderr.toString() };
    }
  };
  for (const mode of ['fail', 'skip']) {
    const trees: Map<string, string>[] = [];
    for (const jobs of ['1', '3']) {
      const out = path.join(tmp, `bad-${mode}-${jobs}`);
      const r = runBad(out, '--jobs', jobs, '--on-bad-video', mode);
      if (mode === 'fail') {
        assert.notEqual(r.status, 0);
        assert.match(r.stderr, /bad video .*bb\.mp4/);
        const m = JSON.parse(readFileSync(path.join(out, '.awty-extract.json'), 'utf8')) as { videos: { name: string }[]; nextFrame: number };
        assert.deepEqual(m.videos.map((v) => v.name), ['a.mp4', 'b.mp4'], `--jobs ${jobs}: the videos before the bad one are kept`);
        assert.equal(m.nextFrame, 16 + 31);
      } else {
        assert.equal(r.status, 0, r.stderr);
      }
      assert.ok(!readdirSync(out).some((n) => n.startsWith('.awty-stage-')), `${mode}, --jobs ${jobs}: no staged frames left`);
      trees.push(tree(out));
    }
    assertSameTree(trees[1]!, trees[0]!, `--on-bad-video ${mode}, --jobs 3 against 1`);
  }
});

test('--jobs 3 killed mid-way (frames staged) and rerun: the same tree as an uninterrupted --jobs 1 run', async () => {
  const full = path.join(tmp, 'cli-1');
  const out = path.join(tmp, 'kill-jobs');
  const args = [cli, 'extract', videos, '--save-dir', out, '--fps', '10', '--seg-len', '1', '--no-progress', '--jobs', '3'];
  const child = spawn('node', args, { stdio: 'ignore' });
  let exited = false;
  const done = new Promise<void>((resolve) => child.once('exit', () => { exited = true; resolve(); }));
  const staged = (): boolean => existsSync(out) && readdirSync(out).some((n) => n.startsWith('.awty-stage-'));
  while (!exited && !staged()) await new Promise((r) => setTimeout(r, 5));
  const caught = !exited;
  if (caught) child.kill('SIGKILL');
  await done;
  if (caught) {
    assert.ok(!existsSync(path.join(out, 'awty-extract-summary.json')), 'killed before the end');
  }
  execFileSync('node', args);
  assertSameTree(tree(out), tree(full), 'resumed --jobs 3');
  assert.ok(!readdirSync(out).some((n) => n.startsWith('.awty-stage-') || n.endsWith('.tmp')));
  // the kill must have come while frames were staged (otherwise this test shows nothing about staging)
  assert.ok(caught, 'the run was killed with staged frames on disk');
});
