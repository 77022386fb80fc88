// Reading torch.save files without an engine: the zip format (PyTorch >= 1.6) and the legacy
// pickle-stream format, into a JS tree whose tensors are RawTensor records. Storage bytes are read
// on demand, one positional read per storage, into a buffer the caller provides.

import { open, type FileHandle } from 'node:fs/promises';
import { CheckpointError, PickleTruncatedError } from './errors.js';
import { readExactly, readExactlySync, ZipIndex, type ZipRecord } from './fileio.js';
import type { UnknownGlobals } from './globals.js';
import { PyGlobal, placeholder, unpickle, type UnpickleOptions } from './pickle.js';
import { ELEMENT_SIZE, STORAGE_DTYPE, storageExtent, type DType, type RawStorage, type RawTensor } from './types.js';

export type CheckpointFormat = 'torch-zip' | 'torch-legacy' | 'safetensors';

/** An open checkpoint: its object tree (tensors as RawTensor) and random access to its storages. */
export interface CheckpointReader {
  readonly path: string;
  readonly format: CheckpointFormat;
  /** The unpickled object (or, for safetensors, name -> RawTensor). */
  readonly root: unknown;
  /** Every storage the tree references, by key. */
  readonly storages: ReadonlyMap<string, RawStorage>;
  /** safetensors `__metadata__` (empty for torch files). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Bytes a storage occupies (numel * element size). */
  storageBytes(storage: RawStorage): number;
  /** Read a storage's bytes from the file into `dest` (at least storageBytes long) or a new buffer. */
  readStorage(storage: RawStorage, dest?: Uint8Array): Promise<Uint8Array>;
  /** The open file's descriptor, for reads that `storagePosition` locates. */
  readonly fd: number;
  /** Where a storage's bytes start in the file when they lie there as they are (not compressed). */
  storagePosition(storage: RawStorage): Promise<number | undefined>;
  close(): Promise<void>;
}

/** How a checkpoint's pickle is read: which Python globals it may name (see io/globals.ts). */
export interface ReadOptions {
  /** 'refuse' (default): a global outside the allow-list is an error naming it; 'placeholder': keep it inert. */
  unknownGlobals?: UnknownGlobals;
  /** Extra `module.name` globals to accept. */
  allowGlobals?: Iterable<string>;
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

interface Locator { offset?: number; record?: ZipRecord; nbytes: number }

export class TorchCheckpointReader implements CheckpointReader {
  readonly metadata: Readonly<Record<string, string>> = {};
  readonly storages = new Map<string, RawStorage>();
  root: unknown = undefined;
  /** Where each storage's bytes live. */
  private readonly locators = new Map<string, Locator>();
  private zip?: ZipIndex;

  private constructor(
    readonly path: string,
    readonly format: CheckpointFormat,
    private readonly fh: FileHandle,
    private readonly pickleOptions: Pick<UnpickleOptions, 'unknownGlobals' | 'allowGlobals'> = {},
  ) {}

  /** Open a torch.save file (zip or legacy). Throws CheckpointError naming the file and the problem. */
  static async open(path: string, options: ReadOptions = {}): Promise<TorchCheckpointReader> {
    const po = { unknownGlobals: options.unknownGlobals ?? 'refuse', ...(options.allowGlobals ? { allowGlobals: [...options.allowGlobals] } : {}) };
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      throw new CheckpointError(path, `cannot open: ${(e as Error).message}`, { cause: e });
    }
    try {
      const size = (await fh.stat()).size;
      const head = new Uint8Array(Math.min(size, 512));
      if (head.length > 0) await readExactly(fh, head, 0, head.length, 0);
      const kind = sniff(head);
      if (kind === 'zip') {
        const r = new TorchCheckpointReader(path, 'torch-zip', fh, po);
        await r.initZip();
        return r;
      }
      if (kind === 'pickle') {
        const r = new TorchCheckpointReader(path, 'torch-legacy', fh, po);
        await r.initLegacy(size);
        return r;
      }
      throw new CheckpointError(path, kind);
    } catch (e) {
      await fh.close().catch(() => undefined);
      if (e instanceof CheckpointError) throw e;
      throw new CheckpointError(path, (e as Error).message, { cause: e });
    }
  }

  storageBytes(storage: RawStorage): number {
    return storage.numel * ELEMENT_SIZE[storage.dtype];
  }

  get fd(): number {
    return this.fh.fd;
  }

  async storagePosition(storage: RawStorage): Promise<number | undefined> {
    const loc = this.locators.get(storage.key);
    if (!loc) throw new CheckpointError(this.path, `no storage with key ${storage.key}`);
    if (loc.offset !== undefined) return loc.offset;
    if (!loc.record || !this.zip || loc.record.compressionMethod !== 0) return undefined;
    try {
      return await this.zip.dataStart(loc.record);
    } catch (e) {
      throw new CheckpointError(this.path, `storage ${storage.key}: ${(e as Error).message}`, { cause: e });
    }
  }

  async readStorage(storage: RawStorage, dest?: Uint8Array): Promise<Uint8Array> {
    const loc = this.locators.get(storage.key);
    if (!loc) throw new CheckpointError(this.path, `no storage with key ${storage.key}`);
    const out = dest ?? new Uint8Array(loc.nbytes);
    if (out.length < loc.nbytes) throw new CheckpointError(this.path, `buffer of ${out.length} bytes for storage ${storage.key} of ${loc.nbytes} bytes`);
    try {
      if (loc.offset !== undefined) {
        await readAt(this.fh, out, loc.nbytes, loc.offset);
      } else if (loc.record && this.zip) {
        if (loc.record.compressionMethod === 0) {
          await readAt(this.fh, out, loc.nbytes, await this.zip.dataStart(loc.record));
        } else {
          // a compressed record (torch.save never writes one) inflates straight into the tensor, and
          // no further than the tensor's size, whatever size the record declares
          await this.zip.read(this.fh, loc.record, out.subarray(0, loc.nbytes), loc.nbytes);
        }
      }
    } catch (e) {
      throw new CheckpointError(this.path, `storage ${storage.key}: ${(e as Error).message}`, { cause: e });
    }
    return out;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }

  // -- zip format ------------------------------------------------------------------------------

  private async initZip(): Promise<void> {
    let zip: ZipIndex;
    try {
      zip = await ZipIndex.open(this.fh);
    } catch (e) {
      throw new CheckpointError(this.path, `not a readable zip archive (truncated or corrupt): ${(e as Error).message}`, { cause: e });
    }
    this.zip = zip;
    const names = [...zip.records.keys()];
    if (names.some((n) => /(^|\/)constants\.pkl$/.test(n))) {
      throw new CheckpointError(this.path, 'this is a TorchScript archive (torch.jit.save), not a torch.save checkpoint; it is not supported');
    }
    const pkl = names.find((n) => /^[^/]+\/data\.pkl$/.test(n)) ?? names.find((n) => n.endsWith('/data.pkl') || n === 'data.pkl');
    if (!pkl) {
      throw new CheckpointError(this.path, `zip archive has no data.pkl record (records: ${names.slice(0, 5).join(', ')}${names.length > 5 ? ', ...' : ''}); not a torch.save checkpoint`);
    }
    const prefix = pkl.slice(0, pkl.length - 'data.pkl'.length);
    const byteorder = zip.records.get(`${prefix}byteorder`);
    if (byteorder) {
      const b = Buffer.from(await zip.read(this.fh, byteorder)).toString('latin1').trim();
      if (b !== 'little') throw new CheckpointError(this.path, `storages are stored ${b}-endian; only little-endian checkpoints are supported`);
    }
    const program = await zip.read(this.fh, zip.records.get(pkl)!);
    const seen = new Map<string, RawStorage>();
    const persistentLoad = (pid: unknown): RawStorage => {
      if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) throw new Error(`unknown persistent id ${describe(pid)} (expected ('storage', type, key, location, numel))`);
      const [, type, key, location, numel] = pid as [string, unknown, unknown, unknown, unknown];
      const k = String(key);
      const prev = seen.get(k);
      if (prev) return prev;
      const dtype = storageDtype(type);
      const storage: RawStorage = { key: k, dtype, numel: count(numel, 'storage size'), location: String(location) };
      const recName = `${prefix}data/${k}`;
      const rec = zip.records.get(recName);
      if (!rec) throw new Error(`storage record ${recName} is missing`);
      const nbytes = storage.numel * ELEMENT_SIZE[dtype];
      if (rec.uncompressedSize < nbytes) {
        throw new Error(`storage record ${recName} holds ${rec.uncompressedSize} bytes but its ${storage.numel} ${dtype} elements need ${nbytes} (storage shorter than declared)`);
      }
      seen.set(k, storage);
      this.storages.set(k, storage);
      this.locators.set(k, { record: rec, nbytes });
      return storage;
    };
    try {
      this.root = unpickle(program, { ...this.pickleOptions, persistentLoad, findClass: torchFindClass }).value;
    } catch (e) {
      throw new CheckpointError(this.path, `${pkl}: ${(e as Error).message}`, { cause: e });
    }
  }

  // -- legacy format (torch.save before 1.6, or _use_new_zipfile_serialization=False) ----------

  private async initLegacy(size: number): Promise<void> {
    let headLen = Math.min(size, 1 << 20);
    let parsed: { root: unknown; keys: unknown[]; end: number; seen: Map<string, RawStorage> };
    for (;;) {
      const head = new Uint8Array(headLen);
      await readExactly(this.fh, head, 0, headLen, 0);
      try {
        parsed = this.parseLegacyPickles(head);
        break;
      } catch (e) {
        if (e instanceof PickleTruncatedError && headLen < size) {
          headLen = Math.min(size, headLen * 4);
          continue;
        }
        if (e instanceof PickleTruncatedError) throw new CheckpointError(this.path, `legacy (pre-1.6) torch.save file is truncated: ${e.message}`, { cause: e });
        throw e;
      }
    }
    const where = 'legacy (pre-1.6) torch.save file';
    let pos = parsed.end;
    const header = new Uint8Array(8);
    const dv = new DataView(header.buffer);
    for (const key of parsed.keys) {
      const k = String(key);
      const storage = parsed.seen.get(k);
      if (!storage) throw new CheckpointError(this.path, `${where}: storage ${k} is listed but never referenced; its element size is unknown`);
      if (pos + 8 > size) throw new CheckpointError(this.path, `${where} is truncated: storage ${k} header at byte ${pos} is past the end (${size} bytes)`);
      await readExactly(this.fh, header, 0, 8, pos);
      const count = Number(dv.getBigInt64(0, true));
      const nbytes = count * ELEMENT_SIZE[storage.dtype];
      if (count < storage.numel) throw new CheckpointError(this.path, `${where}: storage ${k} holds ${count} elements but is declared with ${storage.numel} (storage shorter than declared)`);
      if (pos + 8 + nbytes > size) throw new CheckpointError(this.path, `${where} is truncated: storage ${k} needs bytes ${pos + 8}..${pos + 8 + nbytes} but the file has ${size}`);
      this.storages.set(k, storage);
      this.locators.set(k, { offset: pos + 8, nbytes: storage.numel * ELEMENT_SIZE[storage.dtype] });
      pos += 8 + nbytes;
    }
    for (const k of parsed.seen.keys()) {
      if (!this.storages.has(k)) throw new CheckpointError(this.path, `${where}: storage ${k} is referenced but has no data`);
    }
    this.root = parsed.root;
  }

  private parseLegacyPickles(head: Uint8Array): { root: unknown; keys: unknown[]; end: number; seen: Map<string, RawStorage> } {
    const where = 'legacy (pre-1.6) torch.save file';
    const magic = unpickle(head, {});
    const mv = magic.value;
    if (!((typeof mv === 'bigint' || typeof mv === 'number') && BigInt(mv) === LEGACY_MAGIC)) {
      throw new CheckpointError(this.path, 'starts with a pickle but not the torch.save magic number: a plain pickle file, not a PyTorch checkpoint');
    }
    const proto = unpickle(head, {}, magic.end);
    if (proto.value !== 1001) throw new CheckpointError(this.path, `${where} with unsupported protocol version ${String(proto.value)}`);
    const sysInfo = unpickle(head, {}, proto.end);
    const info = sysInfo.value as { little_endian?: boolean } | null;
    if (info && info.little_endian === false) throw new CheckpointError(this.path, `${where} written on a big-endian machine; not supported`);

    const seen = new Map<string, RawStorage>();
    const persistentLoad = (pid: unknown): unknown => {
      if (!Array.isArray(pid)) throw new Error(`unknown persistent id ${describe(pid)}`);
      if (pid[0] === 'module') return placeholder('torch.nn.Module(source)', pid.slice(1));
      if (pid[0] !== 'storage' || pid.length < 5) throw new Error(`unknown persistent id ${describe(pid)}`);
      const [, type, key, location, numel, view] = pid as [string, unknown, unknown, unknown, unknown, unknown];
      const k = String(key);
      const dtype = storageDtype(type);
      let storage = seen.get(k);
      if (!storage) {
        storage = { key: k, dtype, numel: count(numel, 'storage size'), location: String(location) };
        seen.set(k, storage);
      }
      if (Array.isArray(view) && view.length >= 3) {
        const [, offset] = view as [unknown, number, number];
        const v: StorageView = { __storageView__: true, root: storage, offset: count(offset, 'storage view offset') };
        return v;
      }
      return storage;
    };
    let main;
    try {
      main = unpickle(head, { ...this.pickleOptions, persistentLoad, findClass: torchFindClass }, sysInfo.end);
    } catch (e) {
      if (e instanceof PickleTruncatedError) throw e;
      throw new CheckpointError(this.path, `${where}: ${(e as Error).message}`, { cause: e });
    }
    const keys = unpickle(head, {}, main.end);
    if (!Array.isArray(keys.value)) throw new CheckpointError(this.path, `${where}: storage key list missing`);
    return { root: main.value, keys: keys.value as unknown[], end: keys.end, seen };
  }
}

/** Storages up to this size are read without the thread pool (a round trip costs more than the copy). */
const SYNC_READ_BYTES = 1 << 20;

function readAt(fh: FileHandle, out: Uint8Array, nbytes: number, position: number): Promise<void> | void {
  if (nbytes <= SYNC_READ_BYTES) return readExactlySync(fh.fd, out, 0, nbytes, position);
  return readExactly(fh, out, 0, nbytes, position);
}

/** 'zip' | 'pickle', or a description of what the bytes are instead. */
function sniff(head: Uint8Array): 'zip' | 'pickle' | string {
  if (head.length === 0) return 'empty file; not a PyTorch checkpoint';
  if (head[0] === 0x50 && head[1] === 0x4b && (head[2] === 0x03 || head[2] === 0x05) && (head[3] === 0x04 || head[3] === 0x06)) return 'zip';
  if (head[0] === 0x80 && head[1]! >= 2 && head[1]! <= 5) return 'pickle';
  if (head.length >= 262 && Buffer.from(head.subarray(257, 262)).toString('latin1') === 'ustar') {
    return 'legacy tar-format torch.save file (PyTorch < 0.1.10); not supported: re-save it with a newer PyTorch';
  }
  if (head[0] === 0x7b && head.length >= 9) return 'wrong magic bytes: looks like a safetensors or JSON file, not a torch.save checkpoint (use the safetensors reader)';
  const hex = Buffer.from(head.subarray(0, 4)).toString('hex');
  return `wrong magic bytes 0x${hex}: not a PyTorch checkpoint (expected a zip archive "PK\\x03\\x04" or a pickle stream 0x80)`;
}

function describe(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x instanceof PyGlobal ? x.qualname : x)).slice(0, 200);
  } catch {
    return String(v);
  }
}

function storageDtype(type: unknown): DType {
  if (type instanceof PyGlobal) {
    const d = STORAGE_DTYPE[type.name];
    if (d && (type.module === 'torch' || type.module === 'torch.cuda')) return d;
    throw new Error(`unsupported storage type ${type.qualname} (supported: ${Object.keys(STORAGE_DTYPE).join(', ')})`);
  }
  if (typeof type === 'string') {
    // very old files wrote the storage type's name as a string
    const name = type.replace(/^torch\.(cuda\.)?/, '');
    const d = STORAGE_DTYPE[name];
    if (d) return d;
  }
  throw new Error(`unsupported storage type ${describe(type)}`);
}

interface StorageView { __storageView__: true; root: RawStorage; offset: number }

function isStorageView(v: unknown): v is StorageView {
  return typeof v === 'object' && v !== null && (v as Partial<StorageView>).__storageView__ === true;
}

/** A non-negative whole number from the pickle (sizes, strides, offsets), or an error naming `what`. */
function count(v: unknown, what: string | (() => string)): number {
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new Error(`${typeof what === 'string' ? what : what()} ${describe(v)} is not a non-negative integer`);
  return n;
}

function rebuildTensor(args: unknown[], fn: string): RawTensor {
  const [offset, size, stride, requiresGrad] = args.slice(1) as [unknown, unknown, unknown, unknown];
  let storage = args[0];
  let off = count(offset, `${fn}: storage offset`);
  if (isStorageView(storage)) {
    off += storage.offset;
    storage = storage.root;
  }
  const s = storage as RawStorage;
  if (typeof s !== 'object' || s === null || typeof s.key !== 'string') throw new Error(`${fn}: first argument is not a storage`);
  if (!Array.isArray(size) || !Array.isArray(stride) || size.length !== stride.length) throw new Error(`${fn}: bad size/stride ${describe(size)} / ${describe(stride)}`);
  const t: RawTensor = {
    dtype: s.dtype,
    shape: size.map((n) => count(n, () => `${fn}: size ${describe(size)}: element`)),
    stride: stride.map((n) => count(n, () => `${fn}: stride ${describe(stride)}: element`)),
    storageOffset: off,
    storage: s,
    requiresGrad: requiresGrad === true,
  };
  const extent = storageExtent(t);
  if (extent > s.numel) {
    throw new Error(`tensor of shape [${t.shape.join(', ')}] stride [${t.stride.join(', ')}] offset ${off} needs ${extent} elements but its storage ${s.key} has only ${s.numel} (storage shorter than its tensor)`);
  }
  return t;
}

/** Rebuilders for the torch globals a torch.save pickle calls. */
export function torchFindClass(module: string, name: string): ((args: unknown[]) => unknown) | undefined {
  const q = `${module}.${name}`;
  switch (q) {
    case 'torch._utils._rebuild_tensor_v2':
    case 'torch._utils._rebuild_tensor':
      return (args) => rebuildTensor(args, q);
    case 'torch._utils._rebuild_parameter':
    case 'torch._utils._rebuild_parameter_with_state':
      return (args) => {
        const [data, requiresGrad] = args as [RawTensor, unknown];
        if (typeof data !== 'object' || data === null || !('storage' in data)) return placeholder(q, args);
        return { ...data, requiresGrad: requiresGrad === true, isParameter: true };
      };
    case 'torch._tensor._rebuild_from_type_v2':
    case 'torch._tensor._rebuild_from_type':
      // (func, new_type, args, state): a Tensor subclass; rebuild the plain tensor
      return (args) => {
        const [fn, , inner] = args as [unknown, unknown, unknown[]];
        if (fn instanceof PyGlobal && Array.isArray(inner)) {
          const f = torchFindClass(fn.module, fn.name);
          if (f) return f(inner);
        }
        return placeholder(q, args);
      };
    default:
      return undefined;
  }
}

export const torchUnpickleOptions: UnpickleOptions = { findClass: torchFindClass };

/** Open a torch.save checkpoint for random access to its storages. Close it when done. */
export async function openTorchCheckpoint(path: string, options: ReadOptions = {}): Promise<TorchCheckpointReader> {
  return TorchCheckpointReader.open(path, options);
}
