// Scaling analysis of Orhan (2021): fits of accuracy against hours of video, extrapolation to
// human-level targets, bootstrap over seeds, sensitivity, the Figure 1 plot, and the results-file
// format that `awty finetune` writes and `awty figure1` reads.
export * from './fit.js';
export * from './bootstrap.js';
export * from './analysis.js';
export * from './results.js';
export * from './paper-data.js';
export * from './plot.js';
export * from './format.js';
export * from './report.js';
export { writeFigure1, type Figure1Outputs } from './outputs.js';
export * from './joint.js';
export { additiveError, fitAdditive, levenbergMarquardt, nnlsSmall, type AdditiveLaw, type LmProblem, type LmResult } from './additive.js';
export * from './joint-analysis.js';
export * from './paper2023-data.js';
export { formatJointReport, frontierCsv, writeScaling, type ScalingOutputs } from './joint-outputs.js';
