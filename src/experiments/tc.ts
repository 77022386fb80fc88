// Temporal classification training (the original's train_tc.py): every frame's label is the index of
// its episode, and a ResNet/ResNeXt learns to tell which episode a frame came from. Read top to
// bottom: options, one epoch of training, then main (data, model, optimizer, resume, epochs, checkpoints).
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import * as torch from '../torch/index.js';
import type { Device } from '../torch/index.js';
import * as optim from '../optim/index.js';
import * as models from '../models/index.js';
import { DataLoader, DistributedSampler, EPISODE_SELECTIONS, MultirootImageFolder, tcAugmentation, noAugmentation, type EpisodeSelection } from '../data/index.js';
import * as dist from '../dist/index.js';
import { ensureWritableDir } from '../io/outdir.js';
import { formatDuration, loadCheckpoint, saveCheckpoint, tcCheckpointName, trainOneEpoch, type EpochStats } from './common.js';
export { trainOneEpoch, type EpochStats } from './common.js';

export interface TcOptions {
  dataDirs: string[];
  model: string;
  nOut: number;
  classFraction: number;
  epochs: number;
  startEpoch: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  seed: number;
  workers: number;
  printFreq: number;
  /** checkpoint to continue from ('' for none) */
  resume: string;
  /** true: the TC augmentation; false: ToTensor + Normalize only (the original's `--augmentation` flag turns it off) */
  augmentation: boolean;
  subject: string;
  /** dataset index cache ('' for the default place) */
  cachePath: string;
  /** folder of the checkpoints */
  out: string;
  threads?: number;
  device: Device;
  imageSize: number;
  /** an unreadable image: 'fail' (default) stops the run naming it; 'skip' leaves it out of its batch */
  onBadImage?: 'fail' | 'skip';
  /** which episodes --class-fraction keeps: 'window' (the original's, default) or 'first' (see data/datasets.ts) */
  episodeSelection?: EpisodeSelection;
  /** with --resume: take the epoch to continue from the checkpoint unless --start-epoch was given */
  startEpochGiven?: boolean;
  /**
   * 'all' (default, as the original): one checkpoint per epoch; 'last': each epoch's checkpoint
   * replaces the previous one; 'final': only the last epoch's is written (a killed run restarts)
   */
  keepCheckpoints?: 'all' | 'last' | 'final';
  /** drop the last incomplete batch of every epoch (ours; the original keeps it) */
  dropLast?: boolean;
  /** distributed runs: seconds to wait for the other processes (rendezvous, collectives; default 300) */
  distTimeout?: number;
  /** distributed runs: the rank-0 machine's address and port, overriding MASTER_ADDR / MASTER_PORT */
  masterAddr?: string;
  masterPort?: number;
  log?: (line: string) => void;
}

export const TC_DEFAULTS = {
  model: 'resnext101_32x8d', nOut: 1000, classFraction: 1.0, epochs: 12, startEpoch: 0, batchSize: 256, lr: 0.0005,
  weightDecay: 0, seed: 1, workers: 8, printFreq: 10000, resume: '', augmentation: true, subject: 'SAYAVAKEPICUT',
  cachePath: '', out: '.', device: 'cpu' as Device, imageSize: 224,
};

/** Checks that do not need the data: model name, numbers, device. */
function checkOptions(o: TcOptions): void {
  if (!o.dataDirs.length) throw new Error('--data-dirs: give at least one folder of episode folders');
  const seen = new Map<string, string>();
  for (const d of o.dataDirs) {
    const abs = path.resolve(d);
    const prev = seen.get(abs);
    if (prev !== undefined) throw new Error(`--data-dirs names the folder ${abs} twice (${prev} and ${d}): every frame would get two labels`);
    seen.set(abs, d);
  }
  if (o.onBadImage !== undefined && o.onBadImage !== 'fail' && o.onBadImage !== 'skip') throw new Error(`--on-bad-image must be fail or skip, got ${String(o.onBadImage)}`);
  if (!models.isModelName(o.model)) throw new Error(`unknown --model '${o.model}'; known: ${Object.keys(models.architectures).join(', ')}`);
  const ints: [string, number, number][] = [['--n_out', o.nOut, 1], ['--epochs', o.epochs, 0], ['--start-epoch', o.startEpoch, 0],
    ['--batch-size', o.batchSize, 1], ['--workers', o.workers, 0], ['--print-freq', o.printFreq, 1], ['--image-size', o.imageSize, 1]];
  for (const [flag, v, min] of ints) if (!Number.isInteger(v) || v < min) throw new Error(`${flag} must be an integer >= ${min}, got ${v}`);
  if (!Number.isInteger(o.seed)) throw new Error(`--seed must be an integer, got ${o.seed}`);
  if (!(o.classFraction > 0 && o.classFraction <= 1)) throw new Error(`--class-fraction must be in (0, 1], got ${o.classFraction}`);
  if (!(o.lr > 0)) throw new Error(`--lr must be positive, got ${o.lr}`);
  if (!(o.weightDecay >= 0)) throw new Error(`--weight-decay must be >= 0, got ${o.weightDecay}`);
  if (o.threads !== undefined && !(Number.isInteger(o.threads) && o.threads >= 1)) throw new Error(`--threads must be an integer >= 1, got ${o.threads}`);
  if (o.episodeSelection !== undefined && !EPISODE_SELECTIONS.includes(o.episodeSelection)) {
    throw new Error(`--episode-selection must be one of ${EPISODE_SELECTIONS.join(', ')}, got ${String(o.episodeSelection)}`);
  }
  if (o.device !== 'cpu' && !torch.cuda.isAvailable()) throw new Error(`--device ${o.device}: CUDA is not available in this libtorch build or on this machine`);
}

/**
 * The TC model as train_tc.py builds it: the torchvision architecture with num_classes=n_out (so the
 * trunk's initial weights are torchvision's for that head size and the current seed), then its head
 * (fc) replaced by a fresh Linear(in_features, n_out).
 */
export function buildTcModel(arch: string, nOut: number, imageSize?: number): models.Classifier {
  const model = models.create(models.modelName(arch), { numClasses: nOut, ...(imageSize !== undefined ? { imageSize } : {}) });
  models.replaceHead(model, nOut);
  return model;
}

export interface TcResult {
  acc1List: number[]; epochs: EpochStats[]; checkpoints: string[]; classes: number; samples: number; startEpoch: number;
  /** the kept episode folders (label = position) and where they start among all sorted episodes */
  episodes: string[]; episodeStart: number;
}

export async function main(o: TcOptions): Promise<TcResult> {
  checkOptions(o);
  // launched as one of several processes (awty launch, torchrun, srun): data-parallel, rank 0 logs and saves
  // (CUDA: NCCL, and each process on the GPU of its local rank)
  const ddpRun = dist.joinDataParallel({ batchSize: o.batchSize, timeoutSeconds: o.distTimeout, masterAddr: o.masterAddr, masterPort: o.masterPort, backend: o.device === 'cpu' ? 'gloo' : 'nccl' });
  if (ddpRun && o.device === 'cuda') o = { ...o, device: `cuda:${ddpRun.localRank}` };
  const rank = ddpRun?.rank ?? 0;
  const log = rank === 0 ? o.log ?? ((l: string) => process.stdout.write(`${l}\n`)) : (): void => undefined;
  try {
    return await train(o, log, ddpRun);
  } finally {
    if (ddpRun) dist.destroyProcessGroup();
  }
}

async function train(o: TcOptions, log: (line: string) => void, ddpRun: dist.DataParallelRun | undefined): Promise<TcResult> {
  if (o.threads !== undefined) torch.setNumThreads(o.threads);
  torch.manualSeed(o.seed);
  // the checkpoints' folder is created and probed now, not found unwritable after the first epoch
  await ensureWritableDir(o.out, '--out');

  // Data: episode folders of all roots, sorted as full paths; the original keeps ceil(N * class_fraction)
  // of them, a window starting where Python's random (seeded with --seed) says.
  const dataset = await MultirootImageFolder.open(o.dataDirs, o.classFraction, {
    ...(o.cachePath ? { cachePath: o.cachePath } : {}), onLog: (l) => log(`data: ${l}`),
    selection: o.episodeSelection ?? 'window', seed: o.seed,
  });
  const choice = dataset.choice;
  log(`Class start index: ${choice.start}`);
  if (choice.selection === 'window' && choice.classes.length === choice.total && o.classFraction > 0) {
    log(`data: --class-fraction ${o.classFraction} keeps all ${choice.total} episodes (the original raises ValueError: empty range for randrange() here)`);
  }
  const classes = dataset.classes.length;
  if (o.nOut < classes) {
    throw new Error(`--n_out ${o.nOut} is smaller than the number of episodes kept (${classes}); labels go up to ${classes - 1}: give --n_out ${classes} or more`);
  }
  if (o.nOut > classes) log(`warning: --n_out ${o.nOut} is larger than the number of episodes kept (${classes}); ${o.nOut - classes} outputs are never a target`);
  log(`data: ${dataset.length} frames in ${classes} episodes from ${o.dataDirs.join(', ')} (class fraction ${o.classFraction})`);
  const transform = o.augmentation ? tcAugmentation(o.imageSize) : noAugmentation();
  // distributed: each rank reads its share of the same shuffled order, in batches of batch-size / world size
  const loader = new DataLoader(dataset, {
    batchSize: ddpRun?.perRankBatch ?? o.batchSize, transform, workers: o.workers, shuffle: true, seed: o.seed, labels: 'int64', dropLast: o.dropLast ?? false,
    onBadImage: o.onBadImage ?? 'fail',
    ...(ddpRun ? { sampler: new DistributedSampler(dataset.length, { rank: ddpRun.rank, worldSize: ddpRun.worldSize, seed: o.seed }) } : {}),
  });
  if (ddpRun) log(`distributed: ${ddpRun.worldSize} processes (${ddpRun.group.backend}), global batch ${o.batchSize} = ${ddpRun.perRankBatch} per process, ${loader.batchesPerEpoch(0)} steps per epoch`);

  let model: models.Classifier | undefined;
  let optimizer: optim.Adam | undefined;
  try {
    model = buildTcModel(models.modelName(o.model), o.nOut, o.imageSize);
    if (o.device !== 'cpu') model.to(o.device);
    optimizer = new optim.Adam(model.parameters(), { lr: o.lr, weightDecay: o.weightDecay });
    log(`model: ${o.model} with ${model.headName} Linear(${model.head.inFeatures}, ${o.nOut}); Adam(lr ${o.lr}, weight decay ${o.weightDecay}); ` +
      `augmentation ${o.augmentation ? 'on' : 'off'}; ${torch.getNumThreads()} thread(s), device ${o.device}`);

    let acc1List: number[] = [];
    let startEpoch = o.startEpoch;
    if (o.resume) {
      const r = await loadCheckpoint(o.resume, model, optimizer);
      acc1List = r.acc1List;
      if (!o.startEpochGiven) startEpoch = r.nextEpoch;
      log(`resumed from ${o.resume}: continuing at epoch ${startEpoch} (${acc1List.length} epoch accuracies saved)`);
      // the checkpoint's learning rate is the one used (the original's `optimizer.lr = args.lr` changes nothing)
      const lrs = [...new Set(optimizer.paramGroups.map((g) => g.lr))];
      log(`learning rate ${lrs.join(', ')} (from the checkpoint${lrs.length === 1 && lrs[0] === o.lr ? '' : `; --lr ${o.lr} is not applied, as in the original`})`);
    }
    // after the resume: every rank starts from rank 0's weights; gradients are averaged across ranks
    const ddp = ddpRun ? new dist.DistributedDataParallel(model, ddpRun.group) : undefined;

    const checkpoints: string[] = [];
    const stats: EpochStats[] = [];
    const t0 = performance.now();
    for (let epoch = startEpoch; epoch < o.epochs; epoch++) {
      const s = await trainOneEpoch(model, optimizer, loader, epoch, { device: o.device, printFreq: o.printFreq, log, checkFinite: true, ...(ddp ? { ddp } : {}) });
      acc1List.push(s.acc1);
      stats.push(s);
      const file = path.join(o.out, tcCheckpointName(o.subject, o.model, o.classFraction, o.seed, epoch));
      const save = o.keepCheckpoints !== 'final' || epoch === o.epochs - 1;
      if (save) {
        if (!ddpRun || ddpRun.rank === 0) {
          await saveCheckpoint(file, model, optimizer, acc1List);
          if (o.keepCheckpoints === 'last' && checkpoints.length > 0) await fsp.rm(checkpoints.at(-1)!, { force: true });
        }
        // the others wait until the checkpoint is complete (a run stopped now resumes from it on every rank)
        ddpRun?.group.barrier().wait();
        if (o.keepCheckpoints === 'last') checkpoints.pop();
        checkpoints.push(file);
      }
      const perEpoch = (performance.now() - t0) / 1000 / (epoch - startEpoch + 1);
      log(`Epoch ${epoch}: loss ${s.loss.toFixed(4)}  Acc@1 ${s.acc1.toFixed(2)}  Acc@5 ${s.acc5.toFixed(2)}  ` +
        `${(s.images / Math.max(1e-9, s.seconds)).toFixed(1)} img/s  ${formatDuration(s.seconds)} (data wait ${s.dataSeconds.toFixed(1)} s)  ` +
        `ETA ${formatDuration(perEpoch * (o.epochs - epoch - 1))}${save ? `  saved ${file}` : ''}`);
    }
    return { acc1List, epochs: stats, checkpoints, classes, samples: dataset.length, startEpoch, episodes: choice.classes, episodeStart: choice.start };
  } finally {
    optimizer?.dispose();
    model?.dispose();
    await loader.close();
  }
}
