// torch: tensors, creation, ops, autograd modes, memory scopes and global settings over libtorch.
import os from 'node:os';
import { native, type CpuMemoryStats } from './native.js';

export { Tensor, DTYPES, MEMORY_FORMATS, elementSize, isDType, isDevice, isFloatingDType, isMemoryFormat, typedView } from './tensor.js';
export type { DType, Device, MemoryFormat, Shape, TypedArray, ValuesIndices } from './tensor.js';
export * from './amp.js';
export * from './creation.js';
export * from './functional.js';
export { tidy, scopeDepth } from './scope.js';

/** Runs `fn` with gradient recording off (torch.no_grad). */
export function noGrad<T>(fn: () => T): T {
  return native.withNoGrad(fn);
}
/** Runs `fn` with gradient recording on (torch.enable_grad). */
export function enableGrad<T>(fn: () => T): T {
  return native.withEnableGrad(fn);
}
/** Runs `fn` in inference mode (torch.inference_mode): no autograd bookkeeping at all. */
export function inferenceMode<T>(fn: () => T): T {
  return native.withInferenceMode(fn);
}
export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}
export function setGradEnabled(enabled: boolean): void {
  native.setGradEnabled(enabled);
}
export function isInferenceModeEnabled(): boolean {
  return native.isInferenceMode();
}

export function manualSeed(seed: number): void {
  native.manualSeed(seed);
}
export function setNumThreads(n: number): void {
  native.setNumThreads(n);
}
export function getNumThreads(): number {
  return native.getNumThreads();
}

export const cuda = {
  isAvailable: (): boolean => native.cudaIsAvailable(),
  deviceCount: (): number => native.cudaDeviceCount(),
  synchronize: (): void => void native.cudaSynchronize(),
};

export const version = native.buildInfo().torchVersion;

// libtorch's default intra-op thread count can be 1 (OpenMP sees 1 core); use the machine's cores
// unless AWTY_NUM_THREADS says otherwise.
const envThreads = Number(process.env.AWTY_NUM_THREADS);
setNumThreads(Number.isInteger(envThreads) && envThreads > 0 ? envThreads : (os.availableParallelism?.() ?? os.cpus().length));

/** Whether the caching CPU allocator is used, the most bytes it may keep, and its headroom over the high-water mark. */
export interface CpuAllocatorPolicy { enabled: boolean; capBytes: number; headroom: number }

/**
 * The default headroom: blocks in use + kept may reach the high-water mark of in use plus half the
 * swing (the deepest fall of in use below that mark: a step's activations and temporaries, not the
 * parameters and optimiser state that stay in use). With 0,
 * a training step gives back at its peak the blocks of its next phase (gradients are sized unlike
 * activations) and maps them again every step: resnet18 at batch 32, 112 px, 1 thread took 708k
 * page faults and 0.8x PyTorch's speed with 0, 186k faults and about 1.3x the speed with 0.5, at
 * 693 MiB peak RSS against PyTorch's 763 (docs/benchmarks.md). Scaling by the swing rather than
 * the whole peak keeps a model whose state dominates its memory (a ViT trained with AdamW) from
 * holding half of that state again in cache.
 */
export const DEFAULT_CPU_CACHE_HEADROOM = 0.5;

/**
 * The caching CPU allocator's settings from the environment: `AWTY_CPU_CACHING_ALLOCATOR=0` turns it
 * off; `AWTY_CPU_CACHE_MB` caps the bytes it keeps; `AWTY_CPU_CACHE_HEADROOM` (default 0.5) bounds
 * blocks in use + kept to the most ever in use at once (about one training step's peak) plus
 * headroom x the swing, which the allocator enforces whatever the cap; 0 means caching never raises
 * the peak.
 */
export function cpuAllocatorPolicy(env: NodeJS.ProcessEnv = process.env): CpuAllocatorPolicy {
  const on = env.AWTY_CPU_CACHING_ALLOCATOR;
  if (on !== undefined && on !== '' && on !== '0' && on !== '1') {
    throw new Error(`AWTY_CPU_CACHING_ALLOCATOR must be 0 (off) or 1 (on), got '${on}'`);
  }
  const mb = env.AWTY_CPU_CACHE_MB;
  let capBytes = Infinity;
  if (mb !== undefined && mb !== '') {
    const n = Number(mb);
    if (!(Number.isFinite(n) && n >= 0)) throw new Error(`AWTY_CPU_CACHE_MB must be a number of MiB >= 0, got '${mb}'`);
    capBytes = Math.floor(n * 2 ** 20);
  }
  const hr = env.AWTY_CPU_CACHE_HEADROOM;
  let headroom = DEFAULT_CPU_CACHE_HEADROOM;
  if (hr !== undefined && hr !== '') {
    headroom = Number(hr);
    if (!(Number.isFinite(headroom) && headroom >= 0)) throw new Error(`AWTY_CPU_CACHE_HEADROOM must be a number >= 0, got '${hr}'`);
  }
  return { enabled: on !== '0', capBytes, headroom };
}

const allocator = cpuAllocatorPolicy();
if (allocator.enabled) native.installAllocator({ capBytes: allocator.capBytes, headroom: allocator.headroom });

export type { AutocastState, CpuMemoryStats } from './native.js';
export function cpuMemoryStats(): CpuMemoryStats {
  return native.cpuMemoryStats();
}
/** Starts the high-water mark again from what is in use now (kept blocks beyond it are returned). */
export function resetPeakMemoryStats(): void {
  native.resetPeakMemoryStats();
}
/** Returns the CPU allocator's cached free blocks to the system. */
export function emptyCache(): void {
  native.emptyCache();
}
