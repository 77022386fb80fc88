// awty's version, read from package.json without loading anything else (awty --version).
import { readFileSync } from 'node:fs';

let pkgVersion: string | undefined;
/** awty's version (package.json). */
export function awtyVersion(): string {
  if (pkgVersion === undefined) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
      pkgVersion = pkg.version ?? 'unknown';
    } catch {
      pkgVersion = 'unknown';
    }
  }
  return pkgVersion;
}
