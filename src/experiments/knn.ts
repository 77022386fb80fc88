// k-nearest-neighbour evaluation on frozen features, as DINO's eval_knn.py (knn_classifier) and
// solo-learn do it: features L2-normalised, cosine similarity to every training feature, the k most
// similar vote for their class with weight exp(similarity / T). Orders of magnitude cheaper than a
// trained linear probe; reported as its own condition. Read top to bottom: the classifier, feature
// extraction, then `awty knn` (main), which takes finetune's trunk, data flags and results file.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import * as io from '../io/index.js';
import { DataLoader, ImageFolder, fewShotIndices, imagenetVal } from '../data/index.js';
import type { Sampler } from '../data/index.js';
import { toTensors } from '../data/tensors.js';
import type { Classifier } from '../models/index.js';
import { ensureWritableDir } from '../io/outdir.js';
import { writeResult, type RunResultFile } from '../scaling/results.js';
import { finetuneCheckpointName, loadTrunk, pathTaken, trunkHours, type TrunkInfo } from './finetune.js';
import { hostName, versions } from './provenance.js';
import { UsageError } from './errors.js';
import { KNN_DEFAULTS } from './defaults.js';

export interface KnnResult {
  top1: number;
  top5: number;
  /** the top-1 class of every test sample */
  predictions: Int32Array;
  /** test samples per chunk */
  chunk: number;
}

/** Similarities computed at once by default: chunks of test samples hold at most this many (256 MiB of float32). */
export const KNN_CHUNK_ELEMENTS = 2 ** 26;

/** F.normalize(x, dim=1, p=2): each row divided by max(its L2 norm, 1e-12). */
export function l2Normalize(x: Tensor): Tensor {
  return torch.tidy(() => x.div(x.norm(2, 1, true).clamp(1e-12)));
}

/**
 * Top-1/top-5 accuracy (percent) of temperature-weighted kNN votes: DINO's knn_classifier. Features
 * are [N, D] float tensors (L2-normalised here unless `normalized`), labels int64 [N], on any one
 * device. Test samples go in chunks of `chunk` (default: as many as keep chunk x N similarities
 * within KNN_CHUNK_ELEMENTS), so memory stays bounded. Top-5 counts the first min(5, k, classes)
 * classes (DINO: min(5, k) of its 1000).
 */
export function knnClassifier(trainFeatures: Tensor, trainLabels: Tensor, testFeatures: Tensor, testLabels: Tensor,
  o: { k?: number; temperature?: number; numClasses?: number; chunk?: number; normalized?: boolean } = {}): KnnResult {
  const k = o.k ?? 20;
  const T = o.temperature ?? 0.07;
  const n = trainFeatures.shape[0]!;
  const m = testFeatures.shape[0]!;
  if (!(Number.isInteger(k) && k >= 1)) throw new Error(`kNN: k must be a positive integer, got ${k}`);
  if (m === 0) throw new Error('kNN: no test features');
  if (k > n) throw new Error(`kNN: k = ${k} is larger than the ${n} training features`);
  if (!(T > 0)) throw new Error(`kNN: the temperature must be positive, got ${T}`);
  if (trainFeatures.shape[1] !== testFeatures.shape[1]) throw new Error(`kNN: train features are ${trainFeatures.shape[1]}-d but test features ${testFeatures.shape[1]}-d`);
  if (trainLabels.shape[0] !== n || testLabels.shape[0] !== m) throw new Error('kNN: one label per feature row is needed');
  const chunk = o.chunk ?? Math.max(1, Math.min(m, Math.floor(KNN_CHUNK_ELEMENTS / Math.max(n, 1))));
  if (!(Number.isInteger(chunk) && chunk >= 1)) throw new Error(`kNN: the chunk size must be a positive integer, got ${chunk}`);
  return torch.noGrad(() => torch.tidy(() => {
    const numClasses = o.numClasses ?? Number(trainLabels.max().item()) + 1;
    const train = (o.normalized ? trainFeatures : l2Normalize(trainFeatures)).t();
    const test = o.normalized ? testFeatures : l2Normalize(testFeatures);
    const trainY = trainLabels.long();
    const testY = testLabels.long();
    let top1 = 0;
    let top5 = 0;
    const predictions = new Int32Array(m);
    for (let s = 0; s < m; s += chunk) {
      torch.tidy(() => {
        const b = Math.min(chunk, m - s);
        const { values, indices } = test.narrow(0, s, b).mm(train).topk(k, 1, true, true);
        const neighbours = trainY.view([1, -1]).expand([b, n]).gather(1, indices);                  // [b, k]
        const votes = torch.oneHot(neighbours, numClasses).float().mul(values.div(T).exp().unsqueeze(-1)).sum(1); // [b, C]
        const order = votes.sort(1, true).indices;
        const correct = order.eq(testY.narrow(0, s, b).view([-1, 1]));
        top1 += correct.narrow(1, 0, 1).float().sum().item();
        top5 += correct.narrow(1, 0, Math.min(5, k, numClasses)).float().sum().item();
        predictions.set(order.select(1, 0).int().cpu().toTypedArray() as Int32Array, s);
      });
    }
    return { top1: (top1 * 100) / m, top5: (top5 * 100) / m, predictions, chunk };
  }));
}

/**
 * The frozen trunk's features (input of the head) and labels of every sample of the loader, in its
 * order, in eval mode, with the dataset index of each row (an image skipped by --on-bad-image skip has none).
 */
export async function extractFeatures(model: Classifier, loader: DataLoader, o: { device: torch.Device; epoch?: number }): Promise<{ features: Tensor; labels: Tensor; indices: Int32Array }> {
  model.eval();
  const feats: Tensor[] = [];
  const labels: Tensor[] = [];
  const indices: number[] = [];
  try {
    for await (const batch of loader.epoch(o.epoch ?? 0)) {
      for (const i of batch.indices) indices.push(i);
      const [f, y] = torch.noGrad(() => torch.tidy(() => {
        const { images, labels: l } = toTensors(batch, { releaseTo: loader });
        const x = o.device === 'cpu' ? images : images.to(o.device);
        return [model.features(x).cpu().keep(), l.long().keep()];
      }));
      feats.push(f);
      labels.push(y);
    }
    return torch.tidy(() => ({ features: torch.cat(feats, 0).keep(), labels: torch.cat(labels, 0).keep(), indices: Int32Array.from(indices) }));
  } finally {
    for (const t of [...feats, ...labels]) t.dispose();
  }
}

export interface KnnOptions {
  imgnetTraindir: string;
  imgnetValdir: string;
  /** the trunk: as finetune's --model, --n_out and --resume ('' = random weights) */
  model?: string;
  nOut?: number;
  resume?: string;
  /** neighbours that vote (default 20) */
  k?: number;
  /** temperature of the votes exp(similarity / T) (default 0.07) */
  temperature?: number;
  /** fraction of the training set whose features are the neighbours (finetune's few-shot subset) */
  fracRetained?: number;
  batchSize?: number;
  seed?: number;
  workers?: number;
  /** output folder of the results file */
  out?: string;
  threads?: number;
  device?: torch.Device;
  /** both sets: Resize(round(imageSize x 256/224)) + CenterCrop(imageSize), finetune's validation transform */
  imageSize?: number;
  /** hours of video the trunk saw; default: the run record beside `resume` (as finetune) */
  hours?: number;
  onBadImage?: 'fail' | 'skip';
  /** condition in the results file (default knnCondition(k, T, frac)) */
  condition?: string;
  /** replace a results file (or feature dump) of the same name (default: refuse before any work) */
  overwrite?: boolean;
  /** folder for trainfeat.pth, testfeat.pth, trainlabels.pth, testlabels.pth (the normalised features, as DINO's --dump_features) */
  dumpFeatures?: string;
  log?: (line: string) => void;
}

export interface KnnSummary {
  top1: number;
  top5: number;
  k: number;
  temperature: number;
  trainImages: number;
  /** images in the training folder (the neighbours are trainImages of them) */
  trainTotal: number;
  valImages: number;
  classes: number;
  condition: string;
  resultFile?: string;
}

/** The default condition label: knn-k20, plus -T<t> off the default temperature and -frac<f> on a subset. */
export function knnCondition(k: number, temperature: number, fracRetained: number): string {
  return `knn-k${k}${temperature !== 0.07 ? `-T${temperature}` : ''}${fracRetained !== 1 ? `-frac${fracRetained}` : ''}`;
}

const DUMP_FILES = ['trainfeat.pth', 'testfeat.pth', 'trainlabels.pth', 'testlabels.pth'] as const;

async function checkFolder(dir: string, flag: string): Promise<void> {
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) throw new UsageError(`${flag} ${dir} does not exist or is not a folder`);
}

/** `awty knn`: kNN top-1/top-5 of a trunk's frozen features on ImageFolder train/val folders, and its results file. */
export async function main(opts: KnnOptions): Promise<KnnSummary> {
  const o = {
    ...KNN_DEFAULTS,
    log: (line: string): void => { process.stdout.write(`${line}\n`); },
    ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)),
  } as Required<Omit<KnnOptions, 'threads' | 'hours' | 'condition' | 'dumpFeatures'>> & KnnOptions;
  const log = o.log;
  if (!(Number.isInteger(o.k) && o.k >= 1)) throw new UsageError(`--k must be a positive integer, got ${o.k}`);
  if (!(o.temperature > 0 && Number.isFinite(o.temperature))) throw new UsageError(`--temperature must be positive, got ${o.temperature}`);
  if (!(o.fracRetained > 0 && o.fracRetained <= 1)) throw new UsageError(`--frac-retained must be in (0, 1], got ${o.fracRetained}`);
  if (!(Number.isInteger(o.nOut) && o.nOut >= 1)) throw new UsageError(`--n_out must be a positive integer, got ${o.nOut}`);
  if (!(Number.isInteger(o.batchSize) && o.batchSize >= 1)) throw new UsageError(`--batch-size must be a positive integer, got ${o.batchSize}`);
  if (!(Number.isInteger(o.imageSize) && o.imageSize >= 1)) throw new UsageError(`--image-size must be a positive integer, got ${o.imageSize}`);
  if (o.hours !== undefined && !(o.hours > 0)) throw new UsageError(`--hours must be positive, got ${o.hours}`);
  if (o.onBadImage !== 'fail' && o.onBadImage !== 'skip') throw new UsageError(`--on-bad-image must be fail or skip, got ${String(o.onBadImage)}`);
  const t0 = performance.now();
  await checkFolder(o.imgnetTraindir, '--imgnet-traindir');
  await checkFolder(o.imgnetValdir, '--imgnet-valdir');
  const { tcRecord, hours } = await trunkHours(o.resume, o.hours);
  if (o.threads !== undefined) torch.setNumThreads(o.threads);
  torch.manualSeed(o.seed);
  await ensureWritableDir(o.out, '--out');
  // the results file is named as finetune names its outputs (IMGNET_{source}_{condition}_..., .json);
  // an earlier run's results file and a feature dump already there are kept unless --overwrite
  const condition = o.condition ?? knnCondition(o.k, o.temperature, o.fracRetained);
  const resultPath = join(o.out, finetuneCheckpointName({ ...o, freezeTrunk: true, condition, hours }).replace(/\.tar$/, '.json'));
  if (!o.overwrite && hours !== undefined && pathTaken(resultPath)) {
    throw new UsageError(`${resultPath} exists (the results file of an earlier run of the same evaluation); give --overwrite to replace it, or another --out`);
  }
  if (o.dumpFeatures !== undefined) {
    await ensureWritableDir(o.dumpFeatures, '--dump-features');
    for (const f of DUMP_FILES) {
      const p = join(o.dumpFeatures, f);
      if (!o.overwrite && pathTaken(p)) throw new UsageError(`--dump-features: ${p} exists; give --overwrite to replace it, or another folder`);
    }
  }

  // data: the training subset is finetune's few-shot subset (in folder order), both sets without augmentation
  const trainSet = await ImageFolder.open(o.imgnetTraindir);
  const valSet = await ImageFolder.open(o.imgnetValdir);
  const numClasses = trainSet.classes.length;
  if (valSet.classes.length !== numClasses || valSet.classes.some((c, i) => c !== trainSet.classes[i])) {
    throw new UsageError(`${o.imgnetValdir} has classes ${valSet.classes.slice(0, 5).join(', ')}${valSet.classes.length > 5 ? ', ...' : ''} (${valSet.classes.length}) but ${o.imgnetTraindir} has ${trainSet.classes.slice(0, 5).join(', ')}${numClasses > 5 ? ', ...' : ''} (${numClasses}): kNN labels need the same class folders`);
  }
  if (valSet.length === 0) throw new UsageError(`--imgnet-valdir ${o.imgnetValdir} holds no images`);
  const trainIdx = Int32Array.from(fewShotIndices(trainSet.length, o.fracRetained, o.seed)).sort();
  if (trainIdx.length === 0) throw new UsageError(`--frac-retained ${o.fracRetained} of ${trainSet.length} training images in ${o.imgnetTraindir} keeps none`);
  if (o.k > trainIdx.length) {
    throw new UsageError(`--k ${o.k} is larger than the training set: ${trainIdx.length} image(s) of ${o.imgnetTraindir}${o.fracRetained < 1 ? ` (--frac-retained ${o.fracRetained} of ${trainSet.length})` : ''}`);
  }
  const transform = imagenetVal(Math.round((o.imageSize * 256) / 224), o.imageSize);
  const subset: Sampler = { indices: () => trainIdx };
  const trainLoader = new DataLoader(trainSet, { batchSize: o.batchSize, workers: o.workers, labels: 'int64', sampler: subset, transform, onBadImage: o.onBadImage });
  const valLoader = new DataLoader(valSet, { batchSize: o.batchSize, workers: o.workers, labels: 'int64', transform, onBadImage: o.onBadImage });
  log(`neighbours: ${trainIdx.length} of ${trainSet.length} training images (frac-retained ${o.fracRetained}), ${numClasses} classes; classifying ${valSet.length}`);

  let model: Classifier | undefined;
  const owned: Tensor[] = [];
  const trunk: TrunkInfo = {};
  try {
    model = await loadTrunk({ model: o.model, nOut: o.nOut, resume: o.resume, imageSize: o.imageSize, log, info: trunk });
    if (o.device !== 'cpu') model.to(o.device);
    const tr = await extractFeatures(model, trainLoader, { device: o.device });
    owned.push(tr.features, tr.labels);
    log(`train features: ${tr.features.shape.join(' x ')}`);
    const te = await extractFeatures(model, valLoader, { device: o.device });
    owned.push(te.features, te.labels);
    log(`val features: ${te.features.shape.join(' x ')}`);
    model.dispose();
    model = undefined;
    if (tr.labels.shape[0]! < o.k) throw new Error(`--k ${o.k} is larger than the ${tr.labels.shape[0]} training images that could be read`);
    const trainF = l2Normalize(tr.features).keep();
    owned.push(trainF);
    const testF = l2Normalize(te.features).keep();
    owned.push(testF);
    if (o.dumpFeatures !== undefined) {
      const d = o.dumpFeatures;
      await io.save(trainF, join(d, 'trainfeat.pth'));
      await io.save(testF, join(d, 'testfeat.pth'));
      await io.save(tr.labels, join(d, 'trainlabels.pth'));
      await io.save(te.labels, join(d, 'testlabels.pth'));
      log(`features saved in ${d}`);
    }
    // the classifier runs where the trunk ran (DINO: on the GPU)
    const on = (t: Tensor): Tensor => { if (o.device === 'cpu') return t; const u = t.to(o.device).keep(); owned.push(u); return u; };
    const r = knnClassifier(on(trainF), on(tr.labels), on(testF), on(te.labels), { k: o.k, temperature: o.temperature, numClasses, normalized: true });
    log(`${o.k}-NN classifier result: Top1: ${r.top1}, Top5: ${r.top5}`);

    let resultFile: string | undefined;
    if (hours !== undefined) {
      const config: Record<string, unknown> = { ...o, chunk: r.chunk };
      delete config.log;
      const tcConfig = tcRecord?.config ?? {};
      const result: RunResultFile = {
        condition, hours, seed: o.seed, top1: r.top1, top5: r.top5, fracRetained: o.fracRetained, freezeTrunk: true, model: o.model,
        modelParams: trunk.modelParams!, imageSize: o.imageSize, objective: trunk.objective!,
        checkpoint: o.resume || undefined,
        ...(tcRecord ? {
          episodes: tcRecord.data.episodes, classFraction: tcConfig.classFraction as number, tcModel: tcConfig.model as string,
          tcSeed: tcConfig.seed as number, tcRecord: io.runRecordPath(o.resume), hoursFrom: o.hours !== undefined ? '--hours' : `run record: ${tcRecord.hoursMethod}`,
        } : { hoursFrom: '--hours' }),
        complete: true, config, versions: versions(), device: o.device, threads: torch.getNumThreads(), host: hostName(),
        trainImages: tr.labels.shape[0]!, wallSeconds: (performance.now() - t0) / 1000,
      };
      resultFile = await writeResult(resultPath, result);
      log(`wrote ${resultFile}`);
    } else {
      process.stderr.write('warning: no --resume and no --hours: no results file written (awty figure1 needs the hours of video of the trunk)\n');
    }
    return { top1: r.top1, top5: r.top5, k: o.k, temperature: o.temperature, trainImages: tr.labels.shape[0]!, trainTotal: trainSet.length, valImages: te.labels.shape[0]!, classes: numClasses, condition, ...(resultFile ? { resultFile } : {}) };
  } finally {
    for (const t of owned) t.dispose();
    model?.dispose();
    await Promise.all([trainLoader.close(), valLoader.close()]);
  }
}
