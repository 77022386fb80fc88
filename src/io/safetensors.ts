// safetensors: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {str: str}}, then raw
// little-endian tensor data. Reading gives RawTensor records whose bytes are read on demand.

import { open, type FileHandle } from 'node:fs/promises';
import { writeFileAtomic } from './atomic.js';
import { CheckpointError } from './errors.js';
import { readExactly } from './fileio.js';
import type { CheckpointReader } from './torch-read.js';
import { contiguousStride, ELEMENT_SIZE, numelOf, rawTensorBytes, type DType, type RawStorage, type RawTensor } from './types.js';

const TO_ST: Record<DType, string> = {
  float32: 'F32', float64: 'F64', float16: 'F16', bfloat16: 'BF16', int8: 'I8', int16: 'I16', int32: 'I32', int64: 'I64', uint8: 'U8', bool: 'BOOL',
};
const FROM_ST: Record<string, DType> = Object.fromEntries(Object.entries(TO_ST).map(([d, s]) => [s, d as DType]));

const MAX_HEADER = 100 * 1024 * 1024;

export class SafetensorsReader implements CheckpointReader {
  readonly format = 'safetensors' as const;
  readonly storages = new Map<string, RawStorage>();
  readonly root: Record<string, RawTensor> = {};
  metadata: Record<string, string> = {};
  private readonly offsets = new Map<string, number>();

  private constructor(readonly path: string, private readonly fh: FileHandle) {}

  static async open(path: string): Promise<SafetensorsReader> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      throw new CheckpointError(path, `cannot open: ${(e as Error).message}`, { cause: e });
    }
    const r = new SafetensorsReader(path, fh);
    try {
      await r.init();
      return r;
    } catch (e) {
      await fh.close().catch(() => undefined);
      if (e instanceof CheckpointError) throw e;
      throw new CheckpointError(path, `safetensors: ${(e as Error).message}`, { cause: e });
    }
  }

  private async init(): Promise<void> {
    const size = (await this.fh.stat()).size;
    if (size < 8) throw new CheckpointError(this.path, `safetensors file too short (${size} bytes)`);
    const lenBuf = new Uint8Array(8);
    await readExactly(this.fh, lenBuf, 0, 8, 0);
    const n = new DataView(lenBuf.buffer).getBigUint64(0, true);
    if (n > BigInt(MAX_HEADER) || Number(n) + 8 > size) {
      throw new CheckpointError(this.path, `not a safetensors file or truncated: header length ${n} with file size ${size}`);
    }
    const hdr = new Uint8Array(Number(n));
    await readExactly(this.fh, hdr, 0, hdr.length, 8);
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(Buffer.from(hdr).toString('utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new CheckpointError(this.path, `safetensors header is not valid JSON: ${(e as Error).message}`, { cause: e });
    }
    const base = 8 + hdr.length;
    for (const [name, info] of Object.entries(json)) {
      if (name === '__metadata__') {
        this.metadata = (info ?? {}) as Record<string, string>;
        continue;
      }
      const { dtype: st, shape, data_offsets: off } = (info ?? {}) as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
      const dtype = st !== undefined ? FROM_ST[st] : undefined;
      if (!dtype) throw new CheckpointError(this.path, `tensor ${name}: unsupported safetensors dtype ${String(st)}`);
      if (!Array.isArray(shape) || !Array.isArray(off) || off.length !== 2) throw new CheckpointError(this.path, `tensor ${name}: malformed header entry`);
      const numel = numelOf(shape);
      const nbytes = numel * ELEMENT_SIZE[dtype];
      if (off[1] - off[0] !== nbytes) throw new CheckpointError(this.path, `tensor ${name}: data_offsets span ${off[1] - off[0]} bytes but ${dtype} [${shape.join(', ')}] needs ${nbytes}`);
      if (base + off[1] > size) throw new CheckpointError(this.path, `tensor ${name}: data ends at byte ${base + off[1]} but the file has ${size} (truncated)`);
      const storage: RawStorage = { key: name, dtype, numel, location: 'cpu' };
      this.storages.set(name, storage);
      this.offsets.set(name, base + off[0]);
      Object.defineProperty(this.root, name, {
        value: { dtype, shape: [...shape], stride: contiguousStride(shape), storageOffset: 0, storage, requiresGrad: false },
        enumerable: true, writable: true, configurable: true,
      });
    }
  }

  storageBytes(storage: RawStorage): number {
    return storage.numel * ELEMENT_SIZE[storage.dtype];
  }

  get fd(): number {
    return this.fh.fd;
  }

  storagePosition(storage: RawStorage): Promise<number | undefined> {
    const at = this.offsets.get(storage.key);
    if (at === undefined) return Promise.reject(new CheckpointError(this.path, `no tensor named ${storage.key}`));
    return Promise.resolve(at);
  }

  async readStorage(storage: RawStorage, dest?: Uint8Array): Promise<Uint8Array> {
    const at = this.offsets.get(storage.key);
    if (at === undefined) throw new CheckpointError(this.path, `no tensor named ${storage.key}`);
    const nbytes = this.storageBytes(storage);
    const out = dest ?? new Uint8Array(nbytes);
    if (out.length < nbytes) throw new CheckpointError(this.path, `buffer of ${out.length} bytes for tensor ${storage.key} of ${nbytes} bytes`);
    await readExactly(this.fh, out, 0, nbytes, at);
    return out;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

export async function openSafetensors(path: string): Promise<SafetensorsReader> {
  return SafetensorsReader.open(path);
}

export interface SafetensorsSaveOptions {
  metadata?: Record<string, string>;
  /** Produce each tensor's contiguous bytes (defaults to reading RawTensor storages' `data`). */
  tensorBytes?: (name: string, t: RawTensor) => Uint8Array | Promise<Uint8Array>;
}

/** Write name -> RawTensor as a safetensors file (atomically). Views are written as contiguous copies. */
export async function saveSafetensorsRaw(tensors: Record<string, RawTensor>, path: string, options: SafetensorsSaveOptions = {}): Promise<void> {
  const names = Object.keys(tensors);
  const header: Record<string, unknown> = {};
  if (options.metadata) header.__metadata__ = options.metadata;
  let at = 0;
  for (const name of names) {
    const t = tensors[name]!;
    const nbytes = numelOf(t.shape) * ELEMENT_SIZE[t.dtype];
    if (!TO_ST[t.dtype]) throw new CheckpointError(path, `tensor ${name}: unsupported dtype ${String(t.dtype)}`);
    header[name] = { dtype: TO_ST[t.dtype], shape: t.shape, data_offsets: [at, at + nbytes] };
    at += nbytes;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  try {
    await writeFileAtomic(path, async (fh) => {
      await fh.write(len);
      await fh.write(json);
      for (const name of names) {
        const t = tensors[name]!;
        const bytes = options.tensorBytes ? await options.tensorBytes(name, t) : rawTensorBytes(t);
        const nbytes = numelOf(t.shape) * ELEMENT_SIZE[t.dtype];
        if (bytes.length !== nbytes) throw new Error(`tensor ${name}: ${bytes.length} bytes, expected ${nbytes}`);
        let done = 0;
        while (done < bytes.length) {
          const { bytesWritten } = await fh.write(bytes, done, Math.min(bytes.length - done, 1 << 30));
          done += bytesWritten;
        }
      }
    });
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(path, `cannot save: ${(e as Error).message}`, { cause: e });
  }
}
