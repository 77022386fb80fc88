// Number parsers for command-line flags: each names its flag in the error.
export function int(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n)) throw new Error(`${name} must be an integer, got ${v}`);
    return n;
  };
}
export function num(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new Error(`${name} must be a number, got ${v}`);
    return n;
  };
}
