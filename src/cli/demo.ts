// awty demo: the whole study end to end (videos -> episodes -> TC -> ImageNet evaluation -> Figure 1)
// on synthetic data made on the spot, in a few minutes on a CPU.
import { InvalidArgumentError, type Command } from 'commander';
import { runDemo, type DemoSize } from '../experiments/demo.js';

function int(name: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got ${v}`);
    return n;
  };
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run the whole pipeline (extract, train-tc, finetune, figure1) on synthetic videos and images made on the spot; a few minutes on a CPU')
    .option('--out <dir>', 'output folder (emptied first)', './awty-demo')
    .option('--seed <n>', 'seed of the training runs, the images and the bootstrap', int('--seed', 0), 1)
    .option('--threads <n>', 'libtorch intra-op threads', int('--threads', 1))
    .option('--size <size>', "'small' (default) or 'tiny' (shorter videos, fewer epochs)", 'small')
    .action(async (o: { out: string; seed: number; threads?: number; size: string }) => {
      if (o.size !== 'small' && o.size !== 'tiny') throw new Error(`--size must be small or tiny, got ${o.size}`);
      await runDemo({ out: o.out, seed: o.seed, size: o.size as DemoSize, ...(o.threads !== undefined ? { threads: o.threads } : {}) });
    });
}
