// awty finetune: ImageNet evaluation of a temporal-classification checkpoint (few-shot fine-tuning or
// linear probe), with the flags of the paper's finetune_imgnet.py.
import type { Command } from 'commander';
import { addDistFlags, distFlagValues } from './dist-flags.js';
import { addPrecisionFlags, precisionFlagValues } from './precision-flags.js';
import { isDevice } from '../torch/device.js';
import { FINETUNE_DEFAULTS } from '../experiments/defaults.js';
import { int, list, num } from './parse.js';

/** argparse's nargs='*': a bare --schedule (commander gives true) is the empty list, the original's no decay. */
function schedule(v: unknown): number[] {
  if (v === undefined) return [...FINETUNE_DEFAULTS.schedule];
  return v === true ? [] : (v as number[]);
}

export function registerFinetune(program: Command): void {
  const d = FINETUNE_DEFAULTS;
  const cmd = program
    .command('finetune')
    .description('evaluate a TC or MAE checkpoint on ImageNet: few-shot fine-tuning (--frac-retained) or linear probe (--freeze-trunk, with --head-bn as MAE\'s)')
    .requiredOption('--imgnet-traindir <dir>', 'training images in class-folder layout')
    .requiredOption('--imgnet-valdir <dir>', 'validation images in class-folder layout')
    .option('--model <name>', 'architecture', d.model)
    .option('--n_out <n>', 'head size of the checkpoint being loaded', int(), d.nOut)
    .option('--resume <file>', "the TC checkpoint, or an MAE one (awty train-mae's or the MAE repository's: its encoder into the matching vit_* --model) ('' = trunk from random weights)", d.resume)
    .option('--freeze-trunk', 'linear probe: only the new head trains', d.freezeTrunk)
    .option('--frac-retained <f>', 'fraction of the training set used (first int(f x N) of a numpy-seeded shuffle)', num(), d.fracRetained)
    .option('--per-class <n>', 'train on the first N images of each class of --imgnet-traindir (sorted file order, the same for every seed), before --frac-retained: few-shot with a fixed number of images per class', int())
    .option('--epochs <n>', 'number of epochs', int(), d.epochs)
    .option('-b, --batch-size <n>', 'batch size (the global batch: launched as N processes, each takes batch-size / N)', int(), d.batchSize)
    .option('--lr <x>', 'Adam learning rate', num(), d.lr)
    .option('--weight-decay <x>', 'Adam weight decay', num(), d.weightDecay)
    .option('--schedule [epochs...]', `epochs at which the learning rate is multiplied by 0.2 (default: ${d.schedule.join(' ')}; bare --schedule: no decay, as the original)`, list(int()))
    .option('--strong-augment', 'train with the TC augmentation instead of RandomResizedCrop + flip', d.strongAugment)
    .option('--seed <n>', 'seed (few-shot subset, head initialisation, sampling)', int(), d.seed)
    .option('-j, --workers <n>', 'data-loading worker threads', int(), d.workers)
    .option('-p, --print-freq <n>', 'iterations between progress lines', int(), d.printFreq)
    .option('--start-epoch <n>', 'first epoch number (the schedule counts from 0)', int(), d.startEpoch)
    .option('--out <dir>', 'where the checkpoint and the results file go', d.out)
    .option('--threads <n>', 'libtorch intra-op threads', int())
    .option('--device <d>', 'cpu, cuda or cuda:N', d.device)
    .option('--image-size <px>', 'training crop; validation: Resize(round(px x 256/224)) + CenterCrop(px)', int(), d.imageSize)
    .option('--on-bad-image <mode>', "an unreadable image: 'fail' (default) stops naming it, 'skip' leaves it out of its batch", d.onBadImage)
    .option('--bn-eval', 'keep BatchNorm layers in eval mode while training (the original keeps their running statistics updating)', d.bnEval)
    .option('--head-bn', "MAE's linear probe (vit_* models): BatchNorm1d(dim, affine=False, eps=1e-6) before the new head, as main_linprobe.py (use with --freeze-trunk)", d.headBn)
    .option('--val-every <n>', 'validate every N epochs and after the last (default 1, every epoch)', int(), d.valEvery)
    .option('--no-save-checkpoint', 'write no checkpoint of the fine-tuned model, only the results file')
    .option('--hours <h>', 'hours of video the TC trunk was trained on: writes a results file for awty figure1 --results', num())
    .option('--condition <name>', 'condition in the results file (default: linear-probe, linear-probe-cached, few-shot-1pct, few-shot-2pct, finetune-<frac> or knn-k<k>)')
    .option('--checkpoint-name <style>', "'awty': IMGNET_{source}_{condition}_{model}_{frac}_{seed}[_{hours}h].tar; 'original': ImageNet_{resume}_{freeze}_{frac}_{seed}.tar (results file: same name, .json)", d.checkpointName)
    .option('--overwrite', 'replace a checkpoint or results file of the same name in --out (default: refuse before training)', d.overwrite)
    .option('--continue <file>', 'continue exactly from the checkpoint an interrupted run of this command wrote (printed on SIGINT / SIGTERM), with the same other flags; --resume stays the TC checkpoint evaluated', d.continue)
    .option('--log-freq <n>', 'iterations between lines of the metrics file', int(), d.logFreq)
    .option('--metrics <file>', "metrics as JSON lines, and CSV beside them (default OUT/{checkpoint name}.metrics.jsonl; '' for none)")
    .option('--knn <k>', "instead of training: awty knn's k-nearest-neighbour evaluation (k neighbours, temperature 0.07) on the frozen trunk's features, with these trunk and data flags (condition knn-k<k>)", int())
    .option('--cache-features', 'with --freeze-trunk: the trunk turns every image into features once (eval mode, validation transform, no augmentation) and the head trains on them (condition linear-probe-cached)', false);
  addDistFlags(addPrecisionFlags(cmd))
    .action(async (o: Record<string, unknown>) => {
      const device = o.device as string;
      if (!isDevice(device)) throw new Error(`--device must be cpu, cuda or cuda:N, got ${device}`);
      const [{ main }, { reportInterrupt, continueCommand, trainingOutput }] = await Promise.all([import('../experiments/finetune.js'), import('./progress.js')]);
      const out = trainingOutput();
      await main({
        handleSignals: true, log: out.log, ...(out.onStep ? { onStep: out.onStep } : {}),
        imgnetTraindir: o.imgnetTraindir as string, imgnetValdir: o.imgnetValdir as string, model: o.model as string,
        nOut: o.n_out as number, resume: o.resume as string, freezeTrunk: o.freezeTrunk as boolean,
        fracRetained: o.fracRetained as number, perClass: o.perClass as number | undefined, epochs: o.epochs as number, batchSize: o.batchSize as number,
        lr: o.lr as number, weightDecay: o.weightDecay as number, schedule: schedule(o.schedule),
        strongAugment: o.strongAugment as boolean, seed: o.seed as number, workers: o.workers as number,
        printFreq: o.printFreq as number, startEpoch: o.startEpoch as number, out: o.out as string,
        threads: o.threads as number | undefined, device, imageSize: o.imageSize as number, bnEval: o.bnEval as boolean, headBn: o.headBn as boolean,
        valEvery: o.valEvery as number, saveCheckpoint: o.saveCheckpoint !== false, hours: o.hours as number | undefined, condition: o.condition as string | undefined, onBadImage: o.onBadImage as 'fail' | 'skip',
        checkpointName: o.checkpointName as 'awty' | 'original', overwrite: o.overwrite as boolean, ...distFlagValues(o), ...precisionFlagValues(o),
        knn: o.knn as number | undefined, cacheFeatures: o.cacheFeatures as boolean,
        continue: o.continue as string, logFreq: o.logFreq as number, ...(o.metrics !== undefined ? { metrics: o.metrics as string } : {}),
      }).catch((e: unknown) => reportInterrupt(e, (ckpt) => continueCommand(process.argv, ckpt))).finally(() => out.stop());
    });
}
