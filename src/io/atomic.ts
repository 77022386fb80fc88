// Atomic file replacement: write a temporary file in the target's folder, fsync it, rename it over
// the target, fsync the folder. A process killed mid-write leaves the previous file untouched.

import { randomBytes } from 'node:crypto';
import { open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

/** The temporary path used while writing `target` (same folder, hidden, unique). */
export function tempPathFor(target: string): string {
  const abs = resolve(target);
  return join(dirname(abs), `.${basename(abs)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/**
 * Replace `target` atomically with what `write` writes into the file handle it is given.
 * On any error the temporary file is removed and the target is left as it was.
 */
export interface AtomicWriteOptions {
  /** fsync the folder after the rename (default true). A caller writing many files may sync it once itself. */
  syncDir?: boolean;
  /** Remove temporary files of earlier, killed writes to the same target first (default true). */
  removeStale?: boolean;
}

export async function writeFileAtomic(target: string, write: (fh: FileHandle, tempPath: string) => Promise<void>,
  options: AtomicWriteOptions = {}): Promise<void> {
  const abs = resolve(target);
  if (options.removeStale !== false) await removeStaleTemps(abs);
  const tmp = tempPathFor(abs);
  const fh = await open(tmp, 'wx', 0o644);
  let closed = false;
  try {
    await write(fh, tmp);
    await fh.sync();
    await fh.close();
    closed = true;
    await rename(tmp, abs);
  } catch (e) {
    if (!closed) await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
  if (options.syncDir !== false) await syncDir(dirname(abs));
}

/** Replace `target` atomically with `data` (temp file, fsync, rename, fsync folder). */
export async function writeDataAtomic(target: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  await writeFileAtomic(target, async (fh) => {
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, done);
      done += bytesWritten;
    }
  }, options);
}

/** fsync a folder (its entries: files created, renamed or removed in it). Best effort where unsupported. */
export async function syncDir(dir: string): Promise<void> {
  let dh: FileHandle | undefined;
  try {
    dh = await open(dir, 'r');
    await dh.sync();
  } catch {
    // some file systems (and Windows) cannot fsync a directory; the rename itself is still atomic
  } finally {
    await dh?.close().catch(() => undefined);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes temporary files of earlier saves to `target` whose writing process is gone (killed mid-save). */
export async function removeStaleTemps(target: string): Promise<string[]> {
  const abs = resolve(target);
  const prefix = `.${basename(abs)}.`;
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(dirname(abs));
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith('.tmp')) continue;
    const m = /^\.(\d+)\.[0-9a-f]{8}\.tmp$/.exec(name.slice(prefix.length - 1));
    if (!m || alive(Number(m[1]))) continue;
    await unlink(join(dirname(abs), name)).catch(() => undefined);
    removed.push(name);
  }
  return removed;
}

/** Writes a text file atomically (same guarantees as writeFileAtomic). */
export async function writeTextAtomic(target: string, text: string): Promise<void> {
  await writeFileAtomic(target, async (fh) => { await fh.writeFile(text, 'utf8'); });
}
