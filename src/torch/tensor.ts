// Tensor: a typed face of one libtorch tensor, with PyTorch's method names in camelCase.
import { native, type MemoryFormat, type NativeFunctions, type NativeHandle } from './native.js';
import { track, untrack } from './scope.js';

import { DTYPES, isDType, type DType } from './dtypes.js';
import { isDevice, type Device } from './device.js';

export { DTYPES, elementSize, isDType, isFloatingDType, type DType } from './dtypes.js';
export { isDevice, type Device } from './device.js';
export type Shape = readonly number[];
export type TypedArray =
  | Float32Array
  | Float64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | BigInt64Array
  | Uint16Array;

/** A shape given either as one array or as separate numbers (`view(2, 3)` or `view([2, 3])`). */
export type ShapeArgs = [Shape] | number[];
export function shapeOf(args: ShapeArgs): number[] {
  return args.length === 1 && Array.isArray(args[0]) ? [...(args[0] as Shape)] : (args as number[]);
}

export interface ValuesIndices {
  values: Tensor;
  indices: Tensor;
}

const N = native;

export type { MemoryFormat } from './native.js';
export const MEMORY_FORMATS: readonly MemoryFormat[] = ['contiguousFormat', 'channelsLast', 'channelsLast3d', 'preserveFormat'];
export function isMemoryFormat(x: unknown): x is MemoryFormat {
  return typeof x === 'string' && (MEMORY_FORMATS as readonly string[]).includes(x);
}
function checkFormat(f: unknown, op: string): MemoryFormat {
  if (!isMemoryFormat(f)) throw new TypeError(`${op}: memory format must be one of ${MEMORY_FORMATS.join(', ')} (torch.channelsLast, ...), got ${String(f)}`);
  return f;
}
function h(t: Tensor | number): NativeHandle | number {
  return typeof t === 'number' ? t : t.handle;
}
/** The native ops that take one tensor and return a new one. */
type UnaryOp = { [K in keyof NativeFunctions]: NativeFunctions[K] extends (t: NativeHandle) => NativeHandle ? K : never }[keyof NativeFunctions];

export class Tensor {
  /** @internal The native handle; use the methods instead (replaced only by `setData_`). */
  #handle: NativeHandle;
  /** The Tensor handed out by `.grad`, reused while it holds the current gradient. */
  #grad: Tensor | undefined;

  /** @internal Wraps a native handle; registers the tensor with the innermost open scope. */
  constructor(handle: NativeHandle) {
    this.#handle = handle;
    track(this);
  }

  /** @internal */
  get handle(): NativeHandle {
    return this.#handle;
  }

  // ---- metadata ----
  get shape(): number[] {
    return N.shape(this.#handle);
  }
  get dtype(): DType {
    return N.dtype(this.#handle);
  }
  get device(): Device {
    return N.device(this.#handle);
  }
  get ndim(): number {
    return N.dim(this.#handle);
  }
  dim(): number {
    return this.ndim;
  }
  /** The shape, or the size of one dimension (negative counts from the end), as in PyTorch. */
  size(): number[];
  size(dim: number): number;
  size(dim?: number): number | number[] {
    const s = this.shape;
    if (dim === undefined) return s;
    const d = dim < 0 ? dim + s.length : dim;
    if (d < 0 || d >= s.length) throw new RangeError(`size: dim ${dim} out of range for a ${s.length}-d tensor`);
    return s[d]!;
  }
  numel(): number {
    return N.numel(this.#handle);
  }
  stride(): number[] {
    return N.strides(this.#handle);
  }
  storageOffset(): number {
    return N.storageOffset(this.#handle);
  }
  /** Whether the elements lie densely in `memoryFormat`'s order (default torch.contiguous_format). */
  isContiguous(memoryFormat?: MemoryFormat): boolean {
    if (memoryFormat === undefined || memoryFormat === 'contiguousFormat') return N.isContiguous(this.#handle);
    return N.isContiguousAs(this.#handle, checkFormat(memoryFormat, 'isContiguous'));
  }
  /** The memory format libtorch's kernels choose for this tensor (Tensor.suggest_memory_format). */
  suggestMemoryFormat(): MemoryFormat {
    return N.suggestMemoryFormat(this.#handle);
  }
  /** A key equal for all tensors viewing the same storage (valid while that storage lives). */
  storageKey(): string {
    return N.storageKey(this.#handle);
  }
  /** Whether both tensors view the same storage. */
  sharesStorageWith(other: Tensor): boolean {
    return N.sameStorage(this.#handle, other.handle);
  }
  toString(): string {
    if (this.isDisposed) return 'Tensor(<disposed>)';
    return `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device})`;
  }

  // ---- memory ----
  /** Frees this reference to the native tensor now (the memory goes when no view or graph holds it). */
  dispose(): void {
    untrack(this);
    this.#handle.dispose();
    this.#grad?.dispose();
    this.#grad = undefined;
  }
  get isDisposed(): boolean {
    return this.#handle.isDisposed();
  }
  /**
   * PyTorch's `t.data = src`: this tensor takes `src`'s data (storage, dtype, device) and keeps its
   * own identity (this object, whatever holds it, e.g. an optimizer, and its requiresGrad). `src`
   * is consumed (disposed).
   */
  setData_(src: Tensor): this {
    const rg = this.requiresGrad;
    const data = N.detach(src.#handle);
    src.dispose();
    this.#handle.dispose();
    this.#grad?.dispose();
    this.#grad = undefined;
    this.#handle = data;
    N.setRequiresGrad(data, rg);
    return this;
  }
  /** Takes this tensor out of every enclosing scope: it lives until `dispose()` (or garbage collection). */
  keep(): this {
    untrack(this);
    return this;
  }

  // ---- data ----
  item(): number {
    const v = N.item(this.#handle);
    return typeof v === 'boolean' ? Number(v) : (v);
  }
  /** A copy of the elements as a typed array of the tensor's dtype (float16/bfloat16 come as float32). */
  toTypedArray(): TypedArray {
    const made: Tensor[] = [];
    let t = this.alias();
    made.push(t);
    if (t.device !== 'cpu') made.push((t = t.to('cpu')));
    if (t.dtype === 'float16' || t.dtype === 'bfloat16') made.push((t = t.to('float32')));
    if (!t.isContiguous()) made.push((t = t.contiguous()));
    const buf = (N.buffer(t.handle)).slice(0);
    const dtype = t.dtype;
    for (const m of made) m.dispose();
    return typedView(buf, dtype);
  }
  /** The elements as a nested number array. */
  tolist(): unknown {
    const flat = Array.from(this.toTypedArray() as ArrayLike<number | bigint>, (x) => Number(x));
    const shape = this.shape;
    const build = (d: number, off: number): unknown => {
      if (d === shape.length) return flat[off];
      const stride = shape.slice(d + 1).reduce((a, b) => a * b, 1);
      return Array.from({ length: shape[d]! }, (_, i) => build(d + 1, off + i * stride));
    };
    return build(0, 0);
  }
  /**
   * The bytes of this contiguous CPU tensor, sharing its memory (no copy): writing them writes the
   * tensor. Used to read data straight from files into tensors.
   */
  bytes(): Uint8Array {
    return new Uint8Array(N.buffer(this.#handle));
  }

  // ---- conversion ----
  /**
   * A tensor of another dtype, device or memory format (this tensor itself, as a new handle, when
   * nothing changes and `copy` is false). `memoryFormat` is PyTorch's `memory_format` argument
   * (default torch.preserve_format).
   */
  to(target: DType | Device | { dtype?: DType; device?: Device; copy?: boolean; memoryFormat?: MemoryFormat }): Tensor {
    if (typeof target === 'string') {
      if (isDType(target)) return new Tensor(N.to(this.#handle, target, undefined, false));
      if (isDevice(target)) return new Tensor(N.to(this.#handle, undefined, target, false));
      throw new TypeError(`to: '${target}' is neither a dtype (${DTYPES.join(', ')}) nor a device (cpu, cuda, cuda:N)`);
    }
    if (target.memoryFormat !== undefined && target.memoryFormat !== 'preserveFormat') {
      const f = checkFormat(target.memoryFormat, 'to');
      return new Tensor(N.toMemoryFormat(this.#handle, target.dtype, target.device, target.copy ?? false, f));
    }
    return new Tensor(N.to(this.#handle, target.dtype, target.device, target.copy ?? false));
  }
  cpu(): Tensor {
    return this.to('cpu');
  }
  cuda(index = 0): Tensor {
    return this.to(`cuda:${index}`);
  }
  float(): Tensor {
    return this.to('float32');
  }
  double(): Tensor {
    return this.to('float64');
  }
  long(): Tensor {
    return this.to('int64');
  }
  int(): Tensor {
    return this.to('int32');
  }
  bool(): Tensor {
    return this.to('bool');
  }
  clone(): Tensor {
    return new Tensor(N.clone(this.#handle));
  }
  /** This tensor laid out densely in `memoryFormat` (default torch.contiguous_format). */
  contiguous(memoryFormat?: MemoryFormat): Tensor {
    if (memoryFormat === undefined || memoryFormat === 'contiguousFormat') return new Tensor(N.contiguous(this.#handle));
    const f = checkFormat(memoryFormat, 'contiguous');
    if (f === 'preserveFormat') throw new Error("contiguous: torch.preserve_format is not a layout to make contiguous in (use 'contiguousFormat' or 'channelsLast')");
    return new Tensor(N.contiguousAs(this.#handle, f));
  }
  detach(): Tensor {
    return new Tensor(N.detach(this.#handle));
  }
  /** A second reference to the same tensor (same storage and autograd identity). */
  alias(): Tensor {
    return new Tensor(N.alias(this.#handle));
  }

  // ---- autograd ----
  get requiresGrad(): boolean {
    return N.requiresGrad(this.#handle);
  }
  set requiresGrad(v: boolean) {
    N.setRequiresGrad(this.#handle, v);
  }
  requiresGrad_(v = true): this {
    N.setRequiresGrad(this.#handle, v);
    return this;
  }
  get isLeaf(): boolean {
    return N.isLeaf(this.#handle);
  }
  /**
   * The accumulated gradient, or undefined. The same Tensor on every access while libtorch holds the
   * same gradient (no new handle per access); it belongs to this tensor and to no scope, and is
   * disposed when the gradient is set, cleared or replaced, or this tensor is disposed. Disposing it yourself
   * is harmless: the next access hands out a new one.
   */
  get grad(): Tensor | undefined {
    const known = this.#grad;
    const g = N.grad(this.#handle, known?.handle);
    if (known !== undefined && g === known.handle) return known;
    known?.dispose();
    if (g === undefined) return (this.#grad = undefined);
    const t = new Tensor(g);
    untrack(t);
    return (this.#grad = t);
  }
  /** Sets (a reference to `g`, which stays the caller's) or clears the gradient. */
  set grad(g: Tensor | undefined) {
    N.setGrad(this.#handle, g?.handle);
    this.#grad?.dispose();
    this.#grad = undefined;
  }
  backward(gradient?: Tensor, options: { retainGraph?: boolean } = {}): void {
    N.backward(this.#handle, gradient?.handle, options.retainGraph ?? false);
  }

  // ---- views ----
  view(...shape: ShapeArgs): Tensor {
    return new Tensor(N.view(this.#handle, shapeOf(shape)));
  }
  reshape(...shape: ShapeArgs): Tensor {
    return new Tensor(N.reshape(this.#handle, shapeOf(shape)));
  }
  permute(...dims: ShapeArgs): Tensor {
    return new Tensor(N.permute(this.#handle, shapeOf(dims)));
  }
  transpose(dim0: number, dim1: number): Tensor {
    return new Tensor(N.transpose(this.#handle, dim0, dim1));
  }
  t(): Tensor {
    return this.transpose(0, 1);
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return new Tensor(N.flatten(this.#handle, startDim, endDim));
  }
  squeeze(dim?: number): Tensor {
    return new Tensor(N.squeeze(this.#handle, dim));
  }
  unsqueeze(dim: number): Tensor {
    return new Tensor(N.unsqueeze(this.#handle, dim));
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return new Tensor(N.narrow(this.#handle, dim, start, length));
  }
  /** Python's `t[start:end:step]` along `dim` (negative indices count from the end). */
  slice(dim: number, start?: number, end?: number, step = 1): Tensor {
    return new Tensor(N.slice(this.#handle, dim, start, end, step));
  }
  select(dim: number, index: number): Tensor {
    return new Tensor(N.select(this.#handle, dim, index));
  }
  expand(...shape: ShapeArgs): Tensor {
    return new Tensor(N.expand(this.#handle, shapeOf(shape)));
  }
  asStrided(size: Shape, stride: Shape, storageOffset?: number): Tensor {
    return new Tensor(N.asStrided(this.#handle, [...size], [...stride], storageOffset));
  }
  flip(dims: number[]): Tensor {
    return new Tensor(N.flip(this.#handle, dims));
  }
  chunk(chunks: number, dim = 0): Tensor[] {
    return (N.chunk(this.#handle, chunks, dim)).map((x) => new Tensor(x));
  }
  split(splitSize: number, dim = 0): Tensor[] {
    return (N.split(this.#handle, splitSize, dim)).map((x) => new Tensor(x));
  }
  unbind(dim = 0): Tensor[] {
    return (N.unbind(this.#handle, dim)).map((x) => new Tensor(x));
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return new Tensor(N.indexSelect(this.#handle, dim, index.handle));
  }
  gather(dim: number, index: Tensor): Tensor {
    return new Tensor(N.gather(this.#handle, dim, index.handle));
  }
  maskedFill(mask: Tensor, value: number): Tensor {
    return new Tensor(N.maskedFill(this.#handle, mask.handle, value));
  }

  // ---- elementwise ----
  add(other: Tensor | number, alpha?: number): Tensor {
    return new Tensor(N.add(this.#handle, h(other), alpha));
  }
  sub(other: Tensor | number, alpha?: number): Tensor {
    return new Tensor(N.sub(this.#handle, h(other), alpha));
  }
  mul(other: Tensor | number): Tensor {
    return new Tensor(N.mul(this.#handle, h(other)));
  }
  div(other: Tensor | number): Tensor {
    return new Tensor(N.div(this.#handle, h(other)));
  }
  remainder(other: Tensor | number): Tensor {
    return new Tensor(N.remainder(this.#handle, h(other)));
  }
  pow(exponent: Tensor | number): Tensor {
    return new Tensor(N.pow(this.#handle, h(exponent)));
  }
  maximum(other: Tensor): Tensor {
    return new Tensor(N.maximum(this.#handle, other.handle));
  }
  minimum(other: Tensor): Tensor {
    return new Tensor(N.minimum(this.#handle, other.handle));
  }
  eq(other: Tensor | number): Tensor {
    return new Tensor(N.eq(this.#handle, h(other)));
  }
  ne(other: Tensor | number): Tensor {
    return new Tensor(N.ne(this.#handle, h(other)));
  }
  lt(other: Tensor | number): Tensor {
    return new Tensor(N.lt(this.#handle, h(other)));
  }
  le(other: Tensor | number): Tensor {
    return new Tensor(N.le(this.#handle, h(other)));
  }
  gt(other: Tensor | number): Tensor {
    return new Tensor(N.gt(this.#handle, h(other)));
  }
  ge(other: Tensor | number): Tensor {
    return new Tensor(N.ge(this.#handle, h(other)));
  }
  logicalNot(): Tensor {
    return this.#unary('logicalNot');
  }
  logicalAnd(other: Tensor): Tensor {
    return new Tensor(N.logicalAnd(this.#handle, other.handle));
  }
  logicalOr(other: Tensor): Tensor {
    return new Tensor(N.logicalOr(this.#handle, other.handle));
  }
  #unary(op: UnaryOp): Tensor {
    return new Tensor(N[op](this.#handle));
  }
  neg(): Tensor {
    return this.#unary('neg');
  }
  exp(): Tensor {
    return this.#unary('exp');
  }
  log(): Tensor {
    return this.#unary('log');
  }
  log1p(): Tensor {
    return this.#unary('log1p');
  }
  expm1(): Tensor {
    return this.#unary('expm1');
  }
  sqrt(): Tensor {
    return this.#unary('sqrt');
  }
  rsqrt(): Tensor {
    return this.#unary('rsqrt');
  }
  abs(): Tensor {
    return this.#unary('abs');
  }
  sigmoid(): Tensor {
    return this.#unary('sigmoid');
  }
  tanh(): Tensor {
    return this.#unary('tanh');
  }
  relu(): Tensor {
    return this.#unary('relu');
  }
  floor(): Tensor {
    return this.#unary('floor');
  }
  ceil(): Tensor {
    return this.#unary('ceil');
  }
  round(): Tensor {
    return this.#unary('round');
  }
  sign(): Tensor {
    return this.#unary('sign');
  }
  reciprocal(): Tensor {
    return this.#unary('reciprocal');
  }
  sin(): Tensor {
    return this.#unary('sin');
  }
  cos(): Tensor {
    return this.#unary('cos');
  }
  square(): Tensor {
    return this.#unary('square');
  }
  isnan(): Tensor {
    return this.#unary('isnan');
  }
  isfinite(): Tensor {
    return this.#unary('isfinite');
  }
  clamp(min?: number, max?: number): Tensor {
    return new Tensor(N.clamp(this.#handle, min, max));
  }
  lerp(end: Tensor, weight: number): Tensor {
    return new Tensor(N.lerp(this.#handle, end.handle, weight));
  }

  // ---- reductions ----
  sum(dim?: number | number[], keepdim = false, options: { dtype?: DType } = {}): Tensor {
    return new Tensor(N.sum(this.#handle, dim, keepdim, options.dtype));
  }
  mean(dim?: number | number[], keepdim = false): Tensor {
    return new Tensor(N.mean(this.#handle, dim, keepdim));
  }
  prod(dim?: number, keepdim = false): Tensor {
    return new Tensor(N.prod(this.#handle, dim, keepdim));
  }
  max(): Tensor;
  max(dim: number, keepdim?: boolean): ValuesIndices;
  max(dim?: number, keepdim = false): Tensor | ValuesIndices {
    if (dim === undefined) return new Tensor(N.maxAll(this.#handle));
    const [values, indices] = (N.maxDim(this.#handle, dim, keepdim)).map((x) => new Tensor(x));
    return { values: values!, indices: indices! };
  }
  min(): Tensor;
  min(dim: number, keepdim?: boolean): ValuesIndices;
  min(dim?: number, keepdim = false): Tensor | ValuesIndices {
    if (dim === undefined) return new Tensor(N.minAll(this.#handle));
    const [values, indices] = (N.minDim(this.#handle, dim, keepdim)).map((x) => new Tensor(x));
    return { values: values!, indices: indices! };
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return new Tensor(N.argmax(this.#handle, dim, keepdim));
  }
  argmin(dim?: number, keepdim = false): Tensor {
    return new Tensor(N.argmin(this.#handle, dim, keepdim));
  }
  std(dim?: number | number[], unbiased = true, keepdim = false): Tensor {
    return new Tensor(N.std(this.#handle, dim, unbiased, keepdim));
  }
  var(dim?: number | number[], unbiased = true, keepdim = false): Tensor {
    return new Tensor(N.var(this.#handle, dim, unbiased, keepdim));
  }
  norm(p = 2, dim?: number | number[], keepdim = false): Tensor {
    return new Tensor(N.norm(this.#handle, p, dim, keepdim));
  }
  all(): Tensor {
    return this.#unary('all');
  }
  any(): Tensor {
    return this.#unary('any');
  }
  cumsum(dim: number): Tensor {
    return new Tensor(N.cumsum(this.#handle, dim));
  }
  logsumexp(dim: number | number[], keepdim = false): Tensor {
    return new Tensor(N.logsumexp(this.#handle, dim, keepdim));
  }
  logSoftmax(dim: number): Tensor {
    return new Tensor(N.logSoftmax(this.#handle, dim));
  }
  softmax(dim: number): Tensor {
    return new Tensor(N.softmax(this.#handle, dim));
  }
  topk(k: number, dim = -1, largest = true, sorted = true): ValuesIndices {
    const [values, indices] = (N.topk(this.#handle, k, dim, largest, sorted)).map((x) => new Tensor(x));
    return { values: values!, indices: indices! };
  }
  sort(dim = -1, descending = false): ValuesIndices {
    const [values, indices] = (N.sort(this.#handle, dim, descending)).map((x) => new Tensor(x));
    return { values: values!, indices: indices! };
  }
  matmul(other: Tensor): Tensor {
    return new Tensor(N.matmul(this.#handle, other.handle));
  }
  mm(other: Tensor): Tensor {
    return new Tensor(N.mm(this.#handle, other.handle));
  }
  equal(other: Tensor): boolean {
    return N.equal(this.#handle, other.handle);
  }
  allclose(other: Tensor, rtol = 1e-5, atol = 1e-8): boolean {
    return N.allclose(this.#handle, other.handle, rtol, atol);
  }

  // ---- in place (return this) ----
  add_(other: Tensor | number, alpha?: number): this {
    N.add_(this.#handle, h(other), alpha);
    return this;
  }
  sub_(other: Tensor | number, alpha?: number): this {
    N.sub_(this.#handle, h(other), alpha);
    return this;
  }
  mul_(other: Tensor | number): this {
    N.mul_(this.#handle, h(other));
    return this;
  }
  div_(other: Tensor | number): this {
    N.div_(this.#handle, h(other));
    return this;
  }
  addcmul_(t1: Tensor, t2: Tensor, value = 1): this {
    N.addcmul_(this.#handle, t1.handle, t2.handle, value);
    return this;
  }
  addcdiv_(t1: Tensor, t2: Tensor, value = 1): this {
    N.addcdiv_(this.#handle, t1.handle, t2.handle, value);
    return this;
  }
  lerp_(end: Tensor, weight: number): this {
    N.lerp_(this.#handle, end.handle, weight);
    return this;
  }
  maximum_(other: Tensor): this {
    N.maximum_(this.#handle, other.handle);
    return this;
  }
  zero_(): this {
    N.zero_(this.#handle);
    return this;
  }
  fill_(value: number): this {
    N.fill_(this.#handle, value);
    return this;
  }
  clamp_(min?: number, max?: number): this {
    N.clamp_(this.#handle, min, max);
    return this;
  }
  sqrt_(): this {
    N.sqrt_(this.#handle);
    return this;
  }
  neg_(): this {
    N.neg_(this.#handle);
    return this;
  }
  relu_(): this {
    N.relu_(this.#handle);
    return this;
  }
  copy_(src: Tensor): this {
    N.copy_(this.#handle, src.handle);
    return this;
  }
  uniform_(from = 0, to = 1): this {
    N.uniform_(this.#handle, from, to);
    return this;
  }
  normal_(mean = 0, std = 1): this {
    N.normal_(this.#handle, mean, std);
    return this;
  }
  bernoulli_(p = 0.5): this {
    N.bernoulli_(this.#handle, p);
    return this;
  }
}

/** A typed array of the given dtype over an ArrayBuffer (int64 as BigInt64Array, bool as Uint8Array). */
export function typedView(buf: ArrayBuffer, dtype: DType): TypedArray {
  switch (dtype) {
    case 'float32':
      return new Float32Array(buf);
    case 'float64':
      return new Float64Array(buf);
    case 'int64':
      return new BigInt64Array(buf);
    case 'int32':
      return new Int32Array(buf);
    case 'int16':
      return new Int16Array(buf);
    case 'int8':
      return new Int8Array(buf);
    case 'float16':
    case 'bfloat16':
      return new Uint16Array(buf);
    default:
      return new Uint8Array(buf);
  }
}
