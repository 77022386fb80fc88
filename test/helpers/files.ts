// Test helpers for video and file trees: ffmpeg with errors only, and a tree's files by content hash.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';

/** Runs ffmpeg (errors only, overwriting its output) with these arguments. */
export function ff(...args: string[]): void {
  execFileSync('ffmpeg', ['-v', 'error', '-y', ...args]);
}

/**
 * Every file under dir (relative path with '/' -> sha256 of its bytes), empty folders ignored.
 * `content(name, bytes)` may replace what is hashed for a file, or return undefined to leave it out.
 */
export function treeHashes(dir: string, content: (name: string, bytes: Buffer) => Buffer | string | undefined = (_n, b) => b): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string, rel: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) { walk(p, rel + e.name + '/'); continue; }
      const c = content(e.name, readFileSync(p));
      if (c !== undefined) out.set(rel + e.name, createHash('sha256').update(c).digest('hex'));
    }
  };
  walk(dir, '');
  return out;
}
