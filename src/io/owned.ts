// Output folders the program owns. When awty creates an output folder it writes a marker file into
// it; a folder is only ever emptied, deleted or reused as awty's own when it carries that marker (or
// is empty). A folder the user made and filled is never deleted or taken over: the caller gets an
// OwnershipError naming the folder and what to do instead.

import { mkdir, readdir, readFile, rm, rmdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeTextAtomic } from './atomic.js';

/** The marker file's name inside an owned folder. */
export const OWNED_MARKER = '.awty-created';

/** A folder is not awty's to delete or reuse. `dir` is the folder, `message` starts with it. */
export class OwnershipError extends Error {
  readonly dir: string;
  /** what is wrong with the folder, without the folder's name or the advice */
  readonly problem: string;

  constructor(dir: string, problem: string, advice?: string) {
    super(`${dir}: ${problem}${advice ? `; ${advice}` : ''}`);
    this.name = 'OwnershipError';
    this.dir = dir;
    this.problem = problem;
  }
}

export interface OwnedMarker {
  program: 'awty';
  /** what the folder is for (e.g. 'demo output') */
  purpose: string;
  created: string;
}

async function entries(dir: string): Promise<string[] | undefined> {
  try {
    return await readdir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ENOTDIR') throw new OwnershipError(dir, 'exists and is not a folder');
    throw e;
  }
}

/** The marker of `dir` when awty created it, else undefined (no folder, no marker, or not awty's). */
export async function ownedMarker(dir: string): Promise<OwnedMarker | undefined> {
  try {
    const m = JSON.parse(await readFile(join(dir, OWNED_MARKER), 'utf8')) as Partial<OwnedMarker>;
    return m.program === 'awty' ? (m as OwnedMarker) : undefined;
  } catch {
    return undefined;
  }
}

/** Whether awty created `dir` (it holds awty's marker file). */
export async function isOwnedDir(dir: string): Promise<boolean> {
  return (await ownedMarker(dir)) !== undefined;
}

async function writeMarker(dir: string, purpose: string): Promise<void> {
  const marker: OwnedMarker = { program: 'awty', purpose, created: new Date().toISOString() };
  await writeTextAtomic(join(dir, OWNED_MARKER), `${JSON.stringify(marker)}\n`);
}

/**
 * Marks an existing folder as awty's, for a caller that has established by other means that awty
 * made it (an earlier version's own marker); never use it on a folder that may be the user's.
 */
export async function adoptOwnedDir(dir: string, purpose: string): Promise<void> {
  await writeMarker(resolve(dir), purpose);
}

/**
 * Makes `dir` an output folder of awty's: creates it (parents too) with the marker, or marks an
 * existing empty folder, or accepts one that already carries the marker. A non-empty folder without
 * the marker is refused (its files are the user's). Returns the absolute path.
 */
export async function ensureOwnedDir(dir: string, purpose = 'output'): Promise<string> {
  const abs = resolve(dir);
  const names = await entries(abs);
  if (names === undefined) {
    await mkdir(abs, { recursive: true });
    await writeMarker(abs, purpose);
    return abs;
  }
  if (names.includes(OWNED_MARKER) && (await isOwnedDir(abs))) return abs;
  if (names.length > 0) {
    throw new OwnershipError(abs, `is not empty and was not created by awty (no ${OWNED_MARKER} marker)`,
      'choose a new or empty folder, or move its files away');
  }
  await writeMarker(abs, purpose);
  return abs;
}

/**
 * Deletes `dir` and everything in it, only if awty created it (marker) or it is empty; a missing
 * folder is fine. Anything else is refused with an OwnershipError and nothing is touched.
 */
export async function removeOwnedDir(dir: string): Promise<void> {
  const abs = resolve(dir);
  const names = await entries(abs);
  if (names === undefined) return;
  if (names.length === 0) {
    await rmdir(abs);
    return;
  }
  if (!(await isOwnedDir(abs))) {
    throw new OwnershipError(abs, `is not empty and was not created by awty (no ${OWNED_MARKER} marker)`,
      'refusing to delete it: choose another folder or delete it yourself');
  }
  await rm(abs, { recursive: true, force: true });
}

/** A fresh, empty owned folder: removes an earlier one of awty's (never a user's), then creates it. */
export async function freshOwnedDir(dir: string, purpose = 'output'): Promise<string> {
  await removeOwnedDir(dir);
  return ensureOwnedDir(dir, purpose);
}

