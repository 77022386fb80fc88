// awty extract: episode layout, the original's frame choice and geometry (against its OpenCV method),
// rotated and corrupt videos, kill-and-resume, tar shards.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { promises as fsp, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { extract, ShardDataset, readShardFolder } from '../src/data/index.js';
import { ff, treeHashes } from './helpers/files.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const cli = path.join(repo, 'dist', 'src', 'cli', 'main.js');
const reader = path.join(repo, 'bench', 'data_opencv_reader.py');
let tmp = '';

const tree = (dir: string): Map<string, string> => treeHashes(dir);

function jpegs(dir: string): string[] {
  return [...tree(dir).keys()].filter((k) => k.endsWith('.jpeg')).sort();
}

async function rgb(file: string | Buffer): Promise<Uint8Array> {
  const { data } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return data;
}

function mae(a: Uint8Array, b: Uint8Array): number {
  assert.equal(a.length, b.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!);
  return s / a.length;
}

before(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), 'awty-extract-'));
  const v = path.join(tmp, 'videos');
  await fsp.mkdir(v);
  // odd lengths, 30 and 25 fps, different sizes and containers
  ff('-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30', '-t', '3.4', '-pix_fmt', 'yuv420p', path.join(v, 'a.mp4'));
  ff('-f', 'lavfi', '-i', 'testsrc=size=352x288:rate=25', '-t', '2.2', '-pix_fmt', 'yuv420p', path.join(v, 'b.mkv'));
  ff('-f', 'lavfi', '-i', 'testsrc2=size=400x240:rate=25', '-t', '1.2', '-pix_fmt', 'yuv420p', path.join(v, 'c.mp4'));
  // a second folder: one rotated video (display matrix), one corrupt file
  const w = path.join(tmp, 'videos2');
  await fsp.mkdir(w);
  ff('-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=25', '-t', '1.2', '-c:v', 'libx264', '-qp', '0', '-pix_fmt', 'yuv444p', path.join(tmp, 'r0.mp4'));
  ff('-i', path.join(tmp, 'r0.mp4'), '-c', 'copy', '-metadata:s:v:0', 'rotate=90', path.join(w, 'd_rot.mp4'));
  await fsp.writeFile(path.join(w, 'e_corrupt.mp4'), Buffer.from(Array.from({ length: 20000 }, (_, i) => (i * 7919) & 255)));
});

after(async () => {
  if (tmp) await fsp.rm(tmp, { recursive: true, force: true });
});

test('episodes of seg_len x fps frames, numbered across video boundaries, exact fps sampling', async () => {
  const out = path.join(tmp, 'exact');
  const s = await extract({ videoDirs: [path.join(tmp, 'videos')], saveDir: out, fps: 5, segLen: 1 });
  // exactly fps frames per second of video: 3.4 s + 2.2 s + 1.2 s at 5 fps
  const expected = Math.round(3.4 * 5) + Math.round(2.2 * 5) + Math.round(1.2 * 5);
  assert.equal(s.frames, expected);
  const files = jpegs(out);
  assert.equal(files.length, expected);
  for (let g = 0; g < expected; g++) {
    const name = `class_${String(Math.floor(g / 5)).padStart(4, '0')}/img_${String(g % 5).padStart(4, '0')}.jpeg`;
    assert.ok(files.includes(name), name);
  }
  assert.equal(s.episodes, Math.ceil(expected / 5));
  assert.equal(s.lastEpisodeFrames, expected - 5 * (s.episodes - 1));
  const summary = JSON.parse(await fsp.readFile(path.join(out, 'awty-extract-summary.json'), 'utf8')) as { frames: number; hours: number };
  assert.equal(summary.frames, expected);
  assert.ok(Math.abs(summary.hours * 3600 - 6.8) < 0.2, `hours ${summary.hours}`);
  const meta = await sharp(path.join(out, files[0]!)).metadata();
  assert.equal(meta.width, 224);
  assert.equal(meta.height, 224);
});

test('--sampling seed reproduces the original reader: same frames, same names, same geometry', async () => {
  const ours = path.join(tmp, 'seed-ours');
  const theirs = path.join(tmp, 'seed-orig');
  await extract({ videoDirs: [path.join(tmp, 'videos')], saveDir: ours, fps: 5, segLen: 2, sampling: 'seed' });
  execFileSync('/usr/bin/python3', [reader, path.join(tmp, 'videos'), theirs, '--fps', '5', '--seg-len', '2']);
  const a = jpegs(ours), b = jpegs(theirs);
  // 30 fps: every 7th frame; 25 fps: every 6th
  assert.equal(a.length, Math.ceil(102 / 7) + Math.ceil(55 / 6) + Math.ceil(30 / 6));
  assert.deepEqual(a, b);
  let worst = 0;
  for (const f of a) worst = Math.max(worst, mae(await rgb(path.join(ours, f)), await rgb(path.join(theirs, f))));
  assert.ok(worst < 4, `mean abs difference up to ${worst.toFixed(2)} levels`);
  // sensitivity: the same comparison shifted by one frame, or without the 16 px offset, is far off
  const shifted = mae(await rgb(path.join(ours, a[3]!)), await rgb(path.join(theirs, a[4]!)));
  assert.ok(shifted > 3 * worst, `neighbouring frames differ by ${shifted}`);
  const noOffset = path.join(tmp, 'seed-nooffset');
  await extract({ videoDirs: [path.join(tmp, 'videos')], saveDir: noOffset, fps: 5, segLen: 2, sampling: 'seed', cropOffsetY: 0 });
  const off = mae(await rgb(path.join(noOffset, a[0]!)), await rgb(path.join(theirs, a[0]!)));
  assert.ok(off > 3 * worst, `a centred crop differs by ${off}`);
});

test('a rotated video is read upright (display matrix), then cropped and turned 180 degrees', async () => {
  const out = path.join(tmp, 'rot');
  const w = path.join(tmp, 'videos2');
  await fsp.mkdir(path.join(tmp, 'rotonly'));
  await fsp.copyFile(path.join(w, 'd_rot.mp4'), path.join(tmp, 'rotonly', 'd_rot.mp4'));
  const s = await extract({ videoDirs: [path.join(tmp, 'rotonly')], saveDir: out, fps: 5, segLen: 10 });
  assert.equal(s.frames, 6);
  // the oracle: ffmpeg's upright first frame, put through the original geometry by OpenCV
  const png = path.join(tmp, 'upright.png');
  ff('-i', path.join(w, 'd_rot.mp4'), '-frames:v', '1', png);
  const oracle = path.join(tmp, 'oracle.png');
  execFileSync('/usr/bin/python3', ['-c', `
import cv2, sys
f = cv2.imread(sys.argv[1]); h, w = f.shape[:2]
assert h > w, (h, w)  # upright portrait
nh, nw = h * 256 // min(h, w), w * 256 // min(h, w)
r = cv2.resize(f, (nw, nh), interpolation=cv2.INTER_CUBIC)
y, x = nh // 2 - 112 - 16, nw // 2 - 112
cv2.imwrite(sys.argv[2], r[y:y + 224, x:x + 224][::-1, ::-1])`, png, oracle]);
  const ours = await rgb(path.join(out, 'class_0000', 'img_0000.jpeg'));
  const d = mae(ours, await rgb(oracle));
  assert.ok(d < 4, `upright frame differs by ${d}`);
  // not rotated at all would be far off
  const unrotated = await sharp(path.join(tmp, 'upright.png')).rotate(90).resize(224, 224).removeAlpha().raw().toBuffer();
  assert.ok(mae(ours, unrotated) > 3 * d);
});

test('a corrupt video: fail names it and keeps what was written; skip passes over it and reports it', async () => {
  const dirs = [path.join(tmp, 'videos'), path.join(tmp, 'videos2')];
  const out = path.join(tmp, 'bad-fail');
  await assert.rejects(extract({ videoDirs: dirs, saveDir: out, fps: 5, segLen: 1 }), /e_corrupt\.mp4/);
  const manifest = JSON.parse(await fsp.readFile(path.join(out, '.awty-extract.json'), 'utf8')) as { videos: { name: string }[] };
  assert.deepEqual(manifest.videos.map((v) => v.name), ['a.mp4', 'b.mkv', 'c.mp4', 'd_rot.mp4']);
  assert.equal(jpegs(out).length, 17 + 11 + 6 + 6);
  const out2 = path.join(tmp, 'bad-skip');
  const s = await extract({ videoDirs: dirs, saveDir: out2, fps: 5, segLen: 1, onBadVideo: 'skip' });
  assert.equal(s.skipped.length, 1);
  assert.equal(s.skipped[0]!.video, 'e_corrupt.mp4');
  assert.equal(s.frames, 40);
  // a zero-length file is named too
  const z = path.join(tmp, 'zero');
  await fsp.mkdir(z);
  await fsp.writeFile(path.join(z, 'empty.mp4'), '');
  await assert.rejects(extract({ videoDirs: [z], saveDir: path.join(tmp, 'zero-out') }), /empty\.mp4/);
});

/**
 * SIGKILLs `child` as soon as `ready()` holds (polled every 20 ms, however long the child takes to
 * start under load) and waits for it to exit; if the child exits first, it is left as it ended.
 */
async function killWhen(child: ChildProcess, ready: () => boolean): Promise<void> {
  let exited = false;
  const done = new Promise<void>((resolve) => child.once('exit', () => { exited = true; resolve(); }));
  while (!exited && !ready()) await new Promise((r) => setTimeout(r, 20));
  if (!exited) child.kill('SIGKILL');
  await done;
}

test('killed mid-way and rerun, the CLI produces the same tree as an uninterrupted run', async () => {
  const args = (out: string): string[] => [cli, 'extract', path.join(tmp, 'videos'), '--save-dir', out, '--fps', '15', '--seg-len', '1', '--jobs', '1', '--no-progress'];
  const full = path.join(tmp, 'kill-full');
  execFileSync('node', args(full));
  const out = path.join(tmp, 'kill');
  const child = spawn('node', args(out), { stdio: 'ignore' });
  // kill once the second video has begun (its manifest entry for the first is written)
  await killWhen(child, () => existsSync(path.join(out, 'class_0004')));
  const partial = jpegs(out).length;
  assert.ok(partial > 0 && partial < jpegs(full).length, `killed after ${partial} frames`);
  execFileSync('node', args(out));
  const a = tree(out), b = tree(full);
  a.delete('awty-extract-summary.json'); b.delete('awty-extract-summary.json');
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [k, h] of b) if (k.endsWith('.jpeg')) assert.equal(a.get(k), h, k);
  assert.ok(![...a.keys()].some((k) => k.endsWith('.tmp')));
});

test('--format shards: killed mid-way and rerun, the same shards and index as an uninterrupted run', async () => {
  const args = (out: string): string[] => [cli, 'extract', path.join(tmp, 'videos'), '--save-dir', out, '--fps', '15', '--seg-len', '1', '--format', 'shards', '--shard-size', '8', '--jobs', '1', '--no-progress'];
  const full = path.join(tmp, 'kill-shards-full');
  execFileSync('node', args(full));
  const out = path.join(tmp, 'kill-shards');
  const child = spawn('node', args(out), { stdio: 'ignore' });
  const tars = (d: string): string[] => (existsSync(d) ? readdirSync(d).filter((f) => f.endsWith('.tar')) : []);
  await killWhen(child, () => tars(out).length >= 2);
  assert.ok(tars(out).length > 0, 'the kill came after the first shards were written');
  assert.ok(!existsSync(path.join(out, 'awty-extract-summary.json')), 'the kill came before the run finished');
  execFileSync('node', args(out));
  const a = tree(out), b = tree(full);
  a.delete('awty-extract-summary.json'); b.delete('awty-extract-summary.json');
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  const { list } = await readShardFolder(out);
  const { list: fullList } = await readShardFolder(full);
  assert.deepEqual(list, fullList);
  for (const sh of fullList.shards) assert.equal(a.get(sh.tar), b.get(sh.tar), sh.tar);
});

test('--format shards: tar members in the WebDataset layout, the same JPEG bytes, read back by index', async () => {
  const files = path.join(tmp, 'exact');
  const out = path.join(tmp, 'shards');
  execFileSync('node', [cli, 'extract', path.join(tmp, 'videos'), '--save-dir', out, '--fps', '5', '--seg-len', '1', '--format', 'shards', '--shard-size', '8', '--no-progress']);
  const { list } = await readShardFolder(out);
  assert.ok(list.shards.every((s) => s.count <= 8));
  assert.equal(list.shards.reduce((a, s) => a + s.count, 0), 34);
  // the system tar reads the shards and lists the members in frame order
  const members = list.shards.flatMap((s) => execFileSync('tar', ['-tf', path.join(out, s.tar)]).toString().trim().split('\n'));
  assert.deepEqual(members, jpegs(files));
  const ds = await ShardDataset.open(out);
  assert.equal(ds.length, 34);
  for (let i = 0; i < ds.length; i++) {
    const src = ds.source(i);
    const fh = await fsp.open(src.path, 'r');
    const buf = Buffer.alloc(src.length!);
    await fh.read(buf, 0, buf.length, src.offset!);
    await fh.close();
    const name = members[i]!;
    assert.equal(ds.label(i), Number(name.slice(6, 10)));
    assert.ok(buf.equals(readFileSync(path.join(files, name))), name);
  }
  assert.ok(statSync(path.join(out, list.shards[0]!.tar)).size % 512 === 0);
});
