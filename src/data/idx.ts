// IDX files (the MNIST family's format: a magic number giving the element type and the number of
// dimensions, big-endian dimension sizes, then the elements) and their conversion to the class-folder
// layout ImageFolder reads. Used for Fashion-MNIST as Debian ships it (dataset-fashion-mnist: gzip'd
// idx3 images and idx1 labels under /usr/share/datasets/fashion-mnist).
import { existsSync, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import sharp from 'sharp';

export interface IdxArray {
  /** dimension sizes, outermost first (images: [n, rows, cols]; labels: [n]) */
  dims: number[];
  data: Uint8Array;
}

/** Parses an (uncompressed) IDX buffer of unsigned bytes; `where` names it in errors. */
export function parseIdx(buf: Uint8Array, where = 'IDX data'): IdxArray {
  if (buf.length < 4) throw new Error(`${where}: too short for an IDX header (${buf.length} bytes)`);
  if (buf[0] !== 0 || buf[1] !== 0) throw new Error(`${where}: not an IDX file (the magic number must start with two zero bytes)`);
  if (buf[2] !== 0x08) throw new Error(`${where}: element type 0x${buf[2]!.toString(16)} is not supported (only unsigned bytes, 0x08)`);
  const nd = buf[3]!;
  if (nd < 1) throw new Error(`${where}: an IDX file needs at least one dimension`);
  const head = 4 + 4 * nd;
  if (buf.length < head) throw new Error(`${where}: truncated header (${nd} dimensions need ${head} bytes, file has ${buf.length})`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dims = Array.from({ length: nd }, (_, i) => view.getUint32(4 + 4 * i, false));
  const size = dims.reduce((a, b) => a * b, 1);
  if (buf.length - head !== size) {
    throw new Error(`${where}: dimensions ${dims.join('x')} need ${size} bytes of data but the file has ${buf.length - head}`);
  }
  return { dims, data: buf.subarray(head) };
}

/** Reads an IDX file, gunzipping it first when it is gzip'd (.gz as Debian ships them). */
export async function readIdx(file: string): Promise<IdxArray> {
  let buf: Uint8Array;
  try {
    buf = await fsp.readFile(file);
  } catch (err) {
    throw new Error(`cannot read IDX file ${file}: ${(err as Error).message}`);
  }
  if (buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = gunzipSync(buf);
    } catch (err) {
      throw new Error(`${file}: corrupt gzip data (${(err as Error).message})`);
    }
  }
  return parseIdx(buf, file);
}

/** Where Debian's dataset-fashion-mnist puts the files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Fashion-MNIST's ten classes, by label (Xiao, Rasul and Vollgraf 2017). */
export const FASHION_MNIST_CLASSES = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
] as const;

/** The files of one split: `train` (60,000 images) or `t10k` (10,000). */
export function fashionMnistFiles(split: 'train' | 't10k', dir = FASHION_MNIST_DIR): { images: string; labels: string } {
  return { images: path.join(dir, `${split}-images-idx3-ubyte.gz`), labels: path.join(dir, `${split}-labels-idx1-ubyte.gz`) };
}

/** Folder name of class `label`: its index first (so ImageFolder's sorted order is the label order), then its name. */
export function classFolderName(label: number, names: readonly string[]): string {
  const name = (names[label] ?? `class${label}`).toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_|_$/g, '');
  return `${String(label).padStart(2, '0')}_${name}`;
}

export interface ClassFolderOptions {
  /** idx3 images ([n, rows, cols] unsigned bytes) */
  images: string;
  /** idx1 labels ([n]) */
  labels: string;
  /** the class-folder root to create (refused if it exists and was not written by this function) */
  out: string;
  /** class names by label (default: Fashion-MNIST's) */
  classes?: readonly string[];
  /** keep only the first N images of each class, in file order (default: all) */
  perClass?: number;
  /** skip this many images of each class first (to take disjoint subsets of one split) */
  skipPerClass?: number;
  onLog?: (line: string) => void;
}

export interface ClassFolderSummary {
  out: string;
  /** images written per class, by label */
  counts: number[];
  images: number;
  /** true when the folder was already complete and nothing was written */
  reused: boolean;
}

/** The record written last into a finished class-folder root. */
export const IDX_MANIFEST = '.awty-idx.json';

interface IdxManifest { version: 1; images: string; labels: string; perClass: number | null; skipPerClass: number; counts: number[] }

/**
 * Writes the images of an IDX pair as `out/NN_class/img_NNNNN.png` (grayscale PNG, the index in
 * the file as the name), once: a finished folder holds a manifest and is reused as it is by a second
 * call with the same arguments. The images are written into `out.partial` and renamed into place at
 * the end, so a killed run leaves no half-written `out`.
 */
export async function idxToClassFolders(o: ClassFolderOptions): Promise<ClassFolderSummary> {
  const out = path.resolve(o.out);
  const classes = o.classes ?? FASHION_MNIST_CLASSES;
  const perClass = o.perClass ?? null;
  const skip = o.skipPerClass ?? 0;
  if (perClass !== null && !(Number.isInteger(perClass) && perClass >= 1)) throw new Error(`perClass must be a positive integer, got ${perClass}`);
  if (!(Number.isInteger(skip) && skip >= 0)) throw new Error(`skipPerClass must be a non-negative integer, got ${skip}`);
  const want: Omit<IdxManifest, 'counts'> = { version: 1, images: path.resolve(o.images), labels: path.resolve(o.labels), perClass, skipPerClass: skip };
  const manifestFile = path.join(out, IDX_MANIFEST);
  if (existsSync(out)) {
    let m: IdxManifest | undefined;
    try { m = JSON.parse(await fsp.readFile(manifestFile, 'utf8')) as IdxManifest; } catch { m = undefined; }
    if (!m) throw new Error(`${out} exists and was not written by the IDX conversion (no ${IDX_MANIFEST}); not touching it`);
    if (m.images !== want.images || m.labels !== want.labels || m.perClass !== want.perClass || m.skipPerClass !== want.skipPerClass) {
      throw new Error(`${out} holds another conversion (${m.images}, ${m.perClass ?? 'all'} per class from ${m.skipPerClass}); ` +
        `remove it or choose another folder`);
    }
    return { out, counts: m.counts, images: m.counts.reduce((a, b) => a + b, 0), reused: true };
  }

  const [img, lab] = await Promise.all([readIdx(o.images), readIdx(o.labels)]);
  if (img.dims.length !== 3) throw new Error(`${o.images}: expected images of 3 dimensions [n, rows, cols], got ${img.dims.join('x')}`);
  if (lab.dims.length !== 1) throw new Error(`${o.labels}: expected labels of 1 dimension, got ${lab.dims.join('x')}`);
  const [n, rows, cols] = img.dims as [number, number, number];
  if (lab.dims[0] !== n) throw new Error(`${o.images} has ${n} images but ${o.labels} has ${lab.dims[0]} labels`);
  for (let i = 0; i < n; i++) {
    if (lab.data[i]! >= classes.length) throw new Error(`${o.labels}: label ${lab.data[i]} at ${i} is not one of the ${classes.length} classes`);
  }

  const partial = `${out}.partial`;
  const partialMark = path.join(partial, '.awty-idx-partial');
  if (existsSync(partial)) {
    if (!existsSync(partialMark)) throw new Error(`${partial} exists and was not made by the IDX conversion; not touching it`);
    await fsp.rm(partial, { recursive: true, force: true });
  }
  await fsp.mkdir(partial, { recursive: true });
  await fsp.writeFile(partialMark, '');
  const dirs = classes.map((_, c) => path.join(partial, classFolderName(c, classes)));
  await Promise.all(dirs.map((d) => fsp.mkdir(d)));
  const seen = new Array<number>(classes.length).fill(0);
  const counts = new Array<number>(classes.length).fill(0);
  const size = rows * cols;
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < n; i++) {
    const c = lab.data[i]!;
    if (seen[c]!++ < skip) continue;
    if (perClass !== null && counts[c]! >= perClass) continue;
    counts[c]!++;
    const px = img.data.subarray(i * size, (i + 1) * size);
    pending.push(sharp(px, { raw: { width: cols, height: rows, channels: 1 } }).png().toFile(path.join(dirs[c]!, `img_${String(i).padStart(5, '0')}.png`)));
    if (pending.length >= 64) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  const short = counts.map((k, c) => [k, c] as const).filter(([k]) => perClass !== null && k < perClass);
  if (short.length > 0) o.onLog?.(`warning: fewer than ${perClass} images for class(es) ${short.map(([k, c]) => `${classes[c]} (${k})`).join(', ')}`);
  await fsp.rm(partialMark);
  const manifest: IdxManifest = { ...want, counts };
  await fsp.writeFile(path.join(partial, IDX_MANIFEST), JSON.stringify(manifest, null, 2) + '\n');
  await fsp.rename(partial, out);
  const total = counts.reduce((a, b) => a + b, 0);
  o.onLog?.(`${total} images of ${rows}x${cols} in ${classes.length} class folders under ${out}`);
  return { out, counts, images: total, reused: false };
}
