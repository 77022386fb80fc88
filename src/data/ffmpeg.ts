// The system ffmpeg/ffprobe: probing a video and streaming its frames as raw RGB through a pipe.
import { spawn, execFile } from 'node:child_process';
import { closeSync } from 'node:fs';

export interface VideoInfo {
  /** seconds (container or stream duration; 0 when unknown) */
  duration: number;
  /** frames per second as the container states it (avg_frame_rate, else r_frame_rate) */
  fps: number;
  /** the stream's frame count when the container states it, else 0 */
  frames: number;
  width: number;
  height: number;
  codec: string;
}

function parseRate(r: string | undefined): number {
  if (!r) return 0;
  const [n, d] = r.split('/').map(Number);
  if (d === undefined) return Number.isFinite(n) ? n! : 0;
  return d && Number.isFinite(n) ? n! / d : 0;
}

/** Probes the first video stream of a file; rejects with ffprobe's message when it cannot. */
export function probeVideo(file: string, ffprobe = 'ffprobe'): Promise<VideoInfo> {
  return new Promise((resolve, reject) => {
    execFile(ffprobe, ['-v', 'error', '-select_streams', 'v:0', '-show_entries',
      'stream=codec_name,width,height,avg_frame_rate,r_frame_rate,nb_frames,duration:format=duration',
      '-of', 'json', file], { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error((stderr || err.message).trim().split('\n').slice(-2).join(' ')));
        return;
      }
      try {
        const j = JSON.parse(stdout) as { streams?: Record<string, string | number>[]; format?: { duration?: string } };
        const s = j.streams?.[0];
        if (!s) {
          reject(new Error('no video stream'));
          return;
        }
        const duration = Number(s.duration ?? j.format?.duration ?? 0) || Number(j.format?.duration ?? 0) || 0;
        resolve({
          duration,
          fps: parseRate(String(s.avg_frame_rate ?? '')) || parseRate(String(s.r_frame_rate ?? '')),
          frames: Number(s.nb_frames ?? 0) || 0,
          width: Number(s.width ?? 0),
          height: Number(s.height ?? 0),
          codec: String(s.codec_name ?? ''),
        });
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  });
}

export interface FrameFilter {
  /** 'exact': the first frame at or after each tick k / fps; 'seed': keep every (int(native_fps) // fps + 1)-th decoded frame */
  sampling: 'exact' | 'seed';
  fps: number;
  /** for 'seed' sampling: the keep-every-k step */
  step?: number;
  resizeMinor: number;
  size: number;
  cropOffsetY: number;
  rotate: 0 | 180;
}

/** The ffmpeg filter graph: sample, resize the shorter side (bicubic), crop, rotate, to rgb24. */
export function filterGraph(f: FrameFilter): string {
  const parts: string[] = [];
  // exact: the first frame at or after each tick k / fps of the video's own clock (no duplicates in gaps)
  if (f.sampling === 'exact') parts.push(`select='eq(n\\,0)+gt(floor((t-start_t)*${f.fps}+1e-6)\\,floor((prev_t-start_t)*${f.fps}+1e-6))'`);
  else parts.push(`select='not(mod(n\\,${f.step ?? 1}))'`);
  const m = f.resizeMinor;
  // new = floor(side * m / min(w, h)), as the original computes it; Keys cubic with a = -0.75 (OpenCV's INTER_CUBIC)
  parts.push(`scale=w='trunc(iw*${m}/min(iw\\,ih))':h='trunc(ih*${m}/min(iw\\,ih))':flags=bicubic+accurate_rnd+full_chroma_int:param0=0:param1=0.75`);
  parts.push('format=rgb24');
  const half = Math.floor(f.size / 2);
  parts.push(`crop=${f.size}:${f.size}:'trunc(iw/2)-${half}':'trunc(ih/2)-${half}+(${f.cropOffsetY})':exact=1`);
  if (f.rotate === 180) parts.push('hflip,vflip');
  return parts.join(',');
}

/** The ffmpeg command line that decodes `file` through the filter graph into raw RGB frames on `output`. */
export function decodeArgs(file: string, f: FrameFilter, output = 'pipe:1', threads = 0): string[] {
  return ['-nostdin', '-hide_banner', '-loglevel', 'error', '-threads', String(threads),
    '-i', file, '-map', '0:v:0', '-an', '-sn', '-dn', '-vf', filterGraph(f), '-fps_mode', 'passthrough',
    '-f', 'rawvideo', '-pix_fmt', 'rgb24', output];
}

export interface StreamOptions {
  ffmpeg?: string;
  threads?: number;
  onDiagnostics?: (stderr: string) => void;
  /**
   * Frames read ahead of `onFrame` before the pipe is paused (default 8): ffmpeg keeps decoding while
   * the caller works on earlier frames, and memory stays bounded (queue x size x size x 3 bytes).
   */
  queue?: number;
}

/**
 * Streams the filtered frames of a video, in order; `onFrame` receives each frame (size*size*3 bytes,
 * RGB; the caller may keep it, nothing reuses it) and may return a promise: the next frame waits for
 * it, and the pipe is paused once `queue` frames are waiting (so memory stays bounded).
 */
export function streamFrames(file: string, f: FrameFilter, onFrame: (frame: Buffer) => Promise<void> | void,
  opts: StreamOptions = {}): Promise<number> {
  const frameBytes = f.size * f.size * 3;
  const maxQueued = Math.max(1, opts.queue ?? 8);
  return new Promise((resolve, reject) => {
    const child = spawn(opts.ffmpeg ?? 'ffmpeg', decodeArgs(file, f, 'pipe:1', opts.threads ?? 0), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    // the frame being assembled from pipe chunks (one copy per byte; whole frames inside a chunk are not copied)
    let partial: Buffer | null = null;
    let fill = 0;
    const queue: Buffer[] = [];  // whole frames not yet given to onFrame (a few: the pipe pauses at maxQueued)
    let count = 0;
    let failed: Error | null = null;
    let pumping = false;
    let paused = false;
    let closed: (() => void) | null = null;
    child.stderr.on('data', (d: Buffer) => { if (stderr.length < 8192) stderr += d.toString(); });
    const pump = async (): Promise<void> => {
      if (pumping) return;
      pumping = true;
      try {
        while (queue.length > 0 && !failed) {
          const fr = queue.shift()!;
          if (paused && queue.length < maxQueued) { paused = false; child.stdout.resume(); }
          await onFrame(fr);
          count++;
        }
      } catch (e) {
        failed = e instanceof Error ? e : new Error(String(e));
        queue.length = 0;
        child.kill('SIGKILL');
        if (paused) { paused = false; child.stdout.resume(); }
      } finally {
        pumping = false;
      }
      if (closed && (failed || queue.length === 0)) closed();
    };
    child.stdout.on('data', (chunk: Buffer) => {
      if (failed) return;
      let off = 0;
      if (partial) {
        const n = Math.min(frameBytes - fill, chunk.length);
        chunk.copy(partial, fill, 0, n);
        fill += n;
        off = n;
        if (fill === frameBytes) { queue.push(partial); partial = null; }
      }
      while (chunk.length - off >= frameBytes) {
        queue.push(chunk.subarray(off, off + frameBytes));
        off += frameBytes;
      }
      if (off < chunk.length) {
        partial = Buffer.allocUnsafe(frameBytes);
        chunk.copy(partial, 0, off);
        fill = chunk.length - off;
      }
      if (!paused && queue.length >= maxQueued) { paused = true; child.stdout.pause(); }
      void pump();
    });
    child.on('error', (e) => reject(e));
    child.on('close', (code, signal) => {
      closed = () => {
        closed = null;
        // ffmpeg exits 0 on some damaged input (a truncated MP4: "partial file"); the caller judges
        if (stderr.trim()) opts.onDiagnostics?.(stderr.trim());
        if (failed) reject(failed);
        else if (code !== 0) reject(new Error(`ffmpeg exited with ${code ?? signal}: ${stderr.trim().split('\n').slice(-3).join(' ')}`));
        else if (partial) reject(new Error(`ffmpeg output ended inside a frame (${fill} of ${frameBytes} bytes)`));
        else resolve(count);
      };
      if (!pumping) void pump();
    });
  });
}

/** What a pipe reader made of the decoder's output: whole frames, and the bytes of a frame it ended inside. */
export interface PipeRead { frames: number; partial: number }

/**
 * Decodes a video into a pipe that `reader` reads itself (a compiled frame sink, say), instead of
 * this thread: `pipe()` makes it ([read end, write end], close-on-exec); ffmpeg writes into the write
 * end and the reader owns the read end from then on. The reader is given `stop` (ffmpeg killed: on
 * its failure, or cancelled) and resolves once it has read to the end. Rejects as streamFrames does:
 * the reader's error first, then ffmpeg's exit status, then a stream ending inside a frame.
 */
export async function decodeToReader(file: string, f: FrameFilter, pipe: () => [number, number],
  reader: (fd: number, stop: () => void) => Promise<PipeRead>, opts: Omit<StreamOptions, 'queue'> = {}): Promise<number> {
  const frameBytes = f.size * f.size * 3;
  const [r, w] = pipe();
  let child: ReturnType<typeof spawn>;
  try {
    child = spawn(opts.ffmpeg ?? 'ffmpeg', decodeArgs(file, f, 'pipe:1', opts.threads ?? 0), { stdio: ['ignore', w, 'pipe'] });
  } catch (e) {
    closeSync(r);
    throw e;
  } finally {
    // the child holds its copy: the reader sees the end of the stream when ffmpeg exits
    closeSync(w);
  }
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { if (stderr.length < 8192) stderr += d.toString(); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.on('error', (error) => resolve({ code: null, signal: null, error }));
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  let readError: unknown = null;
  const got = await reader(r, () => { child.kill('SIGKILL'); }).catch((e: unknown) => {
    readError = e;
    child.kill('SIGKILL');
    return { frames: 0, partial: 0 };
  });
  const { code, signal, error } = await exited;
  // ffmpeg exits 0 on some damaged input (a truncated MP4: "partial file"); the caller judges
  if (stderr.trim()) opts.onDiagnostics?.(stderr.trim());
  if (error) throw error;
  if (readError) throw readError instanceof Error ? readError : new Error(String(readError));
  if (code !== 0) throw new Error(`ffmpeg exited with ${code ?? signal}: ${stderr.trim().split('\n').slice(-3).join(' ')}`);
  if (got.partial) throw new Error(`ffmpeg output ended inside a frame (${got.partial} of ${frameBytes} bytes)`);
  return got.frames;
}
