// Low-level file access shared by the readers: exact positional reads and a zip index (yauzl).

import { read, readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import yauzl from 'yauzl';

const MAX_READ = 1 << 30;
/** Deflate cannot expand data by more than about 1032:1. */
const MAX_DEFLATE_RATIO = 1032;

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

/**
 * `readExactly` without the thread pool: for small reads (headers, small storages), where a round
 * trip through libuv's pool costs more than the copy from the page cache.
 */
export function readExactlySync(fd: number, dest: Uint8Array, offset: number, length: number, position: number): void {
  let done = 0;
  while (done < length) {
    const want = Math.min(length - done, MAX_READ);
    const n = readSync(fd, dest, offset + done, want, position + done);
    if (n === 0) throw new Error(`file ends at byte ${position + done}, ${length - done} bytes short of the ${length}-byte record at ${position}`);
    done += n;
  }
}

/**
 * yauzl's reader over a file descriptor, reading with one positional read each: a zip's central
 * directory is read an entry at a time (two small reads per entry), which through the thread pool
 * (yauzl's fromFd) costs a round trip each; a torch.save file of a large model has hundreds of entries.
 */
class FdReader extends yauzl.RandomAccessReader {
  constructor(private readonly fd: number) {
    super();
  }

  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null, bytesRead?: number) => void): void {
    let n = 0;
    let err: Error | null = null;
    try {
      while (n < length) {
        const k = readSync(this.fd, buffer, offset + n, length - n, position + n);
        if (k === 0) break;
        n += k;
      }
    } catch (e) {
      err = e as Error;
    }
    setImmediate(() => callback(err, n));
  }

  // a compressed record's bytes (torch.save never writes one), as positional reads that leave the
  // descriptor open whatever happens to the stream
  override _readStreamForRange(start: number, end: number): Readable {
    const fd = this.fd;
    let pos = start;
    return new Readable({
      read(): void {
        const n = Math.min(end - pos, 1 << 16);
        if (n <= 0) {
          this.push(null);
          return;
        }
        const b = Buffer.allocUnsafe(n);
        read(fd, b, 0, n, pos, (err, k) => {
          if (err) this.destroy(err);
          else if (k === 0) this.push(null);
          else {
            pos += k;
            this.push(b.subarray(0, k));
          }
        });
      },
    });
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
    const size = (await fh.stat()).size;
    const zip = await yauzl.fromRandomAccessReaderPromise(new FdReader(fh.fd), size, { autoClose: false, lazyEntries: true, decodeStrings: true, validateEntrySizes: true, strictFileNames: false });
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

  /**
   * Read a record (stored or deflated) into `dest` (or a new buffer): all of it, or only its first
   * `limit` bytes. A deflated record is inflated no further than that, whatever size it declares.
   */
  async read(fh: FileHandle, rec: ZipRecord, dest?: Uint8Array, limit = rec.uncompressedSize): Promise<Uint8Array> {
    const want = Math.min(limit, rec.uncompressedSize);
    if (rec.compressionMethod !== 0 && want > rec.compressedSize * MAX_DEFLATE_RATIO + 1024) {
      throw new Error(`compressed record ${rec.name} declares ${rec.uncompressedSize} bytes from ${rec.compressedSize}, more than deflate can produce (a zip bomb?)`);
    }
    const out = dest ?? new Uint8Array(want);
    if (out.length < want) throw new Error(`buffer of ${out.length} bytes for the ${want}-byte record ${rec.name}`);
    if (rec.compressionMethod === 0) {
      await readExactly(fh, out, 0, want, await this.dataStart(rec));
      return out;
    }
    const stream = await this.zip.openReadStreamPromise(rec.entry);
    let at = 0;
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        const n = Math.min(chunk.length, want - at);
        out.set(chunk.subarray(0, n), at);
        at += n;
        if (at >= want) break;
      }
    } finally {
      stream.destroy();
    }
    if (at < want) throw new Error(`compressed record ${rec.name} inflates to ${at} bytes, ${want} needed`);
    return out;
  }
}
