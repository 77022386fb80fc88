// Names of episode folders and frames, as the original reader formats them ('{:04d}').

export function episodeName(i: number): string {
  return `class_${String(i).padStart(4, '0')}`;
}

export function frameName(i: number): string {
  return `img_${String(i).padStart(4, '0')}.jpeg`;
}

/** Python's string order (by code point); JS's default sort (UTF-16 units) differs for astral characters. */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
