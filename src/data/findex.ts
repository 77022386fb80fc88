// A compact index of an image-folder dataset: no JS string per file. File names are stored per
// directory as runs of a numeric pattern (`img_0000.jpeg` ... `img_1439.jpeg` costs nothing per file),
// explicit numbers (`n01440764_10026.JPEG`: 4 bytes per file) or, failing both, raw UTF-8 bytes.
// The index serialises to one binary file (the cache) that reloads without parsing per file.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { compareCodePoints } from './names.js';

export const IMG_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp'] as const;

const KIND_RUN = 0;
const KIND_NUMS = 1;
const KIND_LITERAL = 2;
const MAGIC = 'AWTYIDX1';

/** Whether the bytes are an awty index cache (of any version): the only files an index build may overwrite. */
export function isAwtyIndex(buf: Uint8Array): boolean {
  return buf.length >= 7 && Buffer.from(buf.buffer, buf.byteOffset, 7).toString('latin1') === 'AWTYIDX';
}

interface Template { prefix: string; suffix: string; width: number }

/** One class's folders (the class folder and any folder below it) with their sorted image names. */
export interface ClassListing { dirs: { dir: string; names: string[] }[] }

/** Header of the serialised index: everything that is not per file. */
interface Header {
  version: 1;
  key: string;
  classes: string[];
  dirs: string[];
  templates: Template[];
  /** folders whose modification time decides whether the cache is still valid */
  watch: { dir: string; mtimeMs: number }[];
  ignored: number;
  emptyClasses: string[];
  arrays: Record<string, { type: 'i32' | 'u32' | 'u8' | 'f64'; offset: number; length: number }>;
}

/** A growing typed array. */
class Grow {
  buf: Int32Array;
  n = 0;
  constructor(cap = 1024) { this.buf = new Int32Array(cap); }
  push(v: number): void {
    if (this.n === this.buf.length) {
      const b = new Int32Array(this.buf.length * 2);
      b.set(this.buf);
      this.buf = b;
    }
    this.buf[this.n++] = v;
  }
  done(): Int32Array { return this.buf.slice(0, this.n); }
}

const NUM_RE = /^(.*?)(\d+)(\D*)$/;

export class FileIndex {
  private constructor(
    readonly key: string,
    readonly classes: string[],
    readonly dirs: string[],
    private readonly templates: Template[],
    private readonly segDir: Int32Array,
    private readonly segTemplate: Int32Array,
    private readonly segKind: Uint8Array,
    private readonly segFirst: Int32Array,
    private readonly segNum: Int32Array,
    private readonly nums: Uint32Array,
    private readonly litOffsets: Uint32Array,
    private readonly litBlob: Uint8Array,
    /** files of class c are [classStart[c], classStart[c+1]) */
    readonly classStart: Int32Array,
    readonly watch: { dir: string; mtimeMs: number }[],
    /** files passed over for their extension */
    readonly ignored: number,
    /** classes with no image (kept, so that no label moves) */
    readonly emptyClasses: string[],
  ) {}

  get length(): number { return this.classStart[this.classStart.length - 1]!; }

  /** Builds the index from per-class listings (names already sorted, already filtered). */
  static fromListing(key: string, classes: string[], listings: ClassListing[], watch: { dir: string; mtimeMs: number }[] = [], ignored = 0): FileIndex {
    const dirs: string[] = [];
    const templates: Template[] = [];
    const tmap = new Map<string, number>();
    const segDir = new Grow(), segTemplate = new Grow(), segKind = new Grow(), segFirst = new Grow(), segNum = new Grow();
    const nums = new Grow(1 << 16);
    const litOffsets = new Grow();
    const lit: Buffer[] = [];
    let litBytes = 0;
    litOffsets.push(0);
    const classStart = new Int32Array(classes.length + 1);
    const empty: string[] = [];
    let total = 0;
    // the open segment
    let cur: { kind: number; t: number; start: number; next: number; numsStart: number; contiguous: boolean } | null = null;
    const close = (): void => {
      if (!cur) return;
      if (cur.kind === KIND_NUMS && cur.contiguous) {
        nums.n = cur.numsStart; // a run needs no per-file numbers
        segKind.buf[segKind.n - 1] = KIND_RUN;
        segNum.buf[segNum.n - 1] = cur.start;
      }
      cur = null;
    };
    const open = (d: number, kind: number, t: number, first: number, num: number): void => {
      segDir.push(d); segTemplate.push(t); segKind.push(kind); segFirst.push(first);
      segNum.push(kind === KIND_NUMS ? nums.n : litOffsets.n - 1);
      cur = { kind, t, start: num, next: num, numsStart: nums.n, contiguous: true };
      void num;
    };
    for (let c = 0; c < classes.length; c++) {
      classStart[c] = total;
      const l = listings[c]!;
      let classFiles = 0;
      for (const { dir, names } of l.dirs) {
        if (!names.length) continue;
        const d = dirs.length;
        dirs.push(dir);
        close();
        for (const name of names) {
          const m = NUM_RE.exec(name);
          let placed = false;
          if (m && m[2]!.length <= 9) {
            const digits = m[2]!;
            const n = Number(digits);
            const c0 = cur as { kind: number; t: number; next: number; contiguous: boolean } | null;
            if (c0 && c0.kind === KIND_NUMS) {
              const t = templates[c0.t]!;
              if (t.prefix === m[1] && t.suffix === m[3] && fmtNum(n, t.width) === digits) {
                if (n !== c0.next) c0.contiguous = false;
                c0.next = n + 1;
                nums.push(n);
                placed = true;
              }
            }
            if (!placed) {
              const width = digits.length > 1 && digits[0] === '0' ? digits.length : 0;
              const tk = `${m[1]}\u0000${m[3]}\u0000${width}`;
              let t = tmap.get(tk);
              if (t === undefined) {
                t = templates.length;
                templates.push({ prefix: m[1]!, suffix: m[3]!, width });
                tmap.set(tk, t);
              }
              close();
              open(d, KIND_NUMS, t, total, n);
              (cur as unknown as { next: number }).next = n + 1;
              nums.push(n);
              placed = true;
            }
          }
          if (!placed) {
            const c0 = cur as { kind: number } | null;
            if (!c0 || c0.kind !== KIND_LITERAL) {
              close();
              open(d, KIND_LITERAL, -1, total, 0);
            }
            const b = Buffer.from(name, 'utf8');
            lit.push(b);
            litBytes += b.length;
            litOffsets.push(litBytes);
          }
          total++;
          classFiles++;
        }
        close();
      }
      if (!classFiles) empty.push(classes[c]!);
    }
    close();
    classStart[classes.length] = total;
    const blob = new Uint8Array(litBytes);
    let o = 0;
    for (const b of lit) { blob.set(b, o); o += b.length; }
    return new FileIndex(key, classes, dirs, templates, segDir.done(), segTemplate.done(), Uint8Array.from(segKind.done()),
      segFirst.done(), segNum.done(), new Uint32Array(nums.done().buffer), new Uint32Array(litOffsets.done().buffer), blob, classStart, watch, ignored, empty);
  }

  private segmentOf(i: number): number {
    const f = this.segFirst;
    let lo = 0, hi = f.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (f[mid]! <= i) lo = mid; else hi = mid - 1;
    }
    return lo;
  }

  /** The path of file i. */
  path(i: number): string {
    if (!(i >= 0 && i < this.length)) throw new RangeError(`index ${i} out of range [0, ${this.length})`);
    const s = this.segmentOf(i);
    const k = i - this.segFirst[s]!;
    const dir = this.dirs[this.segDir[s]!]!;
    const kind = this.segKind[s]!;
    let name: string;
    if (kind === KIND_LITERAL) {
      const j = this.segNum[s]! + k;
      name = Buffer.from(this.litBlob.buffer, this.litBlob.byteOffset + this.litOffsets[j]!, this.litOffsets[j + 1]! - this.litOffsets[j]!).toString('utf8');
    } else {
      const t = this.templates[this.segTemplate[s]!]!;
      const n = kind === KIND_RUN ? this.segNum[s]! + k : this.nums[this.segNum[s]! + k]!;
      name = t.prefix + fmtNum(n, t.width) + t.suffix;
    }
    return `${dir}/${name}`;
  }

  /** The label (class position) of file i. */
  label(i: number): number {
    const f = this.classStart;
    let lo = 0, hi = f.length - 2;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (f[mid]! <= i) lo = mid; else hi = mid - 1;
    }
    return lo;
  }

  /** Every file's label. */
  targets(): Int32Array {
    const t = new Int32Array(this.length);
    for (let c = 0; c + 1 < this.classStart.length; c++) t.fill(c, this.classStart[c]!, this.classStart[c + 1]!);
    return t;
  }

  /** Bytes held per file by the per-file arrays (typed arrays and name bytes, not the per-folder strings). */
  byteSize(): number {
    return this.segDir.byteLength * 4 + this.segKind.byteLength + this.nums.byteLength + this.litOffsets.byteLength + this.litBlob.byteLength + this.classStart.byteLength;
  }

  serialize(): Buffer {
    const arrays: [string, 'i32' | 'u32' | 'u8', ArrayBufferView][] = [
      ['segDir', 'i32', this.segDir], ['segTemplate', 'i32', this.segTemplate], ['segKind', 'u8', this.segKind],
      ['segFirst', 'i32', this.segFirst], ['segNum', 'i32', this.segNum], ['nums', 'u32', this.nums],
      ['litOffsets', 'u32', this.litOffsets], ['litBlob', 'u8', this.litBlob], ['classStart', 'i32', this.classStart],
    ];
    const header: Header = {
      version: 1, key: this.key, classes: this.classes, dirs: this.dirs, templates: this.templates, watch: this.watch,
      ignored: this.ignored, emptyClasses: this.emptyClasses, arrays: {},
    };
    let off = 0;
    for (const [name, type, a] of arrays) {
      header.arrays[name] = { type, offset: off, length: a.byteLength / (type === 'u8' ? 1 : 4) };
      off += Math.ceil(a.byteLength / 8) * 8;
    }
    const hjson = Buffer.from(JSON.stringify(header), 'utf8');
    const hlen = Math.ceil((16 + hjson.length) / 8) * 8;
    const out = Buffer.alloc(hlen + off);
    out.write(MAGIC, 0, 'latin1');
    out.writeUInt32LE(hjson.length, 8);
    hjson.copy(out, 16);
    for (const [name, , a] of arrays) {
      Buffer.from(a.buffer, a.byteOffset, a.byteLength).copy(out, hlen + header.arrays[name]!.offset);
    }
    return out;
  }

  static deserialize(buf: Buffer): FileIndex {
    if (buf.length < 16 || buf.toString('latin1', 0, 8) !== MAGIC) throw new Error('not an awty index cache');
    const hl = buf.readUInt32LE(8);
    const h = JSON.parse(buf.toString('utf8', 16, 16 + hl)) as Header;
    const base = Math.ceil((16 + hl) / 8) * 8;
    // one aligned copy of the array region, viewed without further copies
    const region = new Uint8Array(buf.length - base);
    region.set(buf.subarray(base));
    const get = (name: string): ArrayBufferView => {
      const a = h.arrays[name]!;
      if (a.type === 'u8') return new Uint8Array(region.buffer, a.offset, a.length);
      if (a.type === 'u32') return new Uint32Array(region.buffer, a.offset, a.length);
      return new Int32Array(region.buffer, a.offset, a.length);
    };
    return new FileIndex(h.key, h.classes, h.dirs, h.templates, get('segDir') as Int32Array, get('segTemplate') as Int32Array,
      get('segKind') as Uint8Array, get('segFirst') as Int32Array, get('segNum') as Int32Array, get('nums') as Uint32Array,
      get('litOffsets') as Uint32Array, get('litBlob') as Uint8Array, get('classStart') as Int32Array, h.watch, h.ignored, h.emptyClasses);
  }

  /** True when every watched folder still has the modification time it had when the index was built. */
  async isFresh(): Promise<boolean> {
    const results = await mapLimit(this.watch, 32, async (w) => {
      try {
        return (await fsp.stat(w.dir)).mtimeMs === w.mtimeMs;
      } catch {
        return false;
      }
    });
    return results.every(Boolean);
  }
}

function fmtNum(n: number, width: number): string {
  const s = String(n);
  return width > s.length ? s.padStart(width, '0') : s;
}

export async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export function hasImageExtension(name: string, extensions: readonly string[] = IMG_EXTENSIONS): boolean {
  const l = name.toLowerCase();
  return extensions.some((e) => l.endsWith(e));
}

/**
 * Lists one class folder as torchvision does (`sorted(os.walk(class_dir, followlinks=True))`, each
 * folder's files sorted), keeping files with an image extension.
 */
export async function walkClass(classDir: string, extensions: readonly string[] = IMG_EXTENSIONS): Promise<{ listing: ClassListing; watch: { dir: string; mtimeMs: number }[]; ignored: number }> {
  const found: { dir: string; names: string[] }[] = [];
  const watch: { dir: string; mtimeMs: number }[] = [];
  let ignored = 0;
  const visit = async (dir: string, seen: Set<string>): Promise<void> => {
    const st = await fsp.stat(dir);
    watch.push({ dir, mtimeMs: st.mtimeMs });
    const real = await fsp.realpath(dir);
    if (seen.has(real)) return; // a symlink loop
    const entries = await fsp.readdir(dir, { withFileTypes: true });
    const names: string[] = [];
    const sub: string[] = [];
    for (const e of entries) {
      let isDir = e.isDirectory();
      if (e.isSymbolicLink()) {
        const s = await fsp.stat(path.join(dir, e.name)).catch(() => null);
        isDir = !!s?.isDirectory();
      }
      if (isDir) sub.push(e.name);
      else {
        if (hasImageExtension(e.name, extensions)) names.push(e.name);
        else ignored++;
      }
    }
    names.sort(compareCodePoints);
    found.push({ dir, names });
    const inner = new Set(seen).add(real);
    for (const s of sub) await visit(joinPy(dir, s), inner);
  };
  await visit(classDir, new Set());
  found.sort((a, b) => compareCodePoints(a.dir, b.dir));
  return { listing: { dirs: found }, watch, ignored };
}

/** Python's os.path.join for two parts (no doubled separator). */
export function joinPy(a: string, b: string): string {
  return a.endsWith('/') ? a + b : `${a}/${b}`;
}
