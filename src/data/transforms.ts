// Image transforms with torchvision's parameter distributions and PIL's pixel arithmetic.
// Decoding runs in libvips through sharp. `planOps` is the only place where a transform draws random
// numbers: it turns a sample's ops into a program of pixel kernels (program.ts), which an executor
// runs: the TypeScript reference kernels (kernels.ts) or the compiled ones (native/src/image.cc).
import sharp from 'sharp';
import { Rng, roundHalfEven } from './rng.js';
import { runProgram, type CropBox, type RgbImage } from './kernels.js';
import { ProgramWriter, type Plan } from './program.js';

export * from './kernels.js';
export { KERNELS, meanStd, type Executor, type Kernel, type Plan } from './program.js';

export type Op =
  | { op: 'randomResizedCrop'; size: number; scale: [number, number]; ratio: [number, number]; interpolation?: Interpolation }
  | { op: 'resize'; size: number; interpolation?: Interpolation }
  | { op: 'centerCrop'; size: number }
  | { op: 'colorJitter'; brightness: number; contrast: number; saturation: number; hue: number; p: number }
  | { op: 'randomGrayscale'; p: number }
  | { op: 'gaussianBlur'; sigma: [number, number]; p: number }
  | { op: 'horizontalFlip'; p: number };

/** torchvision's InterpolationMode for PIL images: 'bilinear' (the default) or 'bicubic'. */
export type Interpolation = 'bilinear' | 'bicubic';

const resizeKernel = (i: Interpolation | undefined): 'resize' | 'resizeBicubic' => (i === 'bicubic' ? 'resizeBicubic' : 'resize');

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


// ---- the planner: every random draw of a sample, in torchvision's order ----

type Planner<K extends Op['op']> = (op: Extract<Op, { op: K }>, size: { width: number; height: number }, rng: Rng, out: ProgramWriter) => void;

/** One case per op (a missing one is a compile error): draws its parameters and writes its kernels. */
const PLANNERS = {
  randomResizedCrop(op, size, rng, out) {
    const box = randomResizedCropParams(rng, size.width, size.height, op.scale, op.ratio);
    out.call(resizeKernel(op.interpolation), box.top, box.left, box.height, box.width, op.size, op.size);
    size.width = op.size; size.height = op.size;
  },
  resize(op, size, _rng, out) {
    const r = resizeShorter(size.width, size.height, op.size);
    if (r.width !== size.width || r.height !== size.height) out.call(resizeKernel(op.interpolation), 0, 0, size.height, size.width, r.width, r.height);
    size.width = r.width; size.height = r.height;
  },
  centerCrop(op, size, _rng, out) {
    const box = centerCropBox(size.width, size.height, op.size);
    out.call('crop', box.top, box.left, box.height, box.width);
    size.width = op.size; size.height = op.size;
  },
  colorJitter(op, _size, rng, out) {
    // RandomApply([ColorJitter], p): one uniform draw, then the jitter's own parameters
    if (!(rng.random() < op.p)) return;
    const p = colorJitterParams(rng, op.brightness, op.contrast, op.saturation, op.hue);
    for (const fn of p.order) {
      if (fn === 0 && p.brightness !== null) out.call('brightness', p.brightness);
      else if (fn === 1 && p.contrast !== null) out.call('contrast', p.contrast);
      else if (fn === 2 && p.saturation !== null) out.call('saturation', p.saturation);
      else if (fn === 3 && p.hue !== null) out.call('hue', p.hue);
    }
  },
  randomGrayscale(op, _size, rng, out) {
    if (rng.random() < op.p) out.call('grayscale');
  },
  gaussianBlur(op, _size, rng, out) {
    if (rng.random() < op.p) out.call('blur', rng.uniform(op.sigma[0], op.sigma[1]));
  },
  horizontalFlip(op, _size, rng, out) {
    if (rng.random() < op.p) out.call('flip');
  },
} satisfies { [K in Op['op']]: Planner<K> };

/** Draws `spec`'s parameters for an image of width x height and returns its program, with the result's size. */
export function planOps(width: number, height: number, spec: TransformSpec, rng: Rng): Plan {
  const size = { width, height };
  const out = new ProgramWriter();
  for (const op of spec.ops) {
    const plan = PLANNERS[op.op] as Planner<Op['op']> | undefined;
    if (!plan) throw new Error(`unknown transform op '${(op as { op: unknown }).op}'`);
    plan(op as never, size, rng, out);
  }
  return { program: out.done(), ...size };
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

/**
 * Applies `spec`'s ops to an RGB image (the pixels may be modified in place). With `scratch`, a
 * resize writes into a per-thread buffer that the next call with `scratch` overwrites: the result
 * must be consumed before then (the loader normalises it into its batch at once).
 */
export function applyOps(img: RgbImage, spec: TransformSpec, rng: Rng, scratch = false): RgbImage {
  return runProgram(img, planOps(img.width, img.height, spec, rng).program, scratch);
}
