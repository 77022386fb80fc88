// Masked-autoencoder pre-training (He et al. 2022; the author's eminorhan/mae train_mae_nowds.py):
// frames of the episode folders as images (labels unused), RandomResizedCrop(scale 0.2-1) + flip,
// AdamW(betas 0.9, 0.95) without weight decay on biases and norms, a per-iteration warm-up + cosine
// learning rate (He et al.'s lr_sched; `--schedule constant` is the author's fixed lr), one shared
// training loop with the MAE loss as its objective, and a checkpoint in the MAE repository's layout
// (`model`, `optimizer`, `epoch`, `args`) after every epoch, with a run record beside it
// (`{save_prefix}_checkpoint.pth.json`, schema awty.mae-run/1: the configuration, versions, the hours of
// video computed from the extraction manifests, per-epoch loss and seconds), from which finetune takes the hours.
import * as path from 'node:path';
import { promises as fsp } from 'node:fs';
import * as torch from '../torch/index.js';
import type { Device, Tensor } from '../torch/index.js';
import type { Module } from '../nn/index.js';
import * as optim from '../optim/index.js';
import * as models from '../models/index.js';
import * as io from '../io/index.js';
import { DataLoader, MultirootImageFolder, IMAGENET_MEAN, IMAGENET_STD, type TransformSpec } from '../data/index.js';
import { formatDuration, trainOneEpoch, type EpochStats, type Objective } from './common.js';
import { hostName, hoursOfDataset, readExtractProvenance, versions } from './provenance.js';

export interface MaeOptions {
  dataPath: string[];
  model: string;
  inputSize: number;
  maskRatio: number;
  normPixLoss: boolean;
  epochs: number;
  startEpoch: number;
  batchSize: number;
  /** absolute learning rate; undefined: blr x batch size / 256 */
  lr?: number;
  blr: number;
  minLr: number;
  warmupEpochs: number;
  schedule: 'cosine' | 'constant';
  weightDecay: number;
  seed: number;
  workers: number;
  printFreq: number;
  resume: string;
  outputDir: string;
  savePrefix: string;
  threads?: number;
  device: Device;
  cachePath: string;
  log?: (line: string) => void;
}

export { MAE_DEFAULTS } from './defaults.js';

/** The MAE augmentation: RandomResizedCrop(size, scale=(0.2, 1.0)) + RandomHorizontalFlip + Normalize. */
export function maeAugmentation(size: number): TransformSpec {
  return { ops: [{ op: 'randomResizedCrop', size, scale: [0.2, 1], ratio: [3 / 4, 4 / 3], interpolation: 'bicubic' }, { op: 'horizontalFlip', p: 0.5 }], mean: IMAGENET_MEAN, std: IMAGENET_STD };
}

/** The MAE loss at a masking ratio, as a training-loop objective (no metrics besides the loss). */
export function maeObjective(maskRatio: number): Objective {
  return {
    metricNames: [],
    compute(model: Module, images: Tensor) {
      return { loss: (model as models.MaskedAutoencoderViT).run(images, maskRatio).loss, metrics: [] };
    },
  };
}

/** lr_sched.adjust_learning_rate: linear warm-up, then a half cosine from lr to minLr (epoch is fractional). */
export function maeLearningRate(epoch: number, o: { lr: number; minLr: number; warmupEpochs: number; epochs: number; schedule: 'cosine' | 'constant' }): number {
  if (o.schedule === 'constant') return o.lr;
  if (epoch < o.warmupEpochs) return (o.lr * epoch) / o.warmupEpochs;
  return o.minLr + (o.lr - o.minLr) * 0.5 * (1 + Math.cos((Math.PI * (epoch - o.warmupEpochs)) / (o.epochs - o.warmupEpochs)));
}

/** timm's add_weight_decay: no decay for biases and 1-d parameters (norms, tokens stay decayed as there); frozen ones left out. */
export function weightDecayGroups(model: Module, weightDecay: number): [{ params: Tensor[]; weightDecay: number }, { params: Tensor[]; weightDecay: number }] {
  const decay: Tensor[] = [];
  const noDecay: Tensor[] = [];
  for (const [name, p] of model.namedParameters()) {
    if (!p.requiresGrad) continue;
    if (p.ndim === 1 || name.endsWith('.bias')) noDecay.push(p);
    else decay.push(p);
  }
  return [{ params: noDecay, weightDecay: 0 }, { params: decay, weightDecay }];
}

function checkOptions(o: MaeOptions): void {
  if (!o.dataPath.length) throw new Error('--data_path: give at least one folder of episode (or class) folders');
  if (!models.maeArchitectures[o.model]) throw new Error(`unknown --model '${o.model}'; known: ${Object.keys(models.maeArchitectures).join(', ')}`);
  const ints: [string, number, number][] = [['--epochs', o.epochs, 0], ['--start_epoch', o.startEpoch, 0], ['--batch_size_per_gpu', o.batchSize, 1],
    ['--num_workers', o.workers, 0], ['--print-freq', o.printFreq, 1], ['--input_size', o.inputSize, 1]];
  for (const [flag, v, min] of ints) if (!Number.isInteger(v) || v < min) throw new Error(`${flag} must be an integer >= ${min}, got ${v}`);
  if (!(o.maskRatio >= 0 && o.maskRatio < 1)) throw new Error(`--mask_ratio must be in [0, 1), got ${o.maskRatio}`);
  if (o.lr !== undefined && !(o.lr > 0)) throw new Error(`--lr must be positive, got ${o.lr}`);
  if (!(o.blr > 0)) throw new Error(`--blr must be positive, got ${o.blr}`);
  if (!(o.minLr >= 0)) throw new Error(`--min_lr must be >= 0, got ${o.minLr}`);
  if (!(o.warmupEpochs >= 0)) throw new Error(`--warmup_epochs must be >= 0, got ${o.warmupEpochs}`);
  if (o.schedule !== 'cosine' && o.schedule !== 'constant') throw new Error(`--schedule must be cosine or constant, got ${String(o.schedule)}`);
  if (!(o.weightDecay >= 0)) throw new Error(`--weight_decay must be >= 0, got ${o.weightDecay}`);
  if (o.device !== 'cpu' && !torch.cuda.isAvailable()) throw new Error(`--device ${o.device}: CUDA is not available in this libtorch build or on this machine`);
}

/** The MAE repository's checkpoint name: `{save_prefix}_checkpoint.pth`. */
export function maeCheckpointName(savePrefix: string): string {
  return `${savePrefix}_checkpoint.pth`;
}

export interface MaeResult {
  epochs: EpochStats[];
  checkpoint: string;
  samples: number;
  startEpoch: number;
  lr: number;
  /** hours of video in the --data_path folders (from their extraction manifests), null when unknown */
  hours: number | null;
  /** the run record beside the checkpoint (undefined when no epoch ran) */
  record?: string;
}

/** The flags of a run as recorded (everything but functions). */
function configOf(o: MaeOptions): Record<string, unknown> {
  const c: Record<string, unknown> = { ...o };
  delete c.log;
  return c;
}

export async function main(o: MaeOptions): Promise<MaeResult> {
  const log = o.log ?? ((l: string) => process.stdout.write(`${l}\n`));
  checkOptions(o);
  if (o.threads !== undefined) torch.setNumThreads(o.threads);
  torch.manualSeed(o.seed);

  const dataset = await MultirootImageFolder.open(o.dataPath, 1, { ...(o.cachePath ? { cachePath: o.cachePath } : {}), onLog: (l) => log(`data: ${l}`) });
  const extracts = await Promise.all(o.dataPath.map(readExtractProvenance));
  const hours = hoursOfDataset(dataset, o.dataPath, extracts);
  log(`data: ${dataset.length} frames in ${dataset.classes.length} folders from ${o.dataPath.join(', ')} (labels unused; ` +
    `${hours.hours === null ? `hours of video ${hours.method}` : `${hours.hours.toPrecision(6)} hours of video`})`);
  const loader = new DataLoader(dataset, { batchSize: o.batchSize, transform: maeAugmentation(o.inputSize), workers: o.workers, shuffle: true, seed: o.seed, dropLast: true, labels: 'int64' });
  const batches = loader.batchesPerEpoch(0);
  if (batches === 0) {
    await loader.close();
    throw new Error(`${dataset.length} frames make no full batch of ${o.batchSize} (the last partial batch is dropped, as the original does): lower --batch_size_per_gpu`);
  }
  const lr = o.lr ?? (o.blr * o.batchSize) / 256;
  const model = models.createMae(o.model, { imgSize: o.inputSize, normPixLoss: o.normPixLoss });
  let optimizer: optim.AdamW | undefined;
  try {
    if (o.device !== 'cpu') model.to(o.device);
    optimizer = new optim.AdamW(weightDecayGroups(model, o.weightDecay), { lr, betas: [0.9, 0.95] });
    const nParams = model.parameters().filter((p) => p.requiresGrad).reduce((a, p) => a + p.numel(), 0);
    log(`model: ${o.model} at ${o.inputSize} px (${(nParams / 1e6).toFixed(2)} M trained parameters), mask ratio ${o.maskRatio} ` +
      `(${model.lenKeep(o.maskRatio)} of ${model.numPatches} patches kept), ${o.normPixLoss ? 'normalised' : 'raw'} pixel loss; ` +
      `AdamW(lr ${lr}, betas 0.9/0.95, weight decay ${o.weightDecay}), ${o.schedule === 'cosine' ? `warm-up ${o.warmupEpochs} epochs + cosine to ${o.minLr}` : 'constant lr'}; ` +
      `${torch.getNumThreads()} thread(s), device ${o.device}`);

    let startEpoch = o.startEpoch;
    let prior: io.RunRecord | undefined;
    if (o.resume) {
      const ckpt = await io.load(o.resume).catch((e: unknown) => { throw new Error(`cannot resume from ${o.resume}: ${(e as Error).message}`); });
      try {
        const c = ckpt as Record<string, unknown>;
        if (typeof c !== 'object' || c === null || c.model === undefined) throw new Error(`cannot resume from ${o.resume}: no 'model' in it (not an MAE checkpoint)`);
        try {
          io.loadStateDictInto(model, c.model);
        } catch (e) {
          throw new Error(`cannot resume from ${o.resume}: ${(e as Error).message}`);
        }
        if (c.optimizer !== undefined && c.epoch !== undefined) {
          optimizer.loadStateDict(io.optimizerStateFromPickle(c.optimizer));
          startEpoch = Number(c.epoch) + 1;
        }
      } finally {
        io.disposeTree(ckpt);
      }
      log(`resumed from ${o.resume}: continuing at epoch ${startEpoch}`);
      prior = await io.readRunRecord(o.resume);
    }

    await fsp.mkdir(o.outputDir, { recursive: true });
    const checkpoint = path.join(o.outputDir, maeCheckpointName(o.savePrefix));
    const logFile = path.join(o.outputDir, `${o.savePrefix}_log.txt`);
    const sched = { lr, minLr: o.minLr, warmupEpochs: o.warmupEpochs, epochs: o.epochs, schedule: o.schedule };
    const stats: EpochStats[] = [];
    const t0 = performance.now();
    // the run record: epochs of the resumed run before this one kept, its wall time carried on
    const createdAt = prior?.createdAt ?? new Date().toISOString();
    const epochRecords: io.MaeEpochRecord[] = (prior?.schema === io.MAE_RUN_RECORD_SCHEMA ? prior.epochs as io.MaeEpochRecord[] : []).filter((e) => e.epoch < startEpoch);
    const priorWall = prior?.schema === io.MAE_RUN_RECORD_SCHEMA ? prior.wallSeconds : 0;
    let recordFile: string | undefined;
    for (let epoch = startEpoch; epoch < o.epochs; epoch++) {
      let lastLr = lr;
      const s = await trainOneEpoch(model, optimizer, loader, epoch, {
        device: o.device, printFreq: o.printFreq, log, checkFinite: true, objective: maeObjective(o.maskRatio),
        beforeStep: (i, n) => {
          lastLr = maeLearningRate(epoch + i / n, sched);
          for (const g of optimizer!.paramGroups) g.lr = lastLr;
        },
      });
      stats.push(s);
      await io.save({
        model: io.modelStateDict(model),
        optimizer: io.optimizerStateToPickle(optimizer.stateDict()),
        args: { model: o.model, input_size: o.inputSize, mask_ratio: o.maskRatio, norm_pix_loss: o.normPixLoss, batch_size_per_gpu: o.batchSize,
          epochs: o.epochs, lr, blr: o.blr, min_lr: o.minLr, warmup_epochs: o.warmupEpochs, weight_decay: o.weightDecay, seed: o.seed, data_path: o.dataPath.join(',') },
        epoch,
      }, checkpoint);
      await fsp.appendFile(logFile, `${JSON.stringify({ train_loss: s.loss, train_lr: lastLr, epoch })}\n`);
      epochRecords.push({ epoch, loss: s.loss, lr: lastLr, images: s.images, imagesPerSecond: s.images / Math.max(1e-9, s.seconds), seconds: s.seconds });
      recordFile = await io.writeRunRecord(checkpoint, {
        schema: io.MAE_RUN_RECORD_SCHEMA, status: epoch === o.epochs - 1 ? 'complete' : 'running', checkpoint: path.basename(checkpoint),
        createdAt, updatedAt: new Date().toISOString(), config: configOf(o), versions: versions(), device: o.device, threads: torch.getNumThreads(), host: hostName(),
        data: { dirs: o.dataPath, format: 'files', episodes: dataset.classes.length, episodeNames: [...dataset.classes], frames: dataset.length, extract: extracts.filter((e) => e !== undefined) },
        hours: hours.hours, hoursMethod: hours.method, epochs: [...epochRecords], wallSeconds: priorWall + (performance.now() - t0) / 1000,
      });
      const perEpoch = (performance.now() - t0) / 1000 / (epoch - startEpoch + 1);
      log(`Epoch ${epoch}: loss ${s.loss.toFixed(4)}  lr ${lastLr.toExponential(3)}  ${(s.images / Math.max(1e-9, s.seconds)).toFixed(1)} img/s  ` +
        `${formatDuration(s.seconds)}  ETA ${formatDuration(perEpoch * (o.epochs - epoch - 1))}  saved ${checkpoint}`);
    }
    return { epochs: stats, checkpoint, samples: dataset.length, startEpoch, lr, hours: hours.hours, ...(recordFile ? { record: recordFile } : {}) };
  } finally {
    optimizer?.dispose();
    model.dispose();
    await loader.close();
  }
}
