// The speed flags of the training commands (train-tc, finetune): memory format and mixed precision.
import type { Command } from 'commander';

export function addPrecisionFlags(cmd: Command): Command {
  return cmd
    .option('--channels-last', 'model and input batches in channels_last memory format (NHWC; torch.channels_last)')
    .option('--amp', 'mixed precision: the forward pass under autocast (bfloat16 on CPU; float16 with gradient scaling on CUDA)')
    .option('--amp-dtype <dtype>', 'with --amp: bfloat16 or float16 (float16 on CUDA only; default bfloat16 on CPU, float16 on CUDA)');
}

export function precisionFlagValues(o: Record<string, unknown>): { channelsLast: boolean; amp: boolean; ampDtype?: 'bfloat16' | 'float16' } {
  const dt = o.ampDtype as string | undefined;
  if (dt !== undefined && dt !== 'bfloat16' && dt !== 'float16') throw new Error(`--amp-dtype must be bfloat16 or float16, got '${dt}'`);
  if (dt !== undefined && o.amp !== true) throw new Error('--amp-dtype needs --amp');
  return { channelsLast: o.channelsLast === true, amp: o.amp === true, ...(dt !== undefined ? { ampDtype: dt } : {}) };
}
