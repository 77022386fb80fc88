// Datasets: torchvision's ImageFolder, the original's MultirootImageFolder (class fraction), tar-shard
// episodes, subsets and the few-shot selection. A dataset only says where sample i is and what its
// label is; decoding and transforms happen in the loader's workers.
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { FileIndex, IMG_EXTENSIONS, isAwtyIndex, walkClass, joinPy, mapLimit, type ClassListing } from './findex.js';
import { readShardFolder, type ShardIndex, type ShardList } from './shards.js';
import { compareCodePoints } from './names.js';
import { writeFileAtomic } from '../io/atomic.js';
import { NumpyRandomState, PythonRandom, roundHalfEven } from './rng.js';

/** Where a sample's encoded bytes are: a whole file, or a byte range of one (a shard member). */
export interface ImageSource {
  path: string;
  offset?: number;
  length?: number;
}

export interface Dataset {
  readonly length: number;
  readonly classes: readonly string[];
  source(i: number): ImageSource;
  label(i: number): number;
}

export interface FolderOptions {
  extensions?: readonly string[];
  /** ImageFolder: 'fail' (default, as torchvision's) makes a class folder without images an error; 'skip' keeps its label with no samples. MultirootImageFolder always keeps them, as the original does. */
  onBadImage?: 'fail' | 'skip';
  /** index cache file; default: `.awty-index-<key>.bin` in the (first) root; '' or false: no cache */
  cachePath?: string | false;
  /** report of what happened (cache hit, build time) */
  onLog?: (line: string) => void;
}

class IndexedFolder implements Dataset {
  constructor(readonly index: FileIndex, readonly classes: string[]) {}
  get length(): number { return this.index.length; }
  source(i: number): ImageSource { return { path: this.index.path(i) }; }
  label(i: number): number { return this.index.label(i); }
  targets(): Int32Array { return this.index.targets(); }
}

/** torchvision's ImageFolder: classes are the sorted sub-folder names of `root`. */
export class ImageFolder extends IndexedFolder {
  static async open(root: string, opts: FolderOptions = {}): Promise<ImageFolder> {
    const idx = await loadOrBuild([root], 1, 'imagefolder', opts, async () => {
      const names = await subdirs(root);
      return { classes: names, dirs: names.map((n) => joinPy(root, n)) };
    });
    return new ImageFolder(idx, idx.classes.slice());
  }
}

/**
 * Which episodes a class fraction keeps.
 * - 'window' (the default; the `multiroot_image_folder.py` that the paper's train_tc.py imports):
 *   `num = ceil(N * fraction)` consecutive sorted paths starting at `random.randint(0, N - num - 1)`
 *   of Python's `random` seeded with the run's seed. The last episode is never chosen. At a fraction
 *   that keeps every episode the original raises `ValueError: empty range for randrange()`; here all
 *   are kept (start 0).
 * - 'first' (the variant in eminorhan/alternative-imagefolders): the first `round(N * fraction)`.
 */
export type EpisodeSelection = 'window' | 'first';
export const EPISODE_SELECTIONS: readonly EpisodeSelection[] = ['window', 'first'];

export interface SelectionOptions {
  selection?: EpisodeSelection;
  /** the seed of Python's `random` for 'window' (train_tc.py's `--seed`, through set_seed) */
  seed?: number;
}

/** The kept episodes, and where the window starts among the N sorted ones. */
export interface EpisodeChoice {
  classes: string[];
  start: number;
  total: number;
  selection: EpisodeSelection;
}

/** Sorts the episode paths and keeps the ones `selection` keeps (see EpisodeSelection). */
export function selectEpisodes(paths: string[], fraction: number, o: SelectionOptions = {}): EpisodeChoice {
  const selection = o.selection ?? 'window';
  if (!EPISODE_SELECTIONS.includes(selection)) throw new Error(`episode selection must be one of ${EPISODE_SELECTIONS.join(', ')}, got ${String(selection)}`);
  if (!(fraction >= 0 && fraction <= 1)) throw new Error(`class fraction must be in [0, 1], got ${fraction}`);
  const sorted = paths.slice().sort(compareCodePoints);
  const total = sorted.length;
  if (selection === 'first') return { classes: sorted.slice(0, roundHalfEven(total * fraction)), start: 0, total, selection };
  const num = Math.ceil(total * fraction);
  if (num >= total) return { classes: sorted, start: 0, total, selection };
  const start = new PythonRandom(o.seed ?? 1).randint(0, total - num - 1);
  return { classes: sorted.slice(start, start + num), start, total, selection };
}

/**
 * The original's MultirootImageFolder: episode folders of every root as full paths (`root/name`),
 * sorted, the episodes `selection` keeps (default: the original's seeded window); labels are
 * positions among the kept ones. An empty episode folder keeps its label with no samples, as in
 * the original (its reader leaves one when the frame count is a multiple of the episode length).
 */
export class MultirootImageFolder extends IndexedFolder {
  constructor(index: FileIndex, classes: string[], readonly choice: EpisodeChoice) {
    super(index, classes);
  }

  static async open(roots: string[], classFraction = 1, opts: FolderOptions & SelectionOptions = {}): Promise<MultirootImageFolder> {
    if (!(classFraction >= 0 && classFraction <= 1)) throw new Error(`class fraction must be in [0, 1], got ${classFraction}`);
    const dup = roots.find((r, i) => roots.findIndex((q) => path.resolve(q) === path.resolve(r)) !== i);
    if (dup !== undefined) throw new Error(`dataset folder ${dup} is given twice: every image would get two labels`);
    await checkRoots(roots);
    let all: string[] = [];
    for (const r of roots) all = all.concat((await subdirs(r)).map((n) => joinPy(r, n)));
    const choice = selectEpisodes(all, classFraction, opts);
    if (all.length > 0 && choice.classes.length === 0) {
      throw new Error(`class fraction ${classFraction} keeps 0 of the ${all.length} episode folder(s) in ${roots.join(', ')}`);
    }
    const key = { selection: choice.selection, start: choice.start, count: choice.classes.length };
    const idx = await loadOrBuild(roots, classFraction, `multiroot:${JSON.stringify(key)}`, { ...opts, onBadImage: 'skip' }, // empty episode folders are the original's too: kept, never an error
      () => Promise.resolve({ classes: choice.classes, dirs: null }));
    return new MultirootImageFolder(idx, idx.classes.slice(), choice);
  }
}

/** The 'first' rule: sort the full paths, keep the first round(N * fraction) (Python's round). */
export function selectClasses(paths: string[], fraction: number): string[] {
  return selectEpisodes(paths, fraction, { selection: 'first' }).classes;
}

async function checkRoots(roots: string[]): Promise<void> {
  for (const r of roots) {
    const st = await fsp.stat(r).catch(() => null);
    if (!st?.isDirectory()) throw new Error(`dataset folder ${r} does not exist or is not a folder`);
  }
}

async function subdirs(root: string): Promise<string[]> {
  let entries;
  try {
    entries = await fsp.readdir(root, { withFileTypes: true });
  } catch (e) {
    throw new Error(`dataset folder ${root} cannot be read: ${(e as Error).message}`);
  }
  const out: string[] = [];
  for (const e of entries) {
    if (e.isDirectory()) out.push(e.name);
    else if (e.isSymbolicLink()) {
      const s = await fsp.stat(path.join(root, e.name)).catch(() => null);
      if (s?.isDirectory()) out.push(e.name);
    }
  }
  return out.sort(compareCodePoints);
}

async function loadOrBuild(roots: string[], fraction: number, kind: string, opts: FolderOptions,
  list: () => Promise<{ classes: string[]; dirs: string[] | null }>): Promise<FileIndex> {
  const log = opts.onLog ?? ((): void => undefined);
  const ext = opts.extensions ?? IMG_EXTENSIONS;
  const name = createHash('sha256').update(JSON.stringify({ kind, roots, fraction, ext })).digest('hex').slice(0, 16);
  const cacheFile = opts.cachePath === false || opts.cachePath === '' ? null : opts.cachePath ?? path.join(roots[0]!, `.awty-index-${name}.bin`);
  await checkRoots(roots);
  // the roots' folder lists are part of the key (their mtimes are not: the cache may live in a root)
  const h = createHash('sha256').update(name);
  for (const r of roots) h.update(`\u0000${r}\u0000${(await subdirs(r)).join('\u0000')}`);
  const key = h.digest('hex');
  let idx: FileIndex | null = null;
  if (cacheFile) {
    const buf = await fsp.readFile(cacheFile).catch(() => null);
    if (buf && !isAwtyIndex(buf)) {
      throw new Error(`index cache ${cacheFile} exists and is not an awty index (train_tc.py's dataset cache is a torch.save'd `
        + 'dataset object); refusing to overwrite it: give another cache path, or move the file away');
    }
    if (buf) {
      try {
        const cached = FileIndex.deserialize(buf);
        if (cached.key === key && (await cached.isFresh())) idx = cached;
        else log(`index cache ${cacheFile} is stale; rebuilding`);
      } catch (e) {
        log(`index cache ${cacheFile} unreadable (${(e as Error).message}); rebuilding`);
      }
    }
  }
  if (!idx) {
    const t0 = Date.now();
    const { classes, dirs } = await list();
    const classDirs = dirs ?? classes;
    const watch: { dir: string; mtimeMs: number }[] = [];
    let ignored = 0;
    const listings: ClassListing[] = await mapLimit(classDirs, 16, async (d) => {
      const w = await walkClass(d, ext);
      watch.push(...w.watch);
      ignored += w.ignored;
      return w.listing;
    });
    idx = FileIndex.fromListing(key, classes, listings, watch, ignored);
    log(`indexed ${idx.length} images in ${classes.length} classes in ${((Date.now() - t0) / 1000).toFixed(2)} s`);
    if (cacheFile) {
      try {
        const bytes = idx.serialize();
        await writeFileAtomic(cacheFile, async (fh) => { await fh.writeFile(bytes); });
      } catch (e) {
        log(`could not write the index cache ${cacheFile}: ${(e as Error).message}`);
      }
    }
  }
  if (!idx.length) throw new Error(`found no images in ${roots.join(', ')} (extensions: ${ext.join(', ')})`);
  if (idx.emptyClasses.length) {
    const msg = `${idx.emptyClasses.length} class folder(s) without images: ${idx.emptyClasses.slice(0, 5).join(', ')}${idx.emptyClasses.length > 5 ? ', ...' : ''}`;
    if ((opts.onBadImage ?? 'fail') === 'fail') throw new Error(`${msg}: every class needs at least one image (as in torchvision's ImageFolder); add images or remove the empty folders`);
    log(`warning: ${msg}; their labels are kept, with no samples`);
  }
  return idx;
}

/**
 * Episodes packed in tar shards by `awty extract --format shards`. Classes are the episode names in
 * the original's (string) order, those `selection` keeps, as MultirootImageFolder would do on the
 * same episodes written as folders.
 */
export class ShardDataset implements Dataset {
  private constructor(readonly classes: string[], private readonly tarPaths: string[], private readonly sampleShard: Int32Array,
    private readonly sampleOffset: Float64Array, private readonly sampleSize: Uint32Array, private readonly labels: Int32Array) {}

  get length(): number { return this.labels.length; }

  static async open(dir: string, classFraction = 1, o: SelectionOptions = {}): Promise<ShardDataset> {
    const { list, indexes } = await readShardFolder(dir);
    return ShardDataset.fromIndexes(dir, list, indexes, classFraction, o);
  }

  static fromIndexes(dir: string, list: ShardList, indexes: ShardIndex[], classFraction: number, o: SelectionOptions = {}): ShardDataset {
    const per = list.framesPerEpisode;
    const episodes = Math.ceil(list.frames / per);
    const names = Array.from({ length: episodes }, (_, e) => `class_${String(e).padStart(4, '0')}`);
    const kept = selectEpisodes(names.map((n) => joinPy(dir, n)), classFraction, o).classes;
    const labelOf = new Int32Array(episodes).fill(-1);
    kept.forEach((p, lab) => { labelOf[Number(p.slice(p.lastIndexOf('_') + 1))] = lab; });
    // samples in label order, then frame order (as a folder dataset lists them)
    const byEpisode: { shard: number; offset: number; size: number }[][] = Array.from({ length: episodes }, () => []);
    indexes.forEach((ix, s) => {
      for (let k = 0; k < ix.sizes.length; k++) {
        const g = ix.firstFrame + k;
        const e = Math.floor(g / per);
        if (labelOf[e]! >= 0) byEpisode[e]!.push({ shard: s, offset: ix.offsets[k]!, size: ix.sizes[k]! });
      }
    });
    let n = 0;
    for (const e of byEpisode) n += e.length;
    const shard = new Int32Array(n), off = new Float64Array(n), size = new Uint32Array(n), labels = new Int32Array(n);
    let i = 0;
    kept.forEach((p, lab) => {
      for (const m of byEpisode[Number(p.slice(p.lastIndexOf('_') + 1))]!) {
        shard[i] = m.shard; off[i] = m.offset; size[i] = m.size; labels[i] = lab; i++;
      }
    });
    return new ShardDataset(kept, list.shards.map((s) => path.join(dir, s.tar)), shard, off, size, labels);
  }

  source(i: number): ImageSource {
    return { path: this.tarPaths[this.sampleShard[i]!]!, offset: this.sampleOffset[i]!, length: this.sampleSize[i]! };
  }

  label(i: number): number { return this.labels[i]!; }
  targets(): Int32Array { return this.labels.slice(); }
}

/** A view of some of a dataset's samples, in the given order. */
export class Subset implements Dataset {
  readonly indices: Int32Array;
  constructor(readonly dataset: Dataset, indices: ArrayLike<number>) {
    this.indices = Int32Array.from(indices);
    for (const i of this.indices) if (i < 0 || i >= dataset.length) throw new RangeError(`subset index ${i} out of range`);
  }
  get length(): number { return this.indices.length; }
  get classes(): readonly string[] { return this.dataset.classes; }
  source(i: number): ImageSource { return this.dataset.source(this.indices[i]!); }
  label(i: number): number { return this.dataset.label(this.indices[i]!); }
}

/**
 * The original's few-shot selection: `np.random.seed(seed); np.random.shuffle(list(range(n)))`, keep
 * the first int(fraction * n). Same indices as numpy's, in the same order.
 */
export function fewShotIndices(n: number, fraction: number, seed = 1): Int32Array {
  if (!(fraction >= 0 && fraction <= 1)) throw new Error(`fraction must be in [0, 1], got ${fraction}`);
  const idx = new Int32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  new NumpyRandomState(seed).shuffle(idx);
  return idx.slice(0, Math.trunc(fraction * n));
}

/**
 * The first `n` items of each class, in the dataset's order (for an ImageFolder: sorted file names),
 * class after class: a few-shot set with a fixed number of images per class, the same for every seed.
 * A class with fewer than `n` items is an error naming it.
 */
export function perClassIndices(dataset: Pick<Dataset, 'length' | 'label' | 'classes'>, n: number): Int32Array {
  if (!(Number.isInteger(n) && n >= 1)) throw new RangeError(`images per class must be an integer >= 1, got ${n}`);
  const count = new Array<number>(dataset.classes.length).fill(0);
  const idx: number[] = [];
  for (let i = 0; i < dataset.length; i++) {
    const c = dataset.label(i);
    if (count[c]! < n) {
      count[c]!++;
      idx.push(i);
    }
  }
  const short = count.findIndex((k) => k < n);
  if (short >= 0) throw new RangeError(`class ${dataset.classes[short]} has ${count[short]} image(s), fewer than the ${n} per class asked for`);
  return Int32Array.from(idx);
}

export function fewShot(dataset: Dataset, fraction: number, seed = 1): Subset {
  return new Subset(dataset, fewShotIndices(dataset.length, fraction, seed));
}
