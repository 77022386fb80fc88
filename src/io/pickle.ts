// Python's pickle format: an unpickler for protocols 0-5 (what torch.save and numpy produce) and a
// protocol-2 pickler (what torch.save writes by default). Persistent ids (torch storages) are handed
// to caller hooks; classes the caller does not rebuild become plain placeholder objects.

import { PickleError, PickleTruncatedError } from './errors.js';
import { isSafeGlobal, UNSAFE_HINT, type UnknownGlobals } from './globals.js';

/** Non-enumerable marker on objects/Maps that came from (or should be written as) a Python class other than dict. */
export const PY_CLASS: unique symbol = Symbol.for('awty.io.pyClass');

/** A reference to a Python global (a class or function), e.g. `torch.FloatStorage` when not called. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}

  get qualname(): string {
    return `${this.module}.${this.name}`;
  }
}

/** An object of a class the reader does not rebuild: its class name, constructor arguments and state. */
export interface PyObject {
  __class__: string;
  args: unknown[];
  state: unknown;
  /** The callable that built it, when not the class itself (e.g. numpy.core.multiarray._reconstruct). */
  factory?: string;
  /** Items added with SETITEM(S) (dict subclasses), if any. */
  dictitems?: Map<unknown, unknown>;
  /** Items added with APPEND(S) (list subclasses), if any. */
  listitems?: unknown[];
  [extra: string]: unknown;
}

/** A decoded numpy array (`numpy.ndarray` placeholder with its data). */
export interface NumpyArray extends PyObject {
  __class__: 'numpy.ndarray';
  dtype: string;
  shape: number[];
  fortranOrder: boolean;
  data: unknown;
}

/** Writer-side marker: write this array as a Python tuple instead of a list. */
export class PyTuple {
  constructor(readonly items: unknown[]) {}
}

/** Mark an array so the pickler writes it as a Python tuple (the unpickler marks tuples it reads). */
export function markTuple<T extends unknown[]>(arr: T): T {
  Object.defineProperty(arr, PY_CLASS, { value: 'tuple', enumerable: false, configurable: true, writable: true });
  return arr;
}

export function isTuple(v: unknown): boolean {
  return Array.isArray(v) && (v as { [PY_CLASS]?: string })[PY_CLASS] === 'tuple';
}

export function isPyObject(v: unknown): v is PyObject {
  return typeof v === 'object' && v !== null && typeof (v as { __class__?: unknown }).__class__ === 'string' && Array.isArray((v as { args?: unknown }).args);
}

export function placeholder(cls: string, args: unknown[]): PyObject {
  return { __class__: cls, args, state: undefined };
}

/** Mark a plain object (or Map) so the pickler writes it as `collections.OrderedDict`. Returns it. */
export function markOrdered<T extends object>(obj: T): T {
  Object.defineProperty(obj, PY_CLASS, { value: 'collections.OrderedDict', enumerable: false, configurable: true, writable: true });
  return obj;
}

export function isOrdered(obj: object): boolean {
  return (obj as { [PY_CLASS]?: string })[PY_CLASS] === 'collections.OrderedDict';
}

// ---------------------------------------------------------------------------------------------
// numpy dtypes

interface NumpyDtype extends PyObject {
  __class__: 'numpy.dtype';
  descr: string;
  byteorder: string;
}

const NUMPY_DTYPES: Record<string, string> = {
  f2: 'float16', f4: 'float32', f8: 'float64',
  i1: 'int8', i2: 'int16', i4: 'int32', i8: 'int64',
  u1: 'uint8', u2: 'uint16', u4: 'uint32', u8: 'uint64',
  b1: 'bool',
};

function numpyDtypeName(d: NumpyDtype): string {
  return NUMPY_DTYPES[d.descr] ?? d.descr;
}

function isNumpyDtype(v: unknown): v is NumpyDtype {
  return isPyObject(v) && v.__class__ === 'numpy.dtype';
}

export function halfToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** Copy little/big-endian bytes into an aligned typed array of the named numpy dtype. */
function bytesToTyped(bytes: Uint8Array, dtype: string, bigEndian: boolean): unknown {
  const size = Number(/\d+$/.exec(dtype)?.[0] ?? '8') / 8;
  const esize = dtype === 'bool' ? 1 : size;
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  if (bigEndian && esize > 1) {
    for (let i = 0; i + esize <= copy.length; i += esize) copy.subarray(i, i + esize).reverse();
  }
  const buf = copy.buffer;
  const n = Math.floor(copy.length / esize);
  switch (dtype) {
    case 'float16': {
      const u = new Uint16Array(buf, 0, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToNumber(u[i]!);
      return out;
    }
    case 'float32': return new Float32Array(buf, 0, n);
    case 'float64': return new Float64Array(buf, 0, n);
    case 'int8': return new Int8Array(buf, 0, n);
    case 'int16': return new Int16Array(buf, 0, n);
    case 'int32': return new Int32Array(buf, 0, n);
    case 'int64': return new BigInt64Array(buf, 0, n);
    case 'uint8': case 'bool': return new Uint8Array(buf, 0, n);
    case 'uint16': return new Uint16Array(buf, 0, n);
    case 'uint32': return new Uint32Array(buf, 0, n);
    case 'uint64': return new BigUint64Array(buf, 0, n);
    default: return undefined;
  }
}

function bigToNumber(b: bigint): number | bigint {
  return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
}

function numpyScalar(dtype: unknown, data: unknown): unknown {
  if (!isNumpyDtype(dtype)) return placeholder('numpy.core.multiarray.scalar', [dtype, data]);
  if (!(data instanceof Uint8Array)) return data; // object dtype: the value itself
  const name = numpyDtypeName(dtype);
  const typed = bytesToTyped(data, name, dtype.byteorder === '>');
  if (typed === undefined || (typed as ArrayLike<unknown>).length !== 1) {
    return placeholder('numpy.core.multiarray.scalar', [dtype, data]);
  }
  const v = (typed as ArrayLike<number | bigint>)[0]!;
  if (name === 'bool') return v !== 0;
  return typeof v === 'bigint' ? bigToNumber(v) : v;
}

function buildNumpy(obj: PyObject, state: unknown): void {
  if (obj.__class__ === 'numpy.dtype' && Array.isArray(state)) {
    const d = obj as NumpyDtype;
    d.byteorder = typeof state[1] === 'string' ? state[1] : '|';
    return;
  }
  if (obj.__class__ === 'numpy.ndarray' && Array.isArray(state) && state.length >= 5) {
    const [, shape, dtype, fortran, raw] = state as [unknown, number[], unknown, boolean, unknown];
    const arr = obj as NumpyArray;
    arr.shape = Array.isArray(shape) ? shape.map(Number) : [];
    arr.fortranOrder = Boolean(fortran);
    if (isNumpyDtype(dtype)) {
      arr.dtype = numpyDtypeName(dtype);
      arr.data = raw instanceof Uint8Array ? (bytesToTyped(raw, arr.dtype, dtype.byteorder === '>') ?? raw) : raw;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Unpickler

/** Dict under construction (converted to a plain object or a Map when unpickling ends). */
class PyDict {
  readonly entries = new Map<unknown, unknown>();
  constructor(readonly cls?: string) {}
}

export interface UnpickleOptions {
  /** Resolve a persistent id (BINPERSID / PERSID). Required if the pickle uses them. */
  persistentLoad?: (pid: unknown) => unknown;
  /**
   * Return a function that rebuilds objects of `module.name` from REDUCE/NEWOBJ arguments, or
   * undefined to fall back to the built-in handlers and then to a placeholder.
   */
  findClass?: (module: string, name: string) => ((args: unknown[]) => unknown) | undefined;
  /**
   * Globals outside the allow-list (io/globals.ts SAFE_GLOBALS plus `allowGlobals`): 'refuse' (the
   * default, like torch.load(weights_only=True)) throws a PickleError naming the global;
   * 'placeholder' keeps them as inert placeholders (nothing is ever executed either way).
   */
  unknownGlobals?: UnknownGlobals;
  /** Extra `module.name` globals to accept. */
  allowGlobals?: Iterable<string>;
}

export interface UnpickleResult {
  value: unknown;
  /** Byte offset just after the STOP opcode. */
  end: number;
}

const TEXT = new TextDecoder('utf-8');

function latin1(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return s;
}

/** A little-endian two's-complement integer, in linear time (one hex parse, not a shift per byte). */
function decodeLong(bytes: Uint8Array): number | bigint {
  if (bytes.length === 0) return 0;
  const be = Buffer.from(bytes).reverse();
  let v = BigInt(`0x${be.toString('hex')}`);
  if (bytes[bytes.length - 1]! & 0x80) v -= 1n << BigInt(bytes.length * 8);
  return bigToNumber(v);
}

function parseTextInt(s: string): number | bigint | boolean {
  const t = s.trim().replace(/L$/, '');
  if (t === '00') return false;
  if (t === '01') return true;
  return bigToNumber(BigInt(t));
}

function builtinCallable(module: string, name: string): ((args: unknown[]) => unknown) | undefined {
  const q = `${module}.${name}`;
  switch (q) {
    case 'collections.OrderedDict':
      return (args) => {
        const d = new PyDict('collections.OrderedDict');
        const init = args[0];
        if (Array.isArray(init)) for (const kv of init) if (Array.isArray(kv)) d.entries.set(kv[0], kv[1]);
        return d;
      };
    case '_codecs.encode':
      return (args) => {
        const [s, enc] = args;
        if (typeof s !== 'string') return placeholder(q, args);
        if (enc === 'latin1' || enc === 'latin-1') return Uint8Array.from(s, (c) => c.charCodeAt(0));
        return new TextEncoder().encode(s);
      };
    case '__builtin__.set': case 'builtins.set': case '__builtin__.frozenset': case 'builtins.frozenset':
      return (args) => new Set(Array.isArray(args[0]) ? args[0] : []);
    case '__builtin__.bytearray': case 'builtins.bytearray': case '__builtin__.bytes': case 'builtins.bytes':
      return (args) => {
        const a = args[0];
        if (a instanceof Uint8Array) return a;
        if (typeof a === 'string') return Uint8Array.from(a, (c) => c.charCodeAt(0));
        if (Array.isArray(a)) return Uint8Array.from(a as number[]);
        return new Uint8Array(0);
      };
    case 'numpy.core.multiarray.scalar': case 'numpy._core.multiarray.scalar':
      return (args) => numpyScalar(args[0], args[1]);
    case 'numpy.dtype':
      return (args) => {
        const d = placeholder('numpy.dtype', args) as NumpyDtype;
        d.descr = String(args[0]);
        d.byteorder = '<';
        return d;
      };
    case 'numpy.core.multiarray._reconstruct': case 'numpy._core.multiarray._reconstruct':
      return (args) => {
        const cls = args[0] instanceof PyGlobal ? args[0].qualname : 'numpy.ndarray';
        return { ...placeholder(cls, args), factory: q };
      };
    case 'copyreg._reconstructor': case 'copy_reg._reconstructor':
      return (args) => ({ ...placeholder(args[0] instanceof PyGlobal ? args[0].qualname : q, args), factory: q });
    case 'torch.Size':
      return (args) => (Array.isArray(args[0]) ? [...(args[0] as unknown[])] : args);
    default:
      return undefined;
  }
}

/**
 * Run the pickle program in `buf` from `start` to its STOP opcode.
 * Throws PickleTruncatedError if the program runs past the buffer, PickleError on bad opcodes.
 */
export function unpickle(buf: Uint8Array, options: UnpickleOptions = {}, start = 0): UnpickleResult {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = start;
  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();

  // every length field is checked against the bytes actually left before anything is allocated
  const need = (n: number): void => {
    if (pos + n > buf.length) throw new PickleTruncatedError(`pickle data truncated at byte ${pos} (needs ${n} more bytes, ${buf.length - pos} left)`);
  };
  const refuse = options.unknownGlobals !== 'placeholder';
  const checkGlobal = (module: string, name: string, at: number): PyGlobal => {
    const g = new PyGlobal(module, name);
    if (refuse && !isSafeGlobal(g.qualname, options.allowGlobals)) {
      throw new PickleError(`pickle at byte ${at} refers to the global ${g.qualname}, which a checkpoint may not use (${UNSAFE_HINT}); `
        + "if you trust this file, load it with { unknownGlobals: 'placeholder' } (nothing is executed) or allow the global explicitly");
    }
    return g;
  };
  const u8 = (): number => { need(1); return buf[pos++]!; };
  const u16 = (): number => { need(2); const v = view.getUint16(pos, true); pos += 2; return v; };
  const u32 = (): number => { need(4); const v = view.getUint32(pos, true); pos += 4; return v; };
  const i32 = (): number => { need(4); const v = view.getInt32(pos, true); pos += 4; return v; };
  const u64 = (): number => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new PickleError(`pickle length ${v} too large`);
    return Number(v);
  };
  const bytes = (n: number): Uint8Array => { need(n); const b = buf.subarray(pos, pos + n); pos += n; return b; };
  const line = (): string => {
    const nl = buf.indexOf(0x0a, pos);
    if (nl < 0) throw new PickleTruncatedError(`pickle text line truncated at byte ${pos}`);
    const s = latin1(buf.subarray(pos, nl));
    pos = nl + 1;
    return s;
  };
  const pop = (): unknown => {
    if (stack.length === 0) throw new PickleError(`pickle stack underflow at byte ${pos - 1}`);
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) throw new PickleError(`pickle stack underflow at byte ${pos - 1}`);
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const prev = metastack.pop();
    if (prev === undefined) throw new PickleError(`pickle MARK missing at byte ${pos - 1}`);
    stack = prev;
    return items;
  };
  const getMemo = (i: number): unknown => {
    if (!memo.has(i)) throw new PickleError(`pickle memo entry ${i} missing at byte ${pos - 1}`);
    return memo.get(i);
  };
  const persistent = (pid: unknown): unknown => {
    if (!options.persistentLoad) throw new PickleError('pickle uses persistent ids but no persistent_load was given');
    return options.persistentLoad(pid);
  };
  const call = (fn: unknown, args: unknown[]): unknown => {
    if (!(fn instanceof PyGlobal)) {
      if (isPyObject(fn)) return placeholder(fn.__class__, args);
      throw new PickleError(`pickle REDUCE on a non-callable at byte ${pos - 1}`);
    }
    const custom = options.findClass?.(fn.module, fn.name) ?? builtinCallable(fn.module, fn.name);
    return custom ? custom(args) : placeholder(fn.qualname, args);
  };
  const setItems = (target: unknown, kv: unknown[]): void => {
    if (target instanceof PyDict) {
      for (let i = 0; i + 1 < kv.length; i += 2) target.entries.set(kv[i], kv[i + 1]);
    } else if (isPyObject(target)) {
      target.dictitems ??= new Map();
      for (let i = 0; i + 1 < kv.length; i += 2) target.dictitems.set(kv[i], kv[i + 1]);
    } else {
      throw new PickleError(`pickle SETITEM on a non-dict at byte ${pos - 1}`);
    }
  };
  const appendItems = (target: unknown, items: unknown[]): void => {
    if (Array.isArray(target)) for (const x of items) target.push(x);
    else if (target instanceof Set) for (const x of items) target.add(x);
    else if (isPyObject(target)) { const l = (target.listitems ??= []); for (const x of items) l.push(x); }
    else throw new PickleError(`pickle APPEND on a non-list at byte ${pos - 1}`);
  };

  for (;;) {
    const opAt = pos;
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: u64(); break; // FRAME (the whole program is in memory)
      case 0x2e: { // STOP
        const value = finalize(pop());
        return { value, end: pos };
      }
      case 0x28: metastack.push(stack); stack = []; break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x8a: stack.push(decodeLong(bytes(u8()))); break; // LONG1
      case 0x8b: { const n = i32(); if (n < 0) throw new PickleError('negative LONG4 length'); stack.push(decodeLong(bytes(n))); break; }
      case 0x49: stack.push(parseTextInt(line())); break; // INT
      case 0x4c: stack.push(parseTextInt(line())); break; // LONG
      case 0x46: stack.push(parseFloat(line())); break; // FLOAT
      case 0x47: { need(8); stack.push(view.getFloat64(pos, false)); pos += 8; break; } // BINFLOAT
      case 0x8c: stack.push(TEXT.decode(bytes(u8()))); break; // SHORT_BINUNICODE
      case 0x58: stack.push(TEXT.decode(bytes(u32()))); break; // BINUNICODE
      case 0x8d: stack.push(TEXT.decode(bytes(u64()))); break; // BINUNICODE8
      case 0x56: // UNICODE (raw-unicode-escape: latin-1 bytes, \uXXXX and \UXXXXXXXX)
        stack.push(line().replace(/\\u([0-9a-fA-F]{4})|\\U([0-9a-fA-F]{8})/g, (_, a?: string, b?: string) => String.fromCodePoint(parseInt(a ?? b!, 16))));
        break;
      case 0x55: stack.push(latin1(bytes(u8()))); break; // SHORT_BINSTRING (py2 str)
      case 0x54: stack.push(latin1(bytes(i32()))); break; // BINSTRING
      case 0x53: { const s = line().trim(); stack.push(s.slice(1, -1)); break; } // STRING
      case 0x43: stack.push(bytes(u8()).slice()); break; // SHORT_BINBYTES
      case 0x42: stack.push(bytes(u32()).slice()); break; // BINBYTES
      case 0x8e: stack.push(bytes(u64()).slice()); break; // BINBYTES8
      case 0x96: stack.push(bytes(u64()).slice()); break; // BYTEARRAY8
      case 0x97: case 0x98: throw new PickleError(`pickle out-of-band buffers (opcode 0x${op.toString(16)}) are not supported`);
      case 0x7d: stack.push(new PyDict()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push(markTuple([])); break; // EMPTY_TUPLE
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x64: { const d = new PyDict(); setItems(d, popMark()); stack.push(d); break; } // DICT
      case 0x6c: { const items = popMark(); stack.push(items); break; } // LIST (popMark replaces `stack`)
      case 0x74: { const items = popMark(); stack.push(markTuple(items)); break; } // TUPLE
      case 0x85: stack.push(markTuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push(markTuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push(markTuple([a, b, c])); break; } // TUPLE3
      case 0x91: { const items = popMark(); stack.push(new Set(items)); break; } // FROZENSET
      case 0x90: { const items = popMark(); appendItems(top(), items); break; } // ADDITEMS
      case 0x61: { const v = pop(); appendItems(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); appendItems(top(), items); break; } // APPENDS
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const kv = popMark(); setItems(top(), kv); break; } // SETITEMS
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x70: memo.set(Number(line()), top()); break; // PUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: stack.push(getMemo(u8())); break; // BINGET
      case 0x6a: stack.push(getMemo(u32())); break; // LONG_BINGET
      case 0x67: stack.push(getMemo(Number(line()))); break; // GET
      case 0x63: { const m = line(); const n = line(); stack.push(checkGlobal(m, n, opAt)); break; } // GLOBAL
      case 0x93: { const n = pop(); const m = pop(); stack.push(checkGlobal(String(m), String(n), opAt)); break; } // STACK_GLOBAL
      case 0x52: { const args = pop(); const fn = pop(); stack.push(call(fn, Array.isArray(args) ? args : [args])); break; } // REDUCE
      case 0x81: { const args = pop(); const cls = pop(); stack.push(call(cls, Array.isArray(args) ? args : [args])); break; } // NEWOBJ
      case 0x92: { const kwargs = pop(); const args = pop(); const cls = pop(); const o = call(cls, Array.isArray(args) ? args : [args]); if (isPyObject(o)) o.kwargs = kwargs; stack.push(o); break; } // NEWOBJ_EX
      case 0x6f: { const items = popMark(); const cls = items.shift(); stack.push(call(cls, items)); break; } // OBJ
      case 0x69: { const m = line(); const n = line(); const args = popMark(); stack.push(call(checkGlobal(m, n, opAt), args)); break; } // INST
      case 0x62: { // BUILD
        const state = pop();
        const obj = top();
        if (isPyObject(obj)) {
          obj.state = state;
          buildNumpy(obj, state);
        } else if (obj instanceof PyDict && state instanceof PyDict) {
          for (const [k, v] of state.entries) obj.entries.set(k, v);
        }
        // other targets (tensors rebuilt by the caller): attributes are ignored
        break;
      }
      case 0x51: stack.push(persistent(pop())); break; // BINPERSID
      case 0x50: stack.push(persistent(line())); break; // PERSID
      case 0x82: case 0x83: case 0x84:
        throw new PickleError(`pickle extension registry opcode 0x${op.toString(16)} at byte ${opAt} is not supported`);
      default:
        throw new PickleError(`unknown pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${opAt}`);
    }
  }
}

/** Convert the unpickler's internal dicts into plain objects (string keys) or Maps (other keys). */
function finalize(root: unknown): unknown {
  const done = new Map<object, unknown>();
  const conv = (v: unknown): unknown => {
    if (typeof v !== 'object' || v === null) return v;
    if (ArrayBuffer.isView(v) || v instanceof PyGlobal) return v;
    const seen = done.get(v);
    if (seen !== undefined) return seen;
    if (v instanceof PyDict) {
      const allStrings = [...v.entries.keys()].every((k) => typeof k === 'string');
      if (allStrings) {
        const o: Record<string, unknown> = {};
        if (v.cls) Object.defineProperty(o, PY_CLASS, { value: v.cls, enumerable: false, configurable: true, writable: true });
        done.set(v, o);
        for (const [k, x] of v.entries) Object.defineProperty(o, k as string, { value: conv(x), enumerable: true, writable: true, configurable: true });
        return o;
      }
      const m = new Map<unknown, unknown>();
      if (v.cls) Object.defineProperty(m, PY_CLASS, { value: v.cls, enumerable: false, configurable: true, writable: true });
      done.set(v, m);
      for (const [k, x] of v.entries) m.set(conv(k), conv(x));
      return m;
    }
    if (Array.isArray(v)) {
      done.set(v, v);
      for (let i = 0; i < v.length; i++) v[i] = conv(v[i]);
      return v;
    }
    if (v instanceof Set) {
      const items = [...v];
      v.clear();
      done.set(v, v);
      for (const x of items) v.add(conv(x));
      return v;
    }
    if (v instanceof Map) {
      done.set(v, v);
      for (const [k, x] of v) v.set(k, conv(x));
      return v;
    }
    done.set(v, v);
    const rec = v as Record<string, unknown>;
    for (const k of Object.keys(rec)) rec[k] = conv(rec[k]);
    return v;
  };
  return conv(root);
}

// ---------------------------------------------------------------------------------------------
// Pickler (protocol 2)

export interface PickleOptions {
  /** Return a persistent id for `v` (written with BINPERSID), or undefined to pickle `v` normally. */
  persistentId?: (v: unknown) => unknown;
  /** Return a reduction `(callable, args[, state])` for `v`, or undefined. Consulted before built-in rules. */
  reduce?: (v: unknown) => { callable: PyGlobal; args: unknown[]; state?: unknown } | undefined;
  /**
   * Write globals outside the allow-list (placeholders of classes loaded with
   * unknownGlobals: 'placeholder'). Default false: such a value throws, so a loaded payload such as
   * `os.system` is never written back for Python to execute.
   */
  allowUnknownGlobals?: boolean;
  /** Extra `module.name` globals that may be written. */
  allowGlobals?: Iterable<string>;
}

class ByteSink {
  buf = Buffer.alloc(1 << 16);
  len = 0;
  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const b = Buffer.alloc(size);
    this.buf.copy(b, 0, 0, this.len);
    this.buf = b;
  }
  byte(b: number): void { this.ensure(1); this.buf[this.len++] = b; }
  u16(v: number): void { this.ensure(2); this.buf.writeUInt16LE(v, this.len); this.len += 2; }
  u32(v: number): void { this.ensure(4); this.buf.writeUInt32LE(v, this.len); this.len += 4; }
  i32(v: number): void { this.ensure(4); this.buf.writeInt32LE(v, this.len); this.len += 4; }
  f64be(v: number): void { this.ensure(8); this.buf.writeDoubleBE(v, this.len); this.len += 8; }
  raw(b: Uint8Array): void { this.ensure(b.length); this.buf.set(b, this.len); this.len += b.length; }
  ascii(s: string): void { this.raw(Buffer.from(s, 'latin1')); }
  result(): Buffer { return this.buf.subarray(0, this.len); }
}

function encodeLong(v: bigint): Uint8Array {
  if (v === 0n) return new Uint8Array(0);
  const out: number[] = [];
  let x = v;
  for (;;) {
    out.push(Number(x & 0xffn));
    x >>= 8n;
    const signBit = (out[out.length - 1]! & 0x80) !== 0;
    if ((x === 0n && !signBit) || (x === -1n && signBit)) break;
  }
  return Uint8Array.from(out);
}

/** Serialize a JS value as a protocol-2 pickle (the format torch.save uses for data.pkl). */
export function pickle(value: unknown, options: PickleOptions = {}): Buffer {
  const out = new ByteSink();
  const memo = new Map<unknown, number>();
  const globals = new Map<string, number>();
  const active = new Set<object>();
  let memoCount = 0;

  const put = (key: unknown, table: Map<unknown, number> = memo): void => {
    const i = memoCount++;
    table.set(key, i);
    if (i < 256) { out.byte(0x71); out.byte(i); } else { out.byte(0x72); out.u32(i); }
  };
  const get = (i: number): void => {
    if (i < 256) { out.byte(0x68); out.byte(i); } else { out.byte(0x6a); out.u32(i); }
  };
  const global = (g: PyGlobal): void => {
    const m = globals.get(g.qualname);
    if (m !== undefined) return get(m);
    if (!options.allowUnknownGlobals && !isSafeGlobal(g.qualname, options.allowGlobals)) {
      throw new PickleError(`refusing to write the global ${g.qualname} (${UNSAFE_HINT}); `
        + 'a placeholder of it would be executed by Python on loading: pass allowUnknownGlobals only if you trust where it came from');
    }
    out.byte(0x63);
    out.ascii(`${g.module}\n${g.name}\n`);
    put(g.qualname, globals as Map<unknown, number>);
  };
  const tuple = (items: unknown[]): void => {
    if (items.length === 0) { out.byte(0x29); return; }
    if (items.length <= 3) {
      for (const x of items) save(x);
      out.byte(0x84 + items.length);
      return;
    }
    out.byte(0x28);
    for (const x of items) save(x);
    out.byte(0x74);
  };
  const dictItems = (entries: Iterable<[unknown, unknown]>): void => {
    let batch: [unknown, unknown][] = [];
    const flush = (): void => {
      if (batch.length === 0) return;
      if (batch.length === 1) { save(batch[0]![0]); save(batch[0]![1]); out.byte(0x73); } else {
        out.byte(0x28);
        for (const [k, v] of batch) { save(k); save(v); }
        out.byte(0x75);
      }
      batch = [];
    };
    for (const e of entries) { batch.push(e); if (batch.length === 1000) flush(); }
    flush();
  };
  const reduceWith = (callable: PyGlobal, args: unknown[]): void => {
    global(callable);
    tuple(args);
    out.byte(0x52);
  };

  const save = (v: unknown): void => {
    if (options.persistentId) {
      const pid = options.persistentId(v);
      if (pid !== undefined) { save(pid); out.byte(0x51); return; }
    }
    if (v === null || v === undefined) { out.byte(0x4e); return; }
    if (typeof v === 'boolean') { out.byte(v ? 0x88 : 0x89); return; }
    if (typeof v === 'number') {
      if (Number.isInteger(v) && !Object.is(v, -0)) {
        if (v >= 0 && v < 256) { out.byte(0x4b); out.byte(v); return; }
        if (v >= 0 && v < 65536) { out.byte(0x4d); out.u16(v); return; }
        if (v >= -(2 ** 31) && v < 2 ** 31) { out.byte(0x4a); out.i32(v); return; }
        if (Number.isSafeInteger(v)) { const b = encodeLong(BigInt(v)); out.byte(0x8a); out.byte(b.length); out.raw(b); return; }
      }
      out.byte(0x47); out.f64be(v); return;
    }
    if (typeof v === 'bigint') { const b = encodeLong(v); out.byte(0x8a); out.byte(b.length); out.raw(b); return; }
    if (typeof v === 'string') {
      const m = memo.get(v);
      if (m !== undefined) return get(m);
      const b = Buffer.from(v, 'utf8');
      out.byte(0x58); out.u32(b.length); out.raw(b);
      put(v);
      return;
    }
    if (typeof v !== 'object') throw new PickleError(`cannot pickle a value of type ${typeof v}`);
    const m = memo.get(v);
    if (m !== undefined) return get(m);
    if (active.has(v)) throw new PickleError('cannot pickle a cycle through a tuple or reduced object');
    active.add(v);
    try {
      const red = options.reduce?.(v);
      if (red) {
        reduceWith(red.callable, red.args);
        put(v);
        if (red.state !== undefined) { save(red.state); out.byte(0x62); }
        return;
      }
      if (v instanceof PyGlobal) { global(v); return; }
      if (v instanceof PyTuple) { tuple(v.items); put(v); return; }
      if (isTuple(v)) { tuple(v as unknown[]); put(v); return; }
      if (v instanceof Uint8Array) {
        // protocol 2 has no bytes opcode: Python writes _codecs.encode(latin1 text, 'latin1')
        reduceWith(new PyGlobal('_codecs', 'encode'), [latin1(v), 'latin1']);
        put(v);
        return;
      }
      if (ArrayBuffer.isView(v)) throw new PickleError(`cannot pickle a ${v.constructor.name}; convert it to a tensor or an array first`);
      if (Array.isArray(v)) {
        out.byte(0x5d);
        put(v);
        active.delete(v);
        for (let i = 0; i < v.length; i += 1000) {
          const chunk = v.slice(i, i + 1000);
          if (chunk.length === 1) { save(chunk[0]); out.byte(0x61); } else {
            out.byte(0x28);
            for (const x of chunk) save(x);
            out.byte(0x65);
          }
        }
        return;
      }
      if (v instanceof Set) {
        reduceWith(new PyGlobal('builtins', 'set'), [[...v]]);
        put(v);
        return;
      }
      if (isPyObject(v)) {
        const f = v.factory ?? v.__class__;
        reduceWith(new PyGlobal(f.slice(0, f.lastIndexOf('.')), f.slice(f.lastIndexOf('.') + 1)), v.args);
        put(v);
        if (v.state !== undefined && v.state !== null) { save(v.state); out.byte(0x62); }
        if (v.listitems?.length) { out.byte(0x28); for (const x of v.listitems) save(x); out.byte(0x65); }
        if (v.dictitems?.size) dictItems(v.dictitems);
        return;
      }
      const ordered = isOrdered(v);
      if (ordered) { global(new PyGlobal('collections', 'OrderedDict')); out.byte(0x29); out.byte(0x52); } else out.byte(0x7d);
      put(v);
      active.delete(v);
      dictItems(v instanceof Map ? v.entries() : Object.entries(v));
    } finally {
      active.delete(v);
    }
  };

  out.byte(0x80); out.byte(2);
  save(value);
  out.byte(0x2e);
  return out.result();
}
