// The compiled pixel kernels (native/src/image.cc, built as native/build/Release/awty_image.node):
// the executor of op programs with the same bytes as the TypeScript kernels of kernels.ts, which
// stay the reference and the fallback. The module has no libtorch and no process-wide state, so
// every worker thread loads it; when it is missing (not built) or AWTY_NATIVE_IMAGE=0,
// `nativeImage()` is null and `executor()` is the TypeScript one.
import { createRequire } from 'node:module';
import { addonPath } from '../torch/addon-path.js';
import { typescriptExecutor } from './kernels.js';
import type { Executor, Kernel } from './program.js';

export interface NativeImage {
  /** Executor.run, compiled. */
  imageApply: Executor['run'];
  /** The compiled op table: kernel name -> [code, arity] (the same as program.ts KERNELS). */
  imageOps(): Record<string, [number, number]>;
}

let loaded: NativeImage | null | undefined;

/** The compiled kernels of this thread, or null (not built, or AWTY_NATIVE_IMAGE=0). */
export function nativeImage(): NativeImage | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  if (process.env.AWTY_NATIVE_IMAGE === '0') return null;
  const p = addonPath('awty_image.node');
  if (p) {
    try {
      loaded = createRequire(import.meta.url)(p) as NativeImage;
    } catch {
      loaded = null;
    }
  }
  return loaded;
}

/** The compiled kernels as an executor, or null when they are not built. */
export function compiledExecutor(): Executor | null {
  const nat = nativeImage();
  return nat ? { name: 'compiled', run: (...args) => nat.imageApply(...args) } : null;
}

/** The executor the loader uses: the compiled kernels when built, else the TypeScript ones. */
export function executor(): Executor {
  return compiledExecutor() ?? typescriptExecutor;
}

export type { Kernel };
