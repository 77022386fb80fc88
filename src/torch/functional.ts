// Functional ops on tensors (torch.* and torch.nn.functional.*), one native call each.
import { native, type NativeHandle } from './native.js';
import { Tensor } from './tensor.js';

const N = native;
const wrap = (x: NativeHandle): Tensor => new Tensor(x);
const pair = (x: number | [number, number]): [number, number] => (typeof x === 'number' ? [x, x] : x);

export function cat(tensors: Tensor[], dim = 0): Tensor {
  return wrap(N.cat(tensors.map((t) => t.handle), dim));
}
export function stack(tensors: Tensor[], dim = 0): Tensor {
  return wrap(N.stack(tensors.map((t) => t.handle), dim));
}
export function where(condition: Tensor, input: Tensor | number, other: Tensor | number): Tensor {
  const h = (x: Tensor | number): NativeHandle | number => (typeof x === 'number' ? x : x.handle);
  return wrap(N.where(condition.handle, h(input), h(other)));
}
export function matmul(a: Tensor, b: Tensor): Tensor {
  return a.matmul(b);
}
export function bmm(a: Tensor, b: Tensor): Tensor {
  return wrap(N.bmm(a.handle, b.handle));
}
export function outer(a: Tensor, b: Tensor): Tensor {
  return wrap(N.outer(a.handle, b.handle));
}
export function maximum(a: Tensor, b: Tensor): Tensor {
  return a.maximum(b);
}
export function minimum(a: Tensor, b: Tensor): Tensor {
  return a.minimum(b);
}
export function clamp(t: Tensor, min?: number, max?: number): Tensor {
  return t.clamp(min, max);
}
export function indexSelect(t: Tensor, dim: number, index: Tensor): Tensor {
  return t.indexSelect(dim, index);
}
export function gather(t: Tensor, dim: number, index: Tensor): Tensor {
  return t.gather(dim, index);
}
export function scatter(t: Tensor, dim: number, index: Tensor, src: Tensor | number): Tensor {
  return wrap(N.scatter(t.handle, dim, index.handle, typeof src === 'number' ? src : src.handle));
}
export function topk(t: Tensor, k: number, dim = -1, largest = true, sorted = true): { values: Tensor; indices: Tensor } {
  return t.topk(k, dim, largest, sorted);
}
export function oneHot(t: Tensor, numClasses = -1): Tensor {
  return wrap(N.oneHot(t.handle, numClasses));
}
export function allclose(a: Tensor, b: Tensor, rtol = 1e-5, atol = 1e-8): boolean {
  return a.allclose(b, rtol, atol);
}
export function equal(a: Tensor, b: Tensor): boolean {
  return a.equal(b);
}

export interface Conv2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  groups?: number;
}
export function conv2d(input: Tensor, weight: Tensor, bias?: Tensor | null, o: Conv2dOptions = {}): Tensor {
  return wrap(N.conv2d(input.handle, weight.handle, bias?.handle, pair(o.stride ?? 1), pair(o.padding ?? 0), pair(o.dilation ?? 1), o.groups ?? 1));
}

export interface BatchNormOptions {
  training?: boolean;
  momentum?: number;
  eps?: number;
}
/** batch_norm: in training mode normalises with batch statistics and updates the running ones in place. */
export function batchNorm(
  input: Tensor,
  runningMean: Tensor | null | undefined,
  runningVar: Tensor | null | undefined,
  weight?: Tensor | null,
  bias?: Tensor | null,
  o: BatchNormOptions = {},
): Tensor {
  return wrap(N.batchNorm(input.handle, weight?.handle, bias?.handle, runningMean?.handle, runningVar?.handle, o.training ?? false, o.momentum ?? 0.1, o.eps ?? 1e-5));
}
export function layerNorm(input: Tensor, normalizedShape: number[], weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  return wrap(N.layerNorm(input.handle, normalizedShape, weight?.handle, bias?.handle, eps));
}
/** relu; with `inplace` the input is overwritten and the result is a new reference to it (the caller's to dispose). */
export function relu(input: Tensor, inplace = false): Tensor {
  return wrap(inplace ? N.alias(N.relu_(input.handle)) : N.relu(input.handle));
}
export function gelu(input: Tensor): Tensor {
  return wrap(N.gelu(input.handle));
}
export function silu(input: Tensor): Tensor {
  return wrap(N.silu(input.handle));
}
export function leakyRelu(input: Tensor, negativeSlope = 0.01): Tensor {
  return wrap(N.leakyRelu(input.handle, negativeSlope));
}
export function sigmoid(input: Tensor): Tensor {
  return input.sigmoid();
}

export interface MaxPool2dOptions {
  stride?: number | [number, number];
  padding?: number | [number, number];
  dilation?: number | [number, number];
  ceilMode?: boolean;
}
export function maxPool2d(input: Tensor, kernelSize: number | [number, number], o: MaxPool2dOptions = {}): Tensor {
  const k = pair(kernelSize);
  return wrap(N.maxPool2d(input.handle, k, pair(o.stride ?? k), pair(o.padding ?? 0), pair(o.dilation ?? 1), o.ceilMode ?? false));
}
export function avgPool2d(
  input: Tensor,
  kernelSize: number | [number, number],
  o: { stride?: number | [number, number]; padding?: number | [number, number]; ceilMode?: boolean; countIncludePad?: boolean } = {},
): Tensor {
  const k = pair(kernelSize);
  return wrap(N.avgPool2d(input.handle, k, pair(o.stride ?? k), pair(o.padding ?? 0), o.ceilMode ?? false, o.countIncludePad ?? true));
}
export function adaptiveAvgPool2d(input: Tensor, outputSize: number | [number, number]): Tensor {
  return wrap(N.adaptiveAvgPool2d(input.handle, pair(outputSize)));
}
export function linear(input: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  return wrap(N.linear(input.handle, weight.handle, bias?.handle));
}
export function dropout(input: Tensor, p = 0.5, training = true): Tensor {
  if (p < 0 || p > 1) throw new RangeError(`dropout: probability must be in [0, 1], got ${p}`);
  return wrap(N.dropout(input.handle, p, training));
}
export function logSoftmax(input: Tensor, dim: number): Tensor {
  return input.logSoftmax(dim);
}
export function softmax(input: Tensor, dim: number): Tensor {
  return input.softmax(dim);
}

export type Reduction = 'mean' | 'sum' | 'none';
export interface CrossEntropyOptions {
  weight?: Tensor;
  reduction?: Reduction;
  ignoreIndex?: number;
  labelSmoothing?: number;
}
/** cross_entropy(input logits [N, C], target class indices [N] int64 or probabilities [N, C]). */
export function crossEntropy(input: Tensor, target: Tensor, o: CrossEntropyOptions = {}): Tensor {
  return wrap(N.crossEntropy(input.handle, target.handle, o.weight?.handle, o.reduction ?? 'mean', o.ignoreIndex ?? -100, o.labelSmoothing ?? 0));
}
export function nllLoss(input: Tensor, target: Tensor, o: { weight?: Tensor; reduction?: Reduction; ignoreIndex?: number } = {}): Tensor {
  return wrap(N.nllLoss(input.handle, target.handle, o.weight?.handle, o.reduction ?? 'mean', o.ignoreIndex ?? -100));
}
export function mseLoss(input: Tensor, target: Tensor, reduction: Reduction = 'mean'): Tensor {
  return wrap(N.mseLoss(input.handle, target.handle, reduction));
}
export function binaryCrossEntropyWithLogits(input: Tensor, target: Tensor, o: { weight?: Tensor; reduction?: Reduction } = {}): Tensor {
  return wrap(N.binaryCrossEntropyWithLogits(input.handle, target.handle, o.weight?.handle, o.reduction ?? 'mean'));
}

export interface InterpolateOptions {
  size: number | [number, number];
  mode?: 'bilinear' | 'bicubic' | 'nearest';
  alignCorners?: boolean;
  antialias?: boolean;
}
/** interpolate (NCHW): resize to `size` with bilinear, bicubic or nearest sampling. */
export function interpolate(input: Tensor, o: InterpolateOptions): Tensor {
  return wrap(N.interpolate(input.handle, pair(o.size), o.mode ?? 'nearest', o.alignCorners ?? false, o.antialias ?? false));
}
export function pad(input: Tensor, padding: number[], mode: 'constant' | 'reflect' | 'replicate' | 'circular' = 'constant', value?: number): Tensor {
  return wrap(N.pad(input.handle, padding, mode, value));
}
