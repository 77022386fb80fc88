// ShardWriter writes each shard through io/atomic.ts: while a shard is open only the atomic writer's
// temporary file exists (a name its stale-temp cleanup recognises), a finished shard is a .tar with
// its .idx, and an aborted writer leaves nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ShardWriter, decodeShardIndex, readShardFolder, shardName } from '../src/data/shards.js';

const frame = (g: number, n: number): Buffer => Buffer.alloc(n, g % 251);

test('shards are written atomically: temp file while open, .tar + .idx when done, members where the index says', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'awty-shards-'));
  try {
    const w = new ShardWriter(dir, 0, 3, 2);
    const sizes = [700, 10, 1500, 512, 3];
    await Promise.all(sizes.slice(0, 2).map((n, g) => w.add(g, Promise.resolve(frame(g, n)))));
    // shard 0 is open: only the atomic writer's temporary file
    const open = readdirSync(dir);
    assert.equal(open.length, 1, open.join(', '));
    assert.match(open[0]!, new RegExp(`^\\.${shardName(0)}\\.tar\\.${process.pid}\\.[0-9a-f]{8}\\.tmp$`));
    await Promise.all(sizes.slice(2).map((n, k) => w.add(k + 2, Promise.resolve(frame(k + 2, n)))));
    assert.equal(await w.close(), 2);
    await ShardWriter.writeList(dir, 2, 2, sizes.length);
    assert.deepEqual(readdirSync(dir).sort(), [`${shardName(0)}.idx`, `${shardName(0)}.tar`, `${shardName(1)}.idx`, `${shardName(1)}.tar`, 'shards.json']);
    const { list } = await readShardFolder(dir);
    assert.deepEqual(list.shards.map((s) => [s.firstFrame, s.count]), [[0, 3], [3, 2]]);
    for (let s = 0; s < 2; s++) {
      const tar = readFileSync(path.join(dir, `${shardName(s)}.tar`));
      const ix = decodeShardIndex(readFileSync(path.join(dir, `${shardName(s)}.idx`)));
      for (let k = 0; k < ix.sizes.length; k++) {
        const g = ix.firstFrame + k;
        assert.deepEqual(tar.subarray(ix.offsets[k]!, ix.offsets[k]! + ix.sizes[k]!), frame(g, sizes[g]!), `frame ${g}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('abort drops finished and open shards of the writer, temporary files included', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'awty-shards-'));
  try {
    const w = new ShardWriter(dir, 4, 2, 10);
    for (let g = 0; g < 3; g++) await w.add(g, Promise.resolve(frame(g, 100 + g)));
    // shard 4 finished, shard 5 open
    assert.deepEqual(readdirSync(dir).filter((f) => !f.endsWith('.tmp')).sort(), [`${shardName(4)}.idx`, `${shardName(4)}.tar`]);
    assert.equal(readdirSync(dir).filter((f) => f.endsWith('.tmp')).length, 1);
    await w.abort();
    assert.deepEqual(readdirSync(dir), []);
    // the writer starts again at its first shard
    await w.add(0, Promise.resolve(frame(0, 5)));
    assert.equal(await w.close(), 5);
    assert.deepEqual(readdirSync(dir).sort(), [`${shardName(4)}.idx`, `${shardName(4)}.tar`]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
