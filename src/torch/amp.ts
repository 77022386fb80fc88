// Memory-format names (torch.channels_last, ...) and autocast (torch.autocast): the thread's
// autocast state is libtorch's; this file names it and checks the arguments.
import { native, type AutocastState } from './native.js';
import { isDType, type DType } from './dtypes.js';
import type { MemoryFormat } from './native.js';

/** torch.contiguous_format: row-major (NCHW for a 4-d tensor). */
export const contiguousFormat: MemoryFormat = 'contiguousFormat';
/** torch.channels_last: NHWC order in memory for a 4-d NCHW-shaped tensor. */
export const channelsLast: MemoryFormat = 'channelsLast';
/** torch.channels_last_3d: NDHWC order for a 5-d tensor. */
export const channelsLast3d: MemoryFormat = 'channelsLast3d';
/** torch.preserve_format: keep the input's layout (the default of `to` and the `*Like` creators). */
export const preserveFormat: MemoryFormat = 'preserveFormat';

export interface AutocastOptions {
  /** the lower-precision dtype: default bfloat16 on CPU, float16 on CUDA (as PyTorch) */
  dtype?: DType;
  /** default true; false runs `fn` with autocast off for this device type (a nested region in full precision) */
  enabled?: boolean;
  /** keep the casts of leaf weights for the region (default true, as PyTorch) */
  cacheEnabled?: boolean;
}

/**
 * torch.autocast(device_type, dtype=..., enabled=...) around `fn`: inside it, the ops on PyTorch's
 * autocast lists (convolutions, linear, matmul, ...) run in `dtype`, the others in float32. On CPU
 * libtorch 1.13 autocasts to bfloat16 only; on CUDA to float16 or bfloat16. `fn` must be
 * synchronous; the previous state comes back when it returns or throws. Run the backward pass
 * outside the region (as PyTorch recommends): it follows the forward's dtypes.
 */
export function autocast<T>(deviceType: 'cpu' | 'cuda', options: AutocastOptions, fn: () => T): T {
  if (deviceType !== 'cpu' && deviceType !== 'cuda') throw new TypeError(`autocast: deviceType must be 'cpu' or 'cuda', got ${String(deviceType)}`);
  if (typeof fn !== 'function') throw new TypeError('autocast: the last argument must be a function to run under autocast');
  const dtype = options.dtype ?? (deviceType === 'cpu' ? 'bfloat16' : 'float16');
  if (!isDType(dtype)) throw new TypeError(`autocast: dtype must be a dtype name, got ${String(dtype)}`);
  const enabled = options.enabled ?? true;
  if (enabled && deviceType === 'cpu' && dtype !== 'bfloat16') {
    throw new Error(`autocast: CPU autocast supports only bfloat16 in libtorch ${native.buildInfo().torchVersion}, got ${dtype}`);
  }
  if (enabled && deviceType === 'cuda' && dtype !== 'float16' && dtype !== 'bfloat16') {
    throw new Error(`autocast: CUDA autocast supports float16 and bfloat16, got ${dtype}`);
  }
  const result = native.withAutocast(deviceType, enabled, dtype, options.cacheEnabled ?? true, fn);
  if (result instanceof Promise) throw new Error('autocast: the function returned a Promise; autocast covers only synchronous code');
  return result;
}

/** The thread's autocast settings now. */
export function autocastState(): AutocastState {
  return native.autocastState();
}
/** torch.is_autocast_enabled (CUDA) */
export function isAutocastEnabled(): boolean {
  return native.autocastState().cudaEnabled;
}
/** torch.is_autocast_cpu_enabled */
export function isAutocastCpuEnabled(): boolean {
  return native.autocastState().cpuEnabled;
}
/** torch.get_autocast_cpu_dtype */
export function getAutocastCpuDtype(): DType {
  return native.autocastState().cpuDtype;
}
/** torch.get_autocast_gpu_dtype */
export function getAutocastGpuDtype(): DType {
  return native.autocastState().cudaDtype;
}
