// Writing the torch.save zip format (what torch.load in PyTorch >= 1.6 reads) from a JS tree whose
// tensors are RawTensor records (or engine tensors converted by a hook), atomically.

import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import yazl from 'yazl';
import { writeFileAtomic } from './atomic.js';
import { CheckpointError } from './errors.js';
import { markOrdered, pickle, PyGlobal, PyTuple } from './pickle.js';
import { ELEMENT_SIZE, isRawStorage, isRawTensor, STORAGE_CLASS, type RawStorage, type RawTensor } from './types.js';

export interface TorchSaveOptions {
  /** Convert a non-RawTensor value (e.g. an engine Tensor) into a RawTensor, or return undefined. */
  encodeTensor?: (v: unknown) => RawTensor | undefined;
  /** Folder name inside the zip (PyTorch uses the file's base name; torch.load accepts any). Default 'archive'. */
  archiveName?: string;
  /** Write ZIP64 records even for small files (they are written automatically past 4 GiB). */
  forceZip64?: boolean;
  /**
   * Write placeholders of Python globals outside the allow-list (io/globals.ts). Default false: a
   * tree loaded with unknownGlobals: 'placeholder' that holds e.g. `os.system` cannot be saved.
   */
  allowUnknownGlobals?: boolean;
}

const DOS_EPOCH = new Date(1980, 0, 1, 0, 0, 0);

// yazl takes each entry's CRC-32 from buffer-crc32, a JavaScript loop over every byte: most of the
// time of saving a checkpoint went there. Node (>= 20.15) has the same function natively in zlib;
// yazl's copy of buffer-crc32 is given it (the same values: checked here on a sample, and by the
// tests that torch.load reads what we write; older Node keeps the JavaScript loop).
type Crc32Module = { unsigned: (buf: Buffer | string | number, previous?: number | Buffer) => number };
function useNativeCrc32(): void {
  const native = (zlib as { crc32?: (data: Buffer, value?: number) => number }).crc32;
  if (typeof native !== 'function') return;
  const mod = createRequire(createRequire(import.meta.url).resolve('yazl'))('buffer-crc32') as Crc32Module;
  const js = mod.unsigned;
  const sample = Buffer.from(Array.from({ length: 1031 }, (_, i) => (i * 131 + 7) & 255));
  if (native(sample, 12345) !== js(sample, 12345) || native(sample) !== js(sample)) return;
  mod.unsigned = (buf, previous) => (Buffer.isBuffer(buf) && (previous === undefined || typeof previous === 'number') ? native(buf, previous ?? 0) : js(buf, previous));
}
useNativeCrc32();

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** Pickle `obj` the way torch.save does; returns the program and the storages it references, in key order. */
export function pickleTorch(obj: unknown, options: TorchSaveOptions = {}): { program: Buffer; storages: RawStorage[] } {
  const keys = new Map<RawStorage, string>();
  const storages: RawStorage[] = [];
  const converted = new Map<unknown, RawTensor>();
  const asTensor = (v: unknown): RawTensor | undefined => {
    if (isRawTensor(v)) return v;
    if (!options.encodeTensor || typeof v !== 'object' || v === null) return undefined;
    let t = converted.get(v);
    if (!t) {
      t = options.encodeTensor(v);
      if (t) converted.set(v, t);
    }
    return t;
  };
  const program = pickle(obj, {
    allowUnknownGlobals: options.allowUnknownGlobals === true,
    persistentId: (v) => {
      if (!isRawStorage(v)) return undefined;
      let key = keys.get(v);
      if (key === undefined) {
        key = String(storages.length);
        keys.set(v, key);
        storages.push(v);
      }
      return new PyTuple(['storage', new PyGlobal('torch', STORAGE_CLASS[v.dtype]), key, v.location || 'cpu', v.numel]);
    },
    reduce: (v) => {
      const t = asTensor(v);
      if (!t) return undefined;
      if (!ELEMENT_SIZE[t.dtype]) throw new Error(`cannot save a tensor of dtype ${String(t.dtype)}`);
      if (t.storage.dtype !== t.dtype) throw new Error(`tensor of dtype ${t.dtype} on a storage of dtype ${t.storage.dtype}`);
      const hooks = markOrdered({});
      if (t.isParameter) {
        const plain: RawTensor = { ...t, isParameter: false };
        return { callable: new PyGlobal('torch._utils', '_rebuild_parameter'), args: [plain, t.requiresGrad, hooks] };
      }
      return {
        callable: new PyGlobal('torch._utils', '_rebuild_tensor_v2'),
        args: [t.storage, t.storageOffset, new PyTuple(t.shape), new PyTuple(t.stride), t.isParameter ? false : t.requiresGrad, hooks],
      };
    },
  });
  return { program, storages };
}

/** Write `obj` as a torch.save zip file at `path` (atomically: temp file, fsync, rename). */
export async function saveTorchRaw(obj: unknown, path: string, options: TorchSaveOptions = {}): Promise<void> {
  let program: Buffer;
  let storages: RawStorage[];
  try {
    ({ program, storages } = pickleTorch(obj, options));
  } catch (e) {
    throw new CheckpointError(path, `cannot save: ${(e as Error).message}`, { cause: e });
  }
  const arch = options.archiveName ?? 'archive';
  const entryOpts = { compress: false, mtime: DOS_EPOCH, forceDosTimestamp: true, forceZip64Format: options.forceZip64 === true };
  try {
    await writeFileAtomic(path, async (fh) => {
      const zip = new yazl.ZipFile();
      zip.addBuffer(program, `${arch}/data.pkl`, entryOpts);
      storages.forEach((s, i) => {
        const nbytes = s.numel * ELEMENT_SIZE[s.dtype];
        zip.addReadStreamLazy(`${arch}/data/${i}`, { ...entryOpts, size: nbytes }, (cb) => {
          Promise.resolve(s.data ?? s.getData?.())
            .then((data) => {
              if (!data) throw new Error(`storage ${s.key} has neither data nor getData`);
              if (data.length < nbytes) throw new Error(`storage ${s.key} has ${data.length} bytes, needs ${nbytes}`);
              cb(null, Readable.from([asBuffer(data.subarray(0, nbytes))], { objectMode: false }));
            })
            .catch((e: unknown) => cb(e as Error, undefined as unknown as Readable));
        });
      });
      zip.addBuffer(Buffer.from('3\n'), `${arch}/version`, entryOpts);
      zip.addBuffer(Buffer.from('little'), `${arch}/byteorder`, entryOpts);
      zip.end({ forceZip64Format: options.forceZip64 === true, comment: '' });
      let failure: unknown;
      zip.once('error', (e: unknown) => {
        failure = e;
        (zip.outputStream as unknown as Readable).destroy(e as Error);
      });
      // each chunk as yazl pushed it (an async iterator would concatenate what is buffered: a copy of every storage)
      const output = zip.outputStream as unknown as Readable;
      await new Promise<void>((resolve, reject) => {
        let position = 0;
        output.on('data', (chunk: Buffer) => {
          output.pause();
          (async () => {
            let done = 0;
            while (done < chunk.length) {
              const { bytesWritten } = await fh.write(chunk, done, chunk.length - done, position + done);
              done += bytesWritten;
            }
            position += chunk.length;
          })().then(() => output.resume(), (e: unknown) => {
            output.destroy(e as Error);
            reject(e as Error);
          });
        });
        output.once('end', () => resolve());
        output.once('error', (e) => reject(e));
      });
      if (failure) throw failure;
    });
  } catch (e) {
    throw new CheckpointError(path, `cannot save: ${(e as Error).message}`, { cause: e });
  }
}
