// awty demo: the study in miniature on real video and a real labelled set (opencv-doc's footage and
// photographs, Fashion-MNIST), with a self-contained report; flags and progress only.
import type { Command } from 'commander';
import type { DemoSize } from '../experiments/demo.js';
import { isDevice, type Device } from '../torch/device.js';
import { int } from './parse.js';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('the paper\'s question in miniature: real video from opencv-doc -> episodes -> temporal classification at 4 amounts of video x 2 seeds -> ' +
      'Fashion-MNIST few-shot and linear probe (and a random-weight baseline) -> Figure 1 beside the paper\'s -> report.html; about 15 minutes on 2 CPU cores')
    .option('--out <dir>', 'output folder: created, or one an earlier awty demo made (finished stages are skipped); any other folder is refused', './awty-demo')
    .option('--size <size>', "'full' (default) or 'tiny' (a short run for tests)", 'full')
    .option('--threads <n>', 'libtorch intra-op threads', int(1))
    .option('--device <d>', 'cpu, cuda or cuda:N (default: cuda when available)')
    .action(async (o: { out: string; threads?: number; size: string; device?: string }) => {
      if (o.size !== 'full' && o.size !== 'tiny') throw new Error(`--size must be full or tiny, got ${o.size}`);
      if (o.device !== undefined && !isDevice(o.device)) throw new Error(`--device must be cpu, cuda or cuda:N, got ${o.device}`);
      const { runDemo } = await import('../experiments/demo.js');
      await runDemo({
        out: o.out, size: o.size as DemoSize, ...(o.threads !== undefined ? { threads: o.threads } : {}),
        ...(o.device !== undefined ? { device: o.device as Device } : {}),
      });
    });
}
