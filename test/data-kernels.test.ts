// The pixel kernels against straightforward one-value-at-a-time versions of PIL's arithmetic (the
// form in which they were first checked against torchvision/PIL, kept here as the oracle): one
// suite, written once, runs over every executor of op programs — the TypeScript kernels
// (kernels.ts) and the compiled ones (native/src/image.cc) — kernel by kernel and whole samples
// (planOps, then the program). The compiled op table must equal program.ts's, and a kernel missing
// from the compiled table fails the suite. Also: the TypeScript resize into a given buffer, scratch
// buffers, batches written into released arrays, and the loader's batches against the TypeScript path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { transforms as T, Rng, DataLoader, ImageFolder, tcAugmentation, imagenetTrain, imagenetVal, type TransformSpec } from '../src/data/index.js';
import { compiledExecutor, nativeImage } from '../src/data/native-image.js';
import { KERNELS, meanStd, type Executor, type Kernel } from '../src/data/program.js';

type CropBox = T.CropBox;
const f32 = Math.fround;

// ---- the oracle ----

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

function refBrightness(px: Uint8Array, factor: number): void {
  const a = f32(factor);
  for (let i = 0; i < px.length; i++) px[i] = blend(0, px[i]!, a);
}

function refContrast(px: Uint8Array, factor: number): void {
  let sum = 0;
  const n = px.length / 3;
  for (let i = 0; i < px.length; i += 3) sum += luma(px[i]!, px[i + 1]!, px[i + 2]!);
  const mean = Math.trunc(sum / n + 0.5);
  const a = f32(factor);
  for (let i = 0; i < px.length; i++) px[i] = blend(mean, px[i]!, a);
}

function refSaturation(px: Uint8Array, factor: number): void {
  const a = f32(factor);
  for (let i = 0; i < px.length; i += 3) {
    const l = luma(px[i]!, px[i + 1]!, px[i + 2]!);
    px[i] = blend(l, px[i]!, a);
    px[i + 1] = blend(l, px[i + 1]!, a);
    px[i + 2] = blend(l, px[i + 2]!, a);
  }
}

/** F.adjust_hue on a PIL image: RGB -> HSV (PIL's 8-bit HSV), shift H by uint8(hue * 255), back. */

/** F.adjust_hue on a PIL image: RGB -> HSV (PIL's 8-bit HSV), shift H by uint8(hue * 255), back. */
function refHue(px: Uint8Array, hueFactor: number): void {
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


/** PIL's ImageFilter.GaussianBlur(radius=sigma): three extended box blurs per axis (Gwosdek et al.). */
function refBlur(px: Uint8Array, width: number, height: number, sigma: number): void {
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


/**
 * PIL's Image.resize(..., BILINEAR) of the region `box` of an RGB image (as `img.crop(box).resize(...)`):
 * a triangle filter widened by the downscale factor (antialiased), separable, horizontal pass first,
 * 22-bit fixed-point coefficients, each pass rounded to 8 bits.
 */
function refResize(src: Uint8Array, srcWidth: number, box: CropBox, outWidth: number, outHeight: number, bicubic = false): Uint8Array {
  const PREC = 22;
  // PIL's filters: the triangle (support 1) and the cubic with a = -0.5 (support 2)
  const filter = (x: number): number => {
    const t = Math.abs(x);
    if (!bicubic) return t < 1 ? 1 - t : 0;
    const a = -0.5;
    return t < 1 ? ((a + 2) * t - (a + 3)) * t * t + 1 : t < 2 ? (((t - 5) * t + 8) * t - 4) * a : 0;
  };
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
        w[x] = filter((x + xmin - center + 0.5) * ss);
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


// ---- tests ----

function sameBytes(a: Uint8Array, b: Uint8Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) assert.fail(`${what}: value ${i} is ${a[i]}, expected ${b[i]}`);
}

function randomImage(rng: Rng, w: number, h: number, smooth: boolean): Uint8Array {
  const px = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        // smooth gradients (like photos) or noise (every value, edges of the ranges)
        px[(y * w + x) * 3 + c] = smooth ? (x * (c + 1) * 3 + y * (3 - c) * 2 + rng.int(9)) & 255 : rng.int(256);
      }
    }
  }
  return px;
}

test('resize (up, down, mixed, one pixel wide) gives the same bytes as the reference', () => {
  const rng = new Rng(11);
  for (let t = 0; t < 250; t++) {
    const W = 1 + rng.int(330), H = 1 + rng.int(330);
    const px = randomImage(rng, W, H, t % 2 === 0);
    const box = t % 5 === 0 ? { top: 0, left: 0, width: W, height: H } : T.randomResizedCropParams(rng, W, H, [0.08, 1], [3 / 4, 4 / 3]);
    const ow = t % 7 === 0 ? box.width : 1 + rng.int(300), oh = t % 11 === 0 ? box.height : 1 + rng.int(300);
    const what = `${W}x${H} box ${JSON.stringify(box)} to ${ow}x${oh}`;
    sameBytes(T.resizeBilinear(px, W, box, ow, oh), refResize(px, W, box, ow, oh), what);
    const into = new Uint8Array(ow * oh * 3);
    assert.equal(T.resizeBilinear(px, W, box, ow, oh, into), into);
    sameBytes(into, refResize(px, W, box, ow, oh), `${what} (into)`);
  }
});

test('applyOps with scratch buffers gives the same images as without, also when a resize follows a resize', () => {
  const rng = new Rng(14);
  const specs: TransformSpec[] = [
    tcAugmentation(64),
    { ...tcAugmentation(), ops: [{ op: 'resize', size: 80 }, { op: 'randomResizedCrop', size: 48, scale: [0.08, 1], ratio: [3 / 4, 4 / 3] }, { op: 'resize', size: 40 }] },
  ];
  for (const spec of specs) {
    for (let k = 0; k < 30; k++) {
      const W = 20 + rng.int(200), H = 20 + rng.int(200);
      const px = randomImage(rng, W, H, true);
      const a = T.applyOps({ data: px.slice(), width: W, height: H }, spec, new Rng(3, k), false);
      const b = T.applyOps({ data: px.slice(), width: W, height: H }, spec, new Rng(3, k), true);
      assert.deepEqual([a.width, a.height], [b.width, b.height]);
      sameBytes(b.data, a.data, `spec ${k}`);
    }
  }
});

test('the loader: batches written into released arrays equal fresh ones (float32 and uint8, with a short last batch)', async () => {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'awty-kernels-'));
  try {
    for (let c = 0; c < 2; c++) {
      await fsp.mkdir(path.join(root, `c${c}`));
      for (let k = 0; k < 11; k++) {
        const img = await sharp({ create: { width: 60 + 4 * k, height: 50 + 6 * c, channels: 3, background: { r: 20 * k, g: 100 * c, b: 60 } } })
          .composite([{ input: { create: { width: 12, height: 9, channels: 3, background: { r: 250, g: 240, b: 10 } } }, left: 2 * k, top: 3 + c }])
          .jpeg().toBuffer();
        await fsp.writeFile(path.join(root, `c${c}`, `img_${k}.jpg`), img);
      }
    }
    const ds = await ImageFolder.open(root, { cachePath: false });
    for (const output of ['float32', 'uint8'] as const) {
      for (const workers of [0, 2]) {
        const run = async (release: boolean): Promise<{ bytes: Buffer[]; buffers: Set<ArrayBufferLike> }> => {
          const dl = new DataLoader(ds, { batchSize: 5, transform: tcAugmentation(40), workers, shuffle: true, seed: 3, output });
          const bytes: Buffer[] = [];
          const buffers = new Set<ArrayBufferLike>();
          for (let e = 0; e < 3; e++) {
            for await (const b of dl.epoch(e)) {
              bytes.push(Buffer.from(new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength)));
              buffers.add(b.data.buffer);
              if (release) dl.release(b);
            }
          }
          await dl.close();
          return { bytes, buffers };
        };
        const fresh = await run(false), reused = await run(true);
        assert.equal(reused.bytes.length, 15);
        reused.bytes.forEach((b, i) => assert.ok(b.equals(fresh.bytes[i]!), `${output}, ${workers} workers: batch ${i} differs`));
        // in the main thread, 15 batches (12 of 5 images, 3 of 2) come in far fewer arrays (from a
        // worker, a transferred array arrives as a new object: only the bytes can be compared)
        assert.equal(fresh.buffers.size, 15);
        if (workers === 0) assert.ok(reused.buffers.size <= 5, `${output}: ${reused.buffers.size} arrays`);
      }
    }
  } finally {
    await fsp.rm(root, { recursive: true, force: true });
  }
});

// ---- the kernel suite, over every executor ----

const code = (k: Kernel): number => KERNELS[k].code;

/** The oracle's kernels by name (a kernel of the table without one is a compile error). */
const REF: Record<Kernel, (img: T.RgbImage, args: number[]) => T.RgbImage> = {
  resize: (img, a) => ({ data: refResize(img.data, img.width, { top: a[0]!, left: a[1]!, height: a[2]!, width: a[3]! }, a[4]!, a[5]!), width: a[4]!, height: a[5]! }),
  resizeBicubic: (img, a) => ({ data: refResize(img.data, img.width, { top: a[0]!, left: a[1]!, height: a[2]!, width: a[3]! }, a[4]!, a[5]!, true), width: a[4]!, height: a[5]! }),
  crop: (img, a) => {
    const [top, left, height, width] = a as [number, number, number, number];
    const data = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++) for (let x = 0; x < width * 3; x++) data[y * width * 3 + x] = img.data[((top + y) * img.width + left) * 3 + x]!;
    return { data, width, height };
  },
  brightness: (img, a) => { refBrightness(img.data, a[0]!); return img; },
  contrast: (img, a) => { refContrast(img.data, a[0]!); return img; },
  saturation: (img, a) => { refSaturation(img.data, a[0]!); return img; },
  hue: (img, a) => { refHue(img.data, a[0]!); return img; },
  grayscale: (img) => {
    const px = img.data;
    for (let i = 0; i < px.length; i += 3) px[i] = px[i + 1] = px[i + 2] = luma(px[i]!, px[i + 1]!, px[i + 2]!);
    return img;
  },
  blur: (img, a) => { refBlur(img.data, img.width, img.height, a[0]!); return img; },
  flip: (img) => {
    const out = new Uint8Array(img.data.length);
    for (let y = 0; y < img.height; y++) for (let x = 0; x < img.width; x++) for (let c = 0; c < 3; c++) out[(y * img.width + x) * 3 + c] = img.data[(y * img.width + img.width - 1 - x) * 3 + c]!;
    return { ...img, data: out };
  },
};

/** The oracle run of a program: its kernels in order on a copy of the image. */
function refProgram(img: T.RgbImage, program: ArrayLike<number>): T.RgbImage {
  const byCode = new Map<number, readonly [Kernel, number]>(Object.entries(KERNELS).map(([name, k]) => [k.code, [name as Kernel, k.arity]]));
  let cur: T.RgbImage = { ...img, data: img.data.slice() };
  for (let i = 0; i < program.length;) {
    const [name, arity] = byCode.get(program[i]!)!;
    cur = REF[name](cur, Array.from(program).slice(i + 1, i + 1 + arity));
    i += 1 + arity;
  }
  return cur;
}

/** Runs one program with `exec` on a copy of `px` and returns the uint8 HWC result (written at an offset). */
function runOn(exec: Executor, px: Uint8Array, w: number, h: number, prog: number[], outLen: number): Uint8Array {
  const out = new Uint8Array(outLen + 7);
  exec.run(px.slice(), w, h, Float64Array.from(prog), out, 7, null);
  return out.subarray(7);
}

let allColours: Uint8Array | null = null;
const hueRefs = new Map<number, Uint8Array>();

/** The suite: each case throws (an assertion) when the executor's bytes differ from the oracle's. */
const SUITE: { name: string; run(exec: Executor): void }[] = [
  {
    name: 'resize (up, down, mixed, one pixel wide) and crop give the reference bytes',
    run(exec) {
      const rng = new Rng(11);
      for (let t = 0; t < 250; t++) {
        const W = 1 + rng.int(330), H = 1 + rng.int(330);
        const px = randomImage(rng, W, H, t % 2 === 0);
        const box = t % 5 === 0 ? { top: 0, left: 0, width: W, height: H } : T.randomResizedCropParams(rng, W, H, [0.08, 1], [3 / 4, 4 / 3]);
        const ow = t % 7 === 0 ? box.width : 1 + rng.int(300), oh = t % 11 === 0 ? box.height : 1 + rng.int(300);
        const what = `${W}x${H} box ${JSON.stringify(box)} to ${ow}x${oh}`;
        sameBytes(runOn(exec, px, W, H, [code('resize'), box.top, box.left, box.height, box.width, ow, oh], ow * oh * 3), refResize(px, W, box, ow, oh), what);
        const crop = runOn(exec, px, W, H, [code('crop'), box.top, box.left, box.height, box.width], box.width * box.height * 3);
        sameBytes(crop, refResize(px, W, box, box.width, box.height), `crop ${what}`);
        if (t % 2 === 0) {
          const bicubic = runOn(exec, px, W, H, [code('resizeBicubic'), box.top, box.left, box.height, box.width, ow, oh], ow * oh * 3);
          sameBytes(bicubic, refResize(px, W, box, ow, oh, true), `bicubic ${what}`);
        }
      }
    },
  },
  {
    name: 'Gaussian blur (fixed 3-/5-tap passes for small sigma, running sums for large) gives the reference bytes',
    run(exec) {
      const rng = new Rng(12);
      const sigmas = [0.1, 0.3, 1, Math.SQRT2 - 1e-6, Math.SQRT2 + 1e-6, 1.9, 2, 2.5, 4, 7.3];
      for (let t = 0; t < 200; t++) {
        const W = 1 + rng.int(t < 40 ? 8 : 240), H = 1 + rng.int(t < 40 ? 8 : 240);
        const sigma = t < sigmas.length * 4 ? sigmas[t % sigmas.length]! : rng.uniform(0.1, 3);
        const px = randomImage(rng, W, H, t % 2 === 0);
        const ref = px.slice();
        refBlur(ref, W, H, sigma);
        sameBytes(runOn(exec, px, W, H, [code('blur'), sigma], px.length), ref, `blur ${sigma} on ${W}x${H}`);
      }
    },
  },
  {
    name: 'hue (8-bit HSV) gives the reference bytes for every colour',
    run(exec) {
      if (!allColours) {
        allColours = new Uint8Array(256 * 256 * 256 * 3);
        for (let i = 0; i < 256 * 256 * 256; i++) { allColours[3 * i] = i >> 16; allColours[3 * i + 1] = (i >> 8) & 255; allColours[3 * i + 2] = i & 255; }
      }
      for (const h of [0.31, -0.45, 0.5, -0.0021, 0]) {
        if (!hueRefs.has(h)) { const ref = allColours.slice(); refHue(ref, h); hueRefs.set(h, ref); }
        sameBytes(runOn(exec, allColours, 4096, 4096, [code('hue'), h], allColours.length), hueRefs.get(h)!, `hue ${h}`);
      }
    },
  },
  {
    name: 'brightness, contrast, saturation, grayscale and flip give the reference bytes',
    run(exec) {
      const rng = new Rng(13);
      for (let t = 0; t < 60; t++) {
        const W = 1 + rng.int(100), H = 1 + rng.int(100);
        const px = randomImage(rng, W, H, t % 2 === 0);
        const f = t < 3 ? [0, 1, 1.9][t]! : rng.uniform(0.1, 1.9);
        for (const k of ['brightness', 'contrast', 'saturation'] as const) {
          sameBytes(runOn(exec, px, W, H, [code(k), f], px.length), REF[k]({ data: px.slice(), width: W, height: H }, [f]).data, `${k} ${f}`);
        }
        for (const k of ['grayscale', 'flip'] as const) {
          sameBytes(runOn(exec, px, W, H, [code(k)], px.length), REF[k]({ data: px.slice(), width: W, height: H }, []).data, k);
        }
      }
    },
  },
  {
    name: 'whole samples (planOps, then the program) give the reference bytes, float32 and uint8, at an offset',
    run(exec) {
      const rng = new Rng(15);
      const specs: TransformSpec[] = [
        tcAugmentation(), tcAugmentation(64), imagenetTrain(96), imagenetVal(72, 64),
        { ...tcAugmentation(), ops: [{ op: 'resize', size: 80 }, { op: 'randomResizedCrop', size: 48, scale: [0.08, 1], ratio: [3 / 4, 4 / 3] }, { op: 'resize', size: 40 }] },
        { ...tcAugmentation(), ops: [{ op: 'gaussianBlur', sigma: [2.5, 6], p: 1 }, { op: 'colorJitter', brightness: 0.9, contrast: 0.9, saturation: 0.9, hue: 0.5, p: 1 }] },
        // MAE's crop (bicubic), then a bicubic resize
        { ...tcAugmentation(), ops: [{ op: 'randomResizedCrop', size: 48, scale: [0.2, 1], ratio: [3 / 4, 4 / 3], interpolation: 'bicubic' }, { op: 'resize', size: 40, interpolation: 'bicubic' }, { op: 'horizontalFlip', p: 0.5 }] },
      ];
      for (const [si, spec] of specs.entries()) {
        for (let k = 0; k < 25; k++) {
          const W = 72 + rng.int(200), H = 72 + rng.int(200);
          const px = randomImage(rng, W, H, k % 3 !== 0);
          const plan = T.planOps(W, H, spec, new Rng(5, si, k));
          const ref = refProgram({ data: px, width: W, height: H }, plan.program);
          assert.deepEqual([plan.width, plan.height], [ref.width, ref.height]);
          const n = ref.width * ref.height * 3;
          const refF = new Float32Array(n * 2);
          for (let c = 0; c < 3; c++) {
            for (let q = 0; q < n / 3; q++) refF[n + c * (n / 3) + q] = f32(f32(f32(ref.data[q * 3 + c]! / 255) - f32(spec.mean[c]!)) / f32(spec.std[c]!));
          }
          const outF = new Float32Array(n * 2);
          assert.deepEqual(exec.run(px.slice(), W, H, plan.program, outF, n, meanStd(spec)), [ref.width, ref.height]);
          sameBytes(new Uint8Array(outF.buffer), new Uint8Array(refF.buffer), `spec ${si} sample ${k} (float32)`);
          const outU = new Uint8Array(n + 5);
          exec.run(px.slice(), W, H, plan.program, outU, 5, null);
          sameBytes(outU.subarray(5), ref.data, `spec ${si} sample ${k} (uint8)`);
        }
      }
    },
  },
  {
    name: 'bad programs fail with what is wrong',
    run(exec) {
      assert.throws(() => exec.run(new Uint8Array(12), 2, 2, Float64Array.from([code('crop'), 0, 0, 3, 1]), new Uint8Array(12), 0, null), /outside/);
      assert.throws(() => exec.run(new Uint8Array(12), 2, 2, Float64Array.from([code('flip')]), new Uint8Array(11), 0, null), /too short/);
      assert.throws(() => exec.run(new Uint8Array(12), 2, 2, Float64Array.from([code('blur')]), new Uint8Array(12), 0, null), /program too short/);
      assert.throws(() => exec.run(new Uint8Array(12), 2, 2, Float64Array.from([99]), new Uint8Array(12), 0, null), /unknown op code 99/);
    },
  },
];

const nat = nativeImage();
const compiled = compiledExecutor();
const noNative = nat ? false : 'native/build/Release/awty_image.node is not built';

for (const [exec, skip] of [[T.typescriptExecutor, false], [compiled, noNative]] as const) {
  for (const c of SUITE) test(`${exec?.name ?? 'compiled'}: ${c.name}`, { skip }, () => c.run(exec!));
}

/** Differences between a compiled op table and program.ts's KERNELS, one line each. */
function tableDifferences(compiledTable: Record<string, [number, number]>): string[] {
  const out: string[] = [];
  for (const [name, k] of Object.entries(KERNELS)) {
    const c = compiledTable[name];
    if (!c) out.push(`${name}: missing from the compiled table`);
    else if (c[0] !== k.code || c[1] !== k.arity) out.push(`${name}: compiled [${c.join(', ')}], program.ts [${k.code}, ${k.arity}]`);
  }
  for (const name of Object.keys(compiledTable)) if (!(name in KERNELS)) out.push(`${name}: only in the compiled table`);
  return out;
}

test('the compiled op table (image.cc imageOps) is program.ts\'s KERNELS', { skip: noNative }, () => {
  assert.deepEqual(tableDifferences(nat!.imageOps()), []);
});

test('a kernel missing from the compiled op table fails the suite', { skip: noNative }, () => {
  const { flip: _dropped, ...without } = nat!.imageOps();
  assert.deepEqual(tableDifferences(without), ['flip: missing from the compiled table']);
  // the compiled executor as image.cc runs when its table lacks the row: the code is unknown
  const lacking: Executor = {
    name: 'compiled',
    run(src, w, h, program, out, offset, ms) {
      for (let i = 0; i < program.length;) {
        const row = Object.values(without).find(([c]) => c === program[i]);
        if (!row) throw new Error(`imageApply: unknown op code ${program[i]}`);
        i += 1 + row[1];
      }
      return compiled!.run(src, w, h, program, out, offset, ms);
    },
  };
  const failed: string[] = [];
  for (const c of SUITE.filter((s) => !s.name.startsWith('hue'))) {
    try { c.run(lacking); } catch (e) { failed.push(`${c.name}: ${(e as Error).message}`); }
  }
  assert.ok(failed.length >= 2, failed.join('\n'));
  assert.match(failed.join('\n'), /unknown op code 9/);
});

test('the loader (worker threads, native kernels when built) gives the TypeScript path\'s bytes', async () => {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'awty-kernels-'));
  try {
    await fsp.mkdir(path.join(root, 'c0'));
    const files: Buffer[] = [];
    for (let k = 0; k < 9; k++) {
      const img = await sharp({ create: { width: 90 + 7 * k, height: 80 + 3 * k, channels: 3, background: { r: 0, g: 0, b: 0 }, noise: { type: 'gaussian', mean: 128, sigma: 40 } } })
        .jpeg().toBuffer();
      files.push(img);
      await fsp.writeFile(path.join(root, 'c0', `img_${k}.jpg`), img);
    }
    const ds = await ImageFolder.open(root, { cachePath: false });
    const spec = tcAugmentation(56);
    const dl = new DataLoader(ds, { batchSize: 4, transform: spec, workers: 2, shuffle: true, seed: 7 });
    for await (const b of dl.epoch(1)) {
      const per = 3 * 56 * 56;
      const ref = new Float32Array(b.shape[0] * per);
      for (let j = 0; j < b.shape[0]; j++) {
        const idx = b.indices[j]!;
        const img = T.applyOps(await T.decodeRgb(files[idx]!), spec, new Rng(7, 1, idx), false);
        T.normalizeInto(img, spec.mean, spec.std, ref, j * per);
      }
      sameBytes(new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength), new Uint8Array(ref.buffer), 'batch');
    }
    await dl.close();
  } finally {
    await fsp.rm(root, { recursive: true, force: true });
  }
});
