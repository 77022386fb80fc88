// The data points of Orhan (2023), "Scaling may be all you need for achieving human-level object
// recognition capacity with human-like visual experience", arXiv:2308.03712: ImageNet accuracy of
// vision transformers pretrained as masked autoencoders (MAE) on human-like video, at 6
// model/resolution combinations x 5 amounts of video x up to 3 data subsets, embedded so that
// `awty scaling` works without any runs of its own.
//
// Source: the paper's public repository, github.com/eminorhan/humanlike-vits at commit
// 7a66e95201720c9a6b7509cac27e4c1b321050bf (2023-08-10), files
// logs/finetuning_logs/<arch>_logs/<arch>_<fraction>_<seed>_log.txt (78 files, one JSON line per
// fine-tuning epoch: test_acc1, test_acc5, n_parameters, ...). The repository's README says these
// are the logs of the "permissive" condition (fine-tuned on 2% of the labelled ImageNet training
// set) and gives:
//   - architectures vits14 = ViT-S/14, vitb14 = ViT-B/14, vitl14 = ViT-L/14, vith14 = ViT-H/14,
//     vith14@448 and vith14@476 = ViT-H/14 trained with 448x448 and 476x476 images; the others at
//     224x224 (the default --input_size of the repository's test_model.py and of MAE);
//   - data fractions 1.0 = the full data (~5000 hours), 0.1 (~500 h), 0.01 (~50 h), 0.001 (~5 h),
//     0.0001 (~0.5 h): hours here are 5000 x fraction, the README's round figure;
//   - seeds 1, 2, 3 are three repeats of the subset selection; the full data has seed 1 only.
// Per run the final epoch's accuracies (top1, top5) and the best epoch's (top1Best, top5Best) are
// embedded: the logs do not say which one the paper's figures show. paramsLogged is the logs'
// n_parameters, the whole fine-tuned network (the ViT and its 1000-way head; the paper's "633M" for
// ViT-H/14 is this count rounded). The fine-tuning ran 50 epochs at 224 px, 10 at 448 px and 8 at
// 476 px (the number of lines of each log), so the later-epoch overfitting seen at 224 px (best
// epoch well above the final one) is mostly absent at the two higher resolutions.
//
// What could not be found: the paper's text past its abstract and the opening of its introduction
// (the fitted functional form, its coefficients and the accuracy it takes as human level) is not in
// the repository or in any stored copy searched (arXiv abstract pages, ar5iv, the Hugging Face model
// card); the repository holds no analysis code or result tables besides these logs. See
// docs/scaling.md.

import type { RunResult } from './results.js';

export const PAPER2023_SOURCE = 'Orhan (2023), arXiv:2308.03712, fine-tuning logs of github.com/eminorhan/humanlike-vits (permissive condition, 2% of ImageNet)';

/** The paper's headline example (its abstract): this model size, video and image size reach "roughly human-level accuracy on ImageNet". */
export const PAPER2023_HEADLINE = { modelParams: 2.5e9, hours: 20000, imageSize: 952 } as const;

/** The paper's largest measured setting (its abstract): ViT-H/14, 633M parameters, ~5000 hours, 476x476 images. */
export const PAPER2023_LARGEST = { modelParams: 633e6, hours: 5000, imageSize: 476 } as const;

export interface Paper2023Run {
  readonly arch: string;
  readonly fraction: number;
  readonly seed: number;
  readonly imageSize: number;
  readonly paramsLogged: number;
  readonly epochs: number;
  /** final epoch, percent */
  readonly top1: number;
  readonly top5: number;
  /** best epoch, percent */
  readonly top1Best: number;
  readonly top5Best: number;
}

export const PAPER2023_FULL_HOURS = 5000;

export const PAPER2023_ARCHS: Readonly<Record<string, string>> = {
  'vits14': 'ViT-S/14',
  'vitb14': 'ViT-B/14',
  'vitl14': 'ViT-L/14',
  'vith14': 'ViT-H/14',
  'vith14@448': 'ViT-H/14@448',
  'vith14@476': 'ViT-H/14@476',
};

/** Every run, as read from the logs (accuracies as logged, rounded to 3 decimals). */
export const PAPER2023_RUNS: readonly Paper2023Run[] = [
  { arch: 'vits14', fraction: 0.0001, seed: 1, imageSize: 224, paramsLogged: 22004584, epochs: 50, top1: 13.29, top5: 29.862, top1Best: 14.33, top5Best: 32.304 },
  { arch: 'vits14', fraction: 0.0001, seed: 2, imageSize: 224, paramsLogged: 22004584, epochs: 50, top1: 12.906, top5: 28.47, top1Best: 13.876, top5Best: 31.78 },
  { arch: 'vits14', fraction: 0.0001, seed: 3, imageSize: 224, paramsLogged: 22004584, epochs: 50, top1: 11.542, top5: 25.83, top1Best: 12.708, top5Best: 29.046 },
  { arch: 'vits14', fraction: 0.001, seed: 1, imageSize: 224, paramsLogged: 22004584, epochs: 50, top1: 13.866, top5: 30.436, top1Best: 15.14, top5Best: 33.7 },
  { arch: 'vits14', fraction: 0.001, seed: 2, imageSize: 224, paramsLogged: 22004584, epochs: 50, top1: 16.396, top5: 34.638, top1Best: 17.694, top5Best: 37.732 },
  { arch: 'vits14', fraction: 0.001, seed: 3, imageSize: 224, paramsLogged: 22004584, epochs: 50, top1: 13.994, top5: 30.46, top1Best: 15.212, top5Best: 33.534 },
  { arch: 'vits14', fraction: 0.01, seed: 1, imageSize: 224, paramsLogged: 22004584, epochs: 50, top1: 17.546, top5: 36.71, top1Best: 18.682, top5Best: 39.774 },
  { arch: 'vits14', fraction: 0.01, seed: 2, imageSize: 224, paramsLogged: 22004584, epochs: 50, top1: 20.4, top5: 41.456, top1Best: 21.12, top5Best: 43.384 },
  { arch: 'vits14', fraction: 0.01, seed: 3, imageSize: 224, paramsLogged: 22004584, epochs: 50, top1: 18.614, top5: 37.714, top1Best: 19.76, top5Best: 40.85 },
  { arch: 'vits14', fraction: 0.1, seed: 1, imageSize: 224, paramsLogged: 22004584, epochs: 50, top1: 26.232, top5: 50.79, top1Best: 26.728, top5Best: 52.196 },
  { arch: 'vits14', fraction: 0.1, seed: 2, imageSize: 224, paramsLogged: 22004584, epochs: 50, top1: 22.484, top5: 44.454, top1Best: 23.412, top5Best: 46.416 },
  { arch: 'vits14', fraction: 0.1, seed: 3, imageSize: 224, paramsLogged: 22004584, epochs: 50, top1: 22.728, top5: 45.33, top1Best: 23.796, top5Best: 47.134 },
  { arch: 'vits14', fraction: 1.0, seed: 1, imageSize: 224, paramsLogged: 22004584, epochs: 50, top1: 27.2, top5: 51.572, top1Best: 27.57, top5Best: 52.948 },
  { arch: 'vitb14', fraction: 0.0001, seed: 1, imageSize: 224, paramsLogged: 86475496, epochs: 50, top1: 13.028, top5: 28.174, top1Best: 14.996, top5Best: 33.196 },
  { arch: 'vitb14', fraction: 0.0001, seed: 2, imageSize: 224, paramsLogged: 86475496, epochs: 50, top1: 12.864, top5: 27.73, top1Best: 14.918, top5Best: 32.476 },
  { arch: 'vitb14', fraction: 0.0001, seed: 3, imageSize: 224, paramsLogged: 86475496, epochs: 50, top1: 12.362, top5: 26.85, top1Best: 14.31, top5Best: 31.298 },
  { arch: 'vitb14', fraction: 0.001, seed: 1, imageSize: 224, paramsLogged: 86475496, epochs: 50, top1: 14.164, top5: 29.992, top1Best: 16.024, top5Best: 34.63 },
  { arch: 'vitb14', fraction: 0.001, seed: 2, imageSize: 224, paramsLogged: 86475496, epochs: 50, top1: 15.574, top5: 32.264, top1Best: 17.216, top5Best: 37.178 },
  { arch: 'vitb14', fraction: 0.001, seed: 3, imageSize: 224, paramsLogged: 86475496, epochs: 50, top1: 14.772, top5: 31.234, top1Best: 16.732, top5Best: 35.606 },
  { arch: 'vitb14', fraction: 0.01, seed: 1, imageSize: 224, paramsLogged: 86475496, epochs: 50, top1: 20.44, top5: 39.588, top1Best: 22.53, top5Best: 44.68 },
  { arch: 'vitb14', fraction: 0.01, seed: 2, imageSize: 224, paramsLogged: 86475496, epochs: 50, top1: 22.04, top5: 42.128, top1Best: 23.636, top5Best: 46.174 },
  { arch: 'vitb14', fraction: 0.01, seed: 3, imageSize: 224, paramsLogged: 86475496, epochs: 50, top1: 19.92, top5: 39.4, top1Best: 22.22, top5Best: 43.998 },
  { arch: 'vitb14', fraction: 0.1, seed: 1, imageSize: 224, paramsLogged: 86475496, epochs: 50, top1: 30.616, top5: 55.208, top1Best: 32.308, top5Best: 58.382 },
  { arch: 'vitb14', fraction: 0.1, seed: 2, imageSize: 224, paramsLogged: 86475496, epochs: 50, top1: 26.352, top5: 48.808, top1Best: 28.322, top5Best: 53.274 },
  { arch: 'vitb14', fraction: 0.1, seed: 3, imageSize: 224, paramsLogged: 86475496, epochs: 50, top1: 26.968, top5: 50.324, top1Best: 29.376, top5Best: 54.534 },
  { arch: 'vitb14', fraction: 1.0, seed: 1, imageSize: 224, paramsLogged: 86475496, epochs: 50, top1: 32.12, top5: 56.864, top1Best: 33.65, top5Best: 60.044 },
  { arch: 'vitl14', fraction: 0.0001, seed: 1, imageSize: 224, paramsLogged: 304203752, epochs: 50, top1: 13.73, top5: 28.806, top1Best: 15.552, top5Best: 33.654 },
  { arch: 'vitl14', fraction: 0.0001, seed: 2, imageSize: 224, paramsLogged: 304203752, epochs: 50, top1: 13.768, top5: 29.08, top1Best: 15.428, top5Best: 33.2 },
  { arch: 'vitl14', fraction: 0.0001, seed: 3, imageSize: 224, paramsLogged: 304203752, epochs: 50, top1: 11.768, top5: 25.478, top1Best: 13.562, top5Best: 30.002 },
  { arch: 'vitl14', fraction: 0.001, seed: 1, imageSize: 224, paramsLogged: 304203752, epochs: 50, top1: 16.352, top5: 33.4, top1Best: 18.318, top5Best: 37.9 },
  { arch: 'vitl14', fraction: 0.001, seed: 2, imageSize: 224, paramsLogged: 304203752, epochs: 50, top1: 14.08, top5: 30.006, top1Best: 15.226, top5Best: 33.52 },
  { arch: 'vitl14', fraction: 0.001, seed: 3, imageSize: 224, paramsLogged: 304203752, epochs: 50, top1: 16.654, top5: 33.578, top1Best: 18.09, top5Best: 37.914 },
  { arch: 'vitl14', fraction: 0.01, seed: 1, imageSize: 224, paramsLogged: 304203752, epochs: 50, top1: 21.676, top5: 40.922, top1Best: 24.658, top5Best: 47.196 },
  { arch: 'vitl14', fraction: 0.01, seed: 2, imageSize: 224, paramsLogged: 304203752, epochs: 50, top1: 22.63, top5: 42.656, top1Best: 25.142, top5Best: 48.388 },
  { arch: 'vitl14', fraction: 0.01, seed: 3, imageSize: 224, paramsLogged: 304203752, epochs: 50, top1: 20.7, top5: 39.638, top1Best: 23.086, top5Best: 45.426 },
  { arch: 'vitl14', fraction: 0.1, seed: 1, imageSize: 224, paramsLogged: 304203752, epochs: 50, top1: 30.498, top5: 54.074, top1Best: 33.018, top5Best: 59.176 },
  { arch: 'vitl14', fraction: 0.1, seed: 2, imageSize: 224, paramsLogged: 304203752, epochs: 50, top1: 26.848, top5: 48.344, top1Best: 29.82, top5Best: 54.338 },
  { arch: 'vitl14', fraction: 0.1, seed: 3, imageSize: 224, paramsLogged: 304203752, epochs: 50, top1: 28.486, top5: 50.548, top1Best: 31.412, top5Best: 56.466 },
  { arch: 'vitl14', fraction: 1.0, seed: 1, imageSize: 224, paramsLogged: 304203752, epochs: 50, top1: 32.044, top5: 55.614, top1Best: 37.322, top5Best: 64.314 },
  { arch: 'vith14', fraction: 0.0001, seed: 1, imageSize: 224, paramsLogged: 632045800, epochs: 50, top1: 16.432, top5: 33.106, top1Best: 18.916, top5Best: 38.746 },
  { arch: 'vith14', fraction: 0.0001, seed: 2, imageSize: 224, paramsLogged: 632045800, epochs: 50, top1: 16.082, top5: 32.598, top1Best: 19.118, top5Best: 39.302 },
  { arch: 'vith14', fraction: 0.0001, seed: 3, imageSize: 224, paramsLogged: 632045800, epochs: 50, top1: 16.156, top5: 32.76, top1Best: 18.344, top5Best: 37.82 },
  { arch: 'vith14', fraction: 0.001, seed: 1, imageSize: 224, paramsLogged: 632045800, epochs: 50, top1: 17.726, top5: 34.912, top1Best: 20.322, top5Best: 41.04 },
  { arch: 'vith14', fraction: 0.001, seed: 2, imageSize: 224, paramsLogged: 632045800, epochs: 50, top1: 18.842, top5: 37.064, top1Best: 21.394, top5Best: 43.152 },
  { arch: 'vith14', fraction: 0.001, seed: 3, imageSize: 224, paramsLogged: 632045800, epochs: 50, top1: 17.04, top5: 33.9, top1Best: 19.18, top5Best: 39.184 },
  { arch: 'vith14', fraction: 0.01, seed: 1, imageSize: 224, paramsLogged: 632045800, epochs: 50, top1: 22.618, top5: 42.204, top1Best: 26.202, top5Best: 49.502 },
  { arch: 'vith14', fraction: 0.01, seed: 2, imageSize: 224, paramsLogged: 632045800, epochs: 50, top1: 24.52, top5: 45.316, top1Best: 28.036, top5Best: 51.77 },
  { arch: 'vith14', fraction: 0.01, seed: 3, imageSize: 224, paramsLogged: 632045800, epochs: 50, top1: 21.416, top5: 40.362, top1Best: 24.9, top5Best: 47.464 },
  { arch: 'vith14', fraction: 0.1, seed: 1, imageSize: 224, paramsLogged: 632045800, epochs: 50, top1: 33.214, top5: 56.852, top1Best: 36.502, top5Best: 62.772 },
  { arch: 'vith14', fraction: 0.1, seed: 2, imageSize: 224, paramsLogged: 632045800, epochs: 50, top1: 26.34, top5: 48.09, top1Best: 31.222, top5Best: 56.556 },
  { arch: 'vith14', fraction: 0.1, seed: 3, imageSize: 224, paramsLogged: 632045800, epochs: 50, top1: 29.714, top5: 52.304, top1Best: 34.404, top5Best: 60.106 },
  { arch: 'vith14', fraction: 1.0, seed: 1, imageSize: 224, paramsLogged: 632045800, epochs: 50, top1: 35.592, top5: 60.042, top1Best: 39.574, top5Best: 66.9 },
  { arch: 'vith14@448', fraction: 0.0001, seed: 1, imageSize: 448, paramsLogged: 633028840, epochs: 10, top1: 22.638, top5: 44.244, top1Best: 23.402, top5Best: 45.104 },
  { arch: 'vith14@448', fraction: 0.0001, seed: 2, imageSize: 448, paramsLogged: 633028840, epochs: 10, top1: 21.956, top5: 43.438, top1Best: 22.554, top5Best: 44.054 },
  { arch: 'vith14@448', fraction: 0.0001, seed: 3, imageSize: 448, paramsLogged: 633028840, epochs: 10, top1: 21.508, top5: 42.186, top1Best: 21.848, top5Best: 43.074 },
  { arch: 'vith14@448', fraction: 0.001, seed: 1, imageSize: 448, paramsLogged: 633028840, epochs: 10, top1: 25.62, top5: 47.81, top1Best: 25.886, top5Best: 48.634 },
  { arch: 'vith14@448', fraction: 0.001, seed: 2, imageSize: 448, paramsLogged: 633028840, epochs: 10, top1: 25.562, top5: 47.8, top1Best: 26.276, top5Best: 49.28 },
  { arch: 'vith14@448', fraction: 0.001, seed: 3, imageSize: 448, paramsLogged: 633028840, epochs: 10, top1: 24.726, top5: 46.658, top1Best: 25.498, top5Best: 48.338 },
  { arch: 'vith14@448', fraction: 0.01, seed: 1, imageSize: 448, paramsLogged: 633028840, epochs: 10, top1: 32.078, top5: 56.2, top1Best: 32.644, top5Best: 57.658 },
  { arch: 'vith14@448', fraction: 0.01, seed: 2, imageSize: 448, paramsLogged: 633028840, epochs: 10, top1: 32.218, top5: 57.13, top1Best: 32.962, top5Best: 57.792 },
  { arch: 'vith14@448', fraction: 0.01, seed: 3, imageSize: 448, paramsLogged: 633028840, epochs: 10, top1: 29.644, top5: 53.484, top1Best: 30.692, top5Best: 55.294 },
  { arch: 'vith14@448', fraction: 0.1, seed: 1, imageSize: 448, paramsLogged: 633028840, epochs: 10, top1: 37.072, top5: 63.572, top1Best: 37.464, top5Best: 63.572 },
  { arch: 'vith14@448', fraction: 0.1, seed: 2, imageSize: 448, paramsLogged: 633028840, epochs: 10, top1: 35.696, top5: 61.302, top1Best: 35.86, top5Best: 62.124 },
  { arch: 'vith14@448', fraction: 0.1, seed: 3, imageSize: 448, paramsLogged: 633028840, epochs: 10, top1: 37.38, top5: 63.248, top1Best: 38.104, top5Best: 64.202 },
  { arch: 'vith14@448', fraction: 1.0, seed: 1, imageSize: 448, paramsLogged: 633028840, epochs: 10, top1: 43.724, top5: 70.078, top1Best: 43.972, top5Best: 71.108 },
  { arch: 'vith14@476', fraction: 0.0001, seed: 1, imageSize: 476, paramsLogged: 633197800, epochs: 8, top1: 22.264, top5: 44.252, top1Best: 22.806, top5Best: 44.98 },
  { arch: 'vith14@476', fraction: 0.0001, seed: 2, imageSize: 476, paramsLogged: 633197800, epochs: 8, top1: 23.822, top5: 45.956, top1Best: 23.822, top5Best: 45.956 },
  { arch: 'vith14@476', fraction: 0.0001, seed: 3, imageSize: 476, paramsLogged: 633197800, epochs: 8, top1: 23.442, top5: 45.398, top1Best: 23.442, top5Best: 45.398 },
  { arch: 'vith14@476', fraction: 0.001, seed: 1, imageSize: 476, paramsLogged: 633197800, epochs: 8, top1: 26.61, top5: 49.416, top1Best: 26.61, top5Best: 49.648 },
  { arch: 'vith14@476', fraction: 0.001, seed: 2, imageSize: 476, paramsLogged: 633197800, epochs: 8, top1: 27.082, top5: 50.164, top1Best: 27.432, top5Best: 51.114 },
  { arch: 'vith14@476', fraction: 0.001, seed: 3, imageSize: 476, paramsLogged: 633197800, epochs: 8, top1: 24.886, top5: 47.506, top1Best: 24.886, top5Best: 47.506 },
  { arch: 'vith14@476', fraction: 0.01, seed: 1, imageSize: 476, paramsLogged: 633197800, epochs: 8, top1: 31.144, top5: 55.426, top1Best: 31.434, top5Best: 56.14 },
  { arch: 'vith14@476', fraction: 0.01, seed: 2, imageSize: 476, paramsLogged: 633197800, epochs: 8, top1: 33.42, top5: 58.374, top1Best: 33.42, top5Best: 58.924 },
  { arch: 'vith14@476', fraction: 0.01, seed: 3, imageSize: 476, paramsLogged: 633197800, epochs: 8, top1: 30.924, top5: 55.722, top1Best: 31.768, top5Best: 56.848 },
  { arch: 'vith14@476', fraction: 0.1, seed: 1, imageSize: 476, paramsLogged: 633197800, epochs: 8, top1: 38.318, top5: 64.932, top1Best: 38.318, top5Best: 64.932 },
  { arch: 'vith14@476', fraction: 0.1, seed: 2, imageSize: 476, paramsLogged: 633197800, epochs: 8, top1: 36.182, top5: 62.306, top1Best: 36.182, top5Best: 62.306 },
  { arch: 'vith14@476', fraction: 0.1, seed: 3, imageSize: 476, paramsLogged: 633197800, epochs: 8, top1: 37.108, top5: 63.44, top1Best: 37.108, top5Best: 63.754 },
  { arch: 'vith14@476', fraction: 1.0, seed: 1, imageSize: 476, paramsLogged: 633197800, epochs: 8, top1: 44.114, top5: 71.064, top1Best: 44.114, top5Best: 71.064 },
];

/**
 * The paper's runs as results: condition 'permissive-2pct', objective 'mae', hours = 5000 x fraction,
 * modelParams = the logged parameter count; `accuracy` picks the final epoch's (default) or the best epoch's.
 */
export function paper2023Runs(accuracy: 'final' | 'best' = 'final'): RunResult[] {
  return PAPER2023_RUNS.map((r) => ({
    condition: 'permissive-2pct',
    hours: PAPER2023_FULL_HOURS * r.fraction,
    seed: r.seed,
    top1: accuracy === 'best' ? r.top1Best : r.top1,
    top5: accuracy === 'best' ? r.top5Best : r.top5,
    modelParams: r.paramsLogged,
    imageSize: r.imageSize,
    objective: 'mae',
  }));
}
