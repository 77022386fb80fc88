// Random numbers for the data pipeline.
//
// - `Rng`: a small, fast, seedable generator (SplitMix64 seeding + xoshiro128**) whose stream for a
//   given (seed, epoch, sample) is fixed, so augmentations do not depend on worker count or order.
// - `NumpyRandomState`: numpy's legacy MT19937 `RandomState`, enough of it (seed, shuffle) to
//   reproduce the original's few-shot subset selection exactly.
// - `roundHalfEven`: Python's round(), used by torchvision's parameter arithmetic.

/** Python 3's round(x) for finite x: ties go to the even integer. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

const M32 = 0xffffffff;

/** Mixes 32-bit words into one 32-bit hash (murmur3 finaliser over a running state). */
export function hash32(...words: number[]): number {
  let h = 0x9e3779b9;
  for (const w of words) {
    let k = Math.imul((w >>> 0) ^ Math.floor(w / 4294967296), 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** xoshiro128** seeded through SplitMix32 from a list of integers (seed, epoch, index, ...). */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(...keys: number[]) {
    let x = hash32(...keys);
    const next = (): number => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A uniform double in [0, 1) with 53 random bits. */
  random(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform in [a, b). */
  uniform(a: number, b: number): number {
    return a + (b - a) * this.random();
  }

  /** Uniform integer in [0, n), without modulo bias. */
  int(n: number): number {
    if (n <= 0) throw new RangeError(`Rng.int: n must be positive, got ${n}`);
    if (n > 2 ** 32) return Math.floor(this.random() * n);
    const limit = M32 - ((M32 % n) + 1) % n;
    for (;;) {
      const v = this.nextUint32();
      if (v <= limit) return v % n;
    }
  }

  /** A random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i]!;
      p[i] = p[j]!;
      p[j] = t;
    }
    return p;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** The Mersenne Twister MT19937 (Matsumoto & Nishimura), as numpy and CPython implement it. */
export class MT19937 {
  private readonly mt = new Uint32Array(624);
  private mti = 625;

  /** `init_genrand(s)`: the state from one 32-bit word (numpy's `seed(int)`). */
  protected initGenrand(s: number): void {
    const mt = this.mt;
    mt[0] = s >>> 0;
    for (let i = 1; i < 624; i++) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      // 1812433253 * prev + i, modulo 2**32, without losing precision
      mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
    this.mti = 624;
  }

  /** `init_by_array(key)`: the state from any number of 32-bit words (CPython's `random.seed(int)`). */
  protected initByArray(key: readonly number[]): void {
    const mt = this.mt;
    this.initGenrand(19650218);
    const n = 624;
    const len = Math.max(1, key.length);
    let i = 1;
    let j = 0;
    for (let k = Math.max(n, len); k > 0; k--) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = ((mt[i]! ^ Math.imul(prev, 1664525)) + (key[j] ?? 0) + j) >>> 0;
      i++;
      j++;
      if (i >= n) { mt[0] = mt[n - 1]!; i = 1; }
      if (j >= len) j = 0;
    }
    for (let k = n - 1; k > 0; k--) {
      const prev = mt[i - 1]! ^ (mt[i - 1]! >>> 30);
      mt[i] = ((mt[i]! ^ Math.imul(prev, 1566083941)) - i) >>> 0;
      i++;
      if (i >= n) { mt[0] = mt[n - 1]!; i = 1; }
    }
    mt[0] = 0x80000000;
    this.mti = 624;
  }

  /** One 32-bit output of MT19937 (genrand_int32). */
  nextUint32(): number {
    const mt = this.mt;
    if (this.mti >= 624) {
      let y: number;
      let kk = 0;
      for (; kk < 624 - 397; kk++) {
        y = (mt[kk]! & 0x80000000) | (mt[kk + 1]! & 0x7fffffff);
        mt[kk] = mt[kk + 397]! ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      for (; kk < 623; kk++) {
        y = (mt[kk]! & 0x80000000) | (mt[kk + 1]! & 0x7fffffff);
        mt[kk] = mt[kk + (397 - 624)]! ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      y = (mt[623]! & 0x80000000) | (mt[0]! & 0x7fffffff);
      mt[623] = mt[396]! ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      this.mti = 0;
    }
    let y = mt[this.mti++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }
}

/** numpy's legacy `RandomState` (MT19937): `seed(int)`, `randomInterval(max)`, `shuffle(array)`. */
export class NumpyRandomState extends MT19937 {
  constructor(seed: number) {
    super();
    if (!Number.isInteger(seed) || seed < 0 || seed > M32) throw new RangeError(`numpy seed must be an integer in [0, 2**32 - 1], got ${seed}`);
    this.initGenrand(seed);
  }

  /** numpy's `random_interval(max)`: uniform in [0, max] by masked rejection (max < 2**32). */
  randomInterval(max: number): number {
    if (max === 0) return 0;
    if (max > M32) throw new RangeError('randomInterval: max >= 2**32 is not supported');
    let mask = max;
    mask |= mask >>> 1;
    mask |= mask >>> 2;
    mask |= mask >>> 4;
    mask |= mask >>> 8;
    mask |= mask >>> 16;
    mask >>>= 0;
    for (;;) {
      const v = (this.nextUint32() & mask) >>> 0;
      if (v <= max) return v;
    }
  }

  /** `np.random.shuffle(x)` for a 1-d sequence, in place. */
  shuffle<T extends { length: number; [i: number]: number }>(x: T): T {
    for (let i = x.length - 1; i >= 1; i--) {
      const j = this.randomInterval(i);
      const t = x[i]!;
      x[i] = x[j]!;
      x[j] = t;
    }
    return x;
  }
}

/**
 * CPython's `random.Random` (MT19937), the parts the original scripts use: `seed(int)` (the absolute
 * value split into 32-bit words, least significant first, through init_by_array), `getrandbits(k)`
 * and `randint(a, b)` (`randrange` by `_randbelow`: getrandbits(n.bit_length()) with rejection).
 */
export class PythonRandom extends MT19937 {
  constructor(seed: number | bigint) {
    super();
    this.seed(seed);
  }

  /** `random.seed(a)` for an int `a`. */
  seed(a: number | bigint): void {
    if (typeof a === 'number' && !Number.isSafeInteger(a)) throw new RangeError(`random.seed: an integer is needed, got ${a}`);
    let n = BigInt(a);
    if (n < 0n) n = -n;
    const key: number[] = [];
    while (n > 0n) {
      key.push(Number(n & 0xffffffffn));
      n >>= 32n;
    }
    this.initByArray(key.length ? key : [0]);
  }

  /** `random.getrandbits(k)`: k random bits, 32-bit words from the least significant up. */
  getrandbits(k: number): bigint {
    if (!Number.isInteger(k) || k < 0) throw new RangeError(`getrandbits: number of bits must be a non-negative integer, got ${k}`);
    if (k === 0) return 0n;
    if (k <= 32) return BigInt(this.nextUint32() >>> (32 - k));
    let r = 0n;
    let shift = 0n;
    for (let left = k; left > 0; left -= 32, shift += 32n) {
      let w = this.nextUint32();
      if (left < 32) w >>>= 32 - left;
      r |= BigInt(w) << shift;
    }
    return r;
  }

  /** `_randbelow(n)` (n > 0): uniform in [0, n) by rejection of getrandbits(n.bit_length()). */
  randbelow(n: number): number {
    if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`_randbelow: n must be a positive integer, got ${n}`);
    const k = n.toString(2).length;
    const big = BigInt(n);
    let r = this.getrandbits(k);
    while (r >= big) r = this.getrandbits(k);
    return Number(r);
  }

  /** `random.randint(a, b)`: uniform in [a, b]; an empty range raises as Python does. */
  randint(a: number, b: number): number {
    if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b)) throw new RangeError(`randint: integers are needed, got (${a}, ${b})`);
    const width = b + 1 - a;
    if (width <= 0) throw new RangeError(`empty range for randrange() (${a}, ${b + 1}, ${width})`);
    return a + this.randbelow(width);
  }
}
