// A training loop runs at flat memory: resident memory after 1,000 steps is within 5% of step 100.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

test('1,000 training steps of a small convnet run at flat resident memory', () => {
  const script = fileURLToPath(new URL('./fixtures/train-loop.js', import.meta.url));
  const r = spawnSync(process.execPath, ['--expose-gc', script, '1000', '100,1000'], { encoding: 'utf8', env: { ...process.env, AWTY_NUM_THREADS: '2' } });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { rss: Record<string, number>; loss: number; scopeDepth: number };
  const a = out.rss['100']!;
  const b = out.rss['1000']!;
  assert.ok(Number.isFinite(out.loss));
  assert.equal(out.scopeDepth, 0);
  assert.ok(Math.abs(b - a) / a <= 0.05, `rss step 100: ${(a / 2 ** 20).toFixed(1)} MiB, step 1000: ${(b / 2 ** 20).toFixed(1)} MiB`);
});

test('without disposal the loop would grow: the same loop keeping every batch grows memory', () => {
  // Guards the test above against being vacuous: holding tensors does show up in resident memory.
  const held: unknown[] = [];
  const before = process.memoryUsage().rss;
  return import('../src/torch/index.js').then((torch) => {
    for (let i = 0; i < 50; i++) held.push(torch.randn(16, 3, 64, 64).keep());
    const after = process.memoryUsage().rss;
    assert.ok(after - before > 50 * 16 * 3 * 64 * 64 * 4 * 0.8, `rss grew by ${after - before} bytes`);
  });
});
