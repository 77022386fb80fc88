// awty finetune: ImageNet evaluation of a temporal-classification checkpoint (few-shot fine-tuning or
// linear probe), with the flags of the paper's finetune_imgnet.py.
import type { Command } from 'commander';
import { addDistFlags, distFlagValues } from './dist-flags.js';
import { isDevice } from '../torch/device.js';

function num(name: string, integer = false) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new Error(`${name} must be a number, got ${v}`);
    if (integer && !Number.isInteger(n)) throw new Error(`${name} must be an integer, got ${v}`);
    return n;
  };
}

function epochs(v: string, prev: number[] | undefined): number[] {
  const n = num('--schedule', true)(v);
  return [...(prev ?? []), n];
}

/** argparse's nargs='*': a bare --schedule (commander gives true) is the empty list, the original's no decay. */
function schedule(v: unknown): number[] {
  if (v === undefined) return [25, 45];
  return v === true ? [] : (v as number[]);
}

export function registerFinetune(program: Command): void {
  const cmd = program
    .command('finetune')
    .description('evaluate a TC checkpoint on ImageNet: few-shot fine-tuning (--frac-retained) or linear probe (--freeze-trunk)')
    .requiredOption('--imgnet-traindir <dir>', 'training images in class-folder layout')
    .requiredOption('--imgnet-valdir <dir>', 'validation images in class-folder layout')
    .option('--model <name>', 'architecture', 'resnext101_32x8d')
    .option('--n_out <n>', 'head size of the checkpoint being loaded', num('--n_out', true), 1000)
    .option('--resume <file>', "the TC checkpoint ('' = trunk from random weights)", '')
    .option('--freeze-trunk', 'linear probe: only the new head trains', false)
    .option('--frac-retained <f>', 'fraction of the training set used (first int(f x N) of a numpy-seeded shuffle)', num('--frac-retained'), 1.0)
    .option('--epochs <n>', 'number of epochs', num('--epochs', true), 50)
    .option('-b, --batch-size <n>', 'batch size (the global batch: launched as N processes, each takes batch-size / N)', num('--batch-size', true), 512)
    .option('--lr <x>', 'Adam learning rate', num('--lr'), 0.001)
    .option('--weight-decay <x>', 'Adam weight decay', num('--weight-decay'), 0)
    .option('--schedule [epochs...]', 'epochs at which the learning rate is multiplied by 0.2 (default: 25 45; bare --schedule: no decay, as the original)', epochs)
    .option('--strong-augment', 'train with the TC augmentation instead of RandomResizedCrop + flip', false)
    .option('--seed <n>', 'seed (few-shot subset, head initialisation, sampling)', num('--seed', true), 1)
    .option('-j, --workers <n>', 'data-loading worker threads', num('--workers', true), 8)
    .option('-p, --print-freq <n>', 'iterations between progress lines', num('--print-freq', true), 625)
    .option('--start-epoch <n>', 'first epoch number (the schedule counts from 0)', num('--start-epoch', true), 0)
    .option('--out <dir>', 'where the checkpoint and the results file go', '.')
    .option('--threads <n>', 'libtorch intra-op threads', num('--threads', true))
    .option('--device <d>', 'cpu, cuda or cuda:N', 'cpu')
    .option('--image-size <px>', 'training crop; validation: Resize(round(px x 256/224)) + CenterCrop(px)', num('--image-size', true), 224)
    .option('--on-bad-image <mode>', "an unreadable image: 'fail' (default) stops naming it, 'skip' leaves it out of its batch", 'fail')
    .option('--bn-eval', 'keep BatchNorm layers in eval mode while training (the original keeps their running statistics updating)', false)
    .option('--val-every <n>', 'validate every N epochs and after the last (default 1, every epoch)', num('--val-every', true), 1)
    .option('--hours <h>', 'hours of video the TC trunk was trained on: writes a results file for awty figure1 --results', num('--hours'))
    .option('--condition <name>', 'condition in the results file (default: linear-probe, few-shot-1pct, few-shot-2pct or finetune-<frac>)')
    .option('--checkpoint-name <style>', "'awty': IMGNET_{source}_{condition}_{model}_{frac}_{seed}[_{hours}h].tar; 'original': ImageNet_{resume}_{freeze}_{frac}_{seed}.tar (results file: same name, .json)", 'awty')
    .option('--overwrite', 'replace a checkpoint or results file of the same name in --out (default: refuse before training)', false);
  addDistFlags(cmd)
    .action(async (o: Record<string, unknown>) => {
      const device = o.device as string;
      if (!isDevice(device)) throw new Error(`--device must be cpu, cuda or cuda:N, got ${device}`);
      const [{ main }, { trainingOutput }] = await Promise.all([import('../experiments/finetune.js'), import('./progress.js')]);
      const out = trainingOutput();
      await main({
        handleSignals: true, log: out.log, ...(out.onStep ? { onStep: out.onStep } : {}),
        imgnetTraindir: o.imgnetTraindir as string, imgnetValdir: o.imgnetValdir as string, model: o.model as string,
        nOut: o.n_out as number, resume: o.resume as string, freezeTrunk: o.freezeTrunk as boolean,
        fracRetained: o.fracRetained as number, epochs: o.epochs as number, batchSize: o.batchSize as number,
        lr: o.lr as number, weightDecay: o.weightDecay as number, schedule: schedule(o.schedule),
        strongAugment: o.strongAugment as boolean, seed: o.seed as number, workers: o.workers as number,
        printFreq: o.printFreq as number, startEpoch: o.startEpoch as number, out: o.out as string,
        threads: o.threads as number | undefined, device, imageSize: o.imageSize as number, bnEval: o.bnEval as boolean,
        valEvery: o.valEvery as number, hours: o.hours as number | undefined, condition: o.condition as string | undefined, onBadImage: o.onBadImage as 'fail' | 'skip',
        checkpointName: o.checkpointName as 'awty' | 'original', overwrite: o.overwrite as boolean, ...distFlagValues(o),
      }).finally(() => out.stop());
    });
}
