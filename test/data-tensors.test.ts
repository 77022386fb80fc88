// Batches handed to the engine: one copy into libtorch tensors with the batch's shape and dtypes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toTensors } from '../src/data/tensors.js';
import type { Batch } from '../src/data/index.js';

test('toTensors keeps shape, dtype and values of images and labels', () => {
  const data = Float32Array.from({ length: 2 * 3 * 2 * 2 }, (_, i) => i / 7 - 1);
  const batch: Batch = { data, shape: [2, 3, 2, 2], layout: 'NCHW', labels: new BigInt64Array([3n, 9n]), indices: new Int32Array([5, 1]) };
  const { images, labels } = toTensors(batch);
  assert.deepEqual(images.shape, [2, 3, 2, 2]);
  assert.equal(images.dtype, 'float32');
  assert.deepEqual(Array.from(images.toTypedArray() as Float32Array), Array.from(data));
  assert.equal(labels.dtype, 'int64');
  assert.deepEqual(Array.from(labels.toTypedArray() as BigInt64Array), [3n, 9n]);
  const u = toTensors({ ...batch, data: new Uint8Array(24).fill(200), shape: [2, 2, 2, 3], layout: 'NHWC', labels: new Int32Array([1, 2]) });
  assert.equal(u.images.dtype, 'uint8');
  assert.equal(u.labels.dtype, 'int32');
  images.dispose(); labels.dispose(); u.images.dispose(); u.labels.dispose();
});

test('toTensors with releaseTo copies first, then hands the array back', () => {
  const data = new Float32Array([1, 2, 3, 4]);
  const batch: Batch = { data, shape: [1, 1, 2, 2], layout: 'NCHW', labels: new Int32Array([0]), indices: new Int32Array([0]) };
  const released: Batch[] = [];
  const { images, labels } = toTensors(batch, { releaseTo: { release: (b) => released.push(b) } });
  assert.equal(released.length, 1);
  assert.equal(released[0], batch);
  data.fill(-1); // the loader refilling the released array must not change the tensor
  assert.deepEqual(Array.from(images.toTypedArray() as Float32Array), [1, 2, 3, 4]);
  images.dispose(); labels.dispose();
});
