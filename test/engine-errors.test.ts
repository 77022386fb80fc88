// Bad input never crashes the process: each case is a thrown Error with a clear message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as torch from '../src/torch/index.js';
import * as nn from '../src/nn/index.js';
import * as models from '../src/models/index.js';

test('mismatched shapes: matmul names the op and both shapes', () => {
  const a = torch.randn(2, 3);
  const b = torch.randn(2, 3);
  assert.throws(() => a.matmul(b), (e: Error) => /^matmul\(tensor \[2, 3\] float32, tensor \[2, 3\] float32\)/.test(e.message) && /cannot be multiplied/.test(e.message));
});

test('mismatched shapes: conv2d with the wrong channel count', () => {
  assert.throws(() => torch.conv2d(torch.randn(1, 4, 8, 8), torch.randn(8, 3, 3, 3)), /conv2d.*\[1, 4, 8, 8\].*expected input\[1, 4, 8, 8\] to have 3 channels/s);
});

test('broadcasting failure in elementwise ops', () => {
  assert.throws(() => torch.ones(3).add(torch.ones(4)), /add\(tensor \[3\] float32, tensor \[4\] float32.*size of tensor a \(3\) must match/);
});

test('wrong dtypes: cross entropy with float targets of the wrong shape, and int tensors into conv2d', () => {
  assert.throws(() => torch.crossEntropy(torch.randn(4, 10), torch.randn(4)), /crossEntropy/);
  assert.throws(() => torch.conv2d(torch.ones([1, 3, 8, 8], { dtype: 'int64' }), torch.randn(8, 3, 3, 3)), /conv2d.*int64/);
  assert.throws(() => torch.zeros([2], { dtype: 'float128' as torch.DType }), /unknown dtype 'float128'/);
});

test('disposed tensors: using one throws, naming the op', () => {
  const t = torch.ones(3);
  t.dispose();
  assert.equal(t.isDisposed, true);
  assert.throws(() => t.add(1), /add\(<disposed tensor>, 1.*\): argument 0: the tensor was disposed/);
  assert.throws(() => torch.cat([torch.ones(2), t]), /cat.*element 1 was disposed/);
  assert.throws(() => t.shape, /disposed/);
  t.dispose(); // disposing twice is harmless
});

test('out-of-range indices and dims', () => {
  const t = torch.arange(6).view(2, 3);
  assert.throws(() => t.select(0, 5), /select.*index 5 out of range/);
  assert.throws(() => t.indexSelect(1, torch.tensor([0, 7])), /indexSelect/);
  assert.throws(() => t.sum(4), /sum.*Dimension out of range/);
  assert.throws(() => t.view(4, 2), /view.*shape '\[4, 2\]' is invalid for input of size 6/);
  assert.throws(() => t.size(5), /size: dim 5 out of range/);
  assert.throws(() => torch.crossEntropy(torch.randn(2, 3), torch.tensor([0, 9])), /crossEntropy.*out of bounds/);
});

test('wrong argument kinds are errors, not crashes', () => {
  const t = torch.ones(3);
  const n = t as unknown as { add(x: unknown): unknown; view(...x: unknown[]): unknown };
  assert.throws(() => n.add('two'), /add.*argument 1: expected a Tensor/);
  assert.throws(() => n.view(1.5, 2), /argument 1: expected an integer/);
  assert.throws(() => torch.fromTypedArray(new Float32Array(5), [2, 3]), /fromBuffer: 20 bytes given but shape \[2, 3\] float32 needs 24/);
  assert.throws(() => torch.ones(2, 2).item(), /item: tensor \[2, 2\] float32 has 4 elements, expected 1/);
  assert.throws(() => torch.setNumThreads(0), /at least 1 thread/);
  assert.throws(() => torch.ones(2).to('tpu' as torch.Device), /neither a dtype .* nor a device/);
});

test('a state dict with wrong keys or shapes lists every offending key', () => {
  const m = new nn.Sequential(new nn.Linear(4, 3), new nn.ReLU(), new nn.Linear(3, 2));
  const sd = m.stateDict();
  const bad: Record<string, torch.Tensor> = { ...sd, '2.weight': torch.zeros(5, 3), 'extra.weight': torch.zeros(1) };
  delete bad['0.bias'];
  assert.throws(
    () => m.loadStateDict(bad),
    (e: Error) =>
      e instanceof nn.StateDictError &&
      /missing keys \(1\): 0\.bias/.test(e.message) &&
      /unexpected keys \(1\): extra\.weight/.test(e.message) &&
      /size mismatch for 2\.weight: checkpoint has \[5, 3\], model has \[2, 3\]/.test(e.message),
  );
  // Non-strict loading tolerates missing/unexpected keys but never a shape mismatch.
  delete bad['2.weight'];
  const r = m.loadStateDict(bad, { strict: false });
  assert.deepEqual(r.missingKeys, ['0.bias', '2.weight']);
  assert.deepEqual(r.unexpectedKeys, ['extra.weight']);
});

test('a torchvision head-size mismatch names fc.weight and fc.bias with both shapes', () => {
  const a = models.resnet18({ numClasses: 7 });
  const b = models.resnet18({ numClasses: 5 });
  assert.throws(() => b.loadStateDict(a.stateDict()), /size mismatch for fc\.weight: checkpoint has \[7, 512\], model has \[5, 512\][\s\S]*size mismatch for fc\.bias/);
  assert.throws(() => models.create('resnet9' as models.ModelName), /unknown model 'resnet9'; known: resnet18/);
});

test('errors inside a scope or a no-grad block propagate and leave the modes restored', () => {
  assert.equal(torch.isGradEnabled(), true);
  assert.throws(() => torch.noGrad(() => {
    throw new Error('boom');
  }), /boom/);
  assert.equal(torch.isGradEnabled(), true);
  let inner: torch.Tensor | undefined;
  assert.throws(() => torch.tidy(() => {
    inner = torch.ones(2);
    throw new Error('inside');
  }), /inside/);
  assert.equal(inner!.isDisposed, true);
});

test('BatchNorm2d in training refuses one value per channel (PyTorch\'s check), which would make the running variance NaN', () => {
  const bn = new nn.BatchNorm2d(3);
  assert.throws(() => bn.forward(torch.randn([1, 3, 1, 1])), /BatchNorm2d: expected more than 1 value per channel when training, got input size \[1, 3, 1, 1\]/);
  assert.equal(Number(torch.tidy(() => bn.forward(torch.randn([2, 3, 1, 1])).isfinite().all().item())), 1);
  assert.equal(Number(torch.tidy(() => bn.getBuffer('running_var')!.isfinite().all().item())), 1);
  bn.eval();
  assert.equal(torch.tidy(() => bn.forward(torch.randn([1, 3, 1, 1])).shape[0]), 1);
  bn.dispose();
});
