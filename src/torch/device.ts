// Device names (cpu, cuda, cuda:N): plain strings, checked without loading the native addon.
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

export function isDevice(x: unknown): x is Device {
  return typeof x === 'string' && (x === 'cpu' || x === 'cuda' || /^cuda:\d+$/.test(x));
}
