// JPEG encoding of raw RGB frames for `awty extract`: sharp's `.jpeg({ quality })` bytes, made by the
// compiled encoder (native/src/jpeg.cc, the system libjpeg with the settings sharp's libvips uses)
// when it is built and gives sharp's bytes on a check image of the same size and quality, else by
// sharp. The compiled one costs about half of sharp's CPU per 224 px frame and almost nothing on the
// main thread (sharp reads its whole options object there on every call). AWTY_NATIVE_JPEG=0 keeps sharp.
import { createRequire } from 'node:module';
import { getSystemErrorMap } from 'node:util';
import sharp from 'sharp';
import { addonPath } from '../torch/addon-path.js';

/** Encodes one width x height x 3 RGB buffer (left unchanged until the promise settles). */
export type RgbJpegEncoder = (rgb: Buffer) => Promise<Buffer>;

/**
 * Encodes one frame and writes it: creates `tmp`, writes the whole JPEG, renames it to `final`, all
 * off the main thread; resolves with the file's open descriptor (the caller fsyncs and closes it). A
 * file error rejects with a Node system error (code, errno, syscall, path), as fs's calls do.
 */
export type RgbJpegFileEncoder = (rgb: Buffer, tmp: string, final: string) => Promise<number>;

/**
 * The priority of the encoder's threads: a niceness 0..19 (0: libuv's pool, at the process's
 * priority; above 0 threads of its own at that niceness), or 'idle': the frame sink's threads in
 * Linux's idle scheduling class (SCHED_IDLE), which run only on CPU time no other thread wants
 * (handing over to threads at IDLE_FALLBACK_NICE when they starve), and the other encodes at
 * IDLE_FALLBACK_NICE (nothing would watch them starve).
 */
export type EncoderPriority = number | 'idle';

/** The niceness that stands in for the idle class where starving threads could not hand over. */
export const IDLE_FALLBACK_NICE = 10;

/** Whether `p` is an encoder priority (a whole niceness 0..19, or 'idle'). */
export function isEncoderPriority(p: unknown): p is EncoderPriority {
  return p === 'idle' || (typeof p === 'number' && Number.isInteger(p) && p >= 0 && p <= 19);
}

/** What a frame sink reports (on the JS thread): frames read and written so far, and at the end done. */
export interface FrameSinkEvent {
  /** whole frames taken from the pipe */
  read: number;
  /** frames encoded and written under their final names */
  written: number;
  /** bytes of a frame the stream ended inside (0: it ended between frames) */
  partial: number;
  /** every thread has stopped, every file is fsynced (unless it failed or was stopped) and closed, and the pipe is closed */
  done: boolean;
  /** the idle-class threads starved (frames waited 250 ms in the pipe) and threads at IDLE_FALLBACK_NICE took over */
  fallback: boolean;
  /** the first failure (a file error as a Node system error), or null */
  error: Error | null;
}

/** Where a frame sink writes: frame k of the stream is global frame startFrame + k, in `dir`'s episode folders of `perEpisode` frames. */
export interface FrameSinkTarget { dir: string; startFrame: number; perEpisode: number; threads: number }

/**
 * Reads whole RGB frames from the pipe `fd` (taking it over) until its end on threads of the
 * encoder's priority, encoding each and writing it as `<dir>/class_NNNN/img_NNNN.jpeg` (names.ts's;
 * temporary name, then rename; fsynced in batches and at the end). `onEvent` returns true to stop.
 */
export type JpegFrameSink = (fd: number, target: FrameSinkTarget, onEvent: (e: FrameSinkEvent) => boolean | undefined) => void;

interface NativeJpeg {
  /** nice > 0: encoded on the addon's own threads at that niceness, 20: in the idle class (0: libuv's pool) */
  jpegEncodeRgb(rgb: Buffer, width: number, height: number, quality: number, nice?: number): Promise<Buffer>;
  jpegEncodeRgbToFile(rgb: Buffer, width: number, height: number, quality: number, nice: number, tmp: string, final: string): Promise<number>;
  jpegFrameSink(fd: number, width: number, height: number, quality: number, priority: number, threads: number, dir: string,
    startFrame: number, perEpisode: number, onEvent: (e: FrameSinkEvent) => boolean | undefined): void;
  /** [read end, write end], close-on-exec, enlarged to 1 MiB where allowed */
  framePipe(): [number, number];
}

/** The addon's file error (errno, syscall, path) as the error fs would throw: `ENOSPC: no space left on device, open '...'`. */
function systemError(e: unknown): unknown {
  const n = e as { errno?: unknown; syscall?: unknown; path?: unknown; message?: string };
  if (typeof n.errno !== 'number' || typeof n.syscall !== 'string' || typeof n.path !== 'string') return e;
  // libuv's name and message for the errno, as fs's errors carry them
  const [code, reason] = getSystemErrorMap().get(-n.errno) ?? ['EIO', n.message ?? 'i/o error'];
  return Object.assign(new Error(`${code}: ${reason}, ${n.syscall} '${n.path}'`), { code, errno: -n.errno, syscall: n.syscall, path: n.path });
}

let addon: NativeJpeg | null | undefined;

/** The compiled encoder, or null (not built, not loadable, or AWTY_NATIVE_JPEG=0). */
export function nativeJpeg(): NativeJpeg | null {
  if (addon !== undefined) return addon;
  addon = null;
  if (process.env.AWTY_NATIVE_JPEG === '0') return null;
  const p = addonPath('awty_jpeg.node');
  if (p) {
    try {
      addon = createRequire(import.meta.url)(p) as NativeJpeg;
    } catch {
      addon = null;
    }
  }
  return addon;
}

/** sharp's encoding (the reference). */
export function sharpJpeg(rgb: Buffer, width: number, height: number, quality: number): Promise<Buffer> {
  return sharp(rgb, { raw: { width, height, channels: 3 } }).jpeg({ quality }).toBuffer();
}

/** A deterministic check image: smooth gradients, hard edges and noise (every coding path of the encoder). */
export function checkImage(width: number, height: number): Buffer {
  const b = Buffer.allocUnsafe(width * height * 3);
  let s = 0x9e3779b9;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
      const noise = (s >>> 0) & 63;
      const i = (y * width + x) * 3;
      const edge = ((x >> 3) + (y >> 4)) & 1 ? 96 : 0;
      b[i] = (x * 255 / Math.max(1, width - 1) + noise) & 255;
      b[i + 1] = (y * 255 / Math.max(1, height - 1) + edge) & 255;
      b[i + 2] = ((x + y) * 2 + (x > width / 2 ? noise * 3 : 0)) & 255;
    }
  }
  return b;
}

const checked = new Map<string, Promise<boolean>>();

/** Whether the compiled encoder gives sharp's bytes for this size and quality (checked once per process). */
export function nativeMatchesSharp(width: number, height: number, quality: number): Promise<boolean> {
  const nat = nativeJpeg();
  if (!nat) return Promise.resolve(false);
  const key = `${width}x${height}q${quality}`;
  let p = checked.get(key);
  if (!p) {
    const img = checkImage(width, height);
    p = Promise.all([nat.jpegEncodeRgb(img, width, height, quality), sharpJpeg(img, width, height, quality)])
      .then(([a, b]) => a.equals(b), () => false);
    checked.set(key, p);
  }
  return p;
}

/**
 * The encoder for frames of this size and quality: the compiled one when it matches sharp, else sharp.
 * `name` says which ('libjpeg' or 'sharp'). With a priority other than 0 the compiled encoder runs
 * on threads of its own at that priority (the same bytes), so that it takes only the CPU a decoder
 * leaves idle. The compiled one also offers `encodeToFile`, which writes the JPEG on the same
 * thread, `frameSink`, which also reads the frames from the decoder's pipe, and `pipe`, that pipe.
 */
export async function rgbJpegEncoder(width: number, height: number, quality: number, priority: EncoderPriority = 0):
Promise<{ name: 'libjpeg' | 'sharp'; encode: RgbJpegEncoder; encodeToFile?: RgbJpegFileEncoder; frameSink?: JpegFrameSink; pipe?: () => [number, number] }> {
  if (!isEncoderPriority(priority)) throw new RangeError(`the encoder's priority must be a whole niceness 0..19 or 'idle', got ${String(priority)}`);
  const nat = nativeJpeg();
  if (nat && await nativeMatchesSharp(width, height, quality)) {
    // the addon's numbers: a niceness, or 20 for the idle class
    const nice = priority === 'idle' ? IDLE_FALLBACK_NICE : priority;
    const sinkPriority = priority === 'idle' ? 20 : priority;
    return {
      name: 'libjpeg',
      encode: (rgb) => nat.jpegEncodeRgb(rgb, width, height, quality, nice),
      encodeToFile: (rgb, tmp, final) => nat.jpegEncodeRgbToFile(rgb, width, height, quality, nice, tmp, final)
        .catch((e: unknown) => { throw systemError(e); }),
      frameSink: (fd, t, onEvent) => nat.jpegFrameSink(fd, width, height, quality, sinkPriority, t.threads, t.dir, t.startFrame, t.perEpisode,
        (e) => onEvent(e.error ? { ...e, error: systemError(e.error) as Error } : e)),
      pipe: () => nat.framePipe(),
    };
  }
  return { name: 'sharp', encode: (rgb) => sharpJpeg(rgb, width, height, quality) };
}
