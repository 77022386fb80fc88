// The defaults of every extraction setting (the original's frame extraction), for extract() and for
// `awty extract`, in a module of their own so that the command line shows them without loading more.
export const EXTRACT_DEFAULTS = {
  fps: 5, segLen: 288, resizeMinor: 256, size: 224, cropOffsetY: -16, rotate: 180 as 0 | 180, quality: 95,
  sampling: 'exact' as 'exact' | 'seed', format: 'files' as 'files' | 'shards', shardSize: 10000, onBadVideo: 'fail' as 'skip' | 'fail',
  encoderNice: 'idle' as number | 'idle',
};
