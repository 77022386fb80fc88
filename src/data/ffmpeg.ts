// The system ffmpeg/ffprobe: probing a video and streaming its frames as raw RGB through a pipe.
import { spawn, execFile } from 'node:child_process';

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

/**
 * Streams the filtered frames of a video; `onFrame` receives each frame (size*size*3 bytes, RGB) and
 * may return a promise, during which the pipe is paused (so memory stays bounded).
 */
export function streamFrames(file: string, f: FrameFilter, onFrame: (frame: Buffer) => Promise<void> | void,
  opts: { ffmpeg?: string; threads?: number; onDiagnostics?: (stderr: string) => void } = {}): Promise<number> {
  const frameBytes = f.size * f.size * 3;
  const args = ['-nostdin', '-hide_banner', '-loglevel', 'error', '-threads', String(opts.threads ?? 0),
    '-i', file, '-map', '0:v:0', '-an', '-sn', '-dn', '-vf', filterGraph(f), '-fps_mode', 'passthrough',
    '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'];
  return new Promise((resolve, reject) => {
    const child = spawn(opts.ffmpeg ?? 'ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let pending: Buffer = Buffer.alloc(0);
    let count = 0;
    let failed: Error | null = null;
    let chain: Promise<void> = Promise.resolve();
    child.stderr.on('data', (d: Buffer) => { if (stderr.length < 8192) stderr += d.toString(); });
    child.stdout.on('data', (chunk: Buffer) => {
      pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
      const frames: Buffer[] = [];
      while (pending.length >= frameBytes) {
        frames.push(Buffer.from(pending.subarray(0, frameBytes)));
        pending = pending.subarray(frameBytes);
      }
      if (!frames.length) return;
      child.stdout.pause();
      chain = chain.then(async () => {
        for (const fr of frames) {
          if (failed) return;
          await onFrame(fr);
          count++;
        }
      }).catch((e: unknown) => {
        failed = e instanceof Error ? e : new Error(String(e));
        child.kill('SIGKILL');
      }).finally(() => child.stdout.resume());
    });
    child.on('error', (e) => reject(e));
    child.on('close', (code, signal) => {
      void chain.then(() => {
        // ffmpeg exits 0 on some damaged input (a truncated MP4: "partial file"); the caller judges
        if (stderr.trim()) opts.onDiagnostics?.(stderr.trim());
        if (failed) reject(failed);
        else if (code !== 0) reject(new Error(`ffmpeg exited with ${code ?? signal}: ${stderr.trim().split('\n').slice(-3).join(' ')}`));
        else if (pending.length) reject(new Error(`ffmpeg output ended inside a frame (${pending.length} of ${frameBytes} bytes)`));
        else resolve(count);
      });
    });
  });
}
