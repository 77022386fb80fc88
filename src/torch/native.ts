// Loads the native addon (native/build/Release/awty_native.node) once, and types it: every function
// the addon exports, with its arguments and result. The addon registers each function where it is
// defined (AWTY_OP in native/src/*.cc); NATIVE_FUNCTIONS below is checked against this interface at
// compile time and against the loaded addon by test/engine-native.test.ts.
import { createRequire } from 'node:module';
import { addonPath, buildHint, packageRoot } from './addon-path.js';
import type { DType } from './dtypes.js';
import type { Device } from './tensor.js';

/** An opaque handle to one libtorch tensor owned by the addon. */
export interface NativeHandle {
  dispose(): void;
  isDisposed(): boolean;
}

declare const c10d: unique symbol;
/** Opaque c10d handles (JS externals owning one reference each; `distRelease` drops it). */
export interface StoreHandle { readonly [c10d]: 'store' }
export interface GroupHandle { readonly [c10d]: 'group' }
export interface WorkHandle { readonly [c10d]: 'work' }

type H = NativeHandle;
/** A tensor or a number (a libtorch Scalar: integral numbers stay integral). */
type HN = H | number;
/** An optional tensor argument (None in libtorch). */
type OptH = H | undefined;
type Pair = [number, number];
type Dims = number | number[];
type Unary = (t: H) => H;
type Binary = (t: H, other: HN) => H;
type InPlace = (t: H) => H;

/** The addon's caching CPU allocator (its numbers are 0 when it is not installed). */
export interface CpuMemoryStats {
  /** bytes in large blocks in use */
  largeBlocksInUse: number;
  /** bytes in freed large blocks kept for reuse */
  cached: number;
  /** the most bytes in use at once since the start or resetPeakMemoryStats() */
  peakInUse: number;
  /** the deepest fall of bytes in use below the peak reached before it, since then (a step's transient memory) */
  swing: number;
  /** the most bytes in use + kept at once since then (never above peakInUse + headroom x swing) */
  peakMapped: number;
  /** the cap on kept bytes (Infinity: only the high-water mark bounds it) */
  capBytes: number;
  /** in use + kept stay within peakInUse + headroom x swing */
  headroom: number;
  /** fresh mappings made since the start (requests no kept range could hold) */
  maps: number;
  /** requests served from part of a larger kept range since the start */
  splits: number;
}

/** torch.memory_format: how a 4-d (5-d) tensor's elements are laid out (torch.channels_last, ...). */
export type MemoryFormat = 'contiguousFormat' | 'channelsLast' | 'channelsLast3d' | 'preserveFormat';

/** The thread's autocast settings (torch.is_autocast_cpu_enabled, torch.get_autocast_cpu_dtype, ...). */
export interface AutocastState {
  cpuEnabled: boolean;
  cpuDtype: DType;
  cudaEnabled: boolean;
  cudaDtype: DType;
  cacheEnabled: boolean;
}

/** Every function of awty_native.node. In-place ops (`_`) return the handle they were given. */
export interface NativeFunctions {
  // creation (tensor.cc)
  empty(shape: number[], dtype?: DType, device?: string): H;
  zeros(shape: number[], dtype?: DType, device?: string): H;
  ones(shape: number[], dtype?: DType, device?: string): H;
  full(shape: number[], value: number, dtype?: DType, device?: string): H;
  arange(start: number, end: number, step: number, dtype?: DType, device?: string): H;
  rand(shape: number[], dtype?: DType, device?: string): H;
  randn(shape: number[], dtype?: DType, device?: string): H;
  randint(low: number, high: number, shape: number[], dtype?: DType, device?: string): H;
  randperm(n: number): H;
  eye(n: number, dtype?: DType, device?: string): H;
  /** One copy of the bytes into a new CPU tensor of that shape and dtype. */
  fromBuffer(data: ArrayBufferView | ArrayBuffer, shape: number[], dtype: DType): H;
  /**
   * New CPU tensors holding a file's bytes: item k is [position, shape, dtype], read with positional
   * reads on up to `threads` threads off the main thread; rejects naming the item on a short read.
   */
  readFile(fd: number, items: [number, number[], DType][], threads: number): Promise<H[]>;
  /** The bytes of a contiguous CPU tensor, sharing its memory (the buffer keeps the storage alive). */
  buffer(t: H): ArrayBuffer;
  // metadata
  shape(t: H): number[];
  strides(t: H): number[];
  storageOffset(t: H): number;
  dtype(t: H): DType;
  device(t: H): Device;
  numel(t: H): number;
  dim(t: H): number;
  isContiguous(t: H): boolean;
  sameStorage(a: H, b: H): boolean;
  storageKey(t: H): string;
  item(t: H): number | boolean;
  // conversion and copies
  to(t: H, dtype: DType | undefined, device: string | undefined, copy: boolean): H;
  clone: Unary;
  contiguous: Unary;
  detach: Unary;
  /** A second handle to the same tensor. */
  alias: Unary;
  copy_(t: H, src: H): H;
  // autograd
  requiresGrad(t: H): boolean;
  setRequiresGrad(t: H, value: boolean): void;
  isLeaf(t: H): boolean;
  /** The gradient, or undefined; `known` itself while it still holds that same gradient. */
  grad(t: H, known?: H): H | undefined;
  setGrad(t: H, grad: OptH): void;
  backward(t: H, gradient: OptH, retainGraph: boolean): void;
  withNoGrad<T>(fn: () => T): T;
  withEnableGrad<T>(fn: () => T): T;
  withInferenceMode<T>(fn: () => T): T;
  isGradEnabled(): boolean;
  setGradEnabled(enabled: boolean): void;
  isInferenceMode(): boolean;
  // global state
  manualSeed(seed: number): void;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  cudaIsAvailable(): boolean;
  cudaDeviceCount(): number;
  cudaSynchronize(): void;
  buildInfo(): { torchVersion: string; cudaBuilt: boolean; parallelInfo: string };

  // views (ops.cc)
  view(t: H, shape: number[]): H;
  reshape(t: H, shape: number[]): H;
  permute(t: H, dims: number[]): H;
  transpose(t: H, dim0: number, dim1: number): H;
  flatten(t: H, startDim: number, endDim: number): H;
  squeeze(t: H, dim?: number): H;
  unsqueeze(t: H, dim: number): H;
  narrow(t: H, dim: number, start: number, length: number): H;
  slice(t: H, dim: number, start: number | undefined, end: number | undefined, step: number): H;
  select(t: H, dim: number, index: number): H;
  expand(t: H, shape: number[]): H;
  asStrided(t: H, size: number[], stride: number[], storageOffset?: number): H;
  flip(t: H, dims: number[]): H;
  chunk(t: H, chunks: number, dim: number): H[];
  split(t: H, splitSize: number, dim: number): H[];
  unbind(t: H, dim: number): H[];
  // elementwise
  add(t: H, other: HN, alpha?: number): H;
  sub(t: H, other: HN, alpha?: number): H;
  mul: Binary;
  div: Binary;
  remainder: Binary;
  eq: Binary;
  ne: Binary;
  lt: Binary;
  le: Binary;
  gt: Binary;
  ge: Binary;
  pow: Binary;
  maximum(a: H, b: H): H;
  minimum(a: H, b: H): H;
  logicalAnd(a: H, b: H): H;
  logicalOr(a: H, b: H): H;
  lerp(t: H, end: H, weight: number): H;
  neg: Unary;
  exp: Unary;
  log: Unary;
  log1p: Unary;
  expm1: Unary;
  sqrt: Unary;
  rsqrt: Unary;
  abs: Unary;
  sigmoid: Unary;
  tanh: Unary;
  floor: Unary;
  ceil: Unary;
  round: Unary;
  sign: Unary;
  reciprocal: Unary;
  sin: Unary;
  cos: Unary;
  square: Unary;
  logicalNot: Unary;
  isnan: Unary;
  isfinite: Unary;
  clamp(t: H, min?: number, max?: number): H;
  where(condition: H, input: HN, other: HN): H;
  maskedFill(t: H, mask: H, value: number): H;
  // reductions
  sum(t: H, dim: Dims | undefined, keepdim: boolean, dtype?: DType): H;
  mean(t: H, dim: Dims | undefined, keepdim: boolean): H;
  prod(t: H, dim: number | undefined, keepdim: boolean): H;
  maxAll: Unary;
  minAll: Unary;
  maxDim(t: H, dim: number, keepdim: boolean): [H, H];
  minDim(t: H, dim: number, keepdim: boolean): [H, H];
  argmax(t: H, dim: number | undefined, keepdim: boolean): H;
  argmin(t: H, dim: number | undefined, keepdim: boolean): H;
  std(t: H, dim: Dims | undefined, unbiased: boolean, keepdim: boolean): H;
  var(t: H, dim: Dims | undefined, unbiased: boolean, keepdim: boolean): H;
  norm(t: H, p: number, dim: Dims | undefined, keepdim: boolean): H;
  all: Unary;
  any: Unary;
  cumsum(t: H, dim: number): H;
  logsumexp(t: H, dim: Dims, keepdim: boolean): H;
  // linear algebra, indexing, joining
  matmul(a: H, b: H): H;
  mm(a: H, b: H): H;
  bmm(a: H, b: H): H;
  outer(a: H, b: H): H;
  topk(t: H, k: number, dim: number, largest: boolean, sorted: boolean): [H, H];
  sort(t: H, dim: number, descending: boolean): [H, H];
  cat(tensors: H[], dim: number): H;
  stack(tensors: H[], dim: number): H;
  indexSelect(t: H, dim: number, index: H): H;
  gather(t: H, dim: number, index: H): H;
  scatter(t: H, dim: number, index: H, src: HN): H;
  oneHot(t: H, numClasses: number): H;
  allclose(a: H, b: H, rtol: number, atol: number): boolean;
  equal(a: H, b: H): boolean;
  // in place
  add_(t: H, other: HN, alpha?: number): H;
  sub_(t: H, other: HN, alpha?: number): H;
  mul_: Binary;
  div_: Binary;
  addcmul_(t: H, t1: H, t2: H, value: number): H;
  addcdiv_(t: H, t1: H, t2: H, value: number): H;
  lerp_(t: H, end: H, weight: number): H;
  maximum_(t: H, other: H): H;
  zero_: InPlace;
  fill_(t: H, value: number): H;
  clamp_(t: H, min?: number, max?: number): H;
  sqrt_: InPlace;
  neg_: InPlace;
  uniform_(t: H, from: number, to: number): H;
  normal_(t: H, mean: number, std: number): H;
  bernoulli_(t: H, p: number): H;

  // torch.nn.functional (nn.cc)
  conv2d(input: H, weight: H, bias: OptH, stride: Pair, padding: Pair, dilation: Pair, groups: number): H;
  batchNorm(input: H, weight: OptH, bias: OptH, runningMean: OptH, runningVar: OptH, training: boolean, momentum: number, eps: number): H;
  layerNorm(input: H, normalizedShape: number[], weight: OptH, bias: OptH, eps: number): H;
  relu: Unary;
  relu_: InPlace;
  gelu: Unary;
  silu: Unary;
  leakyRelu(input: H, negativeSlope: number): H;
  maxPool2d(input: H, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, ceilMode: boolean): H;
  avgPool2d(input: H, kernel: Pair, stride: Pair, padding: Pair, ceilMode: boolean, countIncludePad: boolean): H;
  adaptiveAvgPool2d(input: H, outputSize: Pair): H;
  linear(input: H, weight: H, bias: OptH): H;
  dropout(input: H, p: number, training: boolean): H;
  logSoftmax(input: H, dim: number): H;
  softmax(input: H, dim: number): H;
  crossEntropy(input: H, target: H, weight: OptH, reduction: string, ignoreIndex: number, labelSmoothing: number): H;
  nllLoss(input: H, target: H, weight: OptH, reduction: string, ignoreIndex: number): H;
  mseLoss(input: H, target: H, reduction: string): H;
  binaryCrossEntropyWithLogits(input: H, target: H, weight: OptH, reduction: string): H;
  interpolate(input: H, size: Pair, mode: string, alignCorners: boolean, antialias: boolean): H;
  pad(input: H, padding: number[], mode: string, value?: number): H;

  // memory formats, autocast, GradScaler's kernels (amp.cc)
  contiguousAs(t: H, format: MemoryFormat): H;
  isContiguousAs(t: H, format: MemoryFormat): boolean;
  suggestMemoryFormat(t: H): MemoryFormat;
  toMemoryFormat(t: H, dtype: DType | undefined, device: string | undefined, copy: boolean, format: MemoryFormat): H;
  emptyLike(t: H, dtype?: DType, device?: string, format?: MemoryFormat): H;
  zerosLike(t: H, dtype?: DType, device?: string, format?: MemoryFormat): H;
  withAutocast<T>(deviceType: 'cpu' | 'cuda', enabled: boolean, dtype: DType, cacheEnabled: boolean, fn: () => T): T;
  autocastState(): AutocastState;
  /** CUDA only in libtorch 1.13. */
  ampForeachNonFiniteCheckAndUnscale_(grads: H[], foundInf: H, invScale: H): void;
  /** CUDA only in libtorch 1.13. */
  ampUpdateScale_(scale: H, growthTracker: H, foundInf: H, growthFactor: number, backoffFactor: number, growthInterval: number): H;

  // the caching CPU allocator (allocator.cc): mechanical; the policy is cpuAllocatorPolicy()'s
  installAllocator(o: { capBytes: number; headroom: number }): void;
  cpuMemoryStats(): CpuMemoryStats;
  resetPeakMemoryStats(): void;
  emptyCache(): void;

  // c10d (dist.cc)
  tcpStore(host: string, port: number, isServer: boolean, numWorkers: number, timeoutMs: number, waitWorkers: boolean): StoreHandle;
  tcpStorePort(store: StoreHandle): number;
  prefixStore(prefix: string, store: StoreHandle): StoreHandle;
  storeSet(store: StoreHandle, key: string, value: string): void;
  storeGet(store: StoreHandle, key: string): string;
  storeAdd(store: StoreHandle, key: string, delta: number): number;
  storeWait(store: StoreHandle, keys: string[], timeoutMs: number): void;
  processGroupGloo(store: StoreHandle, rank: number, size: number, timeoutMs: number, deviceKind: 'interface' | 'hostname' | 'default', deviceArg: string, threads: number): GroupHandle;
  processGroupNCCL(store: StoreHandle, rank: number, size: number, timeoutMs: number): GroupHandle;
  distAllreduce(group: GroupHandle, tensors: H[], op: string, timeoutMs: number): WorkHandle;
  distAllreduceWithGrad(group: GroupHandle, x: H, timeoutMs: number): H;
  distBroadcast(group: GroupHandle, tensors: H[], rootRank: number, timeoutMs: number): WorkHandle;
  distAllgather(group: GroupHandle, outputs: H[], input: H, timeoutMs: number): WorkHandle;
  distBarrier(group: GroupHandle, timeoutMs: number): WorkHandle;
  distWorkWait(work: WorkHandle): void;
  distWorkIsCompleted(work: WorkHandle): boolean;
  distRelease(handle: StoreHandle | GroupHandle | WorkHandle): void;
}

export type NativeModule = NativeFunctions & {
  TensorHandle: new () => NativeHandle;
};

/** The names of NativeFunctions, checked complete (and nothing more) by the compiler. */
export const NATIVE_FUNCTIONS = Object.keys({
  empty: 1, zeros: 1, ones: 1, full: 1, arange: 1, rand: 1, randn: 1, randint: 1, randperm: 1, eye: 1, fromBuffer: 1, readFile: 1, buffer: 1,
  shape: 1, strides: 1, storageOffset: 1, dtype: 1, device: 1, numel: 1, dim: 1, isContiguous: 1, sameStorage: 1, storageKey: 1, item: 1,
  to: 1, clone: 1, contiguous: 1, detach: 1, alias: 1, copy_: 1,
  requiresGrad: 1, setRequiresGrad: 1, isLeaf: 1, grad: 1, setGrad: 1, backward: 1, withNoGrad: 1, withEnableGrad: 1, withInferenceMode: 1,
  isGradEnabled: 1, setGradEnabled: 1, isInferenceMode: 1,
  manualSeed: 1, setNumThreads: 1, getNumThreads: 1, cudaIsAvailable: 1, cudaDeviceCount: 1, cudaSynchronize: 1, buildInfo: 1,
  view: 1, reshape: 1, permute: 1, transpose: 1, flatten: 1, squeeze: 1, unsqueeze: 1, narrow: 1, slice: 1, select: 1, expand: 1,
  asStrided: 1, flip: 1, chunk: 1, split: 1, unbind: 1,
  add: 1, sub: 1, mul: 1, div: 1, remainder: 1, eq: 1, ne: 1, lt: 1, le: 1, gt: 1, ge: 1, pow: 1, maximum: 1, minimum: 1,
  logicalAnd: 1, logicalOr: 1, lerp: 1,
  neg: 1, exp: 1, log: 1, log1p: 1, expm1: 1, sqrt: 1, rsqrt: 1, abs: 1, sigmoid: 1, tanh: 1, floor: 1, ceil: 1, round: 1, sign: 1,
  reciprocal: 1, sin: 1, cos: 1, square: 1, logicalNot: 1, isnan: 1, isfinite: 1, clamp: 1, where: 1, maskedFill: 1,
  sum: 1, mean: 1, prod: 1, maxAll: 1, minAll: 1, maxDim: 1, minDim: 1, argmax: 1, argmin: 1, std: 1, var: 1, norm: 1, all: 1, any: 1,
  cumsum: 1, logsumexp: 1,
  matmul: 1, mm: 1, bmm: 1, outer: 1, topk: 1, sort: 1, cat: 1, stack: 1, indexSelect: 1, gather: 1, scatter: 1, oneHot: 1,
  allclose: 1, equal: 1,
  add_: 1, sub_: 1, mul_: 1, div_: 1, addcmul_: 1, addcdiv_: 1, lerp_: 1, maximum_: 1, zero_: 1, fill_: 1, clamp_: 1, sqrt_: 1,
  neg_: 1, uniform_: 1, normal_: 1, bernoulli_: 1,
  conv2d: 1, batchNorm: 1, layerNorm: 1, relu: 1, relu_: 1, gelu: 1, silu: 1, leakyRelu: 1, maxPool2d: 1, avgPool2d: 1,
  adaptiveAvgPool2d: 1, linear: 1, dropout: 1, logSoftmax: 1, softmax: 1, crossEntropy: 1, nllLoss: 1, mseLoss: 1,
  binaryCrossEntropyWithLogits: 1, interpolate: 1, pad: 1,
  contiguousAs: 1, isContiguousAs: 1, suggestMemoryFormat: 1, toMemoryFormat: 1, emptyLike: 1, zerosLike: 1, withAutocast: 1,
  autocastState: 1, ampForeachNonFiniteCheckAndUnscale_: 1, ampUpdateScale_: 1,
  installAllocator: 1, cpuMemoryStats: 1, resetPeakMemoryStats: 1, emptyCache: 1,
  tcpStore: 1, tcpStorePort: 1, prefixStore: 1, storeSet: 1, storeGet: 1, storeAdd: 1, storeWait: 1, processGroupGloo: 1,
  processGroupNCCL: 1, distAllreduce: 1, distAllreduceWithGrad: 1, distBroadcast: 1, distAllgather: 1, distBarrier: 1, distWorkWait: 1, distWorkIsCompleted: 1,
  distRelease: 1,
} satisfies Record<keyof NativeFunctions, 1>) as (keyof NativeFunctions)[];

function locate(): string {
  const p = addonPath('awty_native.node');
  if (p) return p;
  throw new Error(`awty: the native addon is not built (native/build/Release/awty_native.node missing under ${packageRoot()}). ${buildHint()}`);
}

const require = createRequire(import.meta.url);
export const native = require(locate()) as NativeModule;
