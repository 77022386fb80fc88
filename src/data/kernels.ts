// The TypeScript pixel kernels, the reference executor of op programs (src/data/program.ts): PIL's
// arithmetic on 8-bit interleaved RGB (each step rounds back to 8 bits), so that outputs match
// torchvision's PIL path to within a level or two. native/src/image.cc is the compiled executor,
// byte for byte the same.
import { KERNELS, KERNEL_BY_CODE, type Executor, type Kernel } from './program.js';

export interface CropBox { top: number; left: number; height: number; width: number }

// ---- pixel operations on 8-bit RGB (interleaved), as PIL computes them ----

const f32 = Math.fround;

/** Image.blend(im1, im2, alpha) for one value (float32 arithmetic, truncation, clipping). */
function blend(a: number, b: number, alpha: number): number {
  const t = f32(a + f32(alpha * (b - a)));
  if (t <= 0) return 0;
  if (t >= 255) return 255;
  return Math.trunc(t);
}

/** PIL's RGB -> L: (R*19595 + G*38470 + B*7471 + 0x8000) >> 16. */
function luma(r: number, g: number, b: number): number {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >>> 16;
}

// Per-thread scratch images for the intermediate results of resize and blur (fresh memory is
// slow to touch on some machines; these are reused from image to image). Never returned.
const scratchBufs: Uint8Array[] = [0, 1, 2, 3].map(() => new Uint8Array(0));

function scratch(slot: number, n: number): Uint8Array {
  if (scratchBufs[slot]!.length < n) scratchBufs[slot] = new Uint8Array(Math.max(n, 256 * 256 * 3));
  return scratchBufs[slot]!.subarray(0, n);
}

/** A scratch buffer for a whole image that is passed on: exactly `n` long, of its own memory. */
function scratchImage(slot: number, n: number): Uint8Array {
  if (scratchBufs[slot]!.length !== n) scratchBufs[slot] = new Uint8Array(n);
  return scratchBufs[slot]!;
}

/** A lookup table of `blend(base, v, alpha)` for v = 0..255. */
function blendTable(base: number, alpha: number): Uint8Array {
  const lut = new Uint8Array(256);
  for (let v = 0; v < 256; v++) lut[v] = blend(base, v, alpha);
  return lut;
}

function applyTable(px: Uint8Array, lut: Uint8Array): void {
  for (let i = 0; i < px.length; i++) px[i] = lut[px[i]!]!;
}

export function adjustBrightness(px: Uint8Array, factor: number): void {
  applyTable(px, blendTable(0, f32(factor)));
}

export function adjustContrast(px: Uint8Array, factor: number): void {
  let sum = 0;
  const n = px.length / 3;
  for (let i = 0; i < px.length; i += 3) sum += (px[i]! * 19595 + px[i + 1]! * 38470 + px[i + 2]! * 7471 + 0x8000) >>> 16;
  const mean = Math.trunc(sum / n + 0.5);
  applyTable(px, blendTable(mean, f32(factor)));
}

export function adjustSaturation(px: Uint8Array, factor: number): void {
  const a = f32(factor);
  for (let i = 0; i < px.length; i += 3) {
    const l = luma(px[i]!, px[i + 1]!, px[i + 2]!);
    px[i] = blend(l, px[i]!, a);
    px[i + 1] = blend(l, px[i + 1]!, a);
    px[i + 2] = blend(l, px[i + 2]!, a);
  }
}

/** PIL's RGB -> HSV for one pixel: [h, s] in 0..255 (v is max(r, g, b)). */
function pilHueSat(r: number, g: number, b: number): [number, number] {
  const maxc = Math.max(r, g, b), minc = Math.min(r, g, b);
  if (minc === maxc) return [0, 0];
  const cr = f32(maxc - minc);
  const s = f32(cr / maxc);
  const rc = f32((maxc - r) / cr), gc = f32((maxc - g) / cr), bc = f32((maxc - b) / cr);
  let h: number;
  if (r === maxc) h = f32(bc - gc);
  else if (g === maxc) h = f32(f32(2 + rc) - bc);
  else h = f32(f32(4 + gc) - rc);
  h = f32((h / 6 + 1) % 1);
  return [clip8(Math.trunc(h * 255)), clip8(Math.trunc(s * 255))];
}

interface HueTables {
  /** h of PIL's HSV by (r - g + 255) * 511 + (g - b + 255): the hue depends only on the differences */
  hue: Uint8Array;
  /** s by (max - min) * 256 + max */
  sat: Uint8Array;
  /** HSV -> RGB: the sector (0..5) by h */
  sector: Uint8Array;
  /** round(v * (1 - s)) by v * 256 + s */
  p: Uint8Array;
  /** the factors (1 - s f) and (1 - s (1 - f)) of q and t, by s * 256 + h (float32 values) */
  qf: Float32Array;
  tf: Float32Array;
}

let hueTables: HueTables | null = null;

/** Tables of PIL's 8-bit HSV arithmetic (built once per thread, in about 10 ms). */
function getHueTables(): HueTables {
  if (hueTables) return hueTables;
  const hue = new Uint8Array(511 * 511);
  for (let d1 = -255; d1 <= 255; d1++) {
    for (let d2 = -255; d2 <= 255; d2++) {
      // r - g = d1, g - b = d2, with the smallest of the three at 0
      const b = Math.max(0, -d2, -(d1 + d2)), g = b + d2, r = g + d1;
      if (r > 255 || g > 255 || b > 255) continue;
      hue[(d1 + 255) * 511 + d2 + 255] = pilHueSat(r, g, b)[0];
    }
  }
  const sat = new Uint8Array(256 * 256);
  for (let maxc = 1; maxc < 256; maxc++) for (let cr = 1; cr <= maxc; cr++) sat[cr * 256 + maxc] = clip8(Math.trunc(f32(f32(cr) / maxc) * 255));
  const sector = new Uint8Array(256), frac = new Float32Array(256);
  for (let h = 0; h < 256; h++) {
    const hf = f32(f32(h * 6) / 255);
    const ii = Math.floor(hf);
    sector[h] = ii % 6;
    frac[h] = f32(hf - ii);
  }
  const p = new Uint8Array(256 * 256), qf = new Float32Array(256 * 256), tf = new Float32Array(256 * 256);
  for (let s = 0; s < 256; s++) {
    const fs = f32(s / 255);
    for (let v = 0; v < 256; v++) p[v * 256 + s] = clip8(Math.round(f32(v * f32(1 - fs))));
    for (let h = 0; h < 256; h++) {
      const f = frac[h]!;
      qf[s * 256 + h] = f32(1 - f32(fs * f));
      tf[s * 256 + h] = f32(1 - f32(fs * f32(1 - f)));
    }
  }
  hueTables = { hue, sat, sector, p, qf, tf };
  return hueTables;
}

/** F.adjust_hue on a PIL image: RGB -> HSV (PIL's 8-bit HSV), shift H by uint8(hue * 255), back. */
export function adjustHue(px: Uint8Array, hueFactor: number): void {
  const shift = ((Math.trunc(hueFactor * 255) % 256) + 256) % 256;
  const { hue, sat, sector, p: ptab, qf, tf } = getHueTables();
  for (let i = 0; i < px.length; i += 3) {
    const r = px[i]!, g = px[i + 1]!, b = px[i + 2]!;
    const v = r > g ? (r > b ? r : b) : g > b ? g : b;
    const minc = r < g ? (r < b ? r : b) : g < b ? g : b;
    // a grey pixel (s = 0) stays grey whatever the shift
    if (v === minc) continue;
    const ss = sat[(v - minc) * 256 + v]!;
    if (ss === 0) {
      px[i] = v; px[i + 1] = v; px[i + 2] = v;
      continue;
    }
    const hh = (hue[(r - g + 255) * 511 + g - b + 255]! + shift) & 255;
    const k = ss * 256 + hh;
    const p = ptab[v * 256 + ss]!;
    // v * factor <= v: no clipping needed
    const q = Math.round(f32(v * qf[k]!));
    const t = Math.round(f32(v * tf[k]!));
    switch (sector[hh]) {
      case 0: px[i] = v; px[i + 1] = t; px[i + 2] = p; break;
      case 1: px[i] = q; px[i + 1] = v; px[i + 2] = p; break;
      case 2: px[i] = p; px[i + 1] = v; px[i + 2] = t; break;
      case 3: px[i] = p; px[i + 1] = q; px[i + 2] = v; break;
      case 4: px[i] = t; px[i + 1] = p; px[i + 2] = v; break;
      default: px[i] = v; px[i + 1] = p; px[i + 2] = q; break;
    }
  }
}

function clip8(x: number): number {
  return x <= 0 ? 0 : x >= 255 ? 255 : x;
}

export function toGrayscale(px: Uint8Array): void {
  for (let i = 0; i < px.length; i += 3) {
    const l = luma(px[i]!, px[i + 1]!, px[i + 2]!);
    px[i] = l; px[i + 1] = l; px[i + 2] = l;
  }
}

export function horizontalFlip(px: Uint8Array, width: number, height: number): void {
  for (let y = 0; y < height; y++) {
    let a = y * width * 3, b = a + (width - 1) * 3;
    while (a < b) {
      for (let c = 0; c < 3; c++) { const t = px[a + c]!; px[a + c] = px[b + c]!; px[b + c] = t; }
      a += 3; b -= 3;
    }
  }
}

/** PIL's ImageFilter.GaussianBlur(radius=sigma): three extended box blurs per axis (Gwosdek et al.). */
export function gaussianBlur(px: Uint8Array, width: number, height: number, sigma: number): void {
  const passes = 3;
  const sigma2 = f32(f32(sigma * sigma) / passes);
  const L = f32(Math.sqrt(f32(f32(12 * sigma2) + 1)));
  const l = Math.floor(f32(f32(L - 1) / 2));
  let a = f32(f32(2 * l + 1) * f32(l * (l + 1) - f32(3 * sigma2)));
  a = f32(a / f32(6 * f32(sigma2 - (l + 1) * (l + 1))));
  const radius = f32(l + a);
  if (radius === 0) return;
  const r = Math.trunc(radius);
  const ww = Math.trunc(f32(16777216 / f32(f32(radius * 2) + 1)));
  const fw = Math.trunc((16777216 - (r * 2 + 1) * ww) / 2);
  if (r <= 1) {
    smallBoxBlur(px, width, height, r, ww, fw, passes);
    return;
  }
  // Each line (a row, then a column) is copied once into a padded buffer (edges repeated r + 1
  // times) and blurred three times there, from one buffer into the other, before it is written
  // back: a pass keeps a running window sum per channel and adds the two fractional far pixels,
  // out = (acc * ww + (far_l + far_r) * fw + 2^23) >> 24, rounded to 8 bits as PIL does.
  const pad = r + 1;
  const bufLen = (Math.max(width, height) + 2 * pad) * 3;
  const bufA = new Int32Array(bufLen), bufB = new Int32Array(bufLen);
  const w2 = 2 * r + 2;
  // one pass over n pixels of `src` (padded) into `dst` at the same padded positions
  const pass = (src: Int32Array, dst: Int32Array, n: number): void => {
    let a0 = 0, a1 = 0, a2 = 0;
    for (let k = 3; k <= (2 * r + 1) * 3; k += 3) { a0 += src[k]!; a1 += src[k + 1]!; a2 += src[k + 2]!; }
    for (let x = 0; x < n; x++) {
      const lo = x * 3, hi = (x + w2) * 3;
      if (x > 0) {
        const add = hi - 3;
        a0 += src[add]! - src[lo]!; a1 += src[add + 1]! - src[lo + 1]!; a2 += src[add + 2]! - src[lo + 2]!;
      }
      const o = lo + pad * 3;
      // the sums are below 2^32: 32-bit wrapping products, read back unsigned
      dst[o] = (Math.imul(a0, ww) + Math.imul(src[lo]! + src[hi]!, fw) + 8388608) >>> 24;
      dst[o + 1] = (Math.imul(a1, ww) + Math.imul(src[lo + 1]! + src[hi + 1]!, fw) + 8388608) >>> 24;
      dst[o + 2] = (Math.imul(a2, ww) + Math.imul(src[lo + 2]! + src[hi + 2]!, fw) + 8388608) >>> 24;
    }
  };
  // repeats the first and last pixels of the line into the padding
  const edges = (buf: Int32Array, n: number): void => {
    const f = pad * 3, e = (pad + n - 1) * 3;
    const f0 = buf[f]!, f1 = buf[f + 1]!, f2 = buf[f + 2]!, e0 = buf[e]!, e1 = buf[e + 1]!, e2 = buf[e + 2]!;
    for (let k = 0; k < pad; k++) {
      const i = k * 3, j = (pad + n + k) * 3;
      buf[i] = f0; buf[i + 1] = f1; buf[i + 2] = f2;
      buf[j] = e0; buf[j + 1] = e1; buf[j + 2] = e2;
    }
  };
  const line = (base: number, step: number, n: number): void => {
    for (let x = 0, s = base, k = pad * 3; x < n; x++, s += step, k += 3) { bufA[k] = px[s]!; bufA[k + 1] = px[s + 1]!; bufA[k + 2] = px[s + 2]!; }
    edges(bufA, n);
    pass(bufA, bufB, n);
    edges(bufB, n);
    pass(bufB, bufA, n);
    edges(bufA, n);
    pass(bufA, bufB, n);
    for (let x = 0, s = base, k = pad * 3; x < n; x++, s += step, k += 3) { px[s] = bufB[k]!; px[s + 1] = bufB[k + 1]!; px[s + 2] = bufB[k + 2]!; }
  };
  for (let y = 0; y < height; y++) line(y * width * 3, 3, width);
  for (let x = 0; x < width; x++) line(x * 3, width * 3, height);
}

/**
 * The box passes of `gaussianBlur` for r = 0 or 1 (sigma below sqrt(6) = 2.45: every blur of the TC
 * augmentation) as fixed 3- or 5-tap filters, out[x] = (sum(in[x-r..x+r]) * ww + (in[x-r-1] +
 * in[x+r+1]) * fw + 2^23) >> 24 with the edge pixels repeated: the same integers as the running-sum
 * form, in loops over whole rows (all three channels at once), ping-ponging between `px` and one
 * scratch image (an even number of passes ends in `px`).
 */
function smallBoxBlur(px: Uint8Array, width: number, height: number, r: number, ww: number, fw: number, passes: number): void {
  const tmp = scratch(1, px.length);
  let src: Uint8Array = px, dst: Uint8Array = tmp;
  for (let p = 0; p < passes; p++) {
    smallBoxRows(src, dst, width, height, r, ww, fw);
    const t = src; src = dst; dst = t;
  }
  for (let p = 0; p < passes; p++) {
    smallBoxColumns(src, dst, width, height, r, ww, fw);
    const t = src; src = dst; dst = t;
  }
}

/** One horizontal pass: neighbours at +-3 (and +-6) inside a row, clamped to the row's ends. */
function smallBoxRows(src: Uint8Array, dst: Uint8Array, width: number, height: number, r: number, ww: number, fw: number): void {
  const rowLen = width * 3, HALF = 8388608;
  for (let y = 0; y < height; y++) {
    const b = y * rowLen;
    smallBoxRowEdges(src, dst, b, rowLen, r, ww, fw);
    // one channel at a time, the window's pixels kept in variables (one load per output)
    const e = b + rowLen - 6;
    for (let c = 0; c < 3; c++) {
      if (r === 0) {
        let p = src[b + 3 + c]!, q = src[b + 6 + c]!;
        for (let i = b + 6 + c; i < e; i += 3) {
          const n = src[i + 3]!;
          dst[i] = (Math.imul(q, ww) + Math.imul(p + n, fw) + HALF) >>> 24;
          p = q; q = n;
        }
      } else {
        let p2 = src[b + c]!, p1 = src[b + 3 + c]!, q = src[b + 6 + c]!, n1 = src[b + 9 + c]!;
        for (let i = b + 6 + c; i < e; i += 3) {
          const n2 = src[i + 6]!;
          dst[i] = (Math.imul(p1 + q + n1, ww) + Math.imul(p2 + n2, fw) + HALF) >>> 24;
          p2 = p1; p1 = q; q = n1; n1 = n2;
        }
      }
    }
  }
}

/** The first and last two pixels of a row (the neighbours clamped to the row). */
function smallBoxRowEdges(src: Uint8Array, dst: Uint8Array, b: number, rowLen: number, r: number, ww: number, fw: number): void {
  const n = rowLen / 3;
  for (let x = 0; x < n; x++) {
    if (x === 2 && n > 4) x = n - 2;
    const xm2 = x > 1 ? x - 2 : 0, xm1 = x > 0 ? x - 1 : 0, xp1 = x < n - 1 ? x + 1 : n - 1, xp2 = x < n - 2 ? x + 2 : n - 1;
    for (let c = 0; c < 3; c++) {
      const at = (k: number): number => src[b + k * 3 + c]!;
      const center = r === 0 ? at(x) : at(xm1) + at(x) + at(xp1);
      const far = r === 0 ? at(xm1) + at(xp1) : at(xm2) + at(xp2);
      dst[b + x * 3 + c] = (Math.imul(center, ww) + Math.imul(far, fw) + 8388608) >>> 24;
    }
  }
}

/** One vertical pass: whole rows at once, the neighbouring rows clamped to the first and last. */
function smallBoxColumns(src: Uint8Array, dst: Uint8Array, width: number, height: number, r: number, ww: number, fw: number): void {
  const rowLen = width * 3, HALF = 8388608, last = height - 1;
  for (let y = 0; y < height; y++) {
    const o = y * rowLen;
    const u1 = (y > 0 ? y - 1 : 0) * rowLen, d1 = (y < last ? y + 1 : last) * rowLen;
    if (r === 0) {
      for (let x = 0; x < rowLen; x++) {
        dst[o + x] = (Math.imul(src[o + x]!, ww) + Math.imul(src[u1 + x]! + src[d1 + x]!, fw) + HALF) >>> 24;
      }
    } else {
      const u2 = (y > 1 ? y - 2 : 0) * rowLen, d2 = (y < last - 1 ? y + 2 : last) * rowLen;
      for (let x = 0; x < rowLen; x++) {
        dst[o + x] = (Math.imul(src[u1 + x]! + src[o + x]! + src[d1 + x]!, ww) + Math.imul(src[u2 + x]! + src[d2 + x]!, fw) + HALF) >>> 24;
      }
    }
  }
}

export interface RgbImage { data: Uint8Array; width: number; height: number }

/**
 * PIL's Image.resize(..., BILINEAR) of the region `box` of an RGB image (as `img.crop(box).resize(...)`):
 * a triangle filter widened by the downscale factor (antialiased), separable, horizontal pass first,
 * 22-bit fixed-point coefficients, each pass rounded to 8 bits.
 */
export function resizeBilinear(src: Uint8Array, srcWidth: number, box: CropBox, outWidth: number, outHeight: number, into?: Uint8Array): Uint8Array {
  return resample(src, srcWidth, box, outWidth, outHeight, false, into);
}

/** PIL's Image.resize(..., BICUBIC) of the region `box` (a = -0.5, support 2, antialiased), as resizeBilinear otherwise. */
export function resizeBicubic(src: Uint8Array, srcWidth: number, box: CropBox, outWidth: number, outHeight: number, into?: Uint8Array): Uint8Array {
  return resample(src, srcWidth, box, outWidth, outHeight, true, into);
}

/** PIL's cubic filter with a = -0.5. */
function bicubicFilter(x: number): number {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

function resample(src: Uint8Array, srcWidth: number, box: CropBox, outWidth: number, outHeight: number, bicubic: boolean, into?: Uint8Array): Uint8Array {
  const PREC = 22;
  const coeffs = (inSize: number, outSize: number): { bounds: Int32Array; k: Int32Array; ksize: number } => {
    const scale = inSize / outSize;
    const filterscale = Math.max(1, scale);
    const support = (bicubic ? 2 : 1) * filterscale;
    const ksize = Math.ceil(support) * 2 + 1;
    const bounds = new Int32Array(outSize * 2);
    const k = new Int32Array(outSize * ksize);
    const w = new Float64Array(ksize);
    for (let xx = 0; xx < outSize; xx++) {
      const center = (xx + 0.5) * scale;
      const ss = 1 / filterscale;
      const xmin = Math.max(0, Math.trunc(center - support + 0.5));
      const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
      let ww = 0;
      for (let x = 0; x < xmax; x++) {
        const t = (x + xmin - center + 0.5) * ss;
        w[x] = bicubic ? bicubicFilter(t) : Math.abs(t) < 1 ? 1 - Math.abs(t) : 0;
        ww += w[x]!;
      }
      for (let x = 0; x < xmax; x++) {
        const v = ww !== 0 ? w[x]! / ww : w[x]!;
        k[xx * ksize + x] = v < 0 ? Math.trunc(-0.5 + v * (1 << PREC)) : Math.trunc(0.5 + v * (1 << PREC));
      }
      bounds[xx * 2] = xmin;
      bounds[xx * 2 + 1] = xmax;
    }
    return { bounds, k, ksize };
  };
  const H = coeffs(box.width, outWidth);
  const V = coeffs(box.height, outHeight);
  const hb = H.bounds, hk = H.k, hks = H.ksize, vb = V.bounds, vk = V.k, vks = V.ksize;
  const needH = outWidth !== box.width;
  const needV = outHeight !== box.height;
  const HALF = 1 << (PREC - 1);
  // rows of the crop that the vertical pass reads
  const y0 = needV ? V.bounds[0]! : 0;
  const y1 = needV ? V.bounds[(outHeight - 1) * 2]! + V.bounds[(outHeight - 1) * 2 + 1]! : outHeight;
  const rows = y1 - y0;
  const tmpW = needH ? outWidth : box.width;
  const tmp = scratch(0, rows * tmpW * 3);
  for (let y = 0; y < rows; y++) {
    const srow = ((box.top + y0 + y) * srcWidth + box.left) * 3;
    const trow = y * tmpW * 3;
    if (!needH) {
      tmp.set(src.subarray(srow, srow + tmpW * 3), trow);
      continue;
    }
    for (let xx = 0, o = trow; xx < outWidth; xx++, o += 3) {
      const n = hb[xx * 2 + 1]!;
      let kb = xx * hks, p = srow + hb[xx * 2]! * 3;
      if (n === 2 || n === 3) {
        // upscaling: two or three taps, unrolled (a third coefficient of 0 when there are two)
        const k0 = hk[kb]!, k1 = hk[kb + 1]!, k2 = n === 3 ? hk[kb + 2]! : 0, p2 = n === 3 ? p + 6 : p;
        const v0 = (HALF + src[p]! * k0 + src[p + 3]! * k1 + src[p2]! * k2) >> PREC;
        const v1 = (HALF + src[p + 1]! * k0 + src[p + 4]! * k1 + src[p2 + 1]! * k2) >> PREC;
        const v2 = (HALF + src[p + 2]! * k0 + src[p + 5]! * k1 + src[p2 + 2]! * k2) >> PREC;
        tmp[o] = v0 < 0 ? 0 : v0 > 255 ? 255 : v0;
        tmp[o + 1] = v1 < 0 ? 0 : v1 > 255 ? 255 : v1;
        tmp[o + 2] = v2 < 0 ? 0 : v2 > 255 ? 255 : v2;
        continue;
      }
      let kv = hk[kb]!;
      let s0 = HALF + src[p]! * kv, s1 = HALF + src[p + 1]! * kv, s2 = HALF + src[p + 2]! * kv;
      for (let x = 1; x < n; x++) {
        p += 3; kv = hk[++kb]!;
        s0 += src[p]! * kv; s1 += src[p + 1]! * kv; s2 += src[p + 2]! * kv;
      }
      // clipping of the 22-bit fixed point sums
      s0 >>= PREC; s1 >>= PREC; s2 >>= PREC;
      tmp[o] = s0 < 0 ? 0 : s0 > 255 ? 255 : s0;
      tmp[o + 1] = s1 < 0 ? 0 : s1 > 255 ? 255 : s1;
      tmp[o + 2] = s2 < 0 ? 0 : s2 > 255 ? 255 : s2;
    }
  }
  const out = into ?? new Uint8Array(outWidth * outHeight * 3);
  if (!needV) {
    out.set(tmp);
    return out;
  }
  const stride = tmpW * 3;
  const acc = new Int32Array(stride);
  for (let yy = 0; yy < outHeight; yy++) {
    const n = vb[yy * 2 + 1]!;
    const kb = yy * vks;
    const orow = yy * stride;
    const r0 = (vb[yy * 2]! - y0) * stride;
    // two or three taps (upscaling) unrolled; more taps through an accumulator row
    if (n === 2) {
      const k0 = vk[kb]!, k1 = vk[kb + 1]!, r1 = r0 + stride;
      for (let xx = 0; xx < stride; xx++) {
        const v = (HALF + tmp[r0 + xx]! * k0 + tmp[r1 + xx]! * k1) >> PREC;
        out[orow + xx] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    } else if (n === 3) {
      const k0 = vk[kb]!, k1 = vk[kb + 1]!, k2 = vk[kb + 2]!, r1 = r0 + stride, r2 = r1 + stride;
      for (let xx = 0; xx < stride; xx++) {
        const v = (HALF + tmp[r0 + xx]! * k0 + tmp[r1 + xx]! * k1 + tmp[r2 + xx]! * k2) >> PREC;
        out[orow + xx] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    } else {
      acc.fill(HALF);
      for (let y = 0, row = r0; y < n; y++, row += stride) {
        const kv = vk[kb + y]!;
        for (let xx = 0; xx < stride; xx++) acc[xx] += tmp[row + xx]! * kv;
      }
      for (let xx = 0; xx < stride; xx++) {
        const v = acc[xx]! >> PREC;
        out[orow + xx] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return out;
}

export function cropPixels(src: Uint8Array, srcWidth: number, box: CropBox): Uint8Array {
  const out = new Uint8Array(box.width * box.height * 3);
  for (let y = 0; y < box.height; y++) {
    const s = ((box.top + y) * srcWidth + box.left) * 3;
    out.set(src.subarray(s, s + box.width * 3), y * box.width * 3);
  }
  return out;
}

/** ToTensor + Normalize of an HWC uint8 image into CHW float32 at `out[offset...]`, in float32 steps as torch does. */
export function normalizeInto(img: RgbImage, mean: ArrayLike<number>, std: ArrayLike<number>, out: Float32Array, offset: number): void {
  const plane = img.width * img.height;
  const src = img.data;
  for (let c = 0; c < 3; c++) {
    const m = f32(mean[c]!), s = f32(std[c]!);
    // a lookup table: 256 values per channel
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) lut[v] = f32(f32(f32(v / 255) - m) / s);
    const base = offset + c * plane;
    for (let k = 0, j = c; k < plane; k++, j += 3) out[base + k] = lut[src[j]!]!;
  }
}

// ---- the reference executor ----

type KernelFn = (img: RgbImage, args: Float64Array, at: number, into: (n: number) => Uint8Array | undefined) => RgbImage;

function boxAt(img: RgbImage, a: Float64Array, at: number): CropBox {
  const box = { top: a[at]!, left: a[at + 1]!, height: a[at + 2]!, width: a[at + 3]! };
  if (!(box.height >= 1 && box.width >= 1 && box.top >= 0 && box.left >= 0 && box.top + box.height <= img.height && box.left + box.width <= img.width)) {
    throw new Error('crop box outside the image');
  }
  return box;
}

/** One function per kernel of the table (a missing one is a compile error). */
const TS_KERNELS = {
  resize(img, a, at, into) {
    const box = boxAt(img, a, at), width = a[at + 4]!, height = a[at + 5]!;
    return { data: resizeBilinear(img.data, img.width, box, width, height, into(width * height * 3)), width, height };
  },
  resizeBicubic(img, a, at, into) {
    const box = boxAt(img, a, at), width = a[at + 4]!, height = a[at + 5]!;
    return { data: resizeBicubic(img.data, img.width, box, width, height, into(width * height * 3)), width, height };
  },
  crop(img, a, at) {
    const box = boxAt(img, a, at);
    return { data: cropPixels(img.data, img.width, box), width: box.width, height: box.height };
  },
  brightness(img, a, at) { adjustBrightness(img.data, a[at]!); return img; },
  contrast(img, a, at) { adjustContrast(img.data, a[at]!); return img; },
  saturation(img, a, at) { adjustSaturation(img.data, a[at]!); return img; },
  hue(img, a, at) { adjustHue(img.data, a[at]!); return img; },
  grayscale(img) { toGrayscale(img.data); return img; },
  blur(img, a, at) { gaussianBlur(img.data, img.width, img.height, a[at]!); return img; },
  flip(img) { horizontalFlip(img.data, img.width, img.height); return img; },
} satisfies Record<Kernel, KernelFn>;

/**
 * Runs a program on an RGB image (its pixels may be modified in place) with the TypeScript kernels.
 * With `scratch`, a resize writes into a per-thread buffer that the next call with `scratch`
 * overwrites: the result must be consumed before then (the loader copies it into its batch at once).
 */
export function runProgram(img: RgbImage, program: Float64Array, scratch = false): RgbImage {
  let cur = img;
  // a resize's output buffer: a scratch buffer other than the one being read
  const into = (n: number): Uint8Array | undefined => (scratch ? scratchImage(cur.data === scratchBufs[2] ? 3 : 2, n) : undefined);
  for (let i = 0; i < program.length;) {
    const code = program[i]!;
    const name = KERNEL_BY_CODE[code];
    if (name === undefined) throw new Error(`unknown op code ${code}`);
    const arity = KERNELS[name].arity;
    if (i + arity >= program.length) throw new Error('program too short');
    cur = TS_KERNELS[name](cur, program, i + 1, into);
    i += 1 + arity;
  }
  return cur;
}

/** The TypeScript kernels as an executor (the reference, and the fallback when image.cc is not built). */
export const typescriptExecutor: Executor = {
  name: 'typescript',
  run(src, width, height, program, out, offset, ms) {
    if (src.length !== width * height * 3) throw new Error('src length is not width * height * 3');
    const img = runProgram({ data: src, width, height }, program, true);
    const n = img.width * img.height * 3;
    if (offset + n > out.length) throw new Error('output array too short');
    if (out instanceof Float32Array) {
      if (!ms || ms.length !== 6) throw new TypeError('float32 output needs meanStd as a Float64Array of 6');
      normalizeInto(img, ms.subarray(0, 3), ms.subarray(3, 6), out, offset);
    } else {
      out.set(img.data, offset);
    }
    return [img.width, img.height];
  },
};
