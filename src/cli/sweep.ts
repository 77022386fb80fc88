// awty sweep CONFIG.json: the paper's grid (class fractions x seeds of train-tc, evaluation
// conditions of each final checkpoint), resumable, then the summary table and Figure 1.
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { writeTextAtomic } from '../io/atomic.js';
import { UsageError } from '../experiments/errors.js';
import { int } from './parse.js';

export function registerSweep(program: Command): void {
  program
    .command('sweep')
    .argument('[config]', 'the sweep configuration (JSON with comments; see awty sweep --init)')
    .description('run the study\'s grid: train-tc at every class fraction x seed, each evaluation condition on every final checkpoint, the summary table and Figure 1; rerun to continue after an interruption')
    .option('--init [file]', 'write a commented example configuration (default sweep.json) and exit')
    .option('--dry-run', 'print every run with its command line and a cost estimate from a timed step on this machine; run nothing', false)
    .option('--nproc-per-node <n>', 'run each train-tc and finetune run as N data-parallel processes (awty launch), the threads divided among them; overrides the configuration\'s nprocPerNode', int(1))
    .action(async (config: string | undefined, o: { init?: string | true; dryRun: boolean; nprocPerNode?: number }) => {
      const { exampleConfig, readConfig, runSweep } = await import('../experiments/sweep.js');
      if (o.init !== undefined) {
        const file = o.init === true ? 'sweep.json' : o.init;
        if (existsSync(file)) throw new UsageError(`${file} exists; not overwriting it (give another name: awty sweep --init FILE)`);
        await writeTextAtomic(file, exampleConfig());
        process.stdout.write(`wrote ${file}; edit dataDirs, trainDir, valDir and out, then run: awty sweep ${file}\n`);
        return;
      }
      if (config === undefined) throw new UsageError('give the sweep configuration file (awty sweep CONFIG.json), or --init to write an example');
      const c = await readConfig(config, o.nprocPerNode !== undefined ? { nprocPerNode: o.nprocPerNode } : {});
      const { reportInterrupt, trainingOutput } = await import('./progress.js');
      const out = trainingOutput();
      await runSweep(c, { dryRun: o.dryRun, handleSignals: true, log: out.log, runLog: out.log, ...(out.onStep ? { onStep: out.onStep } : {}) })
        .catch((e: unknown) => reportInterrupt(e, () => `awty sweep ${config}`, true)).finally(() => out.stop());
    });
}
