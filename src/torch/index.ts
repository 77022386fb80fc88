// torch: tensors, creation, ops, autograd modes, memory scopes and global settings over libtorch.
import os from 'node:os';
import { native } from './native.js';

export { Tensor, DTYPES, elementSize, isDType, isDevice, isFloatingDType, typedView } from './tensor.js';
export type { DType, Device, Shape, TypedArray, ValuesIndices } from './tensor.js';
export * from './creation.js';
export * from './functional.js';
export { tidy, scopeDepth } from './scope.js';

/** Runs `fn` with gradient recording off (torch.no_grad). */
export function noGrad<T>(fn: () => T): T {
  return native.withNoGrad(fn) as T;
}
/** Runs `fn` with gradient recording on (torch.enable_grad). */
export function enableGrad<T>(fn: () => T): T {
  return native.withEnableGrad(fn) as T;
}
/** Runs `fn` in inference mode (torch.inference_mode): no autograd bookkeeping at all. */
export function inferenceMode<T>(fn: () => T): T {
  return native.withInferenceMode(fn) as T;
}
export function isGradEnabled(): boolean {
  return native.isGradEnabled() as boolean;
}
export function setGradEnabled(enabled: boolean): void {
  native.setGradEnabled(enabled);
}
export function isInferenceModeEnabled(): boolean {
  return native.isInferenceMode() as boolean;
}

export function manualSeed(seed: number): void {
  native.manualSeed(seed);
}
export function setNumThreads(n: number): void {
  native.setNumThreads(n);
}
export function getNumThreads(): number {
  return native.getNumThreads() as number;
}

export const cuda = {
  isAvailable: (): boolean => native.cudaIsAvailable() as boolean,
  deviceCount: (): number => native.cudaDeviceCount() as number,
  synchronize: (): void => void native.cudaSynchronize(),
};

export const version = (native.buildInfo() as { torchVersion: string }).torchVersion;

// libtorch's default intra-op thread count can be 1 (OpenMP sees 1 core); use the machine's cores
// unless AWTY_NUM_THREADS says otherwise.
const envThreads = Number(process.env.AWTY_NUM_THREADS);
setNumThreads(Number.isInteger(envThreads) && envThreads > 0 ? envThreads : (os.availableParallelism?.() ?? os.cpus().length));

/** The addon's caching CPU allocator: bytes in large blocks in use and kept for reuse. */
export function cpuMemoryStats(): { largeBlocksInUse: number; cached: number } {
  return native.cpuMemoryStats() as { largeBlocksInUse: number; cached: number };
}
/** Returns the CPU allocator's cached free blocks to the system. */
export function emptyCache(): void {
  native.emptyCache();
}
