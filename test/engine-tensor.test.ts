// Tensor basics against known values: creation, views, arithmetic, reductions, autograd, scopes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../src/torch/index.js';

test('creation: dtypes, shapes, typed arrays in and out', () => {
  assert.deepEqual(torch.zeros(2, 3).shape, [2, 3]);
  assert.equal(torch.tensor([1, 2, 3]).dtype, 'int64');
  assert.equal(torch.tensor([1.5, 2]).dtype, 'float32');
  assert.equal(torch.tensor([true, false]).dtype, 'bool');
  for (const d of torch.DTYPES) assert.equal(torch.ones([2], { dtype: d }).dtype, d);
  const f = torch.fromTypedArray(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
  assert.deepEqual(f.tolist(), [[1, 2, 3], [4, 5, 6]]);
  assert.deepEqual(Array.from(torch.fromTypedArray(new BigInt64Array([5n, -7n])).toTypedArray() as BigInt64Array), [5n, -7n]);
  assert.deepEqual(torch.arange(1, 7, 2).tolist(), [1, 3, 5]);
  assert.equal(torch.full([2], 7).sum().item(), 14);
  const h = torch.tensor([0.5, -2], { dtype: 'float16' });
  assert.deepEqual(Array.from(h.toTypedArray() as Float32Array), [0.5, -2]);
});

test('bytes() shares memory with the tensor', () => {
  const t = torch.zeros([4]);
  const b = t.bytes();
  new Float32Array(b.buffer, b.byteOffset, 4).set([1, 2, 3, 4]);
  assert.deepEqual(t.tolist(), [1, 2, 3, 4]);
});

test('views share storage and follow PyTorch semantics', () => {
  const t = torch.arange(12).view(3, 4);
  assert.deepEqual(t.transpose(0, 1).shape, [4, 3]);
  assert.equal(t.transpose(0, 1).isContiguous(), false);
  assert.deepEqual(t.slice(1, 1, 3).tolist(), [[1, 2], [5, 6], [9, 10]]);
  assert.deepEqual(t.select(0, 2).tolist(), [8, 9, 10, 11]);
  assert.deepEqual(t.narrow(0, 1, 1).tolist(), [[4, 5, 6, 7]]);
  assert.deepEqual(t.unsqueeze(0).squeeze(0).shape, [3, 4]);
  assert.deepEqual(t.permute(1, 0).contiguous().view(-1).slice(0, 0, 3).tolist(), [0, 4, 8]);
  assert.ok(t.view(12).sharesStorageWith(t));
  assert.deepEqual(t.asStrided([2, 2], [1, 4], 1).tolist(), [[1, 5], [2, 6]]);
});

test('arithmetic, comparisons and reductions', () => {
  const a = torch.tensor([[1, 2], [3, 4]], { dtype: 'float32' });
  assert.deepEqual(a.add(a, 2).tolist(), [[3, 6], [9, 12]]);
  assert.deepEqual(a.mul(2).sub(1).tolist(), [[1, 3], [5, 7]]);
  assert.deepEqual(a.gt(2).tolist(), [[0, 0], [1, 1]]);
  assert.equal(a.mean().item(), 2.5);
  assert.deepEqual(a.sum(0).tolist(), [4, 6]);
  assert.deepEqual(a.max(1).indices.tolist(), [1, 1]);
  assert.deepEqual(a.argmax().item(), 3);
  const { values, indices } = torch.tensor([3, 1, 4, 1, 5]).topk(2);
  assert.deepEqual(values.tolist(), [5, 4]);
  assert.deepEqual(indices.tolist(), [4, 2]);
  assert.deepEqual(torch.cat([a, a], 1).shape, [2, 4]);
  assert.deepEqual(torch.stack([a, a]).shape, [2, 2, 2]);
  assert.deepEqual(torch.where(a.gt(2), a, 0).tolist(), [[0, 0], [3, 4]]);
  assert.deepEqual(a.clamp(2, 3).tolist(), [[2, 2], [3, 3]]);
  assert.deepEqual(a.matmul(a).tolist(), [[7, 10], [15, 22]]);
  assert.deepEqual(a.gather(1, torch.tensor([[1], [0]])).tolist(), [[2], [3]]);
  const up = torch.interpolate(torch.ones(1, 1, 2, 2), { size: 4, mode: 'bilinear' });
  assert.deepEqual(up.shape, [1, 1, 4, 4]);
  assert.equal(up.sum().item(), 16);
});

test('autograd: backward, grad, detach, noGrad and inference mode', () => {
  const x = torch.tensor([1, 2, 3], { dtype: 'float32', requiresGrad: true });
  const y = x.mul(x).sum();
  y.backward();
  assert.deepEqual(x.grad!.tolist(), [2, 4, 6]);
  x.grad = undefined;
  assert.equal(x.grad, undefined);
  assert.equal(x.detach().requiresGrad, false);
  assert.equal(torch.noGrad(() => x.mul(2).requiresGrad), false);
  assert.equal(torch.noGrad(() => torch.isGradEnabled()), false);
  assert.equal(torch.isGradEnabled(), true);
  assert.equal(torch.inferenceMode(() => torch.isInferenceModeEnabled()), true);
  assert.equal(torch.isInferenceModeEnabled(), false);
});

test('tidy frees what it does not return, and returned tensors survive', () => {
  let tmp: torch.Tensor | undefined;
  const kept = torch.ones(2).keep();
  const out = torch.tidy(() => {
    tmp = torch.ones(3).mul(2);
    const inner = torch.tidy(() => [torch.ones(1), { deep: torch.zeros(1) }] as const);
    kept.add_(1);
    return { r: tmp.sum(), inner };
  });
  assert.equal(tmp!.isDisposed, true);
  assert.equal(out.r.item(), 6);
  assert.equal(out.inner[0].isDisposed, false);
  assert.equal(out.inner[1].deep.isDisposed, false);
  assert.equal(kept.isDisposed, false);
  assert.throws(() => torch.tidy(() => Promise.resolve(1)), /Promise/);
  assert.equal(torch.scopeDepth(), 0);
});

test('threads and seeds', () => {
  assert.ok(torch.getNumThreads() >= 1);
  torch.manualSeed(3);
  const a = torch.randn(5).tolist();
  torch.manualSeed(3);
  assert.deepEqual(torch.randn(5).tolist(), a);
});

test('cuda is reported and, when present, computes like the cpu', { skip: !torch.cuda.isAvailable() && 'no CUDA device in this libtorch/machine' }, () => {
  const a = torch.randn(64, 64);
  const g = a.cuda().matmul(a.cuda()).cpu();
  assert.ok(g.allclose(a.matmul(a), 1e-3, 1e-3));
});

test('worker threads can load the engine; the main thread keeps working after they exit', async () => {
  const { Worker } = await import('node:worker_threads');
  const lib = new URL('../src/torch/index.js', import.meta.url).href;
  const code = `import(${JSON.stringify(lib)}).then((t) => require('node:worker_threads').parentPort.postMessage(t.ones(4).mul(3).sum().item()));`;
  for (let i = 0; i < 2; i++) {
    const w = new Worker(code, { eval: true });
    // every listener goes on before the first await: the worker may answer and exit in one turn
    const exited = new Promise<number>((resolve) => w.once('exit', resolve));
    const got = await new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
      w.once('exit', (code: number) => reject(new Error(`worker exited (code ${code}) before answering`)));
    });
    assert.equal(got, 12);
    assert.equal(await exited, 0);
  }
  assert.deepEqual(torch.ones(2).add(1).tolist(), [2, 2]);
});
