// The caching CPU allocator: settings read in TypeScript, blocks kept for reuse, and what it keeps
// bounded by the high-water mark of memory in use plus headroom x the swing, the deepest fall of in use
// below that mark (headroom 0: caching never raises the peak).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as torch from '../src/torch/index.js';

const MiB = 2 ** 20;

test('settings: AWTY_CPU_CACHING_ALLOCATOR and AWTY_CPU_CACHE_MB, bad values named', () => {
  const h = torch.DEFAULT_CPU_CACHE_HEADROOM;
  assert.deepEqual(torch.cpuAllocatorPolicy({}), { enabled: true, capBytes: Infinity, headroom: h });
  assert.deepEqual(torch.cpuAllocatorPolicy({ AWTY_CPU_CACHING_ALLOCATOR: '0' }), { enabled: false, capBytes: Infinity, headroom: h });
  assert.deepEqual(torch.cpuAllocatorPolicy({ AWTY_CPU_CACHING_ALLOCATOR: '1', AWTY_CPU_CACHE_MB: '256' }), { enabled: true, capBytes: 256 * MiB, headroom: h });
  assert.deepEqual(torch.cpuAllocatorPolicy({ AWTY_CPU_CACHE_MB: '0' }), { enabled: true, capBytes: 0, headroom: h });
  assert.deepEqual(torch.cpuAllocatorPolicy({ AWTY_CPU_CACHE_HEADROOM: '0' }), { enabled: true, capBytes: Infinity, headroom: 0 });
  assert.throws(() => torch.cpuAllocatorPolicy({ AWTY_CPU_CACHE_HEADROOM: '-0.5' }), /AWTY_CPU_CACHE_HEADROOM must be a number >= 0, got '-0.5'/);
  assert.throws(() => torch.cpuAllocatorPolicy({ AWTY_CPU_CACHE_HEADROOM: 'Infinity' }), /AWTY_CPU_CACHE_HEADROOM/);
  assert.throws(() => torch.cpuAllocatorPolicy({ AWTY_CPU_CACHE_MB: 'lots' }), /AWTY_CPU_CACHE_MB must be a number of MiB >= 0, got 'lots'/);
  assert.throws(() => torch.cpuAllocatorPolicy({ AWTY_CPU_CACHE_MB: '-1' }), /AWTY_CPU_CACHE_MB/);
  assert.throws(() => torch.cpuAllocatorPolicy({ AWTY_CPU_CACHING_ALLOCATOR: 'off' }), /AWTY_CPU_CACHING_ALLOCATOR must be 0 \(off\) or 1 \(on\), got 'off'/);
});

test('freed blocks are kept and reused; in use + kept never exceeds the high-water mark + headroom x swing', () => {
  torch.emptyCache();
  torch.resetPeakMemoryStats();
  const base = torch.cpuMemoryStats();
  assert.equal(base.capBytes, Infinity);
  const h = base.headroom;
  assert.equal(h, torch.DEFAULT_CPU_CACHE_HEADROOM);
  // one "step": two 4 MiB blocks in use at once, then freed: both kept
  let a = torch.empty([MiB], { dtype: 'float32' }), b = torch.empty([MiB], { dtype: 'float32' });
  const peak = torch.cpuMemoryStats().largeBlocksInUse;
  assert.equal(peak - base.largeBlocksInUse, 8 * MiB);
  a.dispose(); b.dispose();
  let s = torch.cpuMemoryStats();
  assert.equal(s.cached, 8 * MiB);
  assert.equal(s.largeBlocksInUse, base.largeBlocksInUse);
  // the same sizes again come from the cache
  a = torch.empty([MiB], { dtype: 'float32' });
  assert.equal(torch.cpuMemoryStats().cached, 4 * MiB);
  // a size the cache does not hold: the kept block stays while the headroom allows it (with
  // headroom 0 it is given back: the child process below)
  b = torch.empty([MiB + 1024], { dtype: 'float32' });
  s = torch.cpuMemoryStats();
  assert.equal(s.cached, 4 * MiB);
  assert.ok(s.largeBlocksInUse <= s.peakInUse);
  assert.ok(s.swing >= 8 * MiB, `swing ${s.swing}`);
  assert.ok(s.largeBlocksInUse + s.cached <= s.peakInUse + h * s.swing);
  a.dispose(); b.dispose();
  s = torch.cpuMemoryStats();
  assert.ok(s.peakMapped <= s.peakInUse + h * s.swing, `mapped peak ${s.peakMapped} above the in-use peak ${s.peakInUse} + ${h} x swing ${s.swing}`);
  assert.ok(s.largeBlocksInUse + s.cached <= s.peakInUse + h * s.swing);
  // a new high-water mark from now on (swing 0): what is kept beyond it goes back
  torch.resetPeakMemoryStats();
  s = torch.cpuMemoryStats();
  assert.equal(s.swing, 0);
  assert.ok(s.largeBlocksInUse + s.cached <= s.peakInUse);
  assert.ok(s.cached < 8 * MiB);
});

test('the headroom scales with the swing, not the peak: a large block that stays in use earns no extra cache', () => {
  torch.emptyCache();
  const h = torch.cpuMemoryStats().headroom;
  assert.ok(h > 0);
  // persistent state (a model's parameters and optimiser state): 32 MiB that stay in use
  const state = torch.empty([8 * MiB], { dtype: 'float32' });
  torch.resetPeakMemoryStats();
  // two "steps" of 4 MiB transient memory each, the second step's block sized unlike the first's
  let t = torch.empty([MiB], { dtype: 'float32' });
  t.dispose();
  let s = torch.cpuMemoryStats();
  assert.equal(s.swing, 4 * MiB);
  t = torch.empty([MiB + 4096], { dtype: 'float32' });
  s = torch.cpuMemoryStats();
  // the bound is peak + h x 4 MiB (2 MiB of room at the default 0.5): the first step's 4 MiB block
  // goes back but for the part the bound allows. A bound of (1 + h) x the peak would have kept it
  // whole (and up to half the 32 MiB state).
  assert.equal(h, torch.DEFAULT_CPU_CACHE_HEADROOM);
  const bound = s.peakInUse + h * s.swing;
  assert.ok(s.largeBlocksInUse + s.cached <= bound, `${s.largeBlocksInUse + s.cached} above ${bound}`);
  assert.ok((1 + h) * s.peakInUse - s.largeBlocksInUse >= 4 * MiB);
  assert.ok(s.cached <= h * 4 * MiB, `kept ${s.cached}`);
  t.dispose();
  s = torch.cpuMemoryStats();
  assert.ok(s.peakMapped <= s.peakInUse + h * s.swing, `mapped peak ${s.peakMapped} above ${s.peakInUse} + ${h} x ${s.swing}`);
  state.dispose();
  torch.emptyCache();
});

test('a kept range serves smaller requests (split) and freed neighbours merge, so other sizes reuse the same memory', () => {
  torch.emptyCache();
  torch.resetPeakMemoryStats();
  const x = torch.empty([2 * MiB], { dtype: 'float32' });  // 8 MiB
  x.dispose();
  let s = torch.cpuMemoryStats();
  assert.equal(s.cached, 8 * MiB);
  const maps = s.maps, splits = s.splits;
  // 2 MiB, an odd size that rounds up to 2 MiB, and 4 MiB: all carved from the one kept 8 MiB range
  const a = torch.empty([MiB / 2], { dtype: 'float32' });
  const b = torch.empty([(2 * MiB - 1000) / 4], { dtype: 'float32' });
  const c = torch.empty([MiB], { dtype: 'float32' });
  s = torch.cpuMemoryStats();
  assert.equal(s.maps, maps, 'a request that fits in a kept range made a new mapping');
  assert.equal(s.splits, splits + 2);
  assert.equal(s.cached, 0);
  // freed in an order that leaves a gap until the last one: the three pieces merge back into one
  // range that holds a request of the whole size
  a.dispose(); c.dispose();
  assert.equal(torch.cpuMemoryStats().cached, 6 * MiB);
  b.dispose();
  const d = torch.empty([2 * MiB], { dtype: 'float32' });
  s = torch.cpuMemoryStats();
  assert.equal(s.maps, maps, 'the merged range did not hold the 8 MiB request');
  assert.equal(s.cached, 0);
  d.dispose();
  torch.emptyCache();
});

test('headroom 0: in use + kept never exceed the high-water mark (a kept block of another size is given back)', () => {
  const code = `import('${new URL('../src/torch/index.js', import.meta.url).href}').then((torch) => {
    const MiB = 1 << 20;
    let a = torch.empty([MiB], { dtype: 'float32' }), b = torch.empty([MiB], { dtype: 'float32' });
    a.dispose(); b.dispose();
    const kept = torch.cpuMemoryStats().cached;
    a = torch.empty([MiB], { dtype: 'float32' });
    b = torch.empty([MiB + 1024], { dtype: 'float32' });
    const s = torch.cpuMemoryStats();
    a.dispose(); b.dispose();
    const e = torch.cpuMemoryStats();
    process.stdout.write(JSON.stringify({ kept, cachedAfterMiss: s.cached, inUse: s.largeBlocksInUse, peak: s.peakInUse, end: e, headroom: s.headroom }));
  });`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', env: { ...process.env, AWTY_CPU_CACHE_HEADROOM: '0' } });
  assert.equal(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout) as { kept: number; cachedAfterMiss: number; inUse: number; peak: number; headroom: number;
    end: { largeBlocksInUse: number; cached: number; peakInUse: number; peakMapped: number } };
  assert.equal(o.headroom, 0);
  assert.equal(o.kept, 8 * MiB);
  assert.equal(o.cachedAfterMiss, 0);
  assert.ok(o.inUse <= o.peak);
  assert.ok(o.end.peakMapped <= o.end.peakInUse, `mapped peak ${o.end.peakMapped} above in-use peak ${o.end.peakInUse}`);
  assert.ok(o.end.largeBlocksInUse + o.end.cached <= o.end.peakInUse);
});

function child(env: Record<string, string>): { largeBlocksInUse: number; cached: number; capBytes: number } {
  const code = `import('${new URL('../src/torch/index.js', import.meta.url).href}').then((torch) => {
    const t = torch.empty([1 << 20], { dtype: 'float32' });
    const inUse = torch.cpuMemoryStats().largeBlocksInUse;
    t.dispose();
    process.stdout.write(JSON.stringify({ ...torch.cpuMemoryStats(), largeBlocksInUse: inUse }));
  });`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', env: { ...process.env, ...env } });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { largeBlocksInUse: number; cached: number; capBytes: number };
}

test('AWTY_CPU_CACHE_MB=0 keeps nothing; AWTY_CPU_CACHING_ALLOCATOR=0 leaves libtorch its own allocator', () => {
  const capped = child({ AWTY_CPU_CACHE_MB: '0' });
  assert.equal(capped.capBytes, 0);
  assert.equal(capped.largeBlocksInUse, 4 * MiB);
  assert.equal(capped.cached, 0);
  const off = child({ AWTY_CPU_CACHING_ALLOCATOR: '0' });
  assert.equal(off.largeBlocksInUse, 0);
  assert.equal(off.cached, 0);
});
