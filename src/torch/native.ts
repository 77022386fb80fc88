// Loads the native addon (native/build/Release/awty_native.node) once.
import { createRequire } from 'node:module';
import { addonPath, buildHint, packageRoot } from './addon-path.js';

/** An opaque handle to one libtorch tensor owned by the addon. */
export interface NativeHandle {
  dispose(): void;
  isDisposed(): boolean;
}

type NativeFn = (...args: unknown[]) => unknown;
export type NativeModule = Record<string, NativeFn> & {
  TensorHandle: new () => NativeHandle;
};

function locate(): string {
  const p = addonPath('awty_native.node');
  if (p) return p;
  throw new Error(`awty: the native addon is not built (native/build/Release/awty_native.node missing under ${packageRoot()}). ${buildHint()}`);
}

const require = createRequire(import.meta.url);
export const native = require(locate()) as NativeModule;
