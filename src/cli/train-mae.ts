// awty train-mae: masked-autoencoder pre-training with the MAE repositories' flags (eminorhan/mae's
// train_mae_nowds.py; the schedule flags of facebookresearch/mae's main_pretrain.py).
import type { Command } from 'commander';
import { int, num } from './parse.js';
import { MAE_DEFAULTS } from '../experiments/defaults.js';
import type { Device } from '../torch/device.js';

export function registerTrainMae(program: Command): void {
  const d = MAE_DEFAULTS;
  program
    .command('train-mae')
    .description('masked-autoencoder pre-training on the frames of episode folders (He et al. 2022; eminorhan/mae); saves {save_prefix}_checkpoint.pth after every epoch')
    .requiredOption('--data_path <dir...>', 'folders holding episode (or class) folders of images; labels are unused')
    .option('--model <name>', 'MAE architecture (mae_vit_base_patch16, mae_vit_small_patch16, mae_vit_huge_patch14, mae_vit_micro_patch8, ...)', d.model)
    .option('--input_size <px>', 'image size', int(), d.inputSize)
    .option('--mask_ratio <r>', 'fraction of patches removed', num(), d.maskRatio)
    .option('--norm_pix_loss', 'targets are per-patch normalised pixels')
    .option('--epochs <n>', 'total epochs', int(), d.epochs)
    .option('--start_epoch <n>', 'epoch to start at (with --resume: from the checkpoint)', int(), d.startEpoch)
    .option('-b, --batch_size_per_gpu <n>', 'mini-batch size (the last partial batch is dropped)', int(), d.batchSize)
    .option('--lr <x>', 'absolute learning rate (default: blr x batch size / 256)', num())
    .option('--blr <x>', 'base learning rate', num(), d.blr)
    .option('--min_lr <x>', 'learning rate at the end of the cosine', num(), d.minLr)
    .option('--warmup_epochs <n>', 'epochs of linear warm-up', num(), d.warmupEpochs)
    .option('--schedule <s>', 'cosine (warm-up + half cosine, per iteration) or constant (train_mae_nowds.py)', d.schedule)
    .option('--weight_decay <x>', 'AdamW weight decay (none on biases and 1-d parameters)', num(), d.weightDecay)
    .option('--seed <n>', 'seed of initialisation, shuffling, augmentation and masking', int(), d.seed)
    .option('-j, --num_workers <n>', 'data-loading worker threads (0: the main thread)', int(), d.workers)
    .option('-p, --print-freq <n>', 'iterations between progress lines', int(), d.printFreq)
    .option('--resume <file>', 'MAE checkpoint to continue from (model, optimizer, epoch)', d.resume)
    .option('--output_dir <dir>', 'folder of the checkpoint and the log', d.outputDir)
    .option('--save_prefix <s>', 'prefix of the checkpoint and log file names', d.savePrefix)
    .option('--cache-path <file>', 'where the dataset index is cached (default: in the first data folder)', d.cachePath)
    .option('--threads <n>', 'libtorch intra-op threads', int())
    .option('--device <d>', 'cpu or cuda', d.device)
    .action(async (o: Record<string, unknown>) => {
      const device = o.device as string;
      if (!/^(cpu|cuda(:\d+)?)$/.test(device)) throw new Error(`--device must be cpu or cuda, got ${device}`);
      const { main } = await import('../experiments/mae.js');
      await main({
        dataPath: o.data_path as string[], model: o.model as string, inputSize: o.input_size as number, maskRatio: o.mask_ratio as number,
        normPixLoss: o.norm_pix_loss === true, epochs: o.epochs as number, startEpoch: o.start_epoch as number,
        batchSize: o.batch_size_per_gpu as number, lr: o.lr as number | undefined, blr: o.blr as number, minLr: o.min_lr as number,
        warmupEpochs: o.warmup_epochs as number, schedule: o.schedule as 'cosine' | 'constant', weightDecay: o.weight_decay as number,
        seed: o.seed as number, workers: o.num_workers as number, printFreq: o.printFreq as number, resume: o.resume as string,
        outputDir: o.output_dir as string, savePrefix: o.save_prefix as string, cachePath: o.cachePath as string,
        threads: o.threads as number | undefined, device: device as Device,
      });
    });
}
