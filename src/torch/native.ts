// Loads the native addon (native/build/Release/awty_native.node) once.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

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
  // From src/torch or dist/src/torch up to the package root.
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const p = path.join(dir, 'native', 'build', 'Release', 'awty_native.node');
    if (existsSync(p)) return p;
    dir = path.dirname(dir);
  }
  throw new Error(
    'awty: the native addon is not built (native/build/Release/awty_native.node missing). ' +
      'Run `npm run setup` (it installs libtorch-dev and builds the addon), or `node native/build.cjs`.',
  );
}

const require = createRequire(import.meta.url);
export const native = require(locate()) as NativeModule;
