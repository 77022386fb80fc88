// Samplers: the order of sample indices in an epoch (PyTorch's Sequential/Random/DistributedSampler).
import { Rng } from './rng.js';

export interface Sampler {
  /** The sample indices of one epoch, in order. */
  indices(epoch: number): Int32Array | number[];
}

export class SequentialSampler implements Sampler {
  constructor(readonly n: number) {}
  indices(): Int32Array {
    return Int32Array.from({ length: this.n }, (_, i) => i);
  }
}

/** A permutation of 0..n-1 drawn from a generator seeded by seed + epoch. */
export class RandomSampler implements Sampler {
  constructor(readonly n: number, readonly seed = 0) {}
  indices(epoch: number): Int32Array {
    return new Rng(this.seed + epoch).permutation(this.n);
  }
}

/** Shuffles a fixed list of indices every epoch (PyTorch's SubsetRandomSampler). */
export class SubsetRandomSampler implements Sampler {
  constructor(readonly subset: ArrayLike<number>, readonly seed = 0) {}
  indices(epoch: number): Int32Array {
    const p = new Rng(this.seed + epoch).permutation(this.subset.length);
    return p.map((k) => this.subset[k]!);
  }
}

export interface DistributedOptions {
  rank: number;
  worldSize: number;
  shuffle?: boolean;
  seed?: number;
  /** drop the tail so every rank gets the same count (else pad by repeating from the start) */
  dropLast?: boolean;
}

/**
 * PyTorch's DistributedSampler: every rank sees numSamples indices; the epoch's order (shuffled by
 * seed + epoch, the same on every rank) is padded by wrapping around, or cut with dropLast, to
 * numSamples * worldSize, and rank r takes positions r, r + worldSize, ...
 */
export class DistributedSampler implements Sampler {
  readonly numSamples: number;
  readonly totalSize: number;
  readonly rank: number;
  readonly worldSize: number;
  private readonly shuffle: boolean;
  private readonly seed: number;
  private readonly dropLast: boolean;

  constructor(readonly n: number, o: DistributedOptions) {
    if (!(o.worldSize >= 1) || !(o.rank >= 0 && o.rank < o.worldSize)) throw new Error(`invalid rank ${o.rank} for world size ${o.worldSize}`);
    this.rank = o.rank;
    this.worldSize = o.worldSize;
    this.shuffle = o.shuffle ?? true;
    this.seed = o.seed ?? 0;
    this.dropLast = o.dropLast ?? false;
    this.numSamples = this.dropLast && n % o.worldSize !== 0 ? Math.ceil((n - o.worldSize) / o.worldSize) : Math.ceil(n / o.worldSize);
    this.totalSize = this.numSamples * o.worldSize;
  }

  indices(epoch: number): Int32Array {
    const base = this.shuffle ? new Rng(this.seed + epoch).permutation(this.n) : Int32Array.from({ length: this.n }, (_, i) => i);
    const all = new Int32Array(this.totalSize);
    for (let i = 0; i < this.totalSize; i++) all[i] = base[i % this.n]!;
    const out = new Int32Array(this.numSamples);
    for (let k = 0, i = this.rank; k < this.numSamples; k++, i += this.worldSize) out[k] = all[i]!;
    return out;
  }
}

/**
 * One rank's share of any sampler's epoch order (DistributedSampler generalised: over a
 * RandomSampler(n, seed) it gives exactly DistributedSampler's indices). The order is padded by
 * wrapping around to a multiple of worldSize so that every rank gets as many (pad: false instead
 * leaves the shares uneven, for evaluation whose totals are summed), and rank r takes positions r,
 * r + worldSize, ...
 */
export class ShardedSampler implements Sampler {
  readonly rank: number;
  readonly worldSize: number;
  private readonly pad: boolean;
  constructor(readonly base: Sampler, o: { rank: number; worldSize: number; pad?: boolean }) {
    if (!(Number.isInteger(o.worldSize) && o.worldSize >= 1) || !(Number.isInteger(o.rank) && o.rank >= 0 && o.rank < o.worldSize)) {
      throw new Error(`invalid rank ${o.rank} for world size ${o.worldSize}`);
    }
    this.rank = o.rank;
    this.worldSize = o.worldSize;
    this.pad = o.pad ?? true;
  }
  indices(epoch: number): Int32Array {
    const base = this.base.indices(epoch);
    const n = base.length;
    const count = this.pad ? Math.ceil(n / this.worldSize) : Math.max(0, Math.ceil((n - this.rank) / this.worldSize));
    const out = new Int32Array(n === 0 ? 0 : count);
    for (let k = 0, i = this.rank; k < out.length; k++, i += this.worldSize) out[k] = base[i % n]!;
    return out;
  }
}
