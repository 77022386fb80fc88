// awty train-tc: temporal classification training with the original train_tc.py's flags and defaults.
import type { Command } from 'commander';
import { int, num } from './parse.js';
import { addDistFlags, distFlagValues } from './dist-flags.js';
import { addPrecisionFlags, precisionFlagValues } from './precision-flags.js';
import { TC_DEFAULTS } from '../experiments/defaults.js';
import type { Device } from '../torch/device.js';
import type { EpisodeSelection } from '../data/index.js';

export function registerTrainTc(program: Command): void {
  const d = TC_DEFAULTS;
  const cmd = program
    .command('train-tc')
    .description('temporal classification: train a network to tell which episode each frame came from (train_tc.py); saves a checkpoint after every epoch')
    .requiredOption('--data-dirs <dir...>', 'folders holding episode folders (class_NNNN/...)')
    .option('--model <name>', 'architecture (torchvision name), trained from scratch', d.model)
    .option('--n_out <n>', 'outputs of the episode head (at least the number of episodes kept)', int(), d.nOut)
    .option('--class-fraction <f>', 'fraction of episodes kept: ceil(N x f) consecutive sorted episodes from a start drawn by Python\'s random seeded with --seed (see --episode-selection)', num(), d.classFraction)
    .option('--episode-selection <rule>', "'window' (the original train_tc.py's seeded window) or 'first' (the first round(N x f), as eminorhan/alternative-imagefolders)", d.episodeSelection)
    .option('--epochs <n>', 'total epochs', int(), d.epochs)
    .option('--start-epoch <n>', 'epoch to start at (with --resume: default from the checkpoint)', int(), d.startEpoch)
    .option('-b, --batch-size <n>', 'mini-batch size (the global batch: launched as N processes, each takes batch-size / N)', int(), d.batchSize)
    .option('--lr <x>', 'Adam learning rate', num(), d.lr)
    .option('--weight-decay <x>', 'Adam weight decay', num(), d.weightDecay)
    .option('--seed <n>', 'seed of initialisation, shuffling and augmentation', int(), d.seed)
    .option('-j, --workers <n>', 'data-loading worker threads (0: the main thread)', int(), d.workers)
    .option('-p, --print-freq <n>', 'iterations between progress lines', int(), d.printFreq)
    .option('--resume <file>', 'checkpoint to continue from (model, optimizer, accuracies, epoch)', d.resume)
    .option('--augmentation', 'turn the augmentation OFF (as the original flag does): ToTensor + Normalize only')
    .option('--subject <name>', 'subject name, used only in the checkpoint names', d.subject)
    .option('--cache-path <file>', 'where the dataset index is cached (default: in the first data dir)', d.cachePath)
    .option('--out <dir>', 'folder for the checkpoints', d.out)
    .option('--threads <n>', 'libtorch intra-op threads', int())
    .option('--device <d>', 'cpu or cuda', d.device)
    .option('--on-bad-image <mode>', "an unreadable image: 'fail' (default) stops naming it, 'skip' leaves it out of its batch", d.onBadImage)
    .option('--image-size <px>', 'side of the augmentation crop', int(), d.imageSize)
    .option('--drop-last', 'drop the last incomplete batch of every epoch (ours; the original keeps it)', false)
    .option('--save-every <n>', 'save a checkpoint every N epochs (and after the last)', int(), d.saveEvery)
    .option('--keep-last <k>', 'keep only the newest K epoch checkpoints of this run (0: all)', int(), d.keepLast)
    .option('--log-freq <n>', 'iterations between lines of the metrics file', int(), d.logFreq)
    .option('--metrics <file>', "metrics as JSON lines (default OUT/TC_..._{seed}.metrics.jsonl; '' for none)");
  addDistFlags(addPrecisionFlags(cmd))
    .action(async (o: Record<string, unknown>, c: Command) => {
      const device = o.device as string;
      if (!/^(cpu|cuda(:\d+)?)$/.test(device)) throw new Error(`--device must be cpu or cuda, got ${device}`);
      // loaded when the command runs, so that other commands and --help do not load libtorch
      const [{ main }, { reportInterrupt, resumeCommand, trainingOutput }] = await Promise.all([import('../experiments/tc.js'), import('./progress.js')]);
      const out = trainingOutput();
      await main({
        saveEvery: o.saveEvery as number, dropLast: o.dropLast as boolean, keepLast: o.keepLast as number, logFreq: o.logFreq as number,
        ...(o.metrics !== undefined ? { metrics: o.metrics as string } : {}), handleSignals: true, log: out.log,
        ...(out.onStep ? { onStep: out.onStep } : {}),
        dataDirs: o.dataDirs as string[], model: o.model as string, nOut: o.n_out as number, classFraction: o.classFraction as number,
        epochs: o.epochs as number, startEpoch: o.startEpoch as number, batchSize: o.batchSize as number, lr: o.lr as number,
        weightDecay: o.weightDecay as number, seed: o.seed as number, workers: o.workers as number, printFreq: o.printFreq as number,
        resume: o.resume as string, augmentation: o.augmentation !== true, subject: o.subject as string, cachePath: o.cachePath as string,
        out: o.out as string, threads: o.threads as number | undefined, device: device as Device, imageSize: o.imageSize as number,
        startEpochGiven: c.getOptionValueSource('startEpoch') === 'cli', onBadImage: o.onBadImage as 'fail' | 'skip', ...distFlagValues(o), ...precisionFlagValues(o), episodeSelection: o.episodeSelection as EpisodeSelection,
      }).catch((e: unknown) => reportInterrupt(e, (ckpt) => resumeCommand(process.argv, ckpt))).finally(() => out.stop());
    });
}
