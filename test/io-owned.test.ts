// Output folders awty owns: created with a marker file; only a marked (or empty) folder is ever
// deleted or reused; a user's non-empty folder is refused with an error naming it, and left intact.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { OWNED_MARKER, OwnershipError, ensureOwnedDir, freshOwnedDir, isOwnedDir, removeOwnedDir } from '../src/io/core.js';

const root = await mkdtemp(join(tmpdir(), 'awty-owned-'));
after(() => rm(root, { recursive: true, force: true }));

test('ensureOwnedDir creates a marked folder (parents too), marks an empty one, accepts its own, refuses a user\'s', async () => {
  const a = join(root, 'a', 'b');
  assert.equal(await ensureOwnedDir(a, 'test output'), a);
  assert.ok(await isOwnedDir(a));
  const marker = JSON.parse(await readFile(join(a, OWNED_MARKER), 'utf8')) as { program: string; purpose: string };
  assert.equal(marker.program, 'awty');
  assert.equal(marker.purpose, 'test output');
  await writeFile(join(a, 'result.json'), '{}');
  assert.equal(await ensureOwnedDir(a), a, 'its own non-empty folder is reused');

  const empty = join(root, 'empty');
  await mkdir(empty);
  await ensureOwnedDir(empty);
  assert.ok(await isOwnedDir(empty));

  const user = join(root, 'user');
  await mkdir(user);
  await writeFile(join(user, 'thesis.tex'), 'precious');
  await assert.rejects(ensureOwnedDir(user), (e: unknown) => e instanceof OwnershipError && e.dir === user && e.message.startsWith(user) && /not created by awty/.test(e.message));
  assert.deepEqual(await readdir(user), ['thesis.tex']);
  assert.equal(await isOwnedDir(user), false);

  // a marker file that is not awty's does not count
  const fake = join(root, 'fake');
  await mkdir(fake);
  await writeFile(join(fake, OWNED_MARKER), 'hello');
  await writeFile(join(fake, 'data.bin'), 'x');
  assert.equal(await isOwnedDir(fake), false);
  await assert.rejects(ensureOwnedDir(fake), OwnershipError);

  const file = join(root, 'afile');
  await writeFile(file, 'x');
  await assert.rejects(ensureOwnedDir(file), /exists and is not a folder/);
});

test('removeOwnedDir / freshOwnedDir delete only marked or empty folders; a user\'s folder is untouched', async () => {
  const mine = await ensureOwnedDir(join(root, 'mine'));
  await mkdir(join(mine, 'sub'));
  await writeFile(join(mine, 'sub', 'x.tar'), 'x');
  await freshOwnedDir(mine);
  assert.deepEqual(await readdir(mine), [OWNED_MARKER], 'fresh: emptied, marked');
  await removeOwnedDir(mine);
  await assert.rejects(readdir(mine), { code: 'ENOENT' });
  await removeOwnedDir(join(root, 'never-existed'));

  const empty = join(root, 'empty2');
  await mkdir(empty);
  await removeOwnedDir(empty);
  await assert.rejects(readdir(empty), { code: 'ENOENT' });

  const user = join(root, 'user2');
  await mkdir(join(user, 'deep'), { recursive: true });
  await writeFile(join(user, 'deep', 'keep.txt'), 'keep');
  await assert.rejects(removeOwnedDir(user), (e: unknown) => e instanceof OwnershipError && /refusing to delete/.test(e.message));
  await assert.rejects(freshOwnedDir(user), OwnershipError);
  assert.equal(await readFile(join(user, 'deep', 'keep.txt'), 'utf8'), 'keep');
});
