// The data points behind Figure 1 of Orhan (2021), embedded so that `awty figure1` works without any
// runs of its own.
//
// Source: Orhan AE (2021) "How much 'human-like' visual experience do current self-supervised
// learning algorithms need to achieve human-level object recognition?" arXiv:2109.11523, as listed
// under "Data points" in the README of the paper's public code (eminorhan/human-ssl).
// Hours are hours of headcam video used for self-supervised (temporal classification) training:
// 0.1%, 1%, 10% and 100% of the 16,279 episodes of 288 s (1.301, 13.01, 130.1, 1301 h).
// Accuracies are ImageNet validation top-1 / top-5 in percent. The README lists three runs per video
// length (one for the 1301 h linear probe) in order but does not name their seeds; they are given
// seeds 1, 2, 3 here in the order listed.

import type { RunResult } from './results.js';

export const PAPER_SOURCE = 'Orhan (2021), arXiv:2109.11523, Figure 1 data points (from the README of eminorhan/human-ssl)';

interface PaperCondition {
  readonly description: string;
  readonly hours: readonly number[];
  readonly top1: readonly number[];
  readonly top5: readonly number[];
}

/** The paper's three evaluation conditions, exactly as published. */
export const PAPER_CONDITIONS: Readonly<Record<string, PaperCondition>> = {
  'few-shot-1pct': {
    description: 'fine-tuned on exactly 13000 labeled ImageNet images (frac-retained 0.010147)',
    hours: [1.301, 1.301, 1.301, 13.01, 13.01, 13.01, 130.1, 130.1, 130.1, 1301, 1301, 1301],
    top5: [20.356, 20.356, 21.388, 31.688, 30.544, 29.692, 35.040, 35.486, 34.296, 42.958, 42.332, 42.426],
    top1: [8.012, 7.906, 8.720, 14.796, 14.298, 13.802, 17.160, 17.228, 16.578, 22.386, 21.980, 22.090],
  },
  'few-shot-2pct': {
    description: 'fine-tuned on 2% of the labeled ImageNet training set (frac-retained 0.02)',
    hours: [1.301, 1.301, 1.301, 13.01, 13.01, 13.01, 130.1, 130.1, 130.1, 1301, 1301, 1301],
    top5: [34.238, 29.392, 30.076, 45.036, 43.330, 42.334, 47.408, 48.498, 47.636, 54.304, 54.530, 55.044],
    top1: [16.108, 12.976, 13.392, 23.464, 22.008, 21.522, 25.692, 26.426, 25.566, 30.822, 30.988, 31.238],
  },
  'linear-probe': {
    description: 'trunk frozen, linear head trained on the full labeled ImageNet training set (frac-retained 1.0, freeze-trunk)',
    hours: [1.301, 1.301, 1.301, 13.01, 13.01, 13.01, 130.1, 130.1, 130.1, 1301],
    top5: [25.426, 21.740, 24.654, 45.316, 45.032, 42.262, 52.620, 57.828, 53.482, 66.740],
    top1: [11.892, 9.576, 11.168, 25.484, 25.316, 23.436, 31.028, 35.502, 31.536, 43.542],
  },
};

/** The paper's data as one run record per published point. */
export function paperRuns(): RunResult[] {
  const runs: RunResult[] = [];
  for (const [condition, c] of Object.entries(PAPER_CONDITIONS)) {
    const seen = new Map<number, number>();
    c.hours.forEach((hours, i) => {
      const seed = (seen.get(hours) ?? 0) + 1;
      seen.set(hours, seed);
      runs.push({ condition, hours, seed, top1: c.top1[i]!, top5: c.top5[i]! });
    });
  }
  return runs;
}
