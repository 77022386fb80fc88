// Tensor creation: torch.tensor, zeros, ones, ... with PyTorch's defaults (float32 unless told).
import { native, type MemoryFormat, type NativeHandle } from './native.js';
import { Tensor, shapeOf, type DType, type Device, type Shape, type ShapeArgs, type TypedArray } from './tensor.js';

export interface TensorOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

function finish(made: NativeHandle | Tensor, o: TensorOptions): Tensor {
  const t = made instanceof Tensor ? made : new Tensor(made);
  if (o.requiresGrad) t.requiresGrad_(true);
  return t;
}

/** Splits trailing options off `(...shape, options?)` style arguments. */
function shapeAndOptions(args: (number | Shape | TensorOptions)[]): [number[], TensorOptions] {
  const last = args[args.length - 1];
  const opts = last !== undefined && typeof last === 'object' && !Array.isArray(last) ? (args.pop() as TensorOptions) : {};
  return [shapeOf(args as ShapeArgs), opts];
}

const TYPED_DTYPE: [new (...a: never[]) => TypedArray, DType][] = [
  [Float32Array, 'float32'],
  [Float64Array, 'float64'],
  [BigInt64Array, 'int64'],
  [Int32Array, 'int32'],
  [Int16Array, 'int16'],
  [Int8Array, 'int8'],
  [Uint8Array, 'uint8'],
  [Uint8ClampedArray, 'uint8'],
];

function dtypeOfTyped(a: TypedArray): DType {
  for (const [C, d] of TYPED_DTYPE) if (a instanceof C) return d;
  throw new TypeError(`fromTypedArray: unsupported array type ${a.constructor.name}; give a dtype`);
}

/**
 * A tensor holding a copy of a typed array's elements, with the given shape (default: 1-d). The dtype
 * defaults to the array's (Float32Array -> float32, BigInt64Array -> int64, ...). A Uint16Array is
 * taken as raw float16/bfloat16 bits and needs `dtype`.
 */
export function fromTypedArray(data: TypedArray, shape?: Shape, dtype?: DType): Tensor {
  const dt = dtype ?? dtypeOfTyped(data);
  return new Tensor(native.fromBuffer(data, shape ? [...shape] : [data.length], dt));
}

/** One tensor to read from a file: its bytes start at `position` (numel x element size of them). */
export interface FileTensor {
  position: number;
  shape: Shape;
  dtype: DType;
}

/**
 * New CPU tensors holding a file's bytes (an open descriptor's), one per item, read with positional
 * reads off the main thread on up to `threads` threads (default 1). Rejects naming the item (its
 * index) when the file ends before its bytes. The like of torch.from_file, for many tensors at once.
 */
export async function tensorsFromFile(fd: number, items: readonly FileTensor[], options: { threads?: number } = {}): Promise<Tensor[]> {
  const handles = await native.readFile(fd, items.map((it) => [it.position, [...it.shape], it.dtype]), Math.max(1, options.threads ?? 1));
  return handles.map((h) => new Tensor(h));
}

type Nested = number | boolean | Nested[];

/** torch.tensor: from a number, nested arrays of numbers/booleans, or a typed array. */
export function tensor(data: Nested | TypedArray, options: TensorOptions = {}): Tensor {
  if (ArrayBuffer.isView(data)) {
    const t = fromTypedArray(data as TypedArray);
    if (!options.dtype && !options.device) return finish(t, options);
    const c = t.to({ dtype: options.dtype ?? t.dtype, device: options.device ?? 'cpu' });
    t.dispose();
    return finish(c, options);
  }
  const shape: number[] = [];
  let probe: Nested = data;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    probe = probe[0] as Nested;
  }
  const flat: (number | boolean)[] = [];
  const walk = (x: Nested, d: number): void => {
    if (Array.isArray(x)) {
      if (x.length !== shape[d]) throw new RangeError(`tensor: ragged nested array (expected ${shape[d]} items at depth ${d}, got ${x.length})`);
      for (const y of x) walk(y, d + 1);
    } else {
      if (d !== shape.length) throw new RangeError('tensor: ragged nested array');
      flat.push(x);
    }
  };
  walk(data, 0);
  const inferred: DType = flat.every((v) => typeof v === 'boolean')
    ? 'bool'
    : flat.every((v) => typeof v === 'number' && Number.isInteger(v))
      ? 'int64'
      : 'float32';
  const dt = options.dtype ?? (flat.length === 0 ? 'float32' : inferred);
  const nums = new Float64Array(flat.map(Number));
  const t64 = new Tensor(native.fromBuffer(nums, shape, 'float64'));
  const out = t64.to({ dtype: dt, device: options.device ?? 'cpu', copy: true });
  t64.dispose();
  return finish(out, options);
}

export function empty(...args: (number | Shape | TensorOptions)[]): Tensor {
  const [s, o] = shapeAndOptions(args);
  return finish(native.empty(s, o.dtype, o.device), o);
}
export function zeros(...args: (number | Shape | TensorOptions)[]): Tensor {
  const [s, o] = shapeAndOptions(args);
  return finish(native.zeros(s, o.dtype, o.device), o);
}
export function ones(...args: (number | Shape | TensorOptions)[]): Tensor {
  const [s, o] = shapeAndOptions(args);
  return finish(native.ones(s, o.dtype, o.device), o);
}
export function full(shape: Shape, value: number, o: TensorOptions = {}): Tensor {
  return finish(native.full([...shape], value, o.dtype, o.device), o);
}
export function rand(...args: (number | Shape | TensorOptions)[]): Tensor {
  const [s, o] = shapeAndOptions(args);
  return finish(native.rand(s, o.dtype, o.device), o);
}
export function randn(...args: (number | Shape | TensorOptions)[]): Tensor {
  const [s, o] = shapeAndOptions(args);
  return finish(native.randn(s, o.dtype, o.device), o);
}
/** Integers uniform in [low, high). */
export function randint(low: number, high: number, shape: Shape, o: TensorOptions = {}): Tensor {
  return finish(native.randint(low, high, [...shape], o.dtype, o.device), o);
}
export function randperm(n: number): Tensor {
  return new Tensor(native.randperm(n));
}
export function eye(n: number, o: TensorOptions = {}): Tensor {
  return finish(native.eye(n, o.dtype, o.device), o);
}
/** arange(end) or arange(start, end, step); integer arguments give int64 like PyTorch. */
export function arange(startOrEnd: number, end?: number, step = 1, o: TensorOptions = {}): Tensor {
  const [a, b] = end === undefined ? [0, startOrEnd] : [startOrEnd, end];
  const dt = o.dtype ?? ([a, b, step].every(Number.isInteger) ? 'int64' : 'float32');
  return finish(native.arange(a, b, step, dt, o.device), o);
}
/** Options of the `*Like` creators: PyTorch's, with `memoryFormat` (default torch.preserve_format). */
export interface LikeOptions extends TensorOptions {
  memoryFormat?: MemoryFormat;
}
/**
 * An uninitialised tensor shaped like `t`. With torch.preserve_format (the default, as PyTorch) a
 * dense tensor keeps `t`'s strides (a channels_last input gives a channels_last result).
 */
export function emptyLike(t: Tensor, o: LikeOptions = {}): Tensor {
  return finish(native.emptyLike(t.handle, o.dtype, o.device, o.memoryFormat), o);
}
/** Zeros shaped (and, with torch.preserve_format, laid out) like `t`. */
export function zerosLike(t: Tensor, o: LikeOptions = {}): Tensor {
  return finish(native.zerosLike(t.handle, o.dtype, o.device, o.memoryFormat), o);
}
export function onesLike(t: Tensor, o: LikeOptions = {}): Tensor {
  return fullLike(t, 1, o);
}
export function fullLike(t: Tensor, value: number, o: LikeOptions = {}): Tensor {
  const e = new Tensor(native.emptyLike(t.handle, o.dtype, o.device, o.memoryFormat));
  native.fill_(e.handle, value);
  return finish(e, o);
}
export function randnLike(t: Tensor): Tensor {
  return randn(t.shape, { dtype: t.dtype, device: t.device });
}
