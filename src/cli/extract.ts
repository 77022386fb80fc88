// awty extract: video -> temporal episodes (the original reader's layout, or tar shards).
import type { Command } from 'commander';
import type { ExtractProgress } from '../data/extract.js';
import { EXTRACT_DEFAULTS } from '../data/extract-defaults.js';
import { encoderPriority, num } from './parse.js';

function fmtHours(s: number): string {
  return (s / 3600).toFixed(s < 360 ? 3 : 1);
}

export function registerExtract(program: Command): void {
  const d = EXTRACT_DEFAULTS;
  program
    .command('extract')
    .description('cut videos into temporal episodes of frames: class_NNNN/img_NNNN.jpeg (numbering runs across videos), or tar shards')
    .argument('<video-dir...>', 'folders of videos, each read in sorted file-name order')
    .requiredOption('--save-dir <dir>', 'output folder')
    .option('--fps <n>', 'frames kept per second of video', num(), d.fps)
    .option('--seg-len <s>', 'episode length in seconds (episode = seg-len x fps frames)', num(), d.segLen)
    .option('--resize-minor <px>', 'shorter side after resizing (bicubic)', num(), d.resizeMinor)
    .option('--size <px>', 'side of the square crop', num(), d.size)
    .option('--crop-offset-y <px>', 'vertical shift of the centre crop (negative: up)', num(), d.cropOffsetY)
    .option('--rotate <deg>', '180 (the headcam was mounted upside down) or 0', num(), d.rotate)
    .option('--quality <q>', 'JPEG quality', num(), d.quality)
    .option('--sampling <mode>', "'exact': exactly --fps frames per second; 'seed': the original's every (int(native_fps) // fps + 1)-th frame", d.sampling)
    .option('--format <f>', "'files' (class folders of JPEGs) or 'shards' (tar shards with an index)", d.format)
    .option('--shard-size <n>', 'frames per shard at most (shards also end with each video)', num(), d.shardSize)
    .option('--on-bad-video <mode>', "'fail' (default) or 'skip' an unreadable or empty video", d.onBadVideo)
    .option('--jobs <n>', 'videos decoded at once (same output as 1, byte for byte; a video decoded ahead of its turn is staged in --save-dir)', num(), 1)
    .option('--encodes <n>', 'JPEG encodes and writes in flight, all videos together, where frames are read on the main thread (shards, staged videos, --encoder-nice 0; default: 2 x cores)', num())
    .option('--encoder-nice <n|idle>', "priority of the JPEG encoder's threads: 'idle' (Linux's idle class) or a niceness 1..19, so that encoding fills the CPU the decoder leaves idle (0: libuv's pool at the process's priority, frames read on the main thread)", encoderPriority, d.encoderNice)
    .option('--no-progress', 'no progress bar')
    .action(async (dirs: string[], o: Record<string, unknown>) => {
      for (const [flag, v, allowed] of [['--sampling', o.sampling, ['exact', 'seed']], ['--format', o.format, ['files', 'shards']],
        ['--on-bad-video', o.onBadVideo, ['fail', 'skip']]] as const) {
        if (!(allowed as readonly string[]).includes(v as string)) throw new Error(`${flag} must be one of ${allowed.join(', ')}, got ${String(v)}`);
      }
      const [{ SingleBar, Presets }, { extract }] = await Promise.all([import('cli-progress'), import('../data/extract.js')]);
      const showBar = o.progress !== false && process.stderr.isTTY;
      const bar = new SingleBar({
        format: 'extract |{bar}| {done}/{total} h video | {fps} frames/s | ETA {eta_formatted} | {video}',
        hideCursor: true, stream: process.stderr,
      }, Presets.shades_classic);
      const t0 = Date.now();
      let started = false;
      let lastLog = 0;
      const onProgress = (p: ExtractProgress): void => {
        const fps = (p.frames / Math.max(1e-3, (Date.now() - t0) / 1000)).toFixed(0);
        const payload = { done: fmtHours(p.secondsDone), total: fmtHours(p.secondsTotal), fps, video: `${p.videoIndex + 1}/${p.videos} ${p.video}` };
        if (showBar) {
          if (!started) { bar.start(Math.max(1, p.secondsTotal), 0, payload); started = true; }
          // the total grows while the later videos are probed
          if (bar.getTotal() !== Math.max(1, p.secondsTotal)) bar.setTotal(Math.max(1, p.secondsTotal));
          bar.update(Math.min(p.secondsDone, p.secondsTotal), payload);
        } else if (o.progress !== false && Date.now() - lastLog > 10000) {
          lastLog = Date.now();
          process.stderr.write(`extract: ${payload.done}/${payload.total} h, ${fps} frames/s, video ${payload.video}\n`);
        }
      };
      try {
        const s = await extract({
          videoDirs: dirs, saveDir: o.saveDir as string, fps: o.fps as number, segLen: o.segLen as number,
          resizeMinor: o.resizeMinor as number, size: o.size as number, cropOffsetY: o.cropOffsetY as number,
          rotate: o.rotate as 0 | 180, quality: o.quality as number, sampling: o.sampling as 'exact' | 'seed',
          format: o.format as 'files' | 'shards', shardSize: o.shardSize as number, onBadVideo: o.onBadVideo as 'fail' | 'skip',
          concurrency: o.encodes as number | undefined, jobs: o.jobs as number, encoderNice: o.encoderNice as number | 'idle', onProgress,
          onLog: (line) => { if (started) bar.stop(); started = false; process.stderr.write(`extract: ${line}\n`); },
        });
        if (started) bar.stop();
        const layout = s.frames ? `${s.frames} frames in ${s.episodes} episode(s) of ${s.framesPerEpisode} (last: ${s.lastEpisodeFrames})` : 'no frames';
        process.stdout.write(`extracted ${s.hours.toFixed(3)} h of video from ${s.videos} video(s): ${layout}, ${s.seconds.toFixed(1)} s` +
          (s.skipped.length ? `; skipped ${s.skipped.length}: ${s.skipped.map((k) => `${k.video} (${k.reason})`).join('; ')}` : '') + '\n');
      } finally {
        if (started) bar.stop();
      }
    });
}
