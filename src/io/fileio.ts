// Low-level file access shared by the readers: exact positional reads and a zip index (yauzl).

import type { FileHandle } from 'node:fs/promises';
import yauzl from 'yauzl';

const MAX_READ = 1 << 30;

/** Read exactly `length` bytes at `position` into `dest[offset..]`; throws if the file ends first. */
export async function readExactly(fh: FileHandle, dest: Uint8Array, offset: number, length: number, position: number): Promise<void> {
  let done = 0;
  while (done < length) {
    const want = Math.min(length - done, MAX_READ);
    const { bytesRead } = await fh.read(dest, offset + done, want, position + done);
    if (bytesRead === 0) throw new Error(`file ends at byte ${position + done}, ${length - done} bytes short of the ${length}-byte record at ${position}`);
    done += bytesRead;
  }
}

export interface ZipRecord {
  name: string;
  compressedSize: number;
  uncompressedSize: number;
  compressionMethod: number;
  entry: yauzl.Entry;
  dataStart?: number;
}

/** The central directory of a zip file opened by the caller (random access through its fd). */
export class ZipIndex {
  private constructor(
    private readonly zip: yauzl.ZipFile,
    readonly records: Map<string, ZipRecord>,
  ) {}

  static async open(fh: FileHandle): Promise<ZipIndex> {
    const zip = await yauzl.fromFdPromise(fh.fd, { autoClose: false, lazyEntries: true, decodeStrings: true, validateEntrySizes: true, strictFileNames: false });
    const records = new Map<string, ZipRecord>();
    for await (const entry of zip.eachEntry()) {
      records.set(entry.fileName, {
        name: entry.fileName,
        compressedSize: entry.compressedSize,
        uncompressedSize: entry.uncompressedSize,
        compressionMethod: entry.compressionMethod,
        entry,
      });
    }
    return new ZipIndex(zip, records);
  }

  /** File offset of the record's data (from its local header). */
  async dataStart(rec: ZipRecord): Promise<number> {
    if (rec.dataStart === undefined) {
      const h = await this.zip.readLocalFileHeaderPromise(rec.entry, { minimal: true });
      rec.dataStart = h.fileDataStart;
    }
    return rec.dataStart;
  }

  /** Read a whole record (stored or deflated) into `dest` (or a new buffer). */
  async read(fh: FileHandle, rec: ZipRecord, dest?: Uint8Array): Promise<Uint8Array> {
    const out = dest ?? new Uint8Array(rec.uncompressedSize);
    if (out.length < rec.uncompressedSize) throw new Error(`buffer of ${out.length} bytes for the ${rec.uncompressedSize}-byte record ${rec.name}`);
    if (rec.compressionMethod === 0) {
      await readExactly(fh, out, 0, rec.uncompressedSize, await this.dataStart(rec));
      return out;
    }
    const stream = await this.zip.openReadStreamPromise(rec.entry);
    let at = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      out.set(chunk, at);
      at += chunk.length;
    }
    return out;
  }
}
