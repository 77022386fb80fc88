// Output folders checked before any work: created one level at a time (never looping on a file
// system that refuses new folders, such as /proc) and probed by writing and removing a small file.

import { randomBytes } from 'node:crypto';
import { mkdir, open, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

/** An output folder that cannot be created or written. `message` names the flag, the folder and the cause. */
export class OutputDirError extends Error {
  readonly dir: string;
  readonly code: string | undefined;

  constructor(what: string, dir: string, problem: string, code?: string, options?: { cause?: unknown }) {
    super(`${what} ${dir}: ${problem}`, options);
    this.name = 'OutputDirError';
    this.dir = dir;
    this.code = code;
  }
}

/** The plain-words cause of a file-system error code. */
export function describeFsError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  switch (err.code) {
    case 'EROFS': return 'the file system is read-only (EROFS)';
    case 'EACCES': case 'EPERM': return `permission denied (${err.code})`;
    case 'ENOSPC': return 'no space left on the device (ENOSPC)';
    case 'EDQUOT': return 'disk quota exceeded (EDQUOT)';
    case 'ENOTDIR': return 'a part of the path is a file, not a folder (ENOTDIR)';
    case 'EIO': return 'input/output error on the device (EIO)';
    default: return err.message ?? String(e);
  }
}

/** Error codes that mean the output cannot be written (never a fault of the input). */
export const OUTPUT_ERROR_CODES: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM', 'EIO', 'ENOTDIR', 'EMFILE', 'ENFILE', 'EFBIG']);

export function isOutputError(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && OUTPUT_ERROR_CODES.has(code);
}

/**
 * Make sure `dir` exists and can be written: creates the missing folders one level at a time, then
 * writes, fsyncs and removes a small probe file. `what` names the folder in errors (e.g. `--out`).
 */
export async function ensureWritableDir(dir: string, what = 'output folder'): Promise<void> {
  const abs = resolve(dir);
  const missing: string[] = [];
  let at = abs;
  for (;;) {
    try {
      const st = await stat(at);
      if (!st.isDirectory()) throw new OutputDirError(what, dir, `${at} is a file, not a folder`, 'ENOTDIR');
      break;
    } catch (e) {
      if (e instanceof OutputDirError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') throw new OutputDirError(what, dir, `cannot look at ${at}: ${describeFsError(e)}`, code, { cause: e });
      const up = dirname(at);
      if (up === at) throw new OutputDirError(what, dir, 'no existing folder above it', code, { cause: e });
      missing.unshift(at);
      at = up;
    }
  }
  for (const d of missing) {
    try {
      await mkdir(d);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') continue;
      const cause = code === 'ENOENT' ? `${dirname(d)} does not accept new folders (ENOENT)` : describeFsError(e);
      throw new OutputDirError(what, dir, `cannot create the folder ${d}: ${cause}`, code, { cause: e });
    }
  }
  const probe = join(abs, `.awty-write-probe.${process.pid}.${randomBytes(4).toString('hex')}`);
  try {
    const fh = await open(probe, 'wx', 0o644);
    try {
      await fh.write(Buffer.from('awty\n'));
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (e) {
    await unlink(probe).catch(() => undefined);
    throw new OutputDirError(what, dir, `cannot write into it: ${describeFsError(e)}`, (e as NodeJS.ErrnoException).code, { cause: e });
  }
  await unlink(probe).catch(() => undefined);
}
