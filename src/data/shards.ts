// Packed episodes: tar shards of JPEGs in the WebDataset convention (`class_0000/img_0000.jpeg`
// members, read in order), each with a small binary index of member offsets so that a loader can
// read any frame with one positioned read.
import { promises as fsp } from 'node:fs';
import { Writable } from 'node:stream';
import * as path from 'node:path';
import * as tar from 'tar-stream';
import { writeDataAtomic, writeFileAtomic } from '../io/atomic.js';
import { episodeName, frameName } from './names.js';

export const SHARD_LIST = 'shards.json';
const IDX_MAGIC = 'AWTYSHD1';

export function shardName(i: number): string {
  return `shard-${String(i).padStart(6, '0')}`;
}

export interface ShardList {
  framesPerEpisode: number;
  frames: number;
  shards: { tar: string; idx: string; firstFrame: number; count: number }[];
}

/** The index of one shard: frames firstFrame..firstFrame+count-1 at offsets[k], sizes[k] bytes. */
export interface ShardIndex {
  firstFrame: number;
  offsets: Float64Array;
  sizes: Uint32Array;
}

export function encodeShardIndex(ix: ShardIndex): Buffer {
  const n = ix.sizes.length;
  const buf = Buffer.alloc(24 + n * 12);
  buf.write(IDX_MAGIC, 0, 'latin1');
  buf.writeUInt32LE(n, 8);
  buf.writeDoubleLE(ix.firstFrame, 16);
  Buffer.from(ix.offsets.buffer, ix.offsets.byteOffset, n * 8).copy(buf, 24);
  Buffer.from(ix.sizes.buffer, ix.sizes.byteOffset, n * 4).copy(buf, 24 + n * 8);
  return buf;
}

export function decodeShardIndex(buf: Buffer, name = 'shard index'): ShardIndex {
  if (buf.length < 24 || buf.toString('latin1', 0, 8) !== IDX_MAGIC) throw new Error(`${name}: not an awty shard index`);
  const n = buf.readUInt32LE(8);
  if (buf.length !== 24 + n * 12) throw new Error(`${name}: truncated (${buf.length} bytes for ${n} entries)`);
  const copy = new Uint8Array(n * 12);
  copy.set(buf.subarray(24));
  return { firstFrame: buf.readDoubleLE(16), offsets: new Float64Array(copy.buffer, 0, n), sizes: new Uint32Array(copy.buffer, n * 8, n) };
}

/** The shard being written: a tar stream into writeFileAtomic's temporary file of `<name>.tar`. */
interface OpenShard {
  n: number; pack: tar.Pack; pos: number; firstFrame: number; offsets: number[]; sizes: number[];
  /** the file stream, once writeFileAtomic has opened the temporary file (rejects if it could not) */
  ready: Promise<Writable>;
  /** rejects with the first write error of the tar stream (a full or read-only disk) */
  failed: Promise<never>; error: Error | null;
  /** ends the shard: true finishes it (index, then the tar renamed into place), false abandons it (nothing left) */
  end: (keep: boolean) => void;
  /** the atomic write of the tar: resolves once the shard and its index are in place */
  saved: Promise<void>;
}

/** Writes frames, in frame order, into shards of at most `shardSize` frames. */
export class ShardWriter {
  private tail: Promise<void> = Promise.resolve();
  private current: OpenShard | null = null;
  private next: number;

  constructor(private readonly dir: string, private readonly first: number, private readonly shardSize: number,
    private readonly perEpisode: number) {
    this.next = first;
  }

  /** Queues frame `g` (its JPEG is being encoded); resolves once it is written. */
  add(g: number, jpeg: Promise<Buffer>): Promise<void> {
    const p = Promise.all([this.tail, jpeg]).then(([, buf]) => this.write(g, buf));
    this.tail = p.catch(() => undefined);
    return p;
  }

  /** Starts shard `next`: the tar goes through writeFileAtomic (temporary file, fsync, rename, folder fsync). */
  private begin(g: number): OpenShard {
    const n = this.next++;
    const base = path.join(this.dir, shardName(n));
    const pack = tar.pack();
    // a write error of the file (full disk) also destroys the pack; it is reported through `failed`
    pack.on('error', () => undefined);
    let setReady!: (out: Writable) => void;
    let notReady!: (e: unknown) => void;
    let setEnd!: (keep: boolean) => void;
    let fail!: (e: Error) => void;
    const ended = new Promise<boolean>((resolve) => { setEnd = resolve; });
    const cur: OpenShard = {
      n, pack, pos: 0, firstFrame: g, offsets: [], sizes: [], error: null,
      ready: new Promise<Writable>((resolve, reject) => { setReady = resolve; notReady = reject; }),
      failed: new Promise<never>((_, reject) => { fail = reject; }),
      end: (keep) => setEnd(keep), saved: Promise.resolve(),
    };
    cur.failed.catch(() => undefined);
    cur.ready.catch(() => undefined);
    cur.saved = writeFileAtomic(`${base}.tar`, async (fh) => {
      // a stream over the handle that leaves it open: writeFileAtomic fsyncs, closes and renames it
      const out = new Writable({
        write(chunk: Buffer, _encoding, done): void {
          void (async (): Promise<void> => {
            for (let off = 0; off < chunk.length;) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
          })().then(() => done(), done);
        },
      });
      out.on('error', (e) => { cur.error ??= e; fail(e); });
      pack.pipe(out);
      setReady(out);
      if (!(await Promise.race([ended, cur.failed]))) {
        out.destroy();
        throw new Error(`shard ${base}.tar abandoned`);
      }
      const done = new Promise<void>((resolve) => out.once('finish', resolve));
      pack.finalize();
      await Promise.race([done, cur.failed]);
      const st = await fh.stat();
      if (st.size !== cur.pos + 1024) throw new Error(`shard ${base}.tar: size ${st.size}, expected ${cur.pos + 1024} (index would be wrong)`);
      // the index first: a .tar in place always has its .idx
      await writeDataAtomic(`${base}.idx`, encodeShardIndex({ firstFrame: cur.firstFrame, offsets: Float64Array.from(cur.offsets), sizes: Uint32Array.from(cur.sizes) }),
        { syncDir: false, removeStale: false });
    });
    cur.saved.catch(notReady);
    return cur;
  }

  private async write(g: number, buf: Buffer): Promise<void> {
    if (this.current && this.current.sizes.length >= this.shardSize) await this.finish();
    this.current ??= this.begin(g);
    const c = this.current;
    await c.ready;
    const name = `${episodeName(Math.floor(g / this.perEpisode))}/${frameName(g % this.perEpisode)}`;
    if (name.length > 99) throw new Error(`member name too long for a plain tar header: ${name}`);
    c.offsets.push(c.pos + 512);
    c.sizes.push(buf.length);
    c.pos += 512 + Math.ceil(buf.length / 512) * 512;
    if (c.error) throw c.error;
    const written = new Promise<void>((resolve, reject) => {
      const sink = c.pack.entry({ name, size: buf.length, mtime: new Date(0), mode: 0o644 }, buf, (err) => (err ? reject(err) : resolve()));
      sink.on('error', () => undefined); // its error (the pack destroyed by a failed write) reaches the callback
    });
    written.catch(() => undefined); // when the file failed first, the entry's own error comes later
    await Promise.race([c.failed, written]);
  }

  private async finish(): Promise<void> {
    const c = this.current;
    if (!c) return;
    this.current = null;
    c.end(c.error === null);
    await c.saved;
  }

  /** Finishes the open shard; returns the number of the next shard to write. */
  async close(): Promise<number> {
    await this.tail;
    await this.finish();
    return this.next;
  }

  /** Drops every shard this writer began. */
  async abort(): Promise<void> {
    await this.tail;
    const c = this.current;
    this.current = null;
    if (c) {
      c.pack.destroy();
      c.end(false);
      await c.saved.catch(() => undefined);
    }
    const temps = (await fsp.readdir(this.dir)).filter((f) => f.endsWith('.tmp'));
    for (let n = this.first; n < this.next; n++) {
      for (const ext of ['.tar', '.idx']) await fsp.rm(path.join(this.dir, shardName(n) + ext), { force: true });
      for (const t of temps) if (t.startsWith(`.${shardName(n)}.idx.`) || t.startsWith(`.${shardName(n)}.tar.`)) await fsp.rm(path.join(this.dir, t), { force: true });
    }
    this.next = this.first;
  }

  /** Writes `shards.json` listing shards 0..n-1. */
  static async writeList(dir: string, n: number, perEpisode: number, frames: number): Promise<void> {
    const list: ShardList = { framesPerEpisode: perEpisode, frames, shards: [] };
    for (let i = 0; i < n; i++) {
      const ix = decodeShardIndex(await fsp.readFile(path.join(dir, `${shardName(i)}.idx`)), shardName(i));
      list.shards.push({ tar: `${shardName(i)}.tar`, idx: `${shardName(i)}.idx`, firstFrame: ix.firstFrame, count: ix.sizes.length });
    }
    await writeDataAtomic(path.join(dir, SHARD_LIST), JSON.stringify(list, null, 1));
  }
}

/** Reads a shard folder's list and indexes. */
export async function readShardFolder(dir: string): Promise<{ list: ShardList; indexes: ShardIndex[] }> {
  let list: ShardList;
  try {
    list = JSON.parse(await fsp.readFile(path.join(dir, SHARD_LIST), 'utf8')) as ShardList;
  } catch (e) {
    throw new Error(`${dir}: no readable ${SHARD_LIST} (${(e as Error).message})`);
  }
  if (typeof list !== 'object' || list === null || !Array.isArray(list.shards)) throw new Error(`${path.join(dir, SHARD_LIST)}: no shard list`);
  for (const s of list.shards) {
    for (const f of [s.tar, s.idx]) insideFolder(dir, f);
  }
  const indexes: ShardIndex[] = [];
  for (const s of list.shards) indexes.push(decodeShardIndex(await fsp.readFile(path.join(dir, s.idx)), path.join(dir, s.idx)));
  return { list, indexes };
}

/** A shard file named by shards.json must be a plain name inside the shard folder (no `..`, no absolute path). */
function insideFolder(dir: string, file: unknown): void {
  const where = path.join(dir, SHARD_LIST);
  if (typeof file !== 'string' || file === '') throw new Error(`${where}: shard file ${JSON.stringify(file)} is not a file name`);
  const root = path.resolve(dir);
  const full = path.resolve(root, file);
  const rel = path.relative(root, full);
  if (path.isAbsolute(file) || rel === '' || rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)) {
    throw new Error(`${where}: shard file ${JSON.stringify(file)} lies outside the shard folder ${dir}; refusing to read it`);
  }
}
