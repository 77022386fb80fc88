// Temporal classification training (the original's train_tc.py): every frame's label is the index of
// its episode, and a ResNet/ResNeXt learns to tell which episode a frame came from. Read top to
// bottom: options, one epoch of training, then main (data, model, optimizer, resume, epochs, checkpoints).
import * as path from 'node:path';
import { readdir, rm } from 'node:fs/promises';
import * as torch from '../torch/index.js';
import type { Device } from '../torch/index.js';
import * as optim from '../optim/index.js';
import * as models from '../models/index.js';
import { DataLoader, DistributedSampler, EPISODE_SELECTIONS, MultirootImageFolder, ShardDataset, tcAugmentation, noAugmentation, type EpisodeSelection } from '../data/index.js';
import type { Dataset } from '../data/index.js';
import * as dist from '../dist/index.js';
import { ensureWritableDir } from '../io/outdir.js';
import * as io from '../io/index.js';
import type { RunRecord } from '../io/index.js';
import { agreedStop, applyPrecision, precisionFor, formatDuration, useSyncBn, loadCheckpoint, saveCheckpoint, tcCheckpointName, trainOneEpoch, pyFloat, type EpochStats, type MeterSums, type ResumePosition, type StepInfo } from './common.js';
import { InterruptedError, StopRequest } from './interrupt.js';
import { MetricsLog } from './metrics.js';
import { UsageError } from './errors.js';
import { hostName, hoursOfDataset, isShardFolder, readExtractProvenance, versions } from './provenance.js';
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
   * replaces the previous one; 'final': only the last epoch's is written (a killed run restarts).
   * With saveEvery: 'last' keeps the newest of those saved (a keepLast above 1 is refused); 'final'
   * refuses a saveEvery above 1. With keepLast: 'final' also removes older epoch checkpoints of the run.
   */
  keepCheckpoints?: 'all' | 'last' | 'final';
  /** drop the last incomplete batch of every epoch (ours; the original keeps it) */
  dropLast?: boolean;
  /** distributed runs: seconds to wait for the other processes (rendezvous, collectives; default 300) */
  distTimeout?: number;
  /** distributed runs: BatchNorm over the global batch (dist.SyncBatchNorm) instead of each process's own */
  syncBn?: boolean;
  /** distributed runs: the rank-0 machine's address and port, overriding MASTER_ADDR / MASTER_PORT */
  masterAddr?: string;
  masterPort?: number;
  /** save a checkpoint every N epochs (and always after the last one); default 1 */
  saveEvery?: number;
  /** keep only the newest K epoch checkpoints of this run (0: all, the default) */
  keepLast?: number;
  /** iterations between lines of the metrics file; default 50 */
  logFreq?: number;
  /** the metrics file (JSON lines); default OUT/TC_{subject}_{model}_{fraction}_{seed}.metrics.jsonl; '' for none */
  metrics?: string;
  /** called after every training step (progress bars) */
  onStep?: (s: StepInfo) => void;
  /**
   * stop after the current step when this is set (SIGINT / SIGTERM with `handleSignals`): a
   * resumable checkpoint is written and InterruptedError thrown
   */
  stop?: StopRequest;
  /** install SIGINT / SIGTERM handlers for the run (the command line does) */
  handleSignals?: boolean;
  /** model and input batches in torch.channels_last (--channels-last) */
  channelsLast?: boolean;
  /** autocast the forward pass (--amp): bfloat16 on CPU; float16 with a GradScaler on CUDA unless ampDtype says bfloat16 */
  amp?: boolean;
  /** --amp-dtype: bfloat16 or float16 (CUDA only) */
  ampDtype?: 'bfloat16' | 'float16';
  log?: (line: string) => void;
}

import { TC_DEFAULTS } from './defaults.js';
export { TC_DEFAULTS };

/** Checks that do not need the data: model name, numbers, device. */
function checkOptions(o: TcOptions): void {
  if (!o.dataDirs.length) throw new UsageError('--data-dirs: give at least one folder of episode folders');
  const seen = new Map<string, string>();
  for (const d of o.dataDirs) {
    const abs = path.resolve(d);
    const prev = seen.get(abs);
    if (prev !== undefined) throw new UsageError(`--data-dirs names the folder ${abs} twice (${prev} and ${d}): every frame would get two labels`);
    seen.set(abs, d);
  }
  if (o.onBadImage !== undefined && o.onBadImage !== 'fail' && o.onBadImage !== 'skip') throw new UsageError(`--on-bad-image must be fail or skip, got ${String(o.onBadImage)}`);
  if (!models.isModelName(o.model)) throw new UsageError(`unknown --model '${o.model}'; known: ${Object.keys(models.architectures).join(', ')}`);
  const ints: [string, number, number][] = [['--n_out', o.nOut, 1], ['--epochs', o.epochs, 0], ['--start-epoch', o.startEpoch, 0],
    ['--save-every', o.saveEvery ?? TC_DEFAULTS.saveEvery, 1], ['--keep-last', o.keepLast ?? TC_DEFAULTS.keepLast, 0], ['--log-freq', o.logFreq ?? TC_DEFAULTS.logFreq, 1],
    ['--batch-size', o.batchSize, 1], ['--workers', o.workers, 0], ['--print-freq', o.printFreq, 1], ['--image-size', o.imageSize, 1]];
  for (const [flag, v, min] of ints) if (!Number.isInteger(v) || v < min) throw new UsageError(`${flag} must be an integer >= ${min}, got ${v}`);
  // keepCheckpoints is the library's shorthand: 'last' is --keep-last 1, 'final' saves only after the last epoch
  if (o.keepCheckpoints === 'last' && (o.keepLast ?? 0) > 1) throw new UsageError(`keepCheckpoints 'last' keeps one checkpoint; --keep-last ${o.keepLast} contradicts it`);
  if (o.keepCheckpoints === 'final' && (o.saveEvery ?? 1) > 1) throw new UsageError(`keepCheckpoints 'final' saves only after the last epoch; --save-every ${o.saveEvery} contradicts it`);
  if (!Number.isInteger(o.seed)) throw new UsageError(`--seed must be an integer, got ${o.seed}`);
  if (!(o.classFraction > 0 && o.classFraction <= 1)) throw new UsageError(`--class-fraction must be in (0, 1], got ${o.classFraction}`);
  if (!(o.lr > 0)) throw new UsageError(`--lr must be positive, got ${o.lr}`);
  if (!(o.weightDecay >= 0)) throw new UsageError(`--weight-decay must be >= 0, got ${o.weightDecay}`);
  if (o.threads !== undefined && !(Number.isInteger(o.threads) && o.threads >= 1)) throw new UsageError(`--threads must be an integer >= 1, got ${o.threads}`);
  if (o.episodeSelection !== undefined && !EPISODE_SELECTIONS.includes(o.episodeSelection)) {
    throw new UsageError(`--episode-selection must be one of ${EPISODE_SELECTIONS.join(', ')}, got ${String(o.episodeSelection)}`);
  }
  if (o.device !== 'cpu' && !torch.cuda.isAvailable()) throw new UsageError(`--device ${o.device}: CUDA is not available in this libtorch build or on this machine`);
  precisionFor(o).scaler?.dispose();
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
  /** hours of video in the kept episodes (from the extraction manifests), null when unknown */
  hours: number | null;
  /** the kept episode folders (label = position) and where they start among all sorted episodes */
  episodes: string[]; episodeStart: number;
  /** the run record beside the last checkpoint written (undefined when no epoch ran) */
  record?: string;
}

/** Episode folders, or one folder of tar shards written by `awty extract --format shards`. */
export async function openEpisodes(o: Pick<TcOptions, 'dataDirs' | 'classFraction' | 'cachePath' | 'onBadImage' | 'episodeSelection' | 'seed'>, log: (l: string) => void): Promise<{ dataset: Dataset & { classes: readonly string[] }; format: 'files' | 'shards' }> {
  const shards = await Promise.all(o.dataDirs.map(isShardFolder));
  if (shards.some((s) => s)) {
    if (o.dataDirs.length !== 1) {
      throw new Error(`--data-dirs: ${o.dataDirs.filter((_, i) => shards[i]).join(', ')} hold(s) tar shards; give one shard folder on its own (shards and episode folders, or several shard folders, cannot be mixed)`);
    }
    const dataset = await ShardDataset.open(o.dataDirs[0]!, o.classFraction);
    return { dataset, format: 'shards' };
  }
  const dataset = await MultirootImageFolder.open(o.dataDirs, o.classFraction, {
    ...(o.cachePath ? { cachePath: o.cachePath } : {}), onLog: (l) => log(`data: ${l}`), onBadImage: o.onBadImage ?? TC_DEFAULTS.onBadImage,
    selection: o.episodeSelection ?? TC_DEFAULTS.episodeSelection, seed: o.seed,
  });
  return { dataset, format: 'files' };
}

/** The flags of a run as recorded (everything but functions and objects of the process). */
function configOf(o: TcOptions): Record<string, unknown> {
  const c: Record<string, unknown> = { ...o };
  for (const k of ['log', 'onStep', 'stop', 'handleSignals']) delete c[k];
  return c;
}

/** The mid-epoch checkpoint name: the epoch's name with the batches done (the original's resume would not mistake it for a finished epoch). */
function midEpochName(o: TcOptions, epoch: number, batch: number): string {
  return tcCheckpointName(o.subject, o.model, o.classFraction, o.seed, epoch).replace(/\.tar$/, `_batch_${batch}.tar`);
}

/** Removes older checkpoints of this run (with their run records) beyond the newest `keep`; only files with a run record, i.e. written here. */
async function pruneCheckpoints(o: TcOptions, keep: number, log: (l: string) => void): Promise<void> {
  const prefix = `TC_${o.subject}_${o.model}_${pyFloat(o.classFraction)}_${o.seed}_epoch_`;
  const names = await readdir(o.out).catch(() => [] as string[]);
  const epochs: { n: number; file: string }[] = [];
  for (const name of names) {
    const m = name.startsWith(prefix) ? /^(\d+)\.tar$/.exec(name.slice(prefix.length)) : null;
    if (m && names.includes(`${name}.json`)) epochs.push({ n: Number(m[1]), file: path.join(o.out, name) });
  }
  epochs.sort((a, b) => a.n - b.n);
  for (const e of epochs.slice(0, Math.max(0, epochs.length - keep))) {
    await rm(e.file, { force: true });
    await rm(io.runRecordPath(e.file), { force: true });
    log(`removed ${e.file} (--keep-last ${keep})`);
  }
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
  const rank0 = !ddpRun || ddpRun.rank === 0;
  if (o.threads !== undefined) torch.setNumThreads(o.threads);
  torch.manualSeed(o.seed);
  // the checkpoints' folder is created and probed now, not found unwritable after the first epoch
  await ensureWritableDir(o.out, '--out');

  // Data: episode folders of all roots, sorted as full paths, the first round(N * class_fraction) kept.
  const { dataset, format } = await openEpisodes(o, log);
  const extracts = await Promise.all(o.dataDirs.map(readExtractProvenance));
  const hours = hoursOfDataset(dataset, o.dataDirs, extracts);
  const episodeStart = dataset instanceof MultirootImageFolder ? dataset.choice.start : 0;
  if (dataset instanceof MultirootImageFolder) {
    const choice = dataset.choice;
    log(`Class start index: ${choice.start}`);
    if (choice.selection === 'window' && choice.classes.length === choice.total && o.classFraction > 0) {
      log(`data: --class-fraction ${o.classFraction} keeps all ${choice.total} episodes (the original raises ValueError: empty range for randrange() here)`);
    }
  }
  const classes = dataset.classes.length;
  if (o.nOut < classes) {
    throw new Error(`--n_out ${o.nOut} is smaller than the number of episodes kept (${classes}); labels go up to ${classes - 1}: give --n_out ${classes} or more`);
  }
  if (o.nOut > classes) log(`warning: --n_out ${o.nOut} is larger than the number of episodes kept (${classes}); ${o.nOut - classes} outputs are never a target`);
  log(`data: ${dataset.length} frames in ${classes} episodes from ${o.dataDirs.join(', ')} (class fraction ${o.classFraction}; ` +
    `${hours.hours === null ? `hours of video ${hours.method}` : `${hours.hours.toPrecision(6)} hours of video`})`);
  const transform = o.augmentation ? tcAugmentation(o.imageSize) : noAugmentation();
  // distributed: each rank reads its share of the same shuffled order, in batches of batch-size / world size
  const loader = new DataLoader(dataset, {
    batchSize: ddpRun?.perRankBatch ?? o.batchSize, transform, workers: o.workers, shuffle: true, seed: o.seed, labels: 'int64', dropLast: o.dropLast ?? false,
    onBadImage: o.onBadImage ?? TC_DEFAULTS.onBadImage,
    ...(ddpRun ? { sampler: new DistributedSampler(dataset.length, { rank: ddpRun.rank, worldSize: ddpRun.worldSize, seed: o.seed }) } : {}),
  });
  if (ddpRun) log(`distributed: ${ddpRun.worldSize} processes (${ddpRun.group.backend}), global batch ${o.batchSize} = ${ddpRun.perRankBatch} per process, ${loader.batchesPerEpoch(0)} steps per epoch`);

  let model: models.Classifier | undefined;
  let optimizer: optim.Adam | undefined;
  const precision = precisionFor(o);
  try {
    model = buildTcModel(models.modelName(o.model), o.nOut, o.imageSize);
    if (o.device !== 'cpu') model.to(o.device);
    applyPrecision(model, precision);
    useSyncBn(model, o.syncBn, ddpRun, log);
    optimizer = new optim.Adam(model.parameters(), { lr: o.lr, weightDecay: o.weightDecay });
    log(`model: ${o.model} with ${model.headName} Linear(${model.head.inFeatures}, ${o.nOut}); Adam(lr ${o.lr}, weight decay ${o.weightDecay}); ` +
      `augmentation ${o.augmentation ? 'on' : 'off'}; ${torch.getNumThreads()} thread(s), device ${o.device}; ${precision.describe}`);

    let acc1List: number[] = [];
    let startEpoch = o.startEpoch;
    let prior: RunRecord | undefined;
    let position: ResumePosition | undefined;
    if (o.resume) {
      const r = await loadCheckpoint(o.resume, model, optimizer, precision.scaler);
      acc1List = r.acc1List;
      position = r.position;
      if (!o.startEpochGiven) startEpoch = r.nextEpoch;
      log(`resumed from ${o.resume}: continuing at epoch ${startEpoch} (${acc1List.length} epoch accuracies saved)`);
      // the checkpoint's learning rate is the one used (the original's `optimizer.lr = args.lr` changes nothing)
      const lrs = [...new Set(optimizer.paramGroups.map((g) => g.lr))];
      log(`learning rate ${lrs.join(', ')} (from the checkpoint${lrs.length === 1 && lrs[0] === o.lr ? '' : `; --lr ${o.lr} is not applied, as in the original`})`);
      prior = await io.readRunRecord(o.resume);
    }
    // after the resume: every rank starts from rank 0's weights; gradients are averaged across ranks
    const ddp = ddpRun ? new dist.DistributedDataParallel(model, ddpRun.group) : undefined;
    if (position && (o.startEpochGiven || position.epoch !== startEpoch)) position = undefined;
    if (startEpoch >= o.epochs) {
      log(`nothing to do: ${o.resume ? `${o.resume} already finished` : `--start-epoch ${startEpoch} is at`} --epochs ${o.epochs}`);
      return { acc1List, epochs: [], checkpoints: [], classes, samples: dataset.length, startEpoch, episodes: [...dataset.classes], episodeStart, hours: hours.hours };
    }
    const createdAt = prior?.createdAt ?? new Date().toISOString();
    const epochRecords = (prior?.epochs ?? []).filter((e) => e.epoch < startEpoch);
    const priorWall = prior?.wallSeconds ?? 0;
    let recordFile: string | undefined;
    const runName = `TC_${o.subject}_${o.model}_${pyFloat(o.classFraction)}_${o.seed}`;
    const metrics = o.metrics === '' || !rank0 ? undefined
      : await MetricsLog.open(o.metrics ?? path.join(o.out, `${runName}.metrics.jsonl`), o.logFreq ?? TC_DEFAULTS.logFreq, { epoch: startEpoch, iteration: position?.batch ?? 0 });
    const stop = o.stop ?? new StopRequest();
    if (o.handleSignals) stop.install(true, (l) => process.stderr.write(`${l}\n`));

    const checkpoints: string[] = [];
    const stats: EpochStats[] = [];
    const midEpoch: string[] = [];
    const t0 = performance.now();
    const record = (file: string, status: RunRecord['status'], pos?: RunRecord['position']): RunRecord => ({
      schema: io.RUN_RECORD_SCHEMA, status, checkpoint: path.basename(file),
      createdAt, updatedAt: new Date().toISOString(), config: configOf(o), versions: versions(), device: o.device,
      threads: torch.getNumThreads(), host: hostName(),
      data: { dirs: o.dataDirs, format, episodes: classes, episodeNames: [...dataset.classes], frames: dataset.length, extract: extracts.filter((e) => e !== undefined) },
      hours: hours.hours, hoursMethod: hours.method, epochs: [...epochRecords], ...(pos ? { position: pos } : {}),
      wallSeconds: priorWall + (performance.now() - t0) / 1000,
    });
    try {
      for (let epoch = startEpoch; epoch < o.epochs; epoch++) {
        const resumeAt = position?.epoch === epoch ? position : undefined;
        const sums: MeterSums | undefined = resumeAt?.sums;
        const s = await trainOneEpoch(model, optimizer, loader, epoch, {
          device: o.device, printFreq: o.printFreq, log, checkFinite: true, shouldStop: () => stop.requested, ...(ddp ? { ddp } : {}),
          precision,
          onStep: (st) => { metrics?.step(st); o.onStep?.(st); },
          ...(resumeAt ? { startBatch: resumeAt.batch, ...(sums && rank0 ? { sums } : {}) } : {}),
        });
        if (s.stoppedAt !== undefined) {
          // a mid-epoch checkpoint: the finished epochs' accuracies, the position and the epoch's meters
          const file = path.join(o.out, midEpochName(o, epoch, s.stoppedAt));
          const batches = loader.batchesPerEpoch(epoch);
          if (rank0) {
            await saveCheckpoint(file, model, optimizer, acc1List, { epoch, batch: s.stoppedAt, batches, sums: s.sums, seed: o.seed }, precision.scaler);
            await io.writeRunRecord(file, record(file, 'interrupted', { epoch, batch: s.stoppedAt, batches }));
          }
          ddpRun?.group.barrier().wait();
          throw new InterruptedError(stop.signal ?? 'SIGINT', file);
        }
        acc1List.push(s.acc1);
        stats.push(s);
        const entry = { epoch, loss: s.loss, acc1: s.acc1, acc5: s.acc5, images: s.images, imagesPerSecond: s.images / Math.max(1e-9, s.seconds), seconds: s.seconds };
        epochRecords.push(entry);
        metrics?.epoch(entry, o.lr);
        const last = epoch === o.epochs - 1;
        // data-parallel: a signal during the epoch's end reaches the ranks apart; they agree before saving
        const stopping = agreedStop(stop.requested, ddp);
        const file = path.join(o.out, tcCheckpointName(o.subject, o.model, o.classFraction, o.seed, epoch));
        const save = last || stopping || (o.keepCheckpoints !== 'final' && (epoch + 1) % (o.saveEvery ?? TC_DEFAULTS.saveEvery) === 0);
        if (save) {
          if (rank0) {
            await saveCheckpoint(file, model, optimizer, acc1List, undefined, precision.scaler);
            recordFile = await io.writeRunRecord(file, record(file, last ? 'complete' : 'running'));
          }
          // the others wait until the checkpoint is complete (a run stopped now resumes from it on every rank)
          ddpRun?.group.barrier().wait();
          checkpoints.push(file);
          // mid-epoch checkpoints of this run written earlier are superseded
          if (o.resume && position && prior?.position && o.resume !== file && path.basename(o.resume).startsWith(`${runName}_epoch_`) && /_batch_\d+\.tar$/.test(o.resume)) midEpoch.push(o.resume);
          for (const m of midEpoch.splice(0)) {
            if (!rank0) continue;
            await rm(m, { force: true });
            await rm(io.runRecordPath(m), { force: true });
          }
          position = undefined;
          const keep = o.keepCheckpoints === 'last' ? 1 : o.keepLast;
          if (keep && rank0) await pruneCheckpoints(o, keep, log);
        }
        const perEpoch = (performance.now() - t0) / 1000 / (epoch - startEpoch + 1);
        log(`Epoch ${epoch}: loss ${s.loss.toFixed(4)}  Acc@1 ${s.acc1.toFixed(2)}  Acc@5 ${s.acc5.toFixed(2)}  ` +
          `${(s.images / Math.max(1e-9, s.seconds)).toFixed(1)} img/s  ${formatDuration(s.seconds)} (data wait ${s.dataSeconds.toFixed(1)} s${s.commSeconds !== undefined ? `, allreduce ${s.commSeconds.toFixed(1)} s` : ''})  ` +
          `ETA ${formatDuration(perEpoch * (o.epochs - epoch - 1))}${save ? `  saved ${file}` : ''}`);
        if (stopping && !last) throw new InterruptedError(stop.signal ?? 'SIGTERM', file);
      }
    } finally {
      if (o.handleSignals) stop.uninstall();
    }
    return { acc1List, epochs: stats, checkpoints, classes, samples: dataset.length, startEpoch, episodes: [...dataset.classes], episodeStart, hours: hours.hours, ...(recordFile ? { record: recordFile } : {}) };
  } finally {
    precision.scaler?.dispose();
    optimizer?.dispose();
    model?.dispose();
    await loader.close();
  }
}
