// Engine-independent records for tensors read from (or written to) checkpoint files.

import { ELEMENT_SIZE, type DType } from '../torch/dtypes.js';

export { DTYPES, ELEMENT_SIZE, isDType, isFloatingDType, type DType } from '../torch/dtypes.js';

/** PyTorch's legacy typed-storage class names (what torch.save writes in its persistent ids). */
export const STORAGE_CLASS: Readonly<Record<DType, string>> = {
  float32: 'FloatStorage', float64: 'DoubleStorage', float16: 'HalfStorage', bfloat16: 'BFloat16Storage',
  int8: 'CharStorage', int16: 'ShortStorage', int32: 'IntStorage', int64: 'LongStorage', uint8: 'ByteStorage', bool: 'BoolStorage',
};

export const STORAGE_DTYPE: Readonly<Record<string, DType>> = {
  ...Object.fromEntries(Object.entries(STORAGE_CLASS).map(([d, c]) => [c, d as DType])),
  UntypedStorage: 'uint8',
};

/**
 * One storage (a flat buffer) of a checkpoint. Tensors that share it hold the same RawStorage object.
 * When reading, `data` is filled only by `loadRaw` (or by the caller); when writing, give either
 * `data` or `getData` (called once, when the storage's bytes are written).
 */
export interface RawStorage {
  key: string;
  dtype: DType;
  /** Number of elements of `dtype`. */
  numel: number;
  /** Device tag as PyTorch writes it ('cpu', 'cuda:0'). */
  location: string;
  data?: Uint8Array;
  getData?: () => Uint8Array | Promise<Uint8Array>;
}

/** A tensor: a strided view into a RawStorage (element units, like PyTorch). */
export interface RawTensor {
  dtype: DType;
  shape: number[];
  stride: number[];
  storageOffset: number;
  storage: RawStorage;
  requiresGrad: boolean;
  /** Rebuilt with torch._utils._rebuild_parameter (an nn.Parameter). */
  isParameter?: boolean;
}

export function isRawTensor(v: unknown): v is RawTensor {
  if (typeof v !== 'object' || v === null) return false;
  const t = v as Partial<RawTensor>;
  return typeof t.dtype === 'string' && Array.isArray(t.shape) && Array.isArray(t.stride) && typeof t.storageOffset === 'number'
    && typeof t.storage === 'object' && t.storage !== null && typeof (t.storage as Partial<RawStorage>).key === 'string';
}

export function isRawStorage(v: unknown): v is RawStorage {
  if (typeof v !== 'object' || v === null) return false;
  const s = v as Partial<RawStorage>;
  return typeof s.key === 'string' && typeof s.dtype === 'string' && typeof s.numel === 'number' && typeof s.location === 'string' && !('shape' in s);
}

export function numelOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function contiguousStride(shape: readonly number[]): number[] {
  const stride = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    stride[i] = s;
    s *= Math.max(shape[i]!, 1);
  }
  return stride;
}

export function isContiguous(t: Pick<RawTensor, 'shape' | 'stride'>): boolean {
  const c = contiguousStride(t.shape);
  return t.shape.every((n, i) => n <= 1 || t.stride[i] === c[i]);
}

/** Elements of the storage a tensor reaches: offset + 1 + sum((size-1)*stride); 0 for an empty tensor. */
export function storageExtent(t: Pick<RawTensor, 'shape' | 'stride' | 'storageOffset'>): number {
  if (t.shape.some((n) => n === 0)) return 0;
  let last = t.storageOffset;
  for (let i = 0; i < t.shape.length; i++) last += (t.shape[i]! - 1) * t.stride[i]!;
  return last + 1;
}

/**
 * The tensor's elements in row-major order as bytes (a copy when it is a strided view).
 * Needs `storage.data`.
 */
export function rawTensorBytes(t: RawTensor): Uint8Array {
  const data = t.storage.data;
  if (!data) throw new Error(`storage ${t.storage.key} has no data loaded`);
  const es = ELEMENT_SIZE[t.dtype];
  const n = numelOf(t.shape);
  if (isContiguous(t)) return data.subarray(t.storageOffset * es, (t.storageOffset + n) * es);
  const out = new Uint8Array(n * es);
  const idx = new Array<number>(t.shape.length).fill(0);
  let src = t.storageOffset;
  for (let k = 0; k < n; k++) {
    out.set(data.subarray(src * es, src * es + es), k * es);
    for (let d = t.shape.length - 1; d >= 0; d--) {
      idx[d]!++;
      src += t.stride[d]!;
      if (idx[d]! < t.shape[d]!) break;
      src -= t.stride[d]! * t.shape[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

/** A raw tensor that owns a fresh contiguous storage holding `data` (bytes, little-endian). */
export function rawTensorFromBytes(dtype: DType, shape: number[], data: Uint8Array, key = '0'): RawTensor {
  const numel = numelOf(shape);
  if (data.length !== numel * ELEMENT_SIZE[dtype]) {
    throw new Error(`rawTensorFromBytes: ${data.length} bytes for ${dtype} of shape [${shape.join(', ')}] (needs ${numel * ELEMENT_SIZE[dtype]})`);
  }
  return {
    dtype, shape: [...shape], stride: contiguousStride(shape), storageOffset: 0, requiresGrad: false,
    storage: { key, dtype, numel, location: 'cpu', data },
  };
}
