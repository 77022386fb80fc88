// The defaults of train-tc (train_tc.py's), finetune (finetune_imgnet.py's) and train-mae (the MAE repositories'), in a module of
// their own so that the command line can show them without loading libtorch.
import type { Device } from '../torch/device.js';

export const TC_DEFAULTS = {
  model: 'resnext101_32x8d', nOut: 1000, classFraction: 1.0, epochs: 12, startEpoch: 0, batchSize: 256, lr: 0.0005,
  weightDecay: 0, seed: 1, workers: 8, printFreq: 10000, resume: '', augmentation: true, subject: 'SAYAVAKEPICUT',
  cachePath: '', out: '.', device: 'cpu' as Device, imageSize: 224,
  onBadImage: 'fail' as 'fail' | 'skip', episodeSelection: 'window' as 'window' | 'first', saveEvery: 1, keepLast: 0, logFreq: 50,
};

/** The defaults of every option (the original finetune_imgnet.py's), here and for `awty finetune`. */
export const FINETUNE_DEFAULTS = {
  model: 'resnext101_32x8d', nOut: 1000, resume: '', freezeTrunk: false, fracRetained: 1.0, epochs: 50,
  batchSize: 512, lr: 0.001, weightDecay: 0, schedule: [25, 45] as readonly number[], strongAugment: false, seed: 1, workers: 8,
  printFreq: 625, startEpoch: 0, out: '.', device: 'cpu' as Device, imageSize: 224, bnEval: false, headBn: false, valEvery: 1, saveCheckpoint: true,
  checkpointName: 'awty' as 'awty' | 'original', overwrite: false, onBadImage: 'fail' as 'fail' | 'skip', continue: '', logFreq: 50,
};

/** `awty knn`: finetune's trunk and data defaults, DINO eval_knn.py's k (20, the one it recommends) and temperature. */
export const KNN_DEFAULTS = {
  model: FINETUNE_DEFAULTS.model, nOut: FINETUNE_DEFAULTS.nOut, resume: FINETUNE_DEFAULTS.resume, k: 20, temperature: 0.07,
  fracRetained: FINETUNE_DEFAULTS.fracRetained, batchSize: FINETUNE_DEFAULTS.batchSize, seed: FINETUNE_DEFAULTS.seed,
  workers: FINETUNE_DEFAULTS.workers, out: FINETUNE_DEFAULTS.out, device: FINETUNE_DEFAULTS.device, imageSize: FINETUNE_DEFAULTS.imageSize,
  onBadImage: FINETUNE_DEFAULTS.onBadImage, overwrite: false,
};

export const MAE_DEFAULTS = {
  model: 'mae_vit_base_patch16', inputSize: 224, maskRatio: 0.75, normPixLoss: false, epochs: 800, startEpoch: 0, batchSize: 256,
  blr: 1.5e-4, minLr: 0, warmupEpochs: 40, schedule: 'cosine' as const, weightDecay: 0.05, seed: 0, workers: 8, printFreq: 100,
  resume: '', outputDir: './output_dir', savePrefix: 'mae', device: 'cpu' as Device, cachePath: '',
};
