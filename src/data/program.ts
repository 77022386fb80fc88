// A sample's transforms as a program of numbers: the planner (transforms.ts `planOps`) draws every
// random parameter and writes [code, ...args] per pixel kernel; an executor then runs the program.
// There are two executors with one signature: the TypeScript reference kernels (kernels.ts) and the
// compiled ones (native/src/image.cc, which exports the same table as `imageOps()`; a test compares
// them). The loader picks one per batch task (native-image.ts `executor()`).

/** The pixel kernels a program may call. */
export type Kernel = 'resize' | 'resizeBicubic' | 'crop' | 'brightness' | 'contrast' | 'saturation' | 'hue' | 'grayscale' | 'blur' | 'flip';

/** Each kernel's op code and number of arguments: the one table both executors implement. */
export const KERNELS = {
  /** top, left, boxHeight, boxWidth, outWidth, outHeight: PIL's bilinear resize of a crop */
  resize: { code: 1, arity: 6 },
  /** top, left, height, width */
  crop: { code: 2, arity: 4 },
  /** factor */
  brightness: { code: 3, arity: 1 },
  /** factor */
  contrast: { code: 4, arity: 1 },
  /** factor */
  saturation: { code: 5, arity: 1 },
  /** hue factor */
  hue: { code: 6, arity: 1 },
  grayscale: { code: 7, arity: 0 },
  /** sigma */
  blur: { code: 8, arity: 1 },
  flip: { code: 9, arity: 0 },
  /** as resize, with PIL's bicubic filter (Image.BICUBIC: a = -0.5, support 2, antialiased) */
  resizeBicubic: { code: 10, arity: 6 },
} as const satisfies Record<Kernel, { code: number; arity: number }>;

/** The kernel of each op code (index = code). */
export const KERNEL_BY_CODE: readonly (Kernel | undefined)[] = (() => {
  const out: (Kernel | undefined)[] = [];
  for (const [name, k] of Object.entries(KERNELS) as [Kernel, { code: number }][]) out[k.code] = name;
  return out;
})();

/** A program being written: `call(kernel, ...args)` checks the argument count against the table. */
export class ProgramWriter {
  private readonly words: number[] = [];
  call(kernel: Kernel, ...args: number[]): void {
    const k = KERNELS[kernel];
    if (args.length !== k.arity) throw new Error(`${kernel} takes ${k.arity} arguments, got ${args.length}`);
    this.words.push(k.code, ...args);
  }
  done(): Float64Array {
    return Float64Array.from(this.words);
  }
}

/** A sample's program and the size of its result. */
export interface Plan { program: Float64Array; width: number; height: number }

/** Runs programs: the TypeScript reference kernels or the compiled ones, the same bytes. */
export interface Executor {
  readonly name: 'typescript' | 'compiled';
  /**
   * Runs `program` on the HWC RGB image `src` (modified: it is scratch space) and writes the result
   * at `out[offset...]`: float32 CHW normalised with `meanStd` ([m0, m1, m2, s0, s1, s2]), or uint8
   * HWC (meanStd null). Returns the result's [width, height].
   */
  run(src: Uint8Array, width: number, height: number, program: Float64Array, out: Float32Array | Uint8Array, offset: number,
    meanStd: Float64Array | null): [number, number];
}

/** [mean..., std...] as executors take them. */
export function meanStd(spec: { mean: readonly number[]; std: readonly number[] }): Float64Array {
  return Float64Array.from([...spec.mean, ...spec.std]);
}
