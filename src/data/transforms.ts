// Image transforms with torchvision's parameter distributions and PIL's pixel arithmetic.
// Decoding runs in libvips through sharp; crop, resize, colour, blur and flip run here on the 8-bit
// RGB pixels with PIL's arithmetic (each step rounds back to 8 bits), so that outputs match
// torchvision's PIL path to within a level or two.
import sharp from 'sharp';
import { Rng, roundHalfEven } from './rng.js';

export type Op =
  | { op: 'randomResizedCrop'; size: number; scale: [number, number]; ratio: [number, number] }
  | { op: 'resize'; size: number }
  | { op: 'centerCrop'; size: number }
  | { op: 'colorJitter'; brightness: number; contrast: number; saturation: number; hue: number; p: number }
  | { op: 'randomGrayscale'; p: number }
  | { op: 'gaussianBlur'; sigma: [number, number]; p: number }
  | { op: 'horizontalFlip'; p: number };

/** A transform pipeline: plain data, so it can be sent to worker threads. */
export interface TransformSpec {
  ops: Op[];
  /** ToTensor + Normalize(mean, std); the loader applies it when it emits float32 */
  mean: [number, number, number];
  std: [number, number, number];
}

export const IMAGENET_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: [number, number, number] = [0.229, 0.224, 0.225];

/** The paper's temporal-classification augmentation (also ImageNet's `--strong-augment`). */
export function tcAugmentation(size = 224): TransformSpec {
  return {
    ops: [
      { op: 'randomResizedCrop', size, scale: [0.08, 1], ratio: [3 / 4, 4 / 3] },
      { op: 'colorJitter', brightness: 0.9, contrast: 0.9, saturation: 0.9, hue: 0.5, p: 0.9 },
      { op: 'randomGrayscale', p: 0.2 },
      { op: 'gaussianBlur', sigma: [0.1, 2], p: 0.5 },
      { op: 'horizontalFlip', p: 0.5 },
    ],
    mean: IMAGENET_MEAN, std: IMAGENET_STD,
  };
}

/** ImageNet training: RandomResizedCrop(224) + RandomHorizontalFlip. */
export function imagenetTrain(size = 224): TransformSpec {
  return {
    ops: [{ op: 'randomResizedCrop', size, scale: [0.08, 1], ratio: [3 / 4, 4 / 3] }, { op: 'horizontalFlip', p: 0.5 }],
    mean: IMAGENET_MEAN, std: IMAGENET_STD,
  };
}

/** ImageNet validation: Resize(256) + CenterCrop(224). */
export function imagenetVal(resize = 256, size = 224): TransformSpec {
  return { ops: [{ op: 'resize', size: resize }, { op: 'centerCrop', size }], mean: IMAGENET_MEAN, std: IMAGENET_STD };
}

/** No augmentation: ToTensor + Normalize only (the frames must already share one size). */
export function noAugmentation(): TransformSpec {
  return { ops: [], mean: IMAGENET_MEAN, std: IMAGENET_STD };
}

// ---- parameters, as torchvision 0.14 samples them ----

export interface CropBox { top: number; left: number; height: number; width: number }

/** transforms.RandomResizedCrop.get_params. */
export function randomResizedCropParams(rng: Rng, width: number, height: number, scale: [number, number], ratio: [number, number]): CropBox {
  const area = height * width;
  const logR0 = Math.log(ratio[0]), logR1 = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logR0, logR1));
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = rng.int(height - h + 1);
      const left = rng.int(width - w + 1);
      return { top, left, height: h, width: w };
    }
  }
  const inRatio = width / height;
  let w: number, h: number;
  if (inRatio < Math.min(...ratio)) { w = width; h = roundHalfEven(w / Math.min(...ratio)); }
  else if (inRatio > Math.max(...ratio)) { h = height; w = roundHalfEven(h * Math.max(...ratio)); }
  else { w = width; h = height; }
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

export interface JitterParams { order: number[]; brightness: number | null; contrast: number | null; saturation: number | null; hue: number | null }

/** transforms.ColorJitter.get_params: a random order of the four adjustments and their factors. */
export function colorJitterParams(rng: Rng, b: number, c: number, s: number, h: number): JitterParams {
  const perm = Array.from(rng.permutation(4));
  const f = (v: number): number | null => (v > 0 ? rng.uniform(Math.max(0, 1 - v), 1 + v) : null);
  const brightness = f(b), contrast = f(c), saturation = f(s);
  const hue = h > 0 ? rng.uniform(-h, h) : null;
  return { order: perm, brightness, contrast, saturation, hue };
}

/** torchvision's Resize(size) output size for an int size: the shorter side becomes `size`. */
export function resizeShorter(width: number, height: number, size: number): { width: number; height: number } {
  if (width <= height) return { width: size, height: Math.trunc(size * height / width) };
  return { width: Math.trunc(size * width / height), height: size };
}

/** CenterCrop's box (crops larger than the image are not padded here: they are errors). */
export function centerCropBox(width: number, height: number, size: number): CropBox {
  if (size > width || size > height) throw new Error(`centre crop ${size} larger than the image ${width}x${height}`);
  return { top: roundHalfEven((height - size) / 2), left: roundHalfEven((width - size) / 2), height: size, width: size };
}

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

export function adjustBrightness(px: Uint8Array, factor: number): void {
  const a = f32(factor);
  for (let i = 0; i < px.length; i++) px[i] = blend(0, px[i]!, a);
}

export function adjustContrast(px: Uint8Array, factor: number): void {
  let sum = 0;
  const n = px.length / 3;
  for (let i = 0; i < px.length; i += 3) sum += luma(px[i]!, px[i + 1]!, px[i + 2]!);
  const mean = Math.trunc(sum / n + 0.5);
  const a = f32(factor);
  for (let i = 0; i < px.length; i++) px[i] = blend(mean, px[i]!, a);
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

/** F.adjust_hue on a PIL image: RGB -> HSV (PIL's 8-bit HSV), shift H by uint8(hue * 255), back. */
export function adjustHue(px: Uint8Array, hueFactor: number): void {
  const shift = ((Math.trunc(hueFactor * 255) % 256) + 256) % 256;
  for (let i = 0; i < px.length; i += 3) {
    const r = px[i]!, g = px[i + 1]!, b = px[i + 2]!;
    const maxc = Math.max(r, g, b), minc = Math.min(r, g, b);
    const v = maxc;
    let hh: number, ss: number;
    if (minc === maxc) {
      hh = 0; ss = 0;
    } else {
      const cr = f32(maxc - minc);
      const s = f32(cr / maxc);
      const rc = f32((maxc - r) / cr), gc = f32((maxc - g) / cr), bc = f32((maxc - b) / cr);
      let h: number;
      if (r === maxc) h = f32(bc - gc);
      else if (g === maxc) h = f32(f32(2 + rc) - bc);
      else h = f32(f32(4 + gc) - rc);
      h = f32((h / 6 + 1) % 1);
      hh = clip8(Math.trunc(h * 255));
      ss = clip8(Math.trunc(s * 255));
    }
    hh = (hh + shift) & 255;
    if (ss === 0) {
      px[i] = v; px[i + 1] = v; px[i + 2] = v;
      continue;
    }
    const hf = f32(f32(hh * 6) / 255);
    const ii = Math.floor(hf);
    const f = f32(hf - ii);
    const fs = f32(ss / 255);
    const p = clip8(Math.round(f32(v * f32(1 - fs))));
    const q = clip8(Math.round(f32(v * f32(1 - f32(fs * f)))));
    const t = clip8(Math.round(f32(v * f32(1 - f32(fs * f32(1 - f))))));
    let R: number, G: number, B: number;
    switch (ii % 6) {
      case 0: R = v; G = t; B = p; break;
      case 1: R = q; G = v; B = p; break;
      case 2: R = p; G = v; B = t; break;
      case 3: R = p; G = q; B = v; break;
      case 4: R = t; G = p; B = v; break;
      default: R = v; G = p; B = q; break;
    }
    px[i] = R; px[i + 1] = G; px[i + 2] = B;
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
  // each pass reads a padded copy of the line (edges repeated), keeps a running window sum per
  // channel, and adds the two fractional far pixels: out = (acc * ww + (far_l + far_r) * fw + 2^23) >> 24
  const pad = new Int32Array((Math.max(width, height) + 2 * r + 3) * 3);
  const w2 = 2 * r + 2;
  const pass = (base: number, step: number, n: number): void => {
    const last = n - 1;
    for (let k = 0, m = n + w2; k < m; k++) {
      let j = k - r - 1;
      j = j < 0 ? 0 : j > last ? last : j;
      const s = base + j * step;
      pad[k * 3] = px[s]!; pad[k * 3 + 1] = px[s + 1]!; pad[k * 3 + 2] = px[s + 2]!;
    }
    let a0 = 0, a1 = 0, a2 = 0;
    for (let k = 1; k <= 2 * r + 1; k++) { a0 += pad[k * 3]!; a1 += pad[k * 3 + 1]!; a2 += pad[k * 3 + 2]!; }
    for (let x = 0, o = base; x < n; x++, o += step) {
      const l = x * 3, rr = (x + w2) * 3;
      if (x > 0) {
        const add = (x + 2 * r + 1) * 3;
        a0 += pad[add]! - pad[l]!; a1 += pad[add + 1]! - pad[l + 1]!; a2 += pad[add + 2]! - pad[l + 2]!;
      }
      px[o] = (a0 * ww + (pad[l]! + pad[rr]!) * fw + 8388608) >>> 24;
      px[o + 1] = (a1 * ww + (pad[l + 1]! + pad[rr + 1]!) * fw + 8388608) >>> 24;
      px[o + 2] = (a2 * ww + (pad[l + 2]! + pad[rr + 2]!) * fw + 8388608) >>> 24;
    }
  };
  const rowStep = width * 3;
  for (let p = 0; p < passes; p++) for (let y = 0; y < height; y++) pass(y * rowStep, 3, width);
  for (let p = 0; p < passes; p++) for (let x = 0; x < width; x++) pass(x * 3, rowStep, height);
}

/** Applies ColorJitter with given parameters (the order and factors of `colorJitterParams`). */
export function applyJitter(px: Uint8Array, p: JitterParams): void {
  for (const fn of p.order) {
    if (fn === 0 && p.brightness !== null) adjustBrightness(px, p.brightness);
    else if (fn === 1 && p.contrast !== null) adjustContrast(px, p.contrast);
    else if (fn === 2 && p.saturation !== null) adjustSaturation(px, p.saturation);
    else if (fn === 3 && p.hue !== null) adjustHue(px, p.hue);
  }
}

// ---- the whole pipeline for one encoded image ----

export interface RgbImage { data: Uint8Array; width: number; height: number }

/**
 * PIL's Image.resize(..., BILINEAR) of the region `box` of an RGB image (as `img.crop(box).resize(...)`):
 * a triangle filter widened by the downscale factor (antialiased), separable, horizontal pass first,
 * 22-bit fixed-point coefficients, each pass rounded to 8 bits.
 */
export function resizeBilinear(src: Uint8Array, srcWidth: number, box: CropBox, outWidth: number, outHeight: number): Uint8Array {
  const PREC = 22;
  const coeffs = (inSize: number, outSize: number): { bounds: Int32Array; k: Int32Array; ksize: number } => {
    const scale = inSize / outSize;
    const filterscale = Math.max(1, scale);
    const support = filterscale;
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
        const t = Math.abs((x + xmin - center + 0.5) * ss);
        w[x] = t < 1 ? 1 - t : 0;
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
  // rows of the crop that the vertical pass reads
  const y0 = needV ? V.bounds[0]! : 0;
  const y1 = needV ? V.bounds[(outHeight - 1) * 2]! + V.bounds[(outHeight - 1) * 2 + 1]! : outHeight;
  const rows = y1 - y0;
  const tmpW = needH ? outWidth : box.width;
  const tmp = new Uint8Array(rows * tmpW * 3);
  for (let y = 0; y < rows; y++) {
    const srow = ((box.top + y0 + y) * srcWidth + box.left) * 3;
    const trow = y * tmpW * 3;
    if (!needH) {
      tmp.set(src.subarray(srow, srow + tmpW * 3), trow);
      continue;
    }
    for (let xx = 0; xx < outWidth; xx++) {
      const xmin = hb[xx * 2]!, xmax = hb[xx * 2 + 1]!;
      const kb = xx * hks;
      let s0 = 1 << (PREC - 1), s1 = s0, s2 = s0;
      for (let x = 0, p = srow + xmin * 3; x < xmax; x++, p += 3) {
        const kv = hk[kb + x]!;
        s0 += src[p]! * kv; s1 += src[p + 1]! * kv; s2 += src[p + 2]! * kv;
      }
      const o = trow + xx * 3;
      // Uint8ClampedArray-like clipping of the 22-bit fixed point sums
      s0 >>= PREC; s1 >>= PREC; s2 >>= PREC;
      tmp[o] = s0 < 0 ? 0 : s0 > 255 ? 255 : s0;
      tmp[o + 1] = s1 < 0 ? 0 : s1 > 255 ? 255 : s1;
      tmp[o + 2] = s2 < 0 ? 0 : s2 > 255 ? 255 : s2;
    }
  }
  if (!needV) return tmp;
  const out = new Uint8Array(outWidth * outHeight * 3);
  const stride = tmpW * 3;
  const acc = new Int32Array(outWidth * 3);
  for (let yy = 0; yy < outHeight; yy++) {
    const ymin = vb[yy * 2]! - y0, ymax = vb[yy * 2 + 1]!;
    const kb = yy * vks;
    const orow = yy * outWidth * 3;
    acc.fill(1 << (PREC - 1));
    for (let y = 0; y < ymax; y++) {
      const kv = vk[kb + y]!;
      const row = (y + ymin) * stride;
      for (let xx = 0; xx < stride; xx++) acc[xx] += tmp[row + xx]! * kv;
    }
    for (let xx = 0; xx < stride; xx++) {
      const v = acc[xx]! >> PREC;
      out[orow + xx] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return out;
}

function cropPixels(src: Uint8Array, srcWidth: number, box: CropBox): Uint8Array {
  const out = new Uint8Array(box.width * box.height * 3);
  for (let y = 0; y < box.height; y++) {
    const s = ((box.top + y) * srcWidth + box.left) * 3;
    out.set(src.subarray(s, s + box.width * 3), y * box.width * 3);
  }
  return out;
}

/** Decodes an encoded image (JPEG, PNG, ...) to 8-bit RGB (libvips), as PIL's `convert('RGB')`. */
export async function decodeRgb(encoded: Uint8Array): Promise<RgbImage> {
  const { data, info } = await sharp(encoded, { failOn: 'truncated', sequentialRead: true }).removeAlpha().toColourspace('srgb')
    .raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

/** Decodes an encoded image and applies `spec`'s ops with the given generator. */
export async function transformImage(encoded: Uint8Array, spec: TransformSpec, rng: Rng): Promise<RgbImage> {
  return applyOps(await decodeRgb(encoded), spec, rng);
}

/** Applies `spec`'s ops to an RGB image (the pixels may be modified in place). */
export function applyOps(img: RgbImage, spec: TransformSpec, rng: Rng): RgbImage {
  let { data: px, width, height } = img;
  for (const op of spec.ops) {
    switch (op.op) {
      case 'randomResizedCrop': {
        const box = randomResizedCropParams(rng, width, height, op.scale, op.ratio);
        px = resizeBilinear(px, width, box, op.size, op.size);
        width = op.size; height = op.size;
        break;
      }
      case 'resize': {
        const out = resizeShorter(width, height, op.size);
        if (out.width !== width || out.height !== height) px = resizeBilinear(px, width, { top: 0, left: 0, width, height }, out.width, out.height);
        width = out.width; height = out.height;
        break;
      }
      case 'centerCrop': {
        const box = centerCropBox(width, height, op.size);
        px = cropPixels(px, width, box);
        width = op.size; height = op.size;
        break;
      }
      case 'colorJitter':
        // RandomApply([ColorJitter], p): one uniform draw, then the jitter's own parameters
        if (rng.random() < op.p) applyJitter(px, colorJitterParams(rng, op.brightness, op.contrast, op.saturation, op.hue));
        break;
      case 'randomGrayscale':
        if (rng.random() < op.p) toGrayscale(px);
        break;
      case 'gaussianBlur':
        if (rng.random() < op.p) gaussianBlur(px, width, height, rng.uniform(op.sigma[0], op.sigma[1]));
        break;
      case 'horizontalFlip':
        if (rng.random() < op.p) horizontalFlip(px, width, height);
        break;
    }
  }
  return { data: px, width, height };
}

/** ToTensor + Normalize of an HWC uint8 image into CHW float32 at `out[offset...]`, in float32 steps as torch does. */
export function normalizeInto(img: RgbImage, mean: readonly number[], std: readonly number[], out: Float32Array, offset: number): void {
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
