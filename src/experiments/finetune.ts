// ImageNet evaluation of a temporal-classification (TC) checkpoint: the paper's finetune_imgnet.py
// (few-shot fine-tuning, or a linear probe with --freeze-trunk). Read top to bottom: small helpers,
// evaluate, main; trainOneEpoch (shared with train-tc) is in common.ts.
//
// What the original does, and this does by default: the TC checkpoint is loaded into the
// architecture with an n_out head, then (if frozen) every parameter stops requiring gradients, then
// fc is replaced by a fresh Linear(in_features, classes). The model stays in train mode while
// training, so BatchNorm running statistics keep updating even in the linear probe; `bnEval` freezes
// them (BatchNorm layers in eval mode while training).
//
// Two cheaper evaluations run through the same flags, each reported as its own condition: `knn`
// (k-nearest-neighbour votes on the frozen features, knn.ts; no training) and `cacheFeatures` (the
// linear probe trained on features extracted once without augmentation, see cachedProbe).
import { lstatSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import * as torch from '../torch/index.js';
import * as nn from '../nn/index.js';
import * as optim from '../optim/index.js';
import * as models from '../models/index.js';
import * as io from '../io/index.js';
import { DataLoader, ImageFolder, SequentialSampler, ShardedSampler, Subset, SubsetRandomSampler, fewShotIndices, perClassIndices, imagenetTrain, imagenetVal, tcAugmentation } from '../data/index.js';
import * as dist from '../dist/index.js';
import type { Dataset } from '../data/index.js';
import type { StateDict } from '../nn/index.js';
import { toTensors } from '../data/tensors.js';
import { ensureWritableDir } from '../io/outdir.js';
import { writeResult, type RunResultFile } from '../scaling/results.js';
import { AverageMeter, SCALER_KEY, formatDuration, applyPrecision, precisionFor, useSyncBn, RESUME_KEY, accuracy, agreedStop, pyFloat, trainOneEpoch, type MeterSums, type StepInfo } from './common.js';
import { MetricsLog } from './metrics.js';
import type { SchedulerStateDict } from '../optim/lr_scheduler.js';
import { InterruptedError, StopRequest } from './interrupt.js';
import { hostName, versions } from './provenance.js';
import { UsageError } from './errors.js';
import { FINETUNE_DEFAULTS, KNN_DEFAULTS } from './defaults.js';
import type { KnnSummary } from './knn.js';
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
  /**
   * the training set is the first N images of each class of `imgnetTraindir` (in the folder's sorted
   * order, the same for every seed): few-shot with a fixed number of images per class; `fracRetained`
   * then applies to those. Default: every image
   */
  perClass?: number;
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
  /** the untrained-trunk baseline of a study (no --resume, no hours): no results file, and no warning about it */
  baseline?: boolean;
  /**
   * how the checkpoint is named (the results file is the same name with `.json`): 'awty' (default)
   * `IMGNET_{source}_{condition}_{model}_{frac}_{seed}[_{hours}h].tar`, 'original' the original's
   * `ImageNet_{resume}_{freeze}_{frac}_{seed}.tar`; see finetuneCheckpointName
   */
  checkpointName?: CheckpointNaming;
  /** replace a checkpoint or results file of the same name in `out` (default: refuse before training) */
  overwrite?: boolean;
  /**
   * hours of video the trunk saw; default: those of the run record beside `resume` (written by
   * train-tc and train-mae). Without either, a checkpoint given by `resume` is an error (no results file could be written).
   */
  hours?: number;
  /** an unreadable image: 'fail' (default) stops the run naming it; 'skip' leaves it out of its batch */
  onBadImage?: 'fail' | 'skip';
  /** evaluation condition in the results file (default: from --freeze-trunk, --frac-retained, --cache-features and --knn) */
  condition?: string;
  /**
   * instead of training: `awty knn`'s k-nearest-neighbour evaluation with this k (temperature 0.07)
   * on the trunk and data flags given here (condition knn-k{K}, results file as awty knn writes it)
   */
  knn?: number;
  /**
   * linear probe only (with freezeTrunk): every training and validation image goes through the trunk
   * once, in eval mode, with the validation transform (no augmentation); the head then trains for the
   * epochs on these cached features with the probe's optimizer, schedule, batches and seed (condition
   * linear-probe-cached)
   */
  cacheFeatures?: boolean;
  /** distributed runs: seconds to wait for the other processes (rendezvous, collectives; default 300) */
  distTimeout?: number;
  /** distributed runs: BatchNorm over the global batch (dist.SyncBatchNorm) instead of each process's own */
  syncBn?: boolean;
  /** distributed runs: the rank-0 machine's address and port, overriding MASTER_ADDR / MASTER_PORT */
  masterAddr?: string;
  masterPort?: number;
  /** called after every training step (progress bars) */
  onStep?: (s: StepInfo) => void;
  /**
   * a checkpoint this command wrote on an interruption (or at the end of a finished run) to continue
   * from exactly: model, optimizer, scheduler, epoch and position in it, the epoch's meters and the
   * lists so far; the other options must be those of the run that wrote it. '' (default): none
   */
  continue?: string;
  /** iterations between lines of the metrics file; default 50 */
  logFreq?: number;
  /** the metrics file (JSON lines, and a CSV beside it); default OUT/{the checkpoint's name without .tar}.metrics.jsonl; '' for none */
  metrics?: string;
  /**
   * stop after the current step when set (SIGINT / SIGTERM with `handleSignals`): a checkpoint to
   * `continue` from is written and InterruptedError thrown
   */
  stop?: StopRequest;
  /** model and training batches in torch.channels_last (--channels-last) */
  channelsLast?: boolean;
  /** the training forward pass under autocast (--amp): bfloat16 on CPU; float16 with a GradScaler on CUDA unless ampDtype says bfloat16 */
  amp?: boolean;
  /** --amp-dtype: bfloat16 or float16 (CUDA only) */
  ampDtype?: 'bfloat16' | 'float16';
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
  /** `continue` named a finished run: nothing was trained or written */
  nothingToDo?: boolean;
  /** finetune --knn: the kNN evaluation's summary (valAcc1List / valAcc5List hold its top-1 / top-5) */
  knn?: KnnSummary;
}

/** The default condition label of a run (the paper's three, else a descriptive one; `-cached` for a probe on cached features). */
export function defaultCondition(freezeTrunk: boolean, fracRetained: number, cacheFeatures = false, perClass?: number): string {
  if (freezeTrunk) return cacheFeatures ? 'linear-probe-cached' : 'linear-probe';
  if (perClass !== undefined) return `few-shot-${perClass}-per-class${fracRetained === 1 ? '' : `-${fracRetained}`}`;
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
 * The provenance of the trunk in `resume`: the run record train-tc or train-mae wrote beside it, and the hours of
 * video (`hoursFlag`, i.e. --hours, overrides the record's). A checkpoint whose hours are known from
 * neither is a usage error: no results file could be written for it.
 */
export async function trunkHours(resume: string, hoursFlag: number | undefined): Promise<{ tcRecord: io.RunRecord | undefined; hours: number | undefined }> {
  // provenance of the trunk: the run record train-tc or train-mae wrote beside the checkpoint
  const tcRecord = resume ? await io.readRunRecord(resume) : undefined;
  const hours = hoursFlag ?? tcRecord?.hours ?? undefined;
  if (resume && hours === undefined) {
    throw new UsageError(tcRecord
      ? `the run record ${io.runRecordPath(resume)} does not know the hours of video (${tcRecord.hoursMethod}); give --hours H`
      : `no run record ${io.runRecordPath(resume)} beside the checkpoint (a checkpoint of the original's scripts or of the MAE repository?): give --hours H, the hours of video its trunk was trained on, for the results file`);
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

/**
 * What a finetune checkpoint carries to be continued (under RESUME_KEY, a JSON string beside the
 * original's keys; the original's loader ignores it). Written on an interruption (mid-epoch, or at an
 * epoch's end) and into the final checkpoint (`complete`). No generator state is needed besides the
 * seed: the few-shot subset, the sampler's order and every sample's augmentation are fixed by (seed,
 * epoch, sample index), the head's initialisation is in the saved weights, and the models draw no
 * random numbers while training.
 */
export interface FinetuneResume {
  kind: 'finetune';
  /** the next epoch to train and the batches of it already trained (0 at an epoch's end) */
  epoch: number;
  batch: number;
  batches: number;
  /** the epoch's meters so far, over every rank (mid-epoch only) */
  sums?: MeterSums;
  seed: number;
  /** the final checkpoint of a finished run */
  complete: boolean;
  /** the options that must not change (FINETUNE_IDENTITY), as the run that wrote it had them */
  identity: Record<string, unknown>;
  scheduler: SchedulerStateDict;
  lists: { trainLoss: number[]; trainAcc1: number[]; trainAcc5: number[]; valAcc1: number[]; valAcc5: number[]; valLoss: number[] };
  trainImages: number;
  trainTotal: number;
  classes: number;
  wallSeconds: number;
}

/** The options a continued run must share with the one that wrote its checkpoint, with their flags. */
export const FINETUNE_IDENTITY = {
  model: '--model', nOut: '--n_out', source: '--resume', freezeTrunk: '--freeze-trunk', fracRetained: '--frac-retained', perClass: '--per-class', batchSize: '--batch-size',
  lr: '--lr', weightDecay: '--weight-decay', schedule: '--schedule', strongAugment: '--strong-augment', seed: '--seed', imageSize: '--image-size',
  bnEval: '--bn-eval', headBn: '--head-bn', startEpoch: '--start-epoch', valEvery: '--val-every', condition: '--condition', hours: '--hours',
} as const;

/** The sidecar of a checkpoint written on an interruption (what `awty sweep` looks for): `<checkpoint>.interrupted.json`. */
export function interruptRecordPath(checkpoint: string): string {
  return `${checkpoint}.interrupted.json`;
}
export const INTERRUPT_RECORD_SCHEMA = 'awty.finetune-interrupted/1';
export interface InterruptRecord {
  schema: typeof INTERRUPT_RECORD_SCHEMA;
  checkpoint: string;
  /** the TC checkpoint evaluated (--resume as given) */
  resume: string;
  epochs: number;
  position: { epoch: number; batch: number; batches: number };
  identity: Record<string, unknown>;
  time: string;
}

/** Reads the sidecar of an interrupted run's checkpoint; undefined when there is none or it is not one. */
export async function readInterruptRecord(checkpoint: string): Promise<InterruptRecord | undefined> {
  try {
    const r = JSON.parse(await readFile(interruptRecordPath(checkpoint), 'utf8')) as InterruptRecord;
    return r.schema === INTERRUPT_RECORD_SCHEMA ? r : undefined;
  } catch {
    return undefined;
  }
}

/** Loads a checkpoint for `continue`: its tree (to load into the model and optimizer, then dispose) and its resume state. */
async function readContinue(file: string): Promise<{ tree: Record<string, unknown>; state: FinetuneResume }> {
  const fail = (msg: string): Error => new UsageError(`cannot continue from ${file}: ${msg}`);
  if (!pathTaken(file)) throw fail('no such file');
  let tree: unknown;
  try {
    tree = await io.load(file);
  } catch (e) {
    throw new Error(`cannot continue from ${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    if (typeof tree !== 'object' || tree === null || tree instanceof Map || Array.isArray(tree)) throw fail('not a dict of {acc1_list, val_acc1_list, model_state_dict, optimizer_state_dict}');
    const o = tree as Record<string, unknown>;
    const raw = o[RESUME_KEY];
    let state: FinetuneResume | undefined;
    try {
      state = typeof raw === 'string' ? JSON.parse(raw) as FinetuneResume : undefined;
    } catch {
      throw fail(`its ${RESUME_KEY} entry is not valid JSON`);
    }
    if (state?.kind !== 'finetune') {
      throw fail(`it has no ${RESUME_KEY} entry of awty finetune (only checkpoints awty finetune wrote continue; a train-tc checkpoint to evaluate is --resume)`);
    }
    if (o.model_state_dict === undefined || o.optimizer_state_dict === undefined) throw fail('no model_state_dict or optimizer_state_dict in it');
    return { tree: o, state };
  } catch (e) {
    io.disposeTree(tree);
    throw e;
  }
}

type Resolved = Required<Omit<FinetuneOptions, 'threads' | 'hours' | 'condition' | 'distTimeout' | 'syncBn' | 'masterAddr' | 'masterPort' | 'onBadImage' | 'metrics' | 'knn' | 'cacheFeatures' | 'perClass' | 'channelsLast' | 'amp' | 'ampDtype'>> & FinetuneOptions;

export async function main(opts: FinetuneOptions): Promise<FinetuneSummary> {
  const o = {
    ...FINETUNE_DEFAULTS, schedule: [...FINETUNE_DEFAULTS.schedule],
    log: (line: string): void => { process.stdout.write(`${line}\n`); },
    ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)),
  } as unknown as Resolved;
  const launched = dist.distEnv(process.env, { ...(o.masterAddr ? { masterAddr: o.masterAddr } : {}), ...(o.masterPort ? { masterPort: o.masterPort } : {}) }) !== undefined;
  if (o.knn !== undefined) {
    if (o.cacheFeatures) throw new UsageError('--knn and --cache-features are two different evaluations: give one');
    if (o.headBn) throw new UsageError('--head-bn is a trained head; --knn trains none');
    if (o.strongAugment) throw new UsageError('--strong-augment is a training augmentation; --knn trains nothing (both sets go through the validation transform)');
    if (o.checkpointName !== 'awty') throw new UsageError('--checkpoint-name original names a checkpoint; --knn writes none (its results file is named as awty knn names it)');
    if (o.perClass !== undefined) throw new UsageError('--per-class selects a training set to fine-tune on; --knn uses the whole training folder (its --frac-retained applies)');
    if (launched) throw new UsageError('--knn runs in one process (launched as several, each would write the same results file)');
    return knnInstead(o);
  }
  if (o.cacheFeatures) {
    if (!o.freezeTrunk) throw new UsageError('--cache-features needs --freeze-trunk: features can be cached only for a frozen trunk (the linear probe)');
    if (o.strongAugment) throw new UsageError('--cache-features extracts every image once without augmentation; --strong-augment cannot apply');
    if (launched) throw new UsageError('--cache-features runs in one process (launched as several, give the linear probe without it)');
    if (o.continue) throw new UsageError('--cache-features writes no interruption checkpoint to --continue from: run it again (it is cheap)');
  }
  // launched as one of several processes (awty launch, torchrun, srun): data-parallel training, rank 0 logs and saves
  // (CUDA: NCCL, and each process on the GPU of its local rank)
  const ddpRun = dist.joinDataParallel({ batchSize: o.batchSize, timeoutSeconds: o.distTimeout, masterAddr: o.masterAddr, masterPort: o.masterPort, backend: o.device === 'cpu' ? 'gloo' : 'nccl' });
  try {
    return await run(ddpRun && o.device === 'cuda' ? { ...o, device: `cuda:${ddpRun.localRank}` } : o, ddpRun);
  } finally {
    if (ddpRun) dist.destroyProcessGroup();
  }
}

interface CachedProbe {
  acc1List: number[];
  lossList: number[];
  acc5List: number[];
  valAcc1List: number[];
  valAcc5List: number[];
  valLossList: number[];
  trainImages: number;
  /** what the results file records of the cache */
  cache: { transform: string; trainRows: number; valRows: number; dim: number; seconds: number };
}

/** The head of a classifier as a module over its features: a ViT's `heads` (with --head-bn's norm), else the Linear. */
function headModule(model: models.Classifier): nn.Module {
  return model instanceof models.VisionTransformer ? model.getModule('heads')! : model.head;
}

/**
 * finetune --freeze-trunk --cache-features: the trunk (in eval mode, no gradients) turns every image
 * of the training subset and of the validation set into features once, both through the validation
 * transform (Resize(round(px x 256/224)) + CenterCrop(px), no augmentation; BatchNorm statistics as
 * loaded, i.e. --bn-eval's trunk). The head then trains for the epochs on the cached features with the
 * probe's optimizer and schedule, in the probe's batches: each epoch the subset sampler's order cut
 * into batches of --batch-size (a row that could not be read, --on-bad-image skip, left out of its
 * batch, as the loader does). Validation runs the head over the cached validation features, in order.
 */
async function cachedProbe(model: models.Classifier, opt: optim.Adam, sched: optim.MultiStepLR, sampler: SubsetRandomSampler,
  trainSet: Dataset, trainIdx: ArrayLike<number>, valLoader: DataLoader,
  o: Resolved & { onBadImage: 'fail' | 'skip'; stop: StopRequest }): Promise<CachedProbe> {
  const log = o.log;
  const t0 = performance.now();
  const transform = imagenetVal(Math.round((o.imageSize * 256) / 224), o.imageSize);
  const sorted = Int32Array.from(trainIdx).sort();
  const trainLoader = new DataLoader(trainSet, { batchSize: o.batchSize, workers: o.workers, labels: 'int64', sampler: { indices: () => sorted }, transform, onBadImage: o.onBadImage });
  const { extractFeatures } = await import('./knn.js');
  const owned: torch.Tensor[] = [];
  try {
    const tr = await extractFeatures(model, trainLoader, { device: o.device });
    owned.push(tr.features, tr.labels);
    const va = await extractFeatures(model, valLoader, { device: o.device });
    owned.push(va.features, va.labels);
    const seconds = (performance.now() - t0) / 1000;
    const dim = tr.features.shape[1]!;
    log(`--cache-features: ${tr.features.shape[0]} training and ${va.features.shape[0]} validation images through the frozen trunk once (eval mode, ` +
      `validation transform, no augmentation): ${dim}-d features, ${((tr.features.numel() + va.features.numel()) * 4 / 2 ** 20).toFixed(1)} MiB, ${seconds.toFixed(1)} s`);
    const rowOf = new Int32Array(trainSet.length).fill(-1);
    tr.indices.forEach((idx, row) => { rowOf[idx] = row; });
    const head = headModule(model);
    const out: CachedProbe = { acc1List: [], lossList: [], acc5List: [], valAcc1List: [], valAcc5List: [], valLossList: [], trainImages: 0,
      cache: { transform: `val: Resize(${Math.round((o.imageSize * 256) / 224)}) + CenterCrop(${o.imageSize})`, trainRows: tr.features.shape[0]!, valRows: va.features.shape[0]!, dim, seconds } };
    const rows = (r: ArrayLike<number>): torch.Tensor => torch.tensor(Array.from(r), { dtype: 'int64' });
    const onDevice = (t: torch.Tensor): torch.Tensor => (o.device === 'cpu' ? t : t.to(o.device));
    for (let epoch = o.startEpoch; epoch < o.epochs; epoch++) {
      const order = sampler.indices(epoch);
      const losses = new AverageMeter('Loss', 4);
      const top1 = new AverageMeter('Acc@1', 2);
      const top5 = new AverageMeter('Acc@5', 2);
      head.train();
      for (let b = 0; b * o.batchSize < order.length; b++) {
        const batch: number[] = [];
        for (let k = b * o.batchSize; k < Math.min(order.length, (b + 1) * o.batchSize); k++) if (rowOf[order[k]!]! >= 0) batch.push(rowOf[order[k]!]!);
        if (batch.length === 0) continue;
        const [loss, a1, a5] = torch.tidy((): [number, number, number] => {
          const r = rows(batch);
          const x = onDevice(tr.features.indexSelect(0, r));
          const y = onDevice(tr.labels.indexSelect(0, r));
          const output = head.forward(x);
          const l = torch.crossEntropy(output, y);
          opt.zeroGrad();
          l.backward();
          opt.step();
          const [acc1, acc5] = accuracy(output, y, [1, 5]);
          return [l.item(), acc1!, acc5!];
        });
        losses.update(loss, batch.length);
        top1.update(a1, batch.length);
        top5.update(a5, batch.length);
      }
      if (o.stop.requested) {
        if (o.handleSignals) o.stop.uninstall();
        throw new InterruptedError(o.stop.signal!);
      }
      out.trainImages = top1.count;
      sched.step();
      out.acc1List.push(top1.avg);
      out.lossList.push(losses.avg);
      out.acc5List.push(top5.avg);
      if ((epoch + 1 - o.startEpoch) % o.valEvery !== 0 && epoch !== o.epochs - 1) {
        log(`epoch ${epoch}: trained on ${top1.count} images (cached features), train Acc@1 ${top1.avg.toFixed(2)}`);
        continue;
      }
      // validation: the head over the cached validation features, in batches of --batch-size as evaluate()
      head.eval();
      const vl = new AverageMeter('Loss', 4);
      const v1 = new AverageMeter('Acc@1', 2);
      const v5 = new AverageMeter('Acc@5', 2);
      const n = va.features.shape[0]!;
      for (let s = 0; s < n; s += o.batchSize) {
        const m = Math.min(o.batchSize, n - s);
        const [l, a1, a5] = torch.tidy(() => torch.noGrad((): [number, number, number] => {
          const x = onDevice(va.features.narrow(0, s, m));
          const y = onDevice(va.labels.narrow(0, s, m));
          const output = head.forward(x);
          const [acc1, acc5] = accuracy(output, y, [1, 5]);
          return [torch.crossEntropy(output, y).item(), acc1!, acc5!];
        }));
        vl.update(l, m);
        v1.update(a1, m);
        v5.update(a5, m);
      }
      out.valAcc1List.push(v1.avg);
      out.valAcc5List.push(v5.avg);
      out.valLossList.push(vl.avg);
      log(`epoch ${epoch}: trained on ${top1.count} images (cached features), train Acc@1 ${top1.avg.toFixed(2)}; validation Acc@1 ${v1.avg.toFixed(2)} Acc@5 ${v5.avg.toFixed(2)} loss ${vl.avg.toFixed(4)}`);
    }
    return out;
  } finally {
    for (const t of owned) t.dispose();
    await trainLoader.close();
  }
}

/** finetune --knn K: awty knn (knn.ts) with finetune's trunk and data flags, in place of training. */
async function knnInstead(o: Resolved): Promise<FinetuneSummary> {
  const k = o.knn!;
  if (!(Number.isInteger(k) && k >= 1)) throw new UsageError(`--knn must be a positive integer (the neighbours that vote), got ${k}`);
  o.log(`--knn ${k}: k-nearest-neighbour evaluation on the frozen trunk's features instead of training (--epochs, --lr and the other training flags do not apply; the evaluation of awty knn)`);
  const { main: knnMain } = await import('./knn.js');
  const r = await knnMain({
    imgnetTraindir: o.imgnetTraindir, imgnetValdir: o.imgnetValdir, model: o.model, nOut: o.nOut, resume: o.resume, k, temperature: KNN_DEFAULTS.temperature,
    fracRetained: o.fracRetained, batchSize: o.batchSize, seed: o.seed, workers: o.workers, out: o.out, threads: o.threads, device: o.device,
    imageSize: o.imageSize, hours: o.hours, onBadImage: o.onBadImage ?? FINETUNE_DEFAULTS.onBadImage, condition: o.condition, overwrite: o.overwrite, log: o.log,
  });
  return {
    acc1List: [], valAcc1List: [r.top1], valAcc5List: [r.top5], trainImages: r.trainImages, trainTotal: r.trainTotal, classes: r.classes,
    checkpoint: '', condition: r.condition, knn: r, ...(r.resultFile ? { resultFile: r.resultFile } : {}),
  };
}

async function run(o: Resolved, ddpRun: dist.DataParallelRun | undefined): Promise<FinetuneSummary> {
  const rank0 = !ddpRun || ddpRun.rank === 0;
  const log = rank0 ? o.log : (): void => undefined;
  if (!(o.fracRetained > 0 && o.fracRetained <= 1)) throw new UsageError(`--frac-retained must be in (0, 1], got ${o.fracRetained}`);
  if (!(Number.isInteger(o.nOut) && o.nOut >= 1)) throw new UsageError(`--n_out must be a positive integer, got ${o.nOut}`);
  if (!(Number.isInteger(o.valEvery) && o.valEvery >= 1)) throw new UsageError(`--val-every must be a positive integer, got ${o.valEvery}`);
  if (o.perClass !== undefined && !(Number.isInteger(o.perClass) && o.perClass >= 1)) throw new UsageError(`--per-class must be a positive integer (images per class), got ${o.perClass}`);
  if (!(Number.isInteger(o.printFreq) && o.printFreq >= 1)) throw new UsageError(`--print-freq must be a positive integer, got ${o.printFreq}`);
  if (!(Number.isInteger(o.logFreq) && o.logFreq >= 1)) throw new UsageError(`--log-freq must be a positive integer, got ${o.logFreq}`);
  if (o.hours !== undefined && !(o.hours > 0)) throw new UsageError(`--hours must be positive, got ${o.hours}`);
  if (o.onBadImage !== undefined && o.onBadImage !== 'fail' && o.onBadImage !== 'skip') throw new UsageError(`--on-bad-image must be fail or skip, got ${String(o.onBadImage)}`);
  const onBadImage = o.onBadImage ?? FINETUNE_DEFAULTS.onBadImage;
  if (o.headBn && !Object.hasOwn(models.vitConfigs, o.model)) throw new UsageError(`--head-bn needs a vit_* model (MAE's linear probe), got --model ${o.model}`);
  const naming = o.checkpointName;
  if (naming !== 'awty' && naming !== 'original') throw new UsageError(`--checkpoint-name must be awty or original, got ${String(naming)}`);
  precisionFor({ ...o, device: o.device }).scaler?.dispose();
  const t0 = performance.now();
  const { tcRecord, hours } = await trunkHours(o.resume, o.hours);
  if (o.threads !== undefined) torch.setNumThreads(o.threads);
  torch.manualSeed(o.seed);
  // the output folder is created and probed now, not found unwritable after the last epoch
  await ensureWritableDir(o.out, '--out');
  // the outputs' names, and an earlier run's outputs kept unless --overwrite (checked before any training)
  const condition = o.condition ?? defaultCondition(o.freezeTrunk, o.fracRetained, o.cacheFeatures, o.perClass);
  const outName = finetuneCheckpointName({ ...o, condition, hours }, naming);
  const outBase = outName.slice(0, -'.tar'.length);
  const checkpoint = o.saveCheckpoint ? join(o.out, outName) : '';
  const resultPath = join(o.out, `${outBase}.json`);
  const identity: Record<string, unknown> = {
    model: o.model, nOut: o.nOut, source: sourceName(o.resume), freezeTrunk: o.freezeTrunk, fracRetained: o.fracRetained,
    ...(o.perClass !== undefined ? { perClass: o.perClass } : {}), batchSize: o.batchSize, lr: o.lr, weightDecay: o.weightDecay, schedule: o.schedule, strongAugment: o.strongAugment, seed: o.seed, imageSize: o.imageSize,
    bnEval: o.bnEval, headBn: o.headBn, startEpoch: o.startEpoch, valEvery: o.valEvery, condition, hours: hours ?? null,
  };

  // --continue: the state of the run that wrote it (a finished run: nothing to do)
  let cont: { tree: Record<string, unknown> | undefined; state: FinetuneResume } | undefined;
  if (o.continue) {
    cont = await readContinue(o.continue);
    try {
      for (const [k, flag] of Object.entries(FINETUNE_IDENTITY)) {
        if (JSON.stringify(cont.state.identity[k] ?? null) !== JSON.stringify(identity[k] ?? null)) {
          throw new UsageError(`cannot continue from ${o.continue}: it was written by a run with ${flag} ${JSON.stringify(cont.state.identity[k])}, this one has ` +
            `${JSON.stringify(identity[k])}; give the flags of that run (the command it printed), or start over without --continue`);
        }
      }
    } catch (e) {
      io.disposeTree(cont.tree);
      throw e;
    }
    if (cont.state.epoch >= o.epochs) {
      io.disposeTree(cont.tree);
      const s = cont.state;
      log(`nothing to do: ${o.continue} already finished (${s.epoch} epoch(s) done, --epochs ${o.epochs})`);
      return { acc1List: s.lists.trainAcc1, valAcc1List: s.lists.valAcc1, valAcc5List: s.lists.valAcc5, trainImages: s.trainImages, trainTotal: s.trainTotal,
        classes: s.classes, checkpoint, condition, nothingToDo: true };
    }
  }
  try {
    // (on every rank: they name the same files, and a rank left waiting for rank 0 would wait for --dist-timeout)
    if (!o.overwrite) {
      const writesResult = hours !== undefined && o.epochs > o.startEpoch;
      for (const [file, what] of [[checkpoint, 'checkpoint'], [writesResult ? resultPath : '', 'results file']] as const) {
        if (file && pathTaken(file)) throw new UsageError(`${file} exists (the ${what} of an earlier run of the same evaluation); give --overwrite to replace it, or another --out`);
      }
    }
    return await train(o, ddpRun, { rank0, log, t0, tcRecord, hours, condition, outBase, checkpoint, resultPath, identity, onBadImage }, cont);
  } finally {
    if (cont) io.disposeTree(cont.tree);
  }
}

interface RunNames {
  rank0: boolean; log: (line: string) => void; t0: number; tcRecord: io.RunRecord | undefined; hours: number | undefined; condition: string;
  outBase: string; checkpoint: string; resultPath: string; identity: Record<string, unknown>; onBadImage: 'fail' | 'skip';
}

async function train(o: Resolved, ddpRun: dist.DataParallelRun | undefined, n: RunNames,
  cont: { tree: Record<string, unknown> | undefined; state: FinetuneResume } | undefined): Promise<FinetuneSummary> {
  const { rank0, log, hours, tcRecord, condition, checkpoint } = n;
  // data
  const trainFolder = await ImageFolder.open(o.imgnetTraindir);
  let trainSet: Dataset = trainFolder;
  if (o.perClass !== undefined) {
    try {
      trainSet = new Subset(trainFolder, perClassIndices(trainFolder, o.perClass));
    } catch (e) {
      throw new UsageError(`--per-class ${o.perClass}: ${o.imgnetTraindir}: ${(e as Error).message}`);
    }
  }
  const valSet = await ImageFolder.open(o.imgnetValdir);
  const numClasses = trainSet.classes.length;
  if (valSet.classes.length !== numClasses) {
    throw new Error(`${o.imgnetValdir} has ${valSet.classes.length} classes but ${o.imgnetTraindir} has ${numClasses}`);
  }
  if (cont && (cont.state.trainTotal !== trainSet.length || cont.state.classes !== numClasses)) {
    throw new Error(`cannot continue from ${o.continue}: its run trained on ${cont.state.trainTotal} images of ${cont.state.classes} classes, ` +
      `${o.imgnetTraindir} now holds ${trainSet.length} of ${numClasses}`);
  }
  const trainIdx = fewShotIndices(trainSet.length, o.fracRetained, o.seed);
  if (trainIdx.length === 0) throw new Error(`--frac-retained ${o.fracRetained} of ${trainSet.length} training images keeps none`);
  const valResize = Math.round((o.imageSize * 256) / 224);
  // distributed: each rank trains on its share of the same shuffled subset, in batches of batch-size / world size
  const subset = new SubsetRandomSampler(trainIdx, o.seed);
  const trainLoader = new DataLoader(trainSet, {
    batchSize: ddpRun?.perRankBatch ?? o.batchSize, workers: o.workers, seed: o.seed, labels: 'int64',
    sampler: ddpRun ? new ShardedSampler(subset, { rank: ddpRun.rank, worldSize: ddpRun.worldSize }) : subset, onBadImage: n.onBadImage,
    transform: o.strongAugment ? tcAugmentation(o.imageSize) : imagenetTrain(o.imageSize),
  });
  const valLoader = new DataLoader(valSet, {
    batchSize: ddpRun?.perRankBatch ?? o.batchSize, workers: o.workers, labels: 'int64', transform: imagenetVal(valResize, o.imageSize), onBadImage: n.onBadImage,
    // distributed: every rank validates a disjoint share (no padding) and the totals are summed
    ...(ddpRun ? { sampler: new ShardedSampler(new SequentialSampler(valSet.length), { rank: ddpRun.rank, worldSize: ddpRun.worldSize, pad: false }) } : {}),
  });
  log(`training on ${trainIdx.length} of ${trainSet.length} images (${o.perClass !== undefined ? `the first ${o.perClass} of each class of ${trainFolder.length}, ` : ''}frac-retained ${o.fracRetained}), ${numClasses} classes; validating on ${valSet.length}`);

  let model: models.Classifier | undefined;
  let opt: optim.Adam | undefined;
  const trunk: TrunkInfo = {};
  const precision = precisionFor({ ...o, device: o.device });
  try {
    // model: the TC architecture with its n_out head, then the checkpoint, then freeze, then a new head
    model = await loadTrunk({ model: o.model, nOut: o.nOut, resume: o.resume, imageSize: o.imageSize, log, info: trunk });
    if (o.freezeTrunk) model.requiresGrad_(false);
    models.replaceHead(model, numClasses);
    if (o.headBn) addHeadBatchNorm(model);
    if (o.device !== 'cpu') model.to(o.device);
    applyPrecision(model, precision);
    useSyncBn(model, o.syncBn, ddpRun, log);

    // every parameter goes to Adam, as the original's Adam(model.parameters()): frozen ones get no
    // gradient, so no state, and the checkpoint's optimizer state lists them all (its --resume needs that)
    const params = model.parameters().filter((p) => p.requiresGrad);
    opt = new optim.Adam(model.parameters(), { lr: o.lr, weightDecay: o.weightDecay });
    const sched = new optim.MultiStepLR(opt, o.schedule, 0.2);
    let startEpoch = o.startEpoch;
    let position: { batch: number; sums?: MeterSums } | undefined;
    if (cont) {
      // the interrupted run's weights (its head included), Adam state, learning rate and schedule
      try {
        io.loadStateDictInto(model, cont.tree!.model_state_dict);
        opt.loadStateDict(io.optimizerStateFromPickle(cont.tree!.optimizer_state_dict));
        sched.loadStateDict(cont.state.scheduler);
        if (precision.scaler && cont.tree![SCALER_KEY] !== undefined) precision.scaler.loadStateDict(cont.tree![SCALER_KEY] as Record<string, unknown>);
      } catch (e) {
        throw new Error(`cannot continue from ${o.continue}: ${(e as Error).message}`, { cause: e });
      }
      io.disposeTree(cont.tree);
      cont.tree = undefined;
      startEpoch = cont.state.epoch;
      if (cont.state.batch > 0) position = { batch: cont.state.batch, ...(cont.state.sums ? { sums: cont.state.sums } : {}) };
      log(`continuing from ${o.continue}: epoch ${startEpoch}${position ? `, after batch ${position.batch} of ${cont.state.batches}` : ''}; learning rate ${opt.paramGroups[0]!.lr}`);
    } else {
      for (let e = 0; e < o.startEpoch; e++) sched.step();
    }
    // every rank starts from rank 0's weights; gradients are averaged across ranks
    const ddp = ddpRun ? new dist.DistributedDataParallel(model, ddpRun.group) : undefined;
    if (ddpRun) log(`distributed: ${ddpRun.worldSize} processes (${ddpRun.group.backend}), global batch ${o.batchSize} = ${ddpRun.perRankBatch} per process`);
    log(`precision: ${precision.describe}${o.cacheFeatures && (o.amp || o.channelsLast) ? ' (not applied: --cache-features extracts and trains the head in float32)' : ''}; validation in float32`);
    log(`${params.length} trainable parameter tensors (${o.freezeTrunk ? `linear probe: ${model.headName} only` : 'whole network'}); BatchNorm running statistics ${o.bnEval ? 'frozen (--bn-eval)' : 'updating'}` +
      `${o.headBn ? `; head: BatchNorm1d(${model.head.inFeatures}, affine=False, eps=1e-6) + Linear (--head-bn${o.bnEval ? ', its statistics updating' : ''})` : ''}`);

    const lists = cont ? cont.state.lists : { trainLoss: [], trainAcc1: [], trainAcc5: [], valAcc1: [], valAcc5: [], valLoss: [] } as FinetuneResume['lists'];
    const { trainAcc1: acc1List, trainLoss: lossList, trainAcc5: acc5List, valAcc1: valAcc1List, valAcc5: valAcc5List, valLoss: valLossList } = lists;
    let trainImages = cont?.state.trainImages ?? 0;
    const priorWall = cont?.state.wallSeconds ?? 0;
    const wall = (): number => priorWall + (performance.now() - n.t0) / 1000;
    const resumeState = (epoch: number, batch: number, sums: MeterSums | undefined, complete: boolean): FinetuneResume => ({
      kind: 'finetune', epoch, batch, batches: trainLoader.batchesPerEpoch(epoch), ...(sums ? { sums } : {}), seed: o.seed, complete, identity: n.identity,
      scheduler: sched.stateDict(), lists, trainImages, trainTotal: trainSet.length, classes: numClasses, wallSeconds: wall(),
    });
    const save = async (file: string, state: FinetuneResume): Promise<void> => {
      await io.save({
        [RESUME_KEY]: JSON.stringify(state),
        acc1_list: acc1List,
        val_acc1_list: valAcc1List,
        model_state_dict: io.modelStateDict(model!, { prefix: 'module.' }),
        optimizer_state_dict: io.optimizerStateToPickle(opt!.stateDict()),
        ...(precision.scaler ? { [SCALER_KEY]: precision.scaler.stateDict() } : {}),
      }, file);
    };
    // a checkpoint to continue from, with its sidecar; rank 0 writes, the others wait; then InterruptedError
    const interrupt = async (state: FinetuneResume): Promise<never> => {
      const stem = `${n.outBase}_epoch_${state.batch > 0 ? `${state.epoch}_batch_${state.batch}` : state.epoch - 1}`;
      let file = join(o.out, `${stem}.tar`);
      // a file of that name that this command did not write (no sidecar) is never replaced
      for (let k = 2; pathTaken(file) && !(await readInterruptRecord(file)); k++) file = join(o.out, `${stem}.${k}.tar`);
      if (rank0) {
        await save(file, state);
        const rec: InterruptRecord = { schema: INTERRUPT_RECORD_SCHEMA, checkpoint: basename(file), resume: o.resume, epochs: o.epochs,
          position: { epoch: state.epoch, batch: state.batch, batches: state.batches }, identity: n.identity, time: new Date().toISOString() };
        await io.writeTextAtomic(interruptRecordPath(file), JSON.stringify(rec, null, 1) + '\n');
        log(`saved ${file} (to continue from: --continue ${file})`);
      }
      ddpRun?.group.barrier().wait();
      throw new InterruptedError(stop.signal ?? 'SIGTERM', file);
    };

    const metrics = o.metrics === '' || !rank0 ? undefined
      : await MetricsLog.open(o.metrics ?? join(o.out, `${n.outBase}.metrics.jsonl`), o.logFreq, cont ? { epoch: startEpoch, iteration: position?.batch ?? 0 } : undefined);
    const stop = o.stop ?? new StopRequest();
    if (o.handleSignals) stop.install(true);
    let featureCache: CachedProbe['cache'] | undefined;
    if (o.cacheFeatures) {
      const c = await cachedProbe(model, opt, sched, subset, trainSet, trainIdx, valLoader, { ...o, onBadImage: n.onBadImage, log, stop });
      acc1List.push(...c.acc1List);
      lossList.push(...c.lossList);
      acc5List.push(...c.acc5List);
      valAcc1List.push(...c.valAcc1List);
      valAcc5List.push(...c.valAcc5List);
      valLossList.push(...c.valLossList);
      trainImages = c.trainImages;
      featureCache = c.cache;
    }
    try {
      for (let epoch = startEpoch; epoch < (o.cacheFeatures ? startEpoch : o.epochs); epoch++) {
        const resumeAt = epoch === startEpoch ? position : undefined;
        const tr = await trainOneEpoch(model, opt, trainLoader, epoch, {
          device: o.device, printFreq: o.printFreq, log, ...(o.bnEval ? { prepare: freezeBatchNorm } : {}), ...(ddp ? { ddp } : {}),
          shouldStop: () => stop.requested, onStep: (st) => { metrics?.step(st); o.onStep?.(st); },
          precision,
          ...(resumeAt ? { startBatch: resumeAt.batch, ...(resumeAt.sums && rank0 ? { sums: resumeAt.sums } : {}) } : {}),
        });
        // mid-epoch: the position, the epoch's meters, and everything else as it is now
        if (tr.stoppedAt !== undefined) await interrupt(resumeState(epoch, tr.stoppedAt, tr.sums, false));
        trainImages = tr.images;
        const lrUsed = (opt.paramGroups[0]?.lr as number | undefined) ?? NaN;
        sched.step();
        acc1List.push(tr.acc1);
        lossList.push(tr.loss);
        acc5List.push(tr.acc5);
        const entry = { epoch, loss: tr.loss, acc1: tr.acc1, acc5: tr.acc5, images: tr.images, imagesPerSecond: tr.images / Math.max(1e-9, tr.seconds), seconds: tr.seconds };
        let val: Awaited<ReturnType<typeof evaluate>> | undefined;
        const rate = ` (${entry.imagesPerSecond.toFixed(1)} img/s, ${formatDuration(tr.seconds)}, data wait ${tr.dataSeconds.toFixed(1)} s)`;
        if ((epoch + 1 - o.startEpoch) % o.valEvery !== 0 && epoch !== o.epochs - 1) {
          log(`epoch ${epoch}: trained on ${tr.images} images${rate}, train Acc@1 ${tr.acc1.toFixed(2)}`);
        } else {
          val = await evaluate(model, valLoader, { device: o.device, ...(ddp ? { reduce: (v: number[]) => ddp.sumNumbers(v) } : {}) });
          valAcc1List.push(val.top1);
          valAcc5List.push(val.top5);
          valLossList.push(val.loss);
          log(`epoch ${epoch}: trained on ${tr.images} images${rate}, train Acc@1 ${tr.acc1.toFixed(2)}; validation Acc@1 ${val.top1.toFixed(2)} Acc@5 ${val.top5.toFixed(2)} loss ${val.loss.toFixed(4)}`);
        }
        metrics?.epoch(entry, lrUsed, val);
        // a signal during the epoch's last step or its validation: stop at the epoch's end
        if (epoch < o.epochs - 1 && agreedStop(stop.requested, ddp)) await interrupt(resumeState(epoch + 1, 0, undefined, false));
      }
    } finally {
      if (o.handleSignals) stop.uninstall();
    }

    if (!rank0) {
      // rank 0 writes the checkpoint and the results file; the others wait until they are complete
      ddpRun!.group.barrier().wait();
      return { acc1List, valAcc1List, valAcc5List, trainImages, trainTotal: trainSet.length, classes: numClasses, checkpoint, condition };
    }
    if (o.saveCheckpoint) {
      await save(checkpoint, resumeState(o.epochs, 0, undefined, true));
      log(`saved ${checkpoint}`);
    }

    let resultFile: string | undefined;
    if (valAcc1List.length > 0 && hours !== undefined) {
      const config: Record<string, unknown> = { ...o };
      for (const k of ['log', 'onStep', 'stop', 'handleSignals']) delete config[k];
      const tcConfig = tcRecord?.config ?? {};
      const result: RunResultFile = {
        condition, hours, seed: o.seed, top1: valAcc1List.at(-1)!, top5: valAcc5List.at(-1)!,
        fracRetained: o.fracRetained, ...(o.perClass !== undefined ? { perClass: o.perClass } : {}), freezeTrunk: o.freezeTrunk, model: o.model, epochs: o.epochs,
        modelParams: trunk.modelParams!, imageSize: o.imageSize, objective: trunk.objective!,
        checkpoint: o.resume || undefined, valTop1PerEpoch: valAcc1List, valTop5PerEpoch: valAcc5List,
        ...(tcRecord ? {
          episodes: tcRecord.data.episodes, classFraction: tcConfig.classFraction as number, tcModel: tcConfig.model as string,
          tcSeed: tcConfig.seed as number, tcRecord: io.runRecordPath(o.resume), hoursFrom: o.hours !== undefined ? '--hours' : `run record: ${tcRecord.hoursMethod}`,
        } : { hoursFrom: '--hours' }),
        complete: true, evalCheckpoint: checkpoint, config, versions: versions(), device: o.device, threads: torch.getNumThreads(), host: hostName(),
        trainLossPerEpoch: lossList, trainTop1PerEpoch: acc1List, trainTop5PerEpoch: acc5List, valLossPerEpoch: valLossList,
        trainImages, wallSeconds: wall(), ...(featureCache ? { featureCache } : {}),
      };
      resultFile = await writeResult(n.resultPath, result);
      log(`wrote ${resultFile}`);
    } else if (hours === undefined && !o.baseline) {
      process.stderr.write('warning: no --resume and no --hours: no results file written (awty figure1 needs the hours of video of the trunk)\n');
    }
    // the interrupted run's checkpoint is superseded (only one this command wrote: it has its sidecar, and is not the final one)
    if (o.continue && o.continue !== checkpoint && (await readInterruptRecord(o.continue))) {
      await rm(o.continue, { force: true });
      await rm(interruptRecordPath(o.continue), { force: true });
      log(`removed ${o.continue} (superseded)`);
    }
    ddpRun?.group.barrier().wait();
    return { acc1List, valAcc1List, valAcc5List, trainImages, trainTotal: trainSet.length, classes: numClasses, checkpoint, resultFile, condition };
  } finally {
    precision.scaler?.dispose();
    opt?.dispose();
    model?.dispose();
    await Promise.all([trainLoader.close(), valLoader.close()]);
  }
}
