// Helpers shared by the training scripts (tc.ts, finetune.ts): top-k accuracy, running averages, the
// progress line, and checkpoints in the original scripts' layout.
import * as path from 'node:path';
import { promises as fsp } from 'node:fs';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import type { Module } from '../nn/index.js';
import type { Optimizer, BaseGroupOptions } from '../optim/optimizer.js';
import { GradScaler } from '../optim/grad-scaler.js';
import { UsageError } from './errors.js';
import * as io from '../io/index.js';
import type { DataLoader } from '../data/index.js';
import { toTensors } from '../data/tensors.js';
import { convertSyncBatchnorm, type DataParallelRun, type DistributedDataParallel } from '../dist/index.js';

/**
 * Top-k accuracies in percent of a batch (the torchvision references' `accuracy`). A k larger than
 * the number of classes counts every sample as correct, as the prediction set then holds all classes.
 */
export function accuracy(output: Tensor, target: Tensor, topk: readonly number[] = [1]): number[] {
  return torch.noGrad(() => torch.tidy(() => {
    const n = output.shape[0]!;
    const classes = output.shape[1]!;
    const maxk = Math.min(Math.max(...topk), classes);
    const pred = output.topk(maxk, 1, true, true).indices.t();           // [maxk, N]
    const correct = pred.eq(target.view([1, -1]).expand([maxk, n]));     // [maxk, N]
    return topk.map((k) => {
      const hits = correct.narrow(0, 0, Math.min(k, maxk)).float().sum().item();
      return n === 0 ? 0 : (hits * 100) / n;
    });
  }));
}

/** Running value, sum, count and average (the references' AverageMeter). */
export class AverageMeter {
  val = 0;
  sum = 0;
  count = 0;
  /** the weight of the last update */
  n = 0;
  constructor(readonly name: string, readonly digits = 3) {}
  get avg(): number {
    return this.count ? this.sum / this.count : 0;
  }
  reset(): void {
    this.val = this.sum = this.count = this.n = 0;
  }
  update(val: number, n = 1): void {
    this.val = val;
    this.sum += val * n;
    this.count += n;
    this.n = n;
  }
  toString(): string {
    return `${this.name} ${this.val.toFixed(this.digits)} (${this.avg.toFixed(this.digits)})`;
  }
}

/** h:mm:ss */
/**
 * `--sync-bn`: in a distributed run, every BatchNorm2d becomes a SyncBatchNorm over the run's group
 * (same parameters and buffers; before the optimizer and the data-parallel wrapper are built). In a
 * single process it changes nothing, as PyTorch's SyncBatchNorm in a group of one.
 */
export function useSyncBn(model: Module, syncBn: boolean | undefined, run: DataParallelRun | undefined, log: (line: string) => void): void {
  if (!syncBn) return;
  if (!run || run.worldSize === 1) {
    log('--sync-bn: a single process, so BatchNorm is unchanged');
    return;
  }
  convertSyncBatchnorm(model, run.group);
  log(`--sync-bn: BatchNorm statistics over the global batch of all ${run.worldSize} processes`);
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h}:${String(m).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

/**
 * The progress line, printed every `printFreq` iterations (and at an iteration's index 0, as the
 * original's `i % print_freq == 0`): `Epoch: [e][  i/n]  Loss ...  Acc@1 ...  Acc@5 ...  N img/s  ETA h:mm:ss`.
 * The ETA covers the rest of this epoch at the epoch's average speed so far.
 */
export class ProgressMeter {
  private t0 = performance.now();
  private images = 0;
  constructor(
    readonly batches: number,
    readonly meters: AverageMeter[],
    readonly prefix: string,
    readonly printFreq: number,
    readonly write: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
    /** data-parallel: sums numbers across the ranks, so that the printed line is the global one (every rank calls step alike) */
    readonly reduce?: (values: number[]) => number[],
  ) {}

  /** Records a finished iteration `i` (0-based) of `n` images; prints the line when it is due. */
  step(i: number, n: number): void {
    this.images += n;
    if (this.printFreq > 0 && i % this.printFreq === 0) this.write(this.reduce ? this.global().line(i) : this.line(i));
  }

  /** The meters and image count summed over the ranks (a copy; this one keeps the local values). */
  global(): ProgressMeter {
    const v = this.reduce!([this.images, ...this.meters.flatMap((m) => [m.val * m.n, m.n, m.sum, m.count])]);
    const g = new ProgressMeter(this.batches, this.meters.map((m, k) => {
      const c = new AverageMeter(m.name, m.digits);
      const [valSum, n, sum, count] = v.slice(1 + 4 * k, 5 + 4 * k) as [number, number, number, number];
      Object.assign(c, { val: n ? valSum / n : 0, n, sum, count });
      return c;
    }), this.prefix, this.printFreq, this.write);
    g.t0 = this.t0;
    g.images = v[0]!;
    return g;
  }

  get elapsed(): number {
    return (performance.now() - this.t0) / 1000;
  }
  get imagesPerSecond(): number {
    return this.images / Math.max(1e-9, this.elapsed);
  }

  line(i: number): string {
    const w = String(this.batches).length;
    const done = i + 1;
    const eta = (this.elapsed / done) * (this.batches - done);
    return `${this.prefix}[${String(i).padStart(w)}/${this.batches}]  ${this.meters.map(String).join('  ')}  ` +
      `${this.imagesPerSecond.toFixed(1)} img/s  ETA ${formatDuration(eta)}`;
  }
}

/** Python's `str(float)` (the original formats `class_fraction` into file names with it). */
export function pyFloat(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  if (Number.isInteger(x) && Math.abs(x) < 1e16) return x.toFixed(1);
  const exp = Math.floor(Math.log10(Math.abs(x)));
  if (exp < -4 || exp >= 16) {
    const [m, e] = x.toExponential().split('e') as [string, string];
    const n = Number(e);
    return `${m}e${n < 0 ? '-' : '+'}${String(Math.abs(n)).padStart(2, '0')}`;
  }
  return String(x);
}

/** The original's checkpoint name: `TC_{subject}_{model}_{class_fraction}_{seed}_epoch_{epoch}.tar`. */
export function tcCheckpointName(subject: string, model: string, classFraction: number, seed: number, epoch: number): string {
  return `TC_${subject}_${model}_${pyFloat(classFraction)}_${seed}_epoch_${epoch}.tar`;
}

/**
 * Saves `{acc1_list, model_state_dict, optimizer_state_dict}` as the original scripts do (the model
 * was wrapped in DataParallel there, so keys start with `module.`), atomically.
 */
export async function saveCheckpoint<O extends BaseGroupOptions>(file: string, model: Module, optimizer: Optimizer<O>, acc1List: number[],
  position?: ResumePosition, scaler?: GradScaler): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await io.save({
    ...(position ? { [RESUME_KEY]: JSON.stringify(position) } : {}),
    acc1_list: [...acc1List],
    model_state_dict: io.modelStateDict(model, { prefix: 'module.' }),
    optimizer_state_dict: io.optimizerStateToPickle(optimizer.stateDict()),
    // GradScaler.state_dict() under 'scaler' (as torchvision's reference scripts); the original's keys stay as they are
    ...(scaler?.isEnabled() ? { [SCALER_KEY]: scaler.stateDict() } : {}),
  }, file);
}

/** The checkpoint key of the GradScaler's state (only when one is used). */
export const SCALER_KEY = 'scaler';

/** What --channels-last and --amp mean for one run: the memory format, autocast and the scaler. */
export interface Precision {
  memoryFormat?: torch.MemoryFormat;
  autocast?: { deviceType: 'cpu' | 'cuda'; dtype: torch.DType };
  scaler?: GradScaler;
  /** a line for the log */
  describe: string;
}

/**
 * --channels-last: the model (call `applyPrecision`) and every batch in torch.channels_last.
 * --amp: autocast to --amp-dtype (default bfloat16 on CPU, float16 on CUDA) around the forward pass
 * and loss; float16 also scales the loss with a GradScaler (as PyTorch's AMP recipe). CPU autocast
 * is bfloat16 only in libtorch 1.13.
 */
export function precisionFor(o: { channelsLast?: boolean; amp?: boolean; ampDtype?: string; device: torch.Device }): Precision {
  const deviceType = o.device === 'cpu' ? 'cpu' : 'cuda';
  if (o.ampDtype !== undefined && !o.amp) throw new UsageError('--amp-dtype needs --amp');
  if (o.ampDtype !== undefined && o.ampDtype !== 'bfloat16' && o.ampDtype !== 'float16') throw new UsageError(`--amp-dtype must be bfloat16 or float16, got '${o.ampDtype}'`);
  const dtype = (o.ampDtype ?? (deviceType === 'cpu' ? 'bfloat16' : 'float16')) as torch.DType;
  if (o.amp && deviceType === 'cpu' && dtype !== 'bfloat16') throw new UsageError(`--amp-dtype ${dtype}: CPU autocast supports only bfloat16 (libtorch ${torch.version})`);
  const p: Precision = { describe: '' };
  if (o.channelsLast) p.memoryFormat = 'channelsLast';
  if (o.amp) {
    p.autocast = { deviceType, dtype };
    if (dtype === 'float16') p.scaler = new GradScaler();
  }
  p.describe = `${o.channelsLast ? 'channels_last' : 'contiguous'} memory format; ${o.amp ? `autocast ${dtype}${p.scaler ? ' with a GradScaler' : ''}` : 'float32'}`;
  return p;
}

/** Converts the model's 4-d weights to the run's memory format (PyTorch's model.to(memory_format=...)). */
export function applyPrecision(model: Module, p: Precision): void {
  if (p.memoryFormat) model.to({ memoryFormat: p.memoryFormat });
}

/**
 * A saved accuracy as a number, whatever form io gives it: a number (Python float, numpy scalar), a
 * bigint, a boolean, a one-element numpy array record (the original writes `top1.avg.cpu().numpy()`,
 * a 0-d float32 array) or a one-element tensor. Anything else is an error naming `what`.
 */
export function scalarValue(v: unknown, what: string): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint' || typeof v === 'boolean') return Number(v);
  if (v instanceof torch.Tensor) {
    if (v.numel() !== 1) throw new Error(`${what} is a tensor of shape [${v.shape.join(', ')}], not a single number`);
    return v.item();
  }
  if (io.isPyObject(v) && v.__class__ === 'numpy.ndarray') {
    const a = v as io.NumpyArray;
    const data = a.data as ArrayLike<number | bigint> | undefined;
    if (data && typeof data === 'object' && 'length' in data && data.length === 1 && a.shape.reduce((x, y) => x * y, 1) === 1) return Number(data[0]);
    throw new Error(`${what} is a numpy array of shape (${a.shape.join(', ')}) and dtype ${a.dtype ?? '?'}, not a single number`);
  }
  throw new Error(`${what} is not a number (${v === null ? 'None' : io.isPyObject(v) ? v.__class__ : typeof v})`);
}

/** What a checkpoint gives back besides the weights. */
/**
 * Where a mid-epoch checkpoint stopped: in the checkpoint under RESUME_KEY (a JSON string; the
 * original's loader reads only the keys it knows and ignores it). No generator state is needed
 * besides the seed: the loader's shuffling and every sample's augmentation are fixed by (seed,
 * epoch, sample index), and the models trained here draw no random numbers while training.
 */
export interface ResumePosition {
  epoch: number;
  /** batches of `epoch` already trained */
  batch: number;
  batches: number;
  /** the epoch's meters so far */
  sums: MeterSums;
  seed: number;
}
export const RESUME_KEY = 'awty_resume';

export interface ResumeInfo {
  acc1List: number[];
  /** set for a mid-epoch checkpoint */
  position?: ResumePosition;
  /** the epoch to continue from: the saved epoch + 1 (from the file name), else the number of accuracies saved */
  nextEpoch: number;
}

/**
 * Loads a checkpoint written here or by the original scripts (`module.` keys, numpy scalars in
 * `acc1_list`) into the model and the optimizer. Every failure (missing, truncated or corrupt file,
 * missing entries, wrong shapes) throws an error whose message names the file.
 */
export async function loadCheckpoint<O extends BaseGroupOptions>(file: string, model: Module, optimizer: Optimizer<O>, scaler?: GradScaler): Promise<ResumeInfo> {
  const fail = (msg: string, cause?: unknown): Error => new Error(`cannot resume from ${file}: ${msg}`, cause === undefined ? undefined : { cause });
  try {
    const st = await fsp.stat(file);
    if (!st.isFile()) throw fail('not a file');
  } catch (e) {
    if ((e as Error).message.startsWith('cannot resume')) throw e;
    throw fail('no such file', e);
  }
  let ckpt: unknown;
  try {
    ckpt = await io.load(file);
  } catch (e) {
    const msg = (e as Error).message;
    throw fail(msg.startsWith(file) ? msg.slice(file.length).replace(/^[:\s]+/, '') : msg, e);
  }
  try {
    if (typeof ckpt !== 'object' || ckpt === null || ckpt instanceof Map || Array.isArray(ckpt)) throw fail('not a dict of {acc1_list, model_state_dict, optimizer_state_dict}');
    const o = ckpt as Record<string, unknown>;
    if (o.model_state_dict === undefined) throw fail('no model_state_dict in it');
    if (o.optimizer_state_dict === undefined) throw fail('no optimizer_state_dict in it');
    try {
      io.loadStateDictInto(model, o.model_state_dict);
      optimizer.loadStateDict(io.optimizerStateFromPickle(o.optimizer_state_dict));
      // a scaler's state when both the run and the checkpoint have one (else the scaler starts afresh)
      if (scaler?.isEnabled() && o[SCALER_KEY] !== undefined) scaler.loadStateDict(o[SCALER_KEY] as Record<string, unknown>);
    } catch (e) {
      throw fail((e as Error).message, e);
    }
    let acc1List: number[] = [];
    try {
      acc1List = Array.isArray(o.acc1_list) ? (o.acc1_list as unknown[]).map((v, i) => scalarValue(v, `acc1_list[${i}]`)) : [];
    } catch (e) {
      throw fail((e as Error).message, e);
    }
    const m = /_epoch_(\d+)\.tar$/.exec(path.basename(file));
    let position: ResumePosition | undefined;
    if (typeof o[RESUME_KEY] === 'string') {
      try {
        position = JSON.parse(o[RESUME_KEY]) as ResumePosition;
      } catch (e) {
        throw fail(`its ${RESUME_KEY} entry is not valid JSON`, e);
      }
    }
    if (position) return { acc1List, position, nextEpoch: position.epoch };
    return { acc1List, nextEpoch: m ? Number(m[1]) + 1 : acc1List.length };
  } finally {
    io.disposeTree(ckpt);
  }
}

/**
 * What a training step optimises and reports (torchvision's `criterion`, with its metrics): `compute`
 * runs the forward pass of one batch and returns the loss to back-propagate and the values of
 * `metricNames`, in that order. It runs inside the step's memory scope.
 */
export interface Objective {
  readonly metricNames: readonly string[];
  compute(model: Module, images: Tensor, labels: Tensor): { loss: Tensor; metrics: number[] };
}

/** Cross-entropy on the model's logits, with top-1 and top-5 accuracy (train_tc.py's and finetune_imgnet.py's). */
export const classification: Objective = {
  metricNames: ['Acc@1', 'Acc@5'],
  compute(model, images, labels) {
    const output = model.forward(images);
    return { loss: torch.crossEntropy(output, labels), metrics: accuracy(output, labels, [1, 5]) };
  },
};

export interface EpochStats {
  loss: number;
  /** the objective's metrics, averaged over the epoch's images, by name */
  metrics: Record<string, number>;
  /** metrics['Acc@1'] and metrics['Acc@5'] (NaN for an objective that reports no accuracy) */
  acc1: number;
  acc5: number;
  images: number;
  seconds: number;
  /** of `seconds`, the time spent waiting for the loader's next batch (the original's Data meter, summed) */
  dataSeconds: number;
  /** data-parallel runs: of `seconds`, the time this rank waited for the gradients' allreduce */
  commSeconds?: number;
  /** batches done in this epoch when it stopped early (shouldStop); undefined when the epoch finished */
  stoppedAt?: number;
  /** the meters' sums and counts over every rank (to continue the epoch's averages after a mid-epoch resume) */
  sums: MeterSums;
}

/** Sums of an epoch's loss and metrics (by name) over its `count` images. */
export interface MeterSums { loss: number; metrics: Record<string, number>; count: number }

/** What one training step reports (for progress bars and metric logs). */
export interface StepInfo {
  epoch: number;
  /** 0-based iteration within the epoch */
  iteration: number;
  batches: number;
  /** images in this batch */
  images: number;
  loss: number;
  /** the objective's metrics of this batch, by name */
  metrics: Record<string, number>;
  /** metrics['Acc@1'] and metrics['Acc@5'] (NaN when the objective reports none) */
  acc1: number;
  acc5: number;
  /** running averages of the epoch so far */
  avgLoss: number;
  avgAcc1: number;
  avgAcc5: number;
  /** seconds waited for this batch from the loader, and of the whole step */
  dataSeconds: number;
  stepSeconds: number;
  /** images per second of the epoch so far */
  imagesPerSecond: number;
  lr: number;
}

export interface TrainEpochOptions {
  device: torch.Device;
  printFreq: number;
  log: (line: string) => void;
  /** the loss and metrics (default: classification) */
  objective?: Objective;
  /** Called after model.train(), e.g. to put BatchNorm layers back in eval mode. */
  prepare?: (model: Module) => void;
  /** Called before each iteration's step with its index in the epoch and the epoch's batch count (per-iteration schedules). */
  beforeStep?: (iteration: number, batches: number) => void;
  /** Stop with an error naming the iteration when the loss is NaN or infinite. */
  checkFinite?: boolean;
  /** Data-parallel: gradients averaged across ranks after each backward; the returned and printed metrics are global. */
  ddp?: DistributedDataParallel;
  /** called after every step */
  onStep?: (s: StepInfo) => void;
  /** checked after every step: true ends the epoch there (its stats carry `stoppedAt`) */
  shouldStop?: () => boolean;
  /**
   * continue an epoch: skip its first `startBatch` batches (their samples' randomness is fixed by seed, epoch and index) and start the meters from
   * `sums` (data-parallel: the global sums, given to one rank only)
   */
  startBatch?: number;
  sums?: MeterSums;
  /**
   * --channels-last / --amp (precisionFor): input batches in its memory format (the model is
   * converted by the caller, applyPrecision), the forward pass (model and loss) under its autocast,
   * the loss scaled before backward and the step taken through its scaler (float16 autocast on CUDA)
   */
  precision?: Omit<Precision, 'describe'>;
}

/**
 * Whether to stop now: `stop.requested`, agreed by every rank of a data-parallel run (a signal may
 * reach the ranks at different moments; all must take the same branch). Every rank must call it alike.
 */
export function agreedStop(requested: boolean, ddp?: DistributedDataParallel): boolean {
  return ddp ? ddp.sumNumbers([requested ? 1 : 0])[0]! > 0 : requested;
}

/** One pass over the loader: forward and loss (the objective), backward, optimizer step; each step in its own scope. */
export async function trainOneEpoch<G extends BaseGroupOptions>(model: Module, optimizer: Optimizer<G>, loader: DataLoader,
  epoch: number, o: TrainEpochOptions): Promise<EpochStats> {
  const objective = o.objective ?? classification;
  const losses = new AverageMeter('Loss', 4);
  const meters = objective.metricNames.map((n) => new AverageMeter(n, 2));
  if (o.sums) {
    losses.sum = o.sums.loss;
    losses.count = o.sums.count;
    for (const m of meters) { m.sum = o.sums.metrics[m.name] ?? 0; m.count = o.sums.count; }
  }
  const batches = loader.batchesPerEpoch(epoch);
  const reduce = o.ddp ? (v: number[]): number[] => o.ddp!.sumNumbers(v) : undefined;
  const progress = new ProgressMeter(batches, [losses, ...meters], `Epoch: [${epoch}]`, o.printFreq, o.log, reduce);
  model.train();
  o.prepare?.(model);
  let i = o.startBatch ?? 0;
  let stoppedAt: number | undefined;
  let tWait = performance.now();
  let dataSeconds = 0;
  const comm0 = o.ddp?.commSeconds ?? 0;
  const byName = (m: AverageMeter[], name: string, avg: boolean): number => {
    const x = m.find((k) => k.name === name);
    return x ? (avg ? x.avg : x.val) : NaN;
  };
  for await (const batch of loader.epoch(epoch, { startBatch: i })) {
    const tStart = performance.now();
    dataSeconds += (tStart - tWait) / 1000;
    const n = batch.shape[0]!;
    o.beforeStep?.(i, batches);
    const lr = (optimizer.paramGroups[0]?.lr as number | undefined) ?? NaN;
    const [loss, metrics] = torch.tidy((): [number, number[]] => {
      const { images, labels } = toTensors(batch, { releaseTo: loader });
      const xd = o.device === 'cpu' ? images : images.to(o.device);
      const { memoryFormat, autocast: ac, scaler } = o.precision ?? {};
      const x = memoryFormat && memoryFormat !== 'preserveFormat' ? xd.contiguous(memoryFormat) : xd;
      const y = o.device === 'cpu' ? labels : labels.to(o.device);
      o.ddp?.syncBuffers();
      const r = ac ? torch.autocast(ac.deviceType, { dtype: ac.dtype }, () => objective.compute(model, x, y)) : objective.compute(model, x, y);
      optimizer.zeroGrad();
      (scaler ? scaler.scale(r.loss) : r.loss).backward();
      o.ddp?.reduceGradients();
      if (scaler) {
        scaler.step(optimizer);
        scaler.update();
      } else {
        optimizer.step();
      }
      return [r.loss.item(), r.metrics];
    });
    if (o.checkFinite && !Number.isFinite(loss)) throw new Error(`epoch ${epoch}, iteration ${i}: the loss is ${loss}`);
    losses.update(loss, n);
    meters.forEach((m, k) => m.update(metrics[k]!, n));
    const tEnd = performance.now();
    progress.step(i, n);
    if (o.onStep) {
      o.onStep({
        epoch, iteration: i, batches, images: n, loss, metrics: Object.fromEntries(meters.map((m) => [m.name, m.val])),
        acc1: byName(meters, 'Acc@1', false), acc5: byName(meters, 'Acc@5', false), avgLoss: losses.avg,
        avgAcc1: byName(meters, 'Acc@1', true), avgAcc5: byName(meters, 'Acc@5', true),
        dataSeconds: (tStart - tWait) / 1000, stepSeconds: (tEnd - tWait) / 1000, imagesPerSecond: progress.imagesPerSecond, lr,
      });
    }
    i++;
    tWait = performance.now();
    // data-parallel: the ranks agree (a signal may reach them a step apart), so all stop after the same step
    if (i < batches && o.shouldStop && agreedStop(o.shouldStop(), o.ddp)) {
      stoppedAt = i;
      break;
    }
  }
  // data-parallel: the epoch's totals over every rank (also the sums for a mid-epoch resume: give them to one rank only)
  const [gl, ...gm] = (reduce ? progress.global() : progress).meters as [AverageMeter, ...AverageMeter[]];
  const avg = Object.fromEntries(gm.map((m) => [m.name, m.avg]));
  return {
    loss: gl.avg, metrics: avg, acc1: avg['Acc@1'] ?? NaN, acc5: avg['Acc@5'] ?? NaN, images: gl.count, seconds: progress.elapsed, dataSeconds,
    ...(o.ddp ? { commSeconds: o.ddp.commSeconds - comm0 } : {}),
    sums: { loss: gl.sum, metrics: Object.fromEntries(gm.map((m) => [m.name, m.sum])), count: gl.count },
    ...(stoppedAt !== undefined ? { stoppedAt } : {}),
  };
}
