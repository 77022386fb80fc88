// The one table of dtypes: each name with its element size and whether it is floating point.
// Loads nothing, so the addon-free layers (io/core, checkpoint records) use it too.

const TABLE = {
  float32: { size: 4, floating: true },
  float64: { size: 8, floating: true },
  float16: { size: 2, floating: true },
  bfloat16: { size: 2, floating: true },
  int64: { size: 8, floating: false },
  int32: { size: 4, floating: false },
  int16: { size: 2, floating: false },
  int8: { size: 1, floating: false },
  uint8: { size: 1, floating: false },
  bool: { size: 1, floating: false },
} as const satisfies Record<string, { size: number; floating: boolean }>;

export type DType = keyof typeof TABLE;

export const DTYPES: readonly DType[] = Object.keys(TABLE) as DType[];

/** Bytes per element of each dtype. */
export const ELEMENT_SIZE: Readonly<Record<DType, number>> = Object.fromEntries(DTYPES.map((d) => [d, TABLE[d].size])) as Record<DType, number>;

export function isDType(x: unknown): x is DType {
  return typeof x === 'string' && Object.hasOwn(TABLE, x);
}

/** Bytes per element of `dtype`. */
export function elementSize(dtype: DType): number {
  return TABLE[dtype].size;
}

/** Whether `dtype` is a floating-point type (torch.is_floating_point). */
export function isFloatingDType(dtype: DType): boolean {
  return TABLE[dtype].floating;
}
