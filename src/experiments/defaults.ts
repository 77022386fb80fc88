// The defaults of train-tc (train_tc.py's) and train-mae (the MAE repositories'), in a module of
// their own so that the command line can show them without loading libtorch.
import type { Device } from '../torch/device.js';

export const TC_DEFAULTS = {
  model: 'resnext101_32x8d', nOut: 1000, classFraction: 1.0, epochs: 12, startEpoch: 0, batchSize: 256, lr: 0.0005,
  weightDecay: 0, seed: 1, workers: 8, printFreq: 10000, resume: '', augmentation: true, subject: 'SAYAVAKEPICUT',
  cachePath: '', out: '.', device: 'cpu' as Device, imageSize: 224,
};

export const MAE_DEFAULTS = {
  model: 'mae_vit_base_patch16', inputSize: 224, maskRatio: 0.75, normPixLoss: false, epochs: 800, startEpoch: 0, batchSize: 256,
  blr: 1.5e-4, minLr: 0, warmupEpochs: 40, schedule: 'cosine' as const, weightDecay: 0.05, seed: 0, workers: 8, printFreq: 100,
  resume: '', outputDir: './output_dir', savePrefix: 'mae', device: 'cpu' as Device, cachePath: '',
};
