// The compiled JPEG encoder of `awty extract` (native/src/jpeg.cc): sharp's `.jpeg({ quality })` bytes,
// byte for byte, on real frames and on the check image, at several sizes (odd ones: partial blocks
// and chroma pairs) and qualities; bad arguments are refused; the extraction uses it when it matches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, fstatSync, fsyncSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import * as path from 'node:path';
import { checkImage, nativeJpeg, nativeMatchesSharp, rgbJpegEncoder, sharpJpeg, type FrameSinkEvent } from '../src/data/jpeg.js';

const built = nativeJpeg() !== null;
const why = built ? false : 'awty_jpeg.node is not built (libjpeg headers missing): the extraction encodes with sharp';

/** `n` frames of ffmpeg's testsrc2 (224 x 224) as raw RGB, cut to their top left width x height (testsrc2 makes even sizes only). */
function frames(width: number, height: number, n: number): Buffer[] {
  const raw = execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc2=size=224x224:rate=5', '-frames:v', String(n),
    '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], { maxBuffer: 1 << 26 });
  return Array.from({ length: n }, (_, i) => {
    const out = Buffer.alloc(width * height * 3);
    for (let y = 0; y < height; y++) raw.copy(out, y * width * 3, (i * 224 * 224 + y * 224) * 3, (i * 224 * 224 + y * 224 + width) * 3);
    return out;
  });
}

test('the compiled encoder gives sharp\'s bytes: real frames and the check image, sizes and qualities', { skip: why }, async () => {
  const nat = nativeJpeg()!;
  for (const [w, h] of [[224, 224], [40, 40], [17, 9], [1, 1], [65, 33]] as const) {
    const imgs = [...frames(w, h, 2), checkImage(w, h)];
    for (const q of [1, 50, 75, 90, 95, 100]) {
      for (const [i, img] of imgs.entries()) {
        const [a, b] = await Promise.all([nat.jpegEncodeRgb(img, w, h, q), sharpJpeg(img, w, h, q)]);
        assert.ok(a.equals(b), `${w}x${h} quality ${q} image ${i}: ${a.length} bytes against sharp's ${b.length}`);
      }
    }
  }
});

test('the extraction uses the compiled encoder where it matches sharp; bad arguments are refused', { skip: why }, async () => {
  assert.equal(await nativeMatchesSharp(224, 224, 95), true);
  const enc = await rgbJpegEncoder(224, 224, 95);
  assert.equal(enc.name, 'libjpeg');
  const img = frames(224, 224, 1)[0]!;
  assert.ok((await enc.encode(img)).equals(await sharpJpeg(img, 224, 224, 95)));
  const nat = nativeJpeg()!;
  assert.throws(() => nat.jpegEncodeRgb(img.subarray(1), 224, 224, 95), /not width x height x 3 bytes/);
  assert.throws(() => nat.jpegEncodeRgb(img, 224, 224, 0), /quality must be 1\.\.100/);
  assert.throws(() => nat.jpegEncodeRgb(img, 0, 224, 95), /bad image size/);
  assert.throws(() => (nat.jpegEncodeRgb as (...a: unknown[]) => unknown)('x', 1, 1, 95), /jpegEncodeRgb\(rgb: Buffer/);
});

test('without the compiled encoder (or where it differs) sharp encodes', async () => {
  // the check image of a size no frame has: either encoder, the same bytes as sharp's
  const enc = await rgbJpegEncoder(31, 7, 88);
  const img = checkImage(31, 7);
  assert.ok((await enc.encode(img)).equals(await sharpJpeg(img, 31, 7, 88)));
  assert.equal(enc.name, built ? 'libjpeg' : 'sharp');
});

/** Niceness of each thread of this process (field 19 of /proc/self/task/TID/stat). */
function threadNiceness(): number[] {
  return readdirSync('/proc/self/task').map((tid) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  });
}

test('with a niceness the compiled encoder runs on threads of its own at that niceness, with the same bytes', { skip: why }, async () => {
  const nat = nativeJpeg()!;
  assert.ok(!threadNiceness().includes(7), 'no thread at niceness 7 before');
  const imgs = [...frames(224, 224, 6), checkImage(224, 224)];
  const a = await Promise.all(imgs.map((img) => nat.jpegEncodeRgb(img, 224, 224, 95, 7)));
  const b = await Promise.all(imgs.map((img) => sharpJpeg(img, 224, 224, 95)));
  for (const [i, x] of a.entries()) assert.ok(x.equals(b[i]!), `frame ${i}: ${x.length} bytes against sharp's ${b[i]!.length}`);
  const niced = threadNiceness().filter((n) => n === 7).length;
  assert.equal(niced, Math.max(1, availableParallelism()), 'one encoder thread per core at niceness 7');
  assert.ok(threadNiceness().filter((n) => n === 0).length > 0, 'the other threads keep the process\'s priority');
  // the encoder of the extraction, with the niceness, gives sharp's bytes too
  const enc = await rgbJpegEncoder(224, 224, 95, 7);
  assert.ok((await enc.encode(imgs[0]!)).equals(b[0]!));
  assert.throws(() => nat.jpegEncodeRgb(imgs[0]!, 224, 224, 95, 21), /nice must be 0\.\.20 \(20: the idle class\)/);
  await assert.rejects(rgbJpegEncoder(224, 224, 95, -1), /priority must be a whole niceness 0\.\.19 or 'idle', got -1/);
});

test('a pending encode on the niced threads keeps the process alive until it is delivered', { skip: why }, () => {
  // nothing else holds the event loop: the process must wait for the result, then exit on its own
  const script = `import { nativeJpeg, checkImage } from ${JSON.stringify(new URL('../src/data/jpeg.js', import.meta.url).href)};
const nat = nativeJpeg();
const img = checkImage(224, 224);
let n = 0;
for (let i = 0; i < 8; i++) nat.jpegEncodeRgb(img, 224, 224, 95, 9).then((b) => { if (b.length > 100) n++; if (n === 8) console.log('delivered 8'); });`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60000 });
  assert.equal(out.trim(), 'delivered 8');
});

test('encodeToFile writes sharp\'s bytes through a temporary name off the main thread and hands back the open descriptor; file errors are Node system errors', { skip: why }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'awty-jpeg-file-'));
  try {
    const img = frames(224, 224, 1)[0]!;
    const ref = await sharpJpeg(img, 224, 224, 95);
    for (const nice of [0, 5]) {
      const enc = await rgbJpegEncoder(224, 224, 95, nice);
      const tmp = path.join(dir, `.f${nice}.tmp`), final = path.join(dir, `f${nice}.jpeg`);
      const fd = await enc.encodeToFile!(img, tmp, final);
      try {
        assert.equal(fstatSync(fd).size, ref.length, `niceness ${nice}: the descriptor is the written file's`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      assert.ok(readFileSync(final).equals(ref), `niceness ${nice}: sharp's bytes`);
      assert.ok(!existsSync(tmp), `niceness ${nice}: the temporary name is gone`);
      const missing = path.join(dir, 'no-such-folder', '.x.tmp');
      await assert.rejects(enc.encodeToFile!(img, missing, path.join(dir, 'x.jpeg')), (e: NodeJS.ErrnoException) => {
        assert.equal(e.code, 'ENOENT');
        assert.equal(e.syscall, 'open');
        assert.equal(e.path, missing);
        assert.match(e.message, /^ENOENT: no such file or directory, open '.*no-such-folder\/\.x\.tmp'$/);
        return true;
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Scheduling policy of each thread of this process (field 41 of /proc/self/task/TID/stat; 5 is SCHED_IDLE). */
function threadPolicies(): number[] {
  return readdirSync('/proc/self/task').flatMap((tid) => {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      return [Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[38])];
    } catch {
      return [];  // the thread ended meanwhile
    }
  });
}
const SCHED_IDLE = 5;

/** Starts a frame sink on a fresh pipe; `done` settles with its last event, `events` holds them all. */
async function startSink(dir: string, startFrame: number, perEpisode: number, size: number, threads: number,
  onEvent: (e: FrameSinkEvent) => boolean | undefined = () => undefined): Promise<{ w: number; done: Promise<FrameSinkEvent>; events: FrameSinkEvent[] }> {
  const enc = await rgbJpegEncoder(size, size, 90, 'idle');
  const [r, w] = enc.pipe!();
  const events: FrameSinkEvent[] = [];
  const done = new Promise<FrameSinkEvent>((resolve) => {
    enc.frameSink!(r, { dir, startFrame, perEpisode, threads }, (e) => {
      events.push(e);
      if (e.done) resolve(e);
      return onEvent(e);
    });
  });
  return { w, done, events };
}

const until = async (what: string, ok: () => boolean): Promise<void> => {
  for (let i = 0; i < 400 && !ok(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(ok(), what);
};

test('the frame sink reads whole frames from the pipe on threads in the idle class and writes sharp\'s bytes under the episode folders\' names', { skip: why }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'awty-jpeg-sink-'));
  try {
    const imgs = frames(64, 64, 7);
    const before = threadPolicies().filter((p) => p === SCHED_IDLE).length;
    const { w, done, events } = await startSink(dir, 3, 4, 64, 2);
    // both threads wait on the pipe, in the idle class
    await until('two threads in the idle class', () => threadPolicies().filter((p) => p === SCHED_IDLE).length === before + 2);
    for (const img of imgs) writeSync(w, img);
    closeSync(w);
    const last = await done;
    assert.deepEqual({ ...last }, { read: 7, written: 7, partial: 0, done: true, fallback: false, error: null });
    assert.equal(events.filter((e) => e.done).length, 1, 'one last event');
    for (const e of events) assert.ok(e.written <= e.read && e.read <= 7);
    // global frames 3..9, 4 to an episode: class_0000/img_0003, class_0001/img_0000..3, class_0002/img_0000..1
    const names = ['class_0000/img_0003.jpeg', 'class_0001/img_0000.jpeg', 'class_0001/img_0001.jpeg', 'class_0001/img_0002.jpeg',
      'class_0001/img_0003.jpeg', 'class_0002/img_0000.jpeg', 'class_0002/img_0001.jpeg'];
    assert.deepEqual(readdirSync(dir).sort(), ['class_0000', 'class_0001', 'class_0002'], 'the episode folders only (no temporary files)');
    assert.deepEqual(names.map((n) => n.split('/')[0]), ['class_0000', ...Array(4).fill('class_0001'), 'class_0002', 'class_0002']);
    for (const [i, n] of names.entries()) {
      assert.ok(readFileSync(path.join(dir, n)).equals(await sharpJpeg(imgs[i]!, 64, 64, 90)), `${n}: sharp's bytes of frame ${i}`);
    }
    assert.equal(readdirSync(path.join(dir, 'class_0001')).length, 4, 'nothing but the frames');
    await until('the threads are gone', () => threadPolicies().filter((p) => p === SCHED_IDLE).length === before);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the frame sink reports a stream ending inside a frame, a file error as a Node system error, and stops when asked', { skip: why }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'awty-jpeg-sink-'));
  try {
    const imgs = frames(32, 32, 8);
    // two whole frames and 100 bytes of a third
    const partial = await startSink(path.join(dir, 'p'), 0, 10, 32, 2);
    mkdirSync(path.join(dir, 'p'));
    writeSync(partial.w, Buffer.concat([imgs[0]!, imgs[1]!, imgs[2]!.subarray(0, 100)]));
    closeSync(partial.w);
    assert.deepEqual({ ...await partial.done }, { read: 2, written: 2, partial: 100, done: true, fallback: false, error: null });
    assert.equal(readdirSync(path.join(dir, 'p', 'class_0000')).length, 2);
    // a missing folder: the episode folder cannot be made
    const missing = path.join(dir, 'no-such-folder');
    const bad = await startSink(missing, 0, 10, 32, 1);
    writeSync(bad.w, imgs[0]!);
    const failed = await bad.done;
    closeSync(bad.w);
    assert.equal(failed.written, 0);
    assert.equal(failed.read, 1);
    const e = failed.error as NodeJS.ErrnoException;
    assert.equal(e.code, 'ENOENT');
    assert.equal(e.syscall, 'mkdir');
    assert.equal(e.path, path.join(missing, 'class_0000'));
    assert.match(e.message, /^ENOENT: no such file or directory, mkdir '.*no-such-folder\/class_0000'$/);
    // stopped at its first event: at most the frame it was reading is written after it, and then it
    // closes the pipe (writes into it fail with EPIPE, as a decoder's would)
    mkdirSync(path.join(dir, 's'));
    const stopped = await startSink(path.join(dir, 's'), 0, 100, 32, 1, () => true);
    writeSync(stopped.w, imgs[0]!);
    await until('a first event', () => stopped.events.length > 0);
    let refused = 0;
    for (const img of imgs.slice(1)) {
      try {
        writeSync(stopped.w, img);
      } catch (err) {
        assert.equal((err as NodeJS.ErrnoException).code, 'EPIPE');
        refused++;
      }
    }
    closeSync(stopped.w);
    const end = await stopped.done;
    assert.equal(end.error, null);
    assert.ok(end.written >= 1 && end.written <= 2, `written ${end.written} of 8`);
    assert.ok(end.read <= 2, `read ${end.read} of 8`);
    assert.equal(readdirSync(path.join(dir, 's', 'class_0000')).length, end.written, 'the files of the frames it wrote, no temporary ones');
    assert.ok(refused > 0 || end.read === 2, 'the pipe is closed once it has stopped');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('starved in the idle class (every core kept busy by other processes), the frame sink hands over to threads at niceness 10', { skip: why }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'awty-jpeg-sink-'));
  // one busy process per core at normal priority, for at most 60 s
  const hogs = Array.from({ length: availableParallelism() }, () => spawn(process.execPath, ['-e', 'const end = Date.now() + 60000; while (Date.now() < end);'], { stdio: 'ignore' }));
  try {
    const imgs = frames(64, 64, 120);
    const { w, done } = await startSink(dir, 0, 1000, 64, 1);
    // the hogs running: each has had 0.1 s of CPU
    const cpu = (pid: number): number => {
      const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return f.slice(f.lastIndexOf(')') + 2).split(' ').slice(11, 13).reduce((a, x) => a + Number(x), 0);
    };
    await until('the busy processes run', () => hogs.every((h) => cpu(h.pid!) >= 10));
    for (const img of imgs) writeSync(w, img);
    closeSync(w);
    const last = await done;
    assert.equal(last.error, null);
    assert.equal(last.fallback, true, 'the threads at niceness 10 took over');
    assert.equal(last.read, 120);
    assert.equal(last.written, 120);
    for (const [i, img] of imgs.entries()) {
      assert.ok(readFileSync(path.join(dir, 'class_0000', `img_${String(i).padStart(4, '0')}.jpeg`)).equals(await sharpJpeg(img, 64, 64, 90)), `frame ${i}`);
    }
  } finally {
    for (const h of hogs) h.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
