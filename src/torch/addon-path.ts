// Where the compiled addons live (native/build/Release under the package root) and what to tell the
// user when they are missing. Loads nothing itself, so the addon-free layers may import it.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The package's root folder (the one holding its package.json), from src/torch or dist/src/torch. */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'native'))) return dir;
    dir = path.dirname(dir);
  }
  throw new Error(`awty: cannot find the package root above ${fileURLToPath(import.meta.url)}`);
}

/** The path of a compiled addon file (e.g. 'awty_native.node'), or null when it is not built. */
export function addonPath(file: string): string | null {
  const p = path.join(packageRoot(), 'native', 'build', 'Release', file);
  return existsSync(p) ? p : null;
}

/** How to build the addon where this copy of the package lives: a dependency or a checkout. */
export function buildHint(): string {
  const root = packageRoot();
  const name = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { name: string }).name;
  if (root.split(path.sep).includes('node_modules')) {
    return `Install libtorch (Debian: apt-get install libtorch-dev libgloo-dev, or set LIBTORCH), then run \`npm rebuild ${name}\`.`;
  }
  return 'Run `npm run setup` (it installs libtorch-dev and builds the addon), or `node native/build.cjs`.';
}
