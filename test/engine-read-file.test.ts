// torch.tensorsFromFile: many tensors read from one open file on several threads (what io.load uses
// for a checkpoint's storages). Same bytes as reading the file in JavaScript, whatever the number of
// threads; a file that ends early is an error naming the item; the tensors are ordinary tensors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../src/torch/index.js';

function withFile(bytes: Uint8Array, body: (fd: number) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'awty-readfile-'));
  const path = join(dir, 'f.bin');
  writeFileSync(path, bytes);
  const fd = openSync(path, 'r');
  return body(fd).finally(() => {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });
}

// 40 MiB of a known pattern, so that the bytes split over more than one thread (16 MiB a thread)
const SIZE = 40 << 20;
const data = new Uint8Array(SIZE);
for (let i = 0; i < SIZE; i += 4) new DataView(data.buffer).setUint32(i, (i * 2654435761) >>> 0, true);

// first, while no tensor from another test is alive (their memory would be freed by a GC meanwhile)
test('a file that ends before an item\'s bytes rejects naming the item; no tensors are handed out', async () => {
  await withFile(data.subarray(0, 1 << 20), async (fd) => {
    const items: torch.FileTensor[] = [
      { position: 0, shape: [1 << 17], dtype: 'float32' }, // 512 KiB: a large block
      { position: (1 << 20) - 8, shape: [4], dtype: 'float32' }, // 16 bytes, 8 of them past the end
    ];
    for (const threads of [1, 2]) {
      const before = torch.cpuMemoryStats().largeBlocksInUse;
      await assert.rejects(torch.tensorsFromFile(fd, items, { threads }), (e: Error) => /^item 1: file ends at byte 1048576, 8 bytes short of the 16-byte record at 1048568$/.test(e.message));
      assert.equal(torch.cpuMemoryStats().largeBlocksInUse, before, 'the tensors allocated for the failed read are freed');
    }
    await assert.rejects(torch.tensorsFromFile(fd, [{ position: -1, shape: [1], dtype: 'float32' }]), /item 0 is not \[position >= 0, shape, dtype\]/);
    await assert.rejects(torch.tensorsFromFile(-1, [{ position: 0, shape: [1], dtype: 'float32' }]), /item 0: Bad file descriptor/);
  });
});

test('items of several dtypes and shapes hold the file bytes at their positions, at 1, 2 and 3 threads', async () => {
  await withFile(data, async (fd) => {
    const items: torch.FileTensor[] = [
      { position: 0, shape: [3, 5], dtype: 'float32' },
      { position: 64, shape: [1 << 20], dtype: 'float64' }, // 8 MiB
      { position: 7, shape: [13], dtype: 'uint8' }, // unaligned position
      { position: 9 << 20, shape: [0], dtype: 'float32' }, // empty
      { position: 10 << 20, shape: [2, 1 << 21], dtype: 'int32' }, // 16 MiB
      { position: SIZE - 4096, shape: [2048], dtype: 'int16' }, // up to the last byte
      { position: 27 << 20, shape: [3 << 20], dtype: 'float32' }, // 12 MiB
    ];
    for (const threads of [1, 2, 3]) {
      const ts = await torch.tensorsFromFile(fd, items, { threads });
      assert.equal(ts.length, items.length);
      ts.forEach((t, k) => {
        const it = items[k]!;
        assert.deepEqual(t.shape, it.shape, `item ${k} shape`);
        assert.equal(t.dtype, it.dtype, `item ${k} dtype`);
        assert.equal(t.device, 'cpu');
        const n = t.numel() * torch.elementSize(it.dtype);
        const got = t.bytes();
        assert.equal(got.length, n);
        assert.equal(Buffer.compare(Buffer.from(got), Buffer.from(data.subarray(it.position, it.position + n))), 0, `item ${k} bytes at ${threads} threads`);
      });
      // ordinary tensors: usable in ops, and freed by dispose
      const s = ts[0]!.sum().item();
      const want = Array.from(new Float32Array(data.buffer.slice(0, 60))).reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(s - want) <= Math.abs(want) * 1e-5 + 1e-30, `sum ${s} vs ${want}`);
      for (const t of ts) t.dispose();
    }
  });
});
