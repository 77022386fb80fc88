// Writing the torch.save zip format (what torch.load in PyTorch >= 1.6 reads) from a JS tree whose
// tensors are RawTensor records (or engine tensors converted by a hook), atomically.

import { Readable } from 'node:stream';
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
      let position = 0;
      for await (const chunk of zip.outputStream as AsyncIterable<Buffer>) {
        let done = 0;
        while (done < chunk.length) {
          const { bytesWritten } = await fh.write(chunk, done, chunk.length - done, position + done);
          done += bytesWritten;
        }
        position += chunk.length;
      }
      if (failure) throw failure;
    });
  } catch (e) {
    throw new CheckpointError(path, `cannot save: ${(e as Error).message}`, { cause: e });
  }
}
