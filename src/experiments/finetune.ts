// ImageNet evaluation of a temporal-classification (TC) checkpoint: the paper's finetune_imgnet.py
// (few-shot fine-tuning, or a linear probe with --freeze-trunk). Read top to bottom: small helpers,
// evaluate, main; trainOneEpoch (shared with train-tc) is in common.ts.
//
// What the original does, and this does by default: the TC checkpoint is loaded into the
// architecture with an n_out head, then (if frozen) every parameter stops requiring gradients, then
// fc is replaced by a fresh Linear(in_features, classes). The model stays in train mode while
// training, so BatchNorm running statistics keep updating even in the linear probe; `bnEval` freezes
// them (BatchNorm layers in eval mode while training).
import { lstatSync } from 'node:fs';
import { basename, join } from 'node:path';
import * as torch from '../torch/index.js';
import * as nn from '../nn/index.js';
import * as optim from '../optim/index.js';
import * as models from '../models/index.js';
import * as io from '../io/index.js';
import { DataLoader, ImageFolder, SequentialSampler, ShardedSampler, SubsetRandomSampler, fewShotIndices, imagenetTrain, imagenetVal, tcAugmentation } from '../data/index.js';
import * as dist from '../dist/index.js';
import type { Dataset } from '../data/index.js';
import type { StateDict } from '../nn/index.js';
import { toTensors } from '../data/tensors.js';
import { ensureWritableDir } from '../io/outdir.js';
import { writeResult, type RunResultFile } from '../scaling/results.js';
import { AverageMeter, accuracy, pyFloat, trainOneEpoch, type StepInfo } from './common.js';
import { InterruptedError, StopRequest } from './interrupt.js';
import { hostName, versions } from './provenance.js';
import { UsageError } from './errors.js';
import { FINETUNE_DEFAULTS } from './defaults.js';
export { FINETUNE_DEFAULTS } from './defaults.js';
export { trainOneEpoch } from './common.js';

export interface FinetuneOptions {
  imgnetTraindir: string;
  imgnetValdir: string;
  model?: string;
  /** head size of the checkpoint being loaded */
  nOut?: number;
  /** the TC checkpoint; '' trains from scratch */
  resume?: string;
  freezeTrunk?: boolean;
  fracRetained?: number;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  weightDecay?: number;
  /** epochs at which the learning rate is multiplied by 0.2 */
  schedule?: number[];
  strongAugment?: boolean;
  seed?: number;
  workers?: number;
  printFreq?: number;
  startEpoch?: number;
  /** output folder for the checkpoint and the results file */
  out?: string;
  threads?: number;
  device?: torch.Device;
  /** training crop; validation resizes to round(imageSize * 256 / 224) and centre-crops imageSize */
  imageSize?: number;
  /** BatchNorm layers in eval mode while training (the original keeps them updating) */
  bnEval?: boolean;
  /** MAE's linear probe (vit_* only): BatchNorm1d(dim, affine=False, eps=1e-6) before the new head, see addHeadBatchNorm */
  headBn?: boolean;
  /** validate every N epochs and after the last (default 1: every epoch, as the original) */
  valEvery?: number;
  /** write the fine-tuned model's checkpoint (default true) */
  saveCheckpoint?: boolean;
  /**
   * how the checkpoint is named (the results file is the same name with `.json`): 'awty' (default)
   * `IMGNET_{source}_{condition}_{model}_{frac}_{seed}[_{hours}h].tar`, 'original' the original's
   * `ImageNet_{resume}_{freeze}_{frac}_{seed}.tar`; see finetuneCheckpointName
   */
  checkpointName?: CheckpointNaming;
  /** replace a checkpoint or results file of the same name in `out` (default: refuse before training) */
  overwrite?: boolean;
  /**
   * hours of video the TC trunk saw; default: those of the run record beside `resume` (written by
   * train-tc). Without either, a checkpoint given by `resume` is an error (no results file could be written).
   */
  hours?: number;
  /** an unreadable image: 'fail' (default) stops the run naming it; 'skip' leaves it out of its batch */
  onBadImage?: 'fail' | 'skip';
  /** evaluation condition in the results file (default: from --freeze-trunk and --frac-retained) */
  condition?: string;
  /** distributed runs: seconds to wait for the other processes (rendezvous, collectives; default 300) */
  distTimeout?: number;
  /** distributed runs: the rank-0 machine's address and port, overriding MASTER_ADDR / MASTER_PORT */
  masterAddr?: string;
  masterPort?: number;
  /** called after every training step (progress bars) */
  onStep?: (s: StepInfo) => void;
  /** stop after the current step when set: finetune saves only at its end, so InterruptedError is thrown without a checkpoint */
  stop?: StopRequest;
  /** install SIGINT / SIGTERM handlers for the run (the command line does) */
  handleSignals?: boolean;
  log?: (line: string) => void;
}

export interface FinetuneSummary {
  acc1List: number[];
  valAcc1List: number[];
  valAcc5List: number[];
  trainImages: number;
  trainTotal: number;
  classes: number;
  checkpoint: string;
  resultFile?: string;
  condition: string;
}

/** The default condition label of a run (the paper's three, else a descriptive one). */
export function defaultCondition(freezeTrunk: boolean, fracRetained: number): string {
  if (freezeTrunk) return 'linear-probe';
  if (Math.abs(fracRetained - 0.010147) < 1e-9 || fracRetained === 0.01) return 'few-shot-1pct';
  if (fracRetained === 0.02) return 'few-shot-2pct';
  return `finetune-${fracRetained}`;
}

export type CheckpointNaming = 'awty' | 'original';

/**
 * The base name of the checkpoint a run starts from, without its `.tar` / `.pth` / `.pt` extension
 * (`random` for a trunk from random weights): the source part of awty's checkpoint names.
 */
export function sourceName(resume: string): string {
  return resume ? basename(resume).replace(/\.(tar|pth|pt)$/, '') : 'random';
}

/**
 * The file name of a finetune checkpoint. 'awty': `IMGNET_{source}_{condition}_{model}_{frac}_{seed}[_{hours}h].tar`
 * (source: sourceName(resume)), so evaluations of different TC checkpoints never share a name.
 * 'original': finetune_imgnet.py's `ImageNet_{resume}_{freeze_trunk}_{frac_retained}_{seed}.tar`
 * (`True`/`False`, frac as Python prints it), with the base name of `resume`: the original formats
 * the --resume string as given, which is the same name whenever it is a file in the working folder
 * (a path with folders in it would make the original write into a folder named `ImageNet_...`).
 */
export function finetuneCheckpointName(o: { resume: string; freezeTrunk: boolean; fracRetained: number; seed: number; condition: string; model: string; hours?: number | undefined },
  naming: CheckpointNaming = 'awty'): string {
  if (naming === 'original') return `ImageNet_${o.resume ? basename(o.resume) : ''}_${o.freezeTrunk ? 'True' : 'False'}_${pyFloat(o.fracRetained)}_${o.seed}.tar`;
  return `IMGNET_${sourceName(o.resume)}_${o.condition}_${o.model}_${pyFloat(o.fracRetained)}_${o.seed}${o.hours !== undefined ? `_${o.hours}h` : ''}.tar`;
}

/** Whether anything (a file, a folder, a dangling link) is at `file`. */
export function pathTaken(file: string): boolean {
  try {
    lstatSync(file);
    return true;
  } catch {
    return false;
  }
}

/** The head size of a loaded checkpoint's state dict (rows of `<headName>.weight`), or undefined. */
function checkpointHeadSize(ckpt: unknown, headName: string): number | undefined {
  let v = ckpt;
  if (typeof v === 'object' && v !== null && !(v instanceof Map)) {
    const o = v as Record<string, unknown>;
    if (o.model_state_dict !== undefined) v = o.model_state_dict;
    else if (o.state_dict !== undefined) v = o.state_dict;
  }
  const sd = io.asStateDict(v, 'checkpoint');
  const w = sd[`module.${headName}.weight`] ?? sd[`${headName}.weight`];
  return w ? w.shape[0] : undefined;
}

/**
 * The provenance of the trunk in `resume`: the run record train-tc wrote beside it, and the hours of
 * video (`hoursFlag`, i.e. --hours, overrides the record's). A checkpoint whose hours are known from
 * neither is a usage error: no results file could be written for it.
 */
export async function trunkHours(resume: string, hoursFlag: number | undefined): Promise<{ tcRecord: io.RunRecord | undefined; hours: number | undefined }> {
  // provenance of the trunk: the run record train-tc wrote beside the checkpoint
  const tcRecord = resume ? await io.readRunRecord(resume) : undefined;
  const hours = hoursFlag ?? tcRecord?.hours ?? undefined;
  if (resume && hours === undefined) {
    throw new UsageError(tcRecord
      ? `the run record ${io.runRecordPath(resume)} does not know the hours of video (${tcRecord.hoursMethod}); give --hours H`
      : `no run record ${io.runRecordPath(resume)} beside the checkpoint (a checkpoint of the original's scripts, or of train-mae?): give --hours H, the hours of video its trunk was trained on, for the results file`);
  }
  if (hoursFlag !== undefined && tcRecord?.hours != null && Math.abs(hoursFlag - tcRecord.hours) > 1e-9 * tcRecord.hours) {
    process.stderr.write(`warning: --hours ${hoursFlag} overrides the ${tcRecord.hours} hours recorded in ${io.runRecordPath(resume)}\n`);
  }
  return { tcRecord, hours };
}

/**
 * The MAE repository's checkpoint (`model` in MAE / timm ViT layout, with `args`), or a bare MAE /
 * timm ViT state dict: its state dict and args.model; undefined for any other checkpoint.
 */
function maeCheckpoint(ckpt: unknown): { sd: StateDict; maeModel?: string } | undefined {
  if (typeof ckpt !== 'object' || ckpt === null) return undefined;
  const c = ckpt instanceof Map ? Object.fromEntries(ckpt) as Record<string, unknown> : ckpt as Record<string, unknown>;
  let sd: StateDict;
  try {
    sd = io.asStateDict(c.model ?? ckpt, 'checkpoint');
  } catch {
    return undefined;
  }
  if (!models.isTimmVit(sd)) return undefined;
  let args = c.args;
  if (args instanceof Map) args = Object.fromEntries(args);
  // the MAE repository's misc.save_model stores args as an argparse.Namespace (io gives its state)
  if (typeof args === 'object' && args !== null && (args as Record<string, unknown>).__class__ === 'argparse.Namespace') args = (args as Record<string, unknown>).state;
  if (args instanceof Map) args = Object.fromEntries(args);
  const name = typeof args === 'object' && args !== null ? (args as Record<string, unknown>).model : undefined;
  return { sd, ...(typeof name === 'string' ? { maeModel: name } : {}) };
}

/** What loadTrunk found, for the results file: how the trunk was trained and its size. */
export interface TrunkInfo {
  /** 'mae' for an MAE checkpoint, 'tc' for any other checkpoint (finetune's --resume is a temporal-classification checkpoint), 'random' without one */
  objective?: 'tc' | 'mae' | 'random';
  /** parameters of the trunk: every parameter but the classification head's */
  modelParams?: number;
}

/** Parameters of a classifier's trunk: every parameter but those of its head (`headName`). */
export function trunkParameterCount(model: models.Classifier): number {
  let n = 0;
  const head = model.headName ? `${model.headName}.` : undefined;
  for (const [name, p] of model.namedParameters()) if (head === undefined || !name.startsWith(head)) n += p.numel();
  return n;
}

/**
 * The architecture with its n_out head and the checkpoint `resume` loaded into it ('' = random
 * weights). An MAE checkpoint (awty train-mae's or the MAE repository's: `model`, `optimizer`,
 * `epoch`, `args`) loads its encoder into the matching vit_* model (decoder and mask token dropped,
 * the position embedding interpolated when --image-size differs); its head stays as built (n_out
 * is not used: MAE has no classification head).
 */
export async function loadTrunk(o: { model: string; nOut: number; resume: string; imageSize: number; log: (line: string) => void; info?: TrunkInfo }): Promise<models.Classifier> {
  const model = models.create(models.modelName(o.model), { numClasses: o.nOut, imageSize: o.imageSize });
  try {
    if (o.resume) {
      const ckpt = await io.load(o.resume);
      try {
        const mae = maeCheckpoint(ckpt);
        if (mae) {
          const what = `${o.resume} (an MAE checkpoint${mae.maeModel ? ` of ${mae.maeModel}` : ''})`;
          if (!(model instanceof models.VisionTransformer)) {
            const fits = models.vitNamesOfShape(models.maeStateDictShape(mae.sd, mae.maeModel));
            throw new Error(`${what} is a ViT encoder; --model ${o.model} is not a vit_* model${fits.length ? `: give --model ${fits.join(' or ')}` : ''}`);
          }
          let resized: torch.Tensor | undefined;
          try {
            const enc = models.maeEncoderStateDict(mae.sd, model, mae.maeModel);
            resized = enc.resized;
            model.loadStateDict(enc.sd);
          } catch (err) {
            throw new Error(`${what} does not fit --model ${o.model}: ${(err as Error).message}`);
          } finally {
            resized?.dispose();
          }
          o.log(`loaded the encoder of ${what} into ${o.model}${resized ? ` (position embedding interpolated to ${o.imageSize} px)` : ''}; decoder and mask token dropped`);
          if (o.info) o.info.objective = 'mae';
          return model;
        }
        const head = checkpointHeadSize(ckpt, model.headName);
        if (head !== undefined && head !== o.nOut) {
          throw new Error(`${o.resume} has a ${head}-way head (${model.headName}.weight has ${head} rows) but --n_out is ${o.nOut}; pass --n_out ${head}`);
        }
        try {
          io.loadStateDictInto(model, ckpt);
        } catch (err) {
          throw new Error(`${o.resume} does not fit ${o.model} with --n_out ${o.nOut}: ${(err as Error).message}`);
        }
      } finally {
        io.disposeTree(ckpt);
      }
      o.log(`loaded ${o.resume}`);
      if (o.info) o.info.objective = 'tc';
    } else {
      o.log('no --resume: the trunk starts from random weights');
      if (o.info) o.info.objective = 'random';
    }
    if (o.info) o.info.modelParams = trunkParameterCount(model);
    return model;
  } catch (err) {
    model.dispose();
    throw err;
  }
}

/**
 * MAE's linear-probe head (main_linprobe.py): BatchNorm1d(dim, affine=False, eps=1e-6) before the
 * fresh Linear, whose weight is trunc_normal_(std=0.01) with a zero bias (MoCo v3's init, as there).
 */
export function addHeadBatchNorm(model: models.Classifier): void {
  if (!(model instanceof models.VisionTransformer)) throw new UsageError('--head-bn needs a vit_* model (MAE\'s linear probe)');
  model.setHeadNorm(new nn.BatchNorm1d(model.hiddenDim, { affine: false, eps: 1e-6 }));
  nn.init.truncNormal_(model.head.weight, { std: 0.01 });
  if (model.head.bias) nn.init.zeros_(model.head.bias);
}

/** Puts BatchNorm layers in eval mode (their running statistics stop updating). */
function freezeBatchNorm(model: nn.Module): void {
  for (const m of model.modules()) if (m instanceof nn.BatchNorm2d) m.eval();
}

/**
 * Loss and accuracy over the loader. Distributed (`reduce` sums numbers across ranks): each rank's
 * loader holds its share of the images and the totals are summed, so every rank gets the global figures.
 */
export async function evaluate(model: nn.Module, loader: DataLoader, o: { device: torch.Device; reduce?: (v: number[]) => number[] }): Promise<{ loss: number; top1: number; top5: number; images: number }> {
  model.eval();
  const losses = new AverageMeter('Loss', 4);
  const top1 = new AverageMeter('Acc@1', 2);
  const top5 = new AverageMeter('Acc@5', 2);
  for await (const batch of loader.epoch(0)) {
    const n = batch.shape[0]!;
    const [loss, a1, a5] = torch.tidy(() => torch.noGrad((): [number, number, number] => {
      const { images, labels } = toTensors(batch, { releaseTo: loader });
      const x = o.device === 'cpu' ? images : images.to(o.device);
      const y = o.device === 'cpu' ? labels : labels.to(o.device);
      const output = model.forward(x);
      const [acc1, acc5] = accuracy(output, y, [1, 5]);
      return [torch.crossEntropy(output, y).item(), acc1!, acc5!];
    }));
    losses.update(loss, n);
    top1.update(a1, n);
    top5.update(a5, n);
  }
  if (o.reduce) {
    const [l, t1, t5, count] = o.reduce([losses.sum, top1.sum, top5.sum, top1.count]) as [number, number, number, number];
    return { loss: count ? l / count : 0, top1: count ? t1 / count : 0, top5: count ? t5 / count : 0, images: count };
  }
  return { loss: losses.avg, top1: top1.avg, top5: top5.avg, images: top1.count };
}

export async function main(opts: FinetuneOptions): Promise<FinetuneSummary> {
  const o = {
    ...FINETUNE_DEFAULTS, schedule: [...FINETUNE_DEFAULTS.schedule],
    log: (line: string): void => { process.stdout.write(`${line}\n`); },
    ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)),
  } as unknown as Required<Omit<FinetuneOptions, 'threads' | 'hours' | 'condition' | 'distTimeout' | 'masterAddr' | 'masterPort' | 'onBadImage'>> & FinetuneOptions;
  // launched as one of several processes (awty launch, torchrun, srun): data-parallel training, rank 0 logs and saves
  // (CUDA: NCCL, and each process on the GPU of its local rank)
  const ddpRun = dist.joinDataParallel({ batchSize: o.batchSize, timeoutSeconds: o.distTimeout, masterAddr: o.masterAddr, masterPort: o.masterPort, backend: o.device === 'cpu' ? 'gloo' : 'nccl' });
  try {
    return await run(ddpRun && o.device === 'cuda' ? { ...o, device: `cuda:${ddpRun.localRank}` } : o, ddpRun);
  } finally {
    if (ddpRun) dist.destroyProcessGroup();
  }
}

async function run(o: Required<Omit<FinetuneOptions, 'threads' | 'hours' | 'condition' | 'distTimeout' | 'masterAddr' | 'masterPort' | 'onBadImage'>> & FinetuneOptions,
  ddpRun: dist.DataParallelRun | undefined): Promise<FinetuneSummary> {
  const rank0 = !ddpRun || ddpRun.rank === 0;
  const log = rank0 ? o.log : (): void => undefined;
  if (!(o.fracRetained > 0 && o.fracRetained <= 1)) throw new UsageError(`--frac-retained must be in (0, 1], got ${o.fracRetained}`);
  if (!(Number.isInteger(o.nOut) && o.nOut >= 1)) throw new UsageError(`--n_out must be a positive integer, got ${o.nOut}`);
  if (!(Number.isInteger(o.valEvery) && o.valEvery >= 1)) throw new UsageError(`--val-every must be a positive integer, got ${o.valEvery}`);
  if (!(Number.isInteger(o.printFreq) && o.printFreq >= 1)) throw new UsageError(`--print-freq must be a positive integer, got ${o.printFreq}`);
  if (o.hours !== undefined && !(o.hours > 0)) throw new UsageError(`--hours must be positive, got ${o.hours}`);
  if (o.onBadImage !== undefined && o.onBadImage !== 'fail' && o.onBadImage !== 'skip') throw new UsageError(`--on-bad-image must be fail or skip, got ${String(o.onBadImage)}`);
  const onBadImage = o.onBadImage ?? FINETUNE_DEFAULTS.onBadImage;
  if (o.headBn && !Object.hasOwn(models.vitConfigs, o.model)) throw new UsageError(`--head-bn needs a vit_* model (MAE's linear probe), got --model ${o.model}`);
  const naming = o.checkpointName;
  if (naming !== 'awty' && naming !== 'original') throw new UsageError(`--checkpoint-name must be awty or original, got ${String(naming)}`);
  const t0 = performance.now();
  const { tcRecord, hours } = await trunkHours(o.resume, o.hours);
  if (o.threads !== undefined) torch.setNumThreads(o.threads);
  torch.manualSeed(o.seed);
  // the output folder is created and probed now, not found unwritable after the last epoch
  await ensureWritableDir(o.out, '--out');
  // the outputs' names, and an earlier run's outputs kept unless --overwrite (checked before any training)
  const condition = o.condition ?? defaultCondition(o.freezeTrunk, o.fracRetained);
  const outName = finetuneCheckpointName({ ...o, condition, hours }, naming);
  const checkpoint = o.saveCheckpoint ? join(o.out, outName) : '';
  const resultPath = join(o.out, `${outName.slice(0, -'.tar'.length)}.json`);
  // (on every rank: they name the same files, and a rank left waiting for rank 0 would wait for --dist-timeout)
  if (!o.overwrite) {
    const writesResult = hours !== undefined && o.epochs > o.startEpoch;
    for (const [file, what] of [[checkpoint, 'checkpoint'], [writesResult ? resultPath : '', 'results file']] as const) {
      if (file && pathTaken(file)) throw new UsageError(`${file} exists (the ${what} of an earlier run of the same evaluation); give --overwrite to replace it, or another --out`);
    }
  }

  // data
  const trainSet: Dataset & { classes: readonly string[] } = await ImageFolder.open(o.imgnetTraindir);
  const valSet = await ImageFolder.open(o.imgnetValdir);
  const numClasses = trainSet.classes.length;
  if (valSet.classes.length !== numClasses) {
    throw new Error(`${o.imgnetValdir} has ${valSet.classes.length} classes but ${o.imgnetTraindir} has ${numClasses}`);
  }
  const trainIdx = fewShotIndices(trainSet.length, o.fracRetained, o.seed);
  if (trainIdx.length === 0) throw new Error(`--frac-retained ${o.fracRetained} of ${trainSet.length} training images keeps none`);
  const valResize = Math.round((o.imageSize * 256) / 224);
  // distributed: each rank trains on its share of the same shuffled subset, in batches of batch-size / world size
  const subset = new SubsetRandomSampler(trainIdx, o.seed);
  const trainLoader = new DataLoader(trainSet, {
    batchSize: ddpRun?.perRankBatch ?? o.batchSize, workers: o.workers, seed: o.seed, labels: 'int64',
    sampler: ddpRun ? new ShardedSampler(subset, { rank: ddpRun.rank, worldSize: ddpRun.worldSize }) : subset, onBadImage,
    transform: o.strongAugment ? tcAugmentation(o.imageSize) : imagenetTrain(o.imageSize),
  });
  const valLoader = new DataLoader(valSet, {
    batchSize: ddpRun?.perRankBatch ?? o.batchSize, workers: o.workers, labels: 'int64', transform: imagenetVal(valResize, o.imageSize), onBadImage,
    // distributed: every rank validates a disjoint share (no padding) and the totals are summed
    ...(ddpRun ? { sampler: new ShardedSampler(new SequentialSampler(valSet.length), { rank: ddpRun.rank, worldSize: ddpRun.worldSize, pad: false }) } : {}),
  });
  log(`training on ${trainIdx.length} of ${trainSet.length} images (frac-retained ${o.fracRetained}), ${numClasses} classes; validating on ${valSet.length}`);

  let model: models.Classifier | undefined;
  let opt: optim.Adam | undefined;
  const trunk: TrunkInfo = {};
  try {
    // model: the TC architecture with its n_out head, then the checkpoint, then freeze, then a new head
    model = await loadTrunk({ model: o.model, nOut: o.nOut, resume: o.resume, imageSize: o.imageSize, log, info: trunk });
    if (o.freezeTrunk) model.requiresGrad_(false);
    models.replaceHead(model, numClasses);
    if (o.headBn) addHeadBatchNorm(model);
    if (o.device !== 'cpu') model.to(o.device);

    // every rank starts from rank 0's weights; gradients are averaged across ranks
    const ddp = ddpRun ? new dist.DistributedDataParallel(model, ddpRun.group) : undefined;
    if (ddpRun) log(`distributed: ${ddpRun.worldSize} processes (${ddpRun.group.backend}), global batch ${o.batchSize} = ${ddpRun.perRankBatch} per process`);
    // every parameter goes to Adam, as the original's Adam(model.parameters()): frozen ones get no
    // gradient, so no state, and the checkpoint's optimizer state lists them all (its --resume needs that)
    const params = model.parameters().filter((p) => p.requiresGrad);
    opt = new optim.Adam(model.parameters(), { lr: o.lr, weightDecay: o.weightDecay });
    const sched = new optim.MultiStepLR(opt, o.schedule, 0.2);
    for (let e = 0; e < o.startEpoch; e++) sched.step();
    log(`${params.length} trainable parameter tensors (${o.freezeTrunk ? `linear probe: ${model.headName} only` : 'whole network'}); BatchNorm running statistics ${o.bnEval ? 'frozen (--bn-eval)' : 'updating'}` +
      `${o.headBn ? `; head: BatchNorm1d(${model.head.inFeatures}, affine=False, eps=1e-6) + Linear (--head-bn${o.bnEval ? ', its statistics updating' : ''})` : ''}`);

    const acc1List: number[] = [];
    const lossList: number[] = [];
    const acc5List: number[] = [];
    const valAcc1List: number[] = [];
    const valAcc5List: number[] = [];
    const valLossList: number[] = [];
    let trainImages = 0;
    const stop = o.stop ?? new StopRequest();
    if (o.handleSignals) stop.install(true);
    for (let epoch = o.startEpoch; epoch < o.epochs; epoch++) {
      const tr = await trainOneEpoch(model, opt, trainLoader, epoch, {
        device: o.device, printFreq: o.printFreq, log, ...(o.bnEval ? { prepare: freezeBatchNorm } : {}), ...(ddp ? { ddp } : {}),
        shouldStop: () => stop.requested, ...(o.onStep ? { onStep: o.onStep } : {}),
      });
      if (stop.requested) {
        if (o.handleSignals) stop.uninstall();
        throw new InterruptedError(stop.signal!);
      }
      trainImages = tr.images;
      sched.step();
      acc1List.push(tr.acc1);
      lossList.push(tr.loss);
      acc5List.push(tr.acc5);
      if ((epoch + 1 - o.startEpoch) % o.valEvery !== 0 && epoch !== o.epochs - 1) {
        log(`epoch ${epoch}: trained on ${tr.images} images, train Acc@1 ${tr.acc1.toFixed(2)}`);
        continue;
      }
      const val = await evaluate(model, valLoader, { device: o.device, ...(ddp ? { reduce: (v: number[]) => ddp.sumNumbers(v) } : {}) });
      valAcc1List.push(val.top1);
      valAcc5List.push(val.top5);
      valLossList.push(val.loss);
      log(`epoch ${epoch}: trained on ${tr.images} images, train Acc@1 ${tr.acc1.toFixed(2)}; validation Acc@1 ${val.top1.toFixed(2)} Acc@5 ${val.top5.toFixed(2)} loss ${val.loss.toFixed(4)}`);
    }

    if (o.handleSignals) stop.uninstall();
    if (!rank0) {
      // rank 0 writes the checkpoint and the results file; the others wait until they are complete
      ddpRun!.group.barrier().wait();
      return { acc1List, valAcc1List, valAcc5List, trainImages, trainTotal: trainSet.length, classes: numClasses, checkpoint, condition };
    }
    if (o.saveCheckpoint) {
      await io.save({
        acc1_list: acc1List,
        val_acc1_list: valAcc1List,
        model_state_dict: io.modelStateDict(model, { prefix: 'module.' }),
        optimizer_state_dict: io.optimizerStateToPickle(opt.stateDict()),
      }, checkpoint);
      log(`saved ${checkpoint}`);
    }

    let resultFile: string | undefined;
    if (valAcc1List.length > 0 && hours !== undefined) {
      const config: Record<string, unknown> = { ...o };
      for (const k of ['log', 'onStep', 'stop', 'handleSignals']) delete config[k];
      const tcConfig = tcRecord?.config ?? {};
      const result: RunResultFile = {
        condition, hours, seed: o.seed, top1: valAcc1List.at(-1)!, top5: valAcc5List.at(-1)!,
        fracRetained: o.fracRetained, freezeTrunk: o.freezeTrunk, model: o.model, epochs: o.epochs,
        modelParams: trunk.modelParams!, imageSize: o.imageSize, objective: trunk.objective!,
        checkpoint: o.resume || undefined, valTop1PerEpoch: valAcc1List, valTop5PerEpoch: valAcc5List,
        ...(tcRecord ? {
          episodes: tcRecord.data.episodes, classFraction: tcConfig.classFraction as number, tcModel: tcConfig.model as string,
          tcSeed: tcConfig.seed as number, tcRecord: io.runRecordPath(o.resume), hoursFrom: o.hours !== undefined ? '--hours' : `run record: ${tcRecord.hoursMethod}`,
        } : { hoursFrom: '--hours' }),
        complete: true, evalCheckpoint: checkpoint, config, versions: versions(), device: o.device, threads: torch.getNumThreads(), host: hostName(),
        trainLossPerEpoch: lossList, trainTop1PerEpoch: acc1List, trainTop5PerEpoch: acc5List, valLossPerEpoch: valLossList,
        trainImages, wallSeconds: (performance.now() - t0) / 1000,
      };
      resultFile = await writeResult(resultPath, result);
      log(`wrote ${resultFile}`);
    } else if (hours === undefined) {
      process.stderr.write('warning: no --resume and no --hours: no results file written (awty figure1 needs the hours of video of the trunk)\n');
    }
    ddpRun?.group.barrier().wait();
    return { acc1List, valAcc1List, valAcc5List, trainImages, trainTotal: trainSet.length, classes: numClasses, checkpoint, resultFile, condition };
  } finally {
    opt?.dispose();
    model?.dispose();
    await Promise.all([trainLoader.close(), valLoader.close()]);
  }
}
