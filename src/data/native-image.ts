// The compiled pixel kernels (native/src/image.cc, built as native/build/Release/awty_image.node):
// the same bytes as the TypeScript ops of transforms.ts, which stay the reference and the fallback.
// A sample's random parameters are drawn here exactly as `applyOps` draws them (same generator
// calls in the same order) and written as a program of numbers; one native call then runs the
// whole chain and writes the result into the batch array. The module has no libtorch and no
// process-wide state, so every worker thread loads it; when it is missing (not built) or
// AWTY_NATIVE_IMAGE=0, `nativeImage()` is null and the loader uses the TypeScript ops.
import { createRequire } from 'node:module';
import { addonPath } from '../torch/addon-path.js';
import type { Rng } from './rng.js';
import { centerCropBox, colorJitterParams, randomResizedCropParams, resizeShorter, type TransformSpec } from './transforms.js';

/** The op codes of a program (native/src/image.cc has the same list) and their arguments. */
export const OP = {
  /** top, left, boxHeight, boxWidth, outWidth, outHeight: PIL's bilinear resize of a crop */
  resize: 1,
  /** top, left, height, width */
  crop: 2,
  brightness: 3,
  contrast: 4,
  saturation: 5,
  hue: 6,
  grayscale: 7,
  /** sigma */
  blur: 8,
  flip: 9,
} as const;

export interface NativeImage {
  /**
   * Runs `program` on the HWC RGB image `src` (modified: it is scratch space) and writes the result
   * at `out[offset...]`: float32 CHW normalised with `meanStd` ([m0, m1, m2, s0, s1, s2]), or uint8
   * HWC (meanStd null). Returns the result's [width, height].
   */
  imageApply(src: Uint8Array, width: number, height: number, program: Float64Array, out: Float32Array | Uint8Array, offset: number,
    meanStd: Float64Array | null): [number, number];
}

let loaded: NativeImage | null | undefined;

/** The compiled kernels of this thread, or null (not built, or AWTY_NATIVE_IMAGE=0). */
export function nativeImage(): NativeImage | null {
  if (loaded !== undefined) return loaded;
  loaded = null;
  if (process.env.AWTY_NATIVE_IMAGE === '0') return null;
  const p = addonPath('awty_image.node');
  if (p) {
    try {
      loaded = createRequire(import.meta.url)(p) as NativeImage;
    } catch {
      loaded = null;
    }
  }
  return loaded;
}

export interface Plan { program: Float64Array; width: number; height: number }

/**
 * Draws `spec`'s parameters for an image of width x height as `applyOps` does (the same `rng`
 * calls) and returns them as a program, with the size of the result.
 */
export function planOps(width: number, height: number, spec: TransformSpec, rng: Rng): Plan {
  const prog: number[] = [];
  for (const op of spec.ops) {
    switch (op.op) {
      case 'randomResizedCrop': {
        const box = randomResizedCropParams(rng, width, height, op.scale, op.ratio);
        prog.push(OP.resize, box.top, box.left, box.height, box.width, op.size, op.size);
        width = op.size; height = op.size;
        break;
      }
      case 'resize': {
        const out = resizeShorter(width, height, op.size);
        if (out.width !== width || out.height !== height) prog.push(OP.resize, 0, 0, height, width, out.width, out.height);
        width = out.width; height = out.height;
        break;
      }
      case 'centerCrop': {
        const box = centerCropBox(width, height, op.size);
        prog.push(OP.crop, box.top, box.left, box.height, box.width);
        width = op.size; height = op.size;
        break;
      }
      case 'colorJitter':
        if (rng.random() < op.p) {
          const p = colorJitterParams(rng, op.brightness, op.contrast, op.saturation, op.hue);
          for (const fn of p.order) {
            if (fn === 0 && p.brightness !== null) prog.push(OP.brightness, p.brightness);
            else if (fn === 1 && p.contrast !== null) prog.push(OP.contrast, p.contrast);
            else if (fn === 2 && p.saturation !== null) prog.push(OP.saturation, p.saturation);
            else if (fn === 3 && p.hue !== null) prog.push(OP.hue, p.hue);
          }
        }
        break;
      case 'randomGrayscale':
        if (rng.random() < op.p) prog.push(OP.grayscale);
        break;
      case 'gaussianBlur':
        if (rng.random() < op.p) prog.push(OP.blur, rng.uniform(op.sigma[0], op.sigma[1]));
        break;
      case 'horizontalFlip':
        if (rng.random() < op.p) prog.push(OP.flip);
        break;
    }
  }
  return { program: Float64Array.from(prog), width, height };
}

/** [mean..., std...] as `imageApply` takes them. */
export function meanStd(spec: TransformSpec): Float64Array {
  return Float64Array.from([...spec.mean, ...spec.std]);
}
