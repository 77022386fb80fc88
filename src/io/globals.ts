// The Python globals a checkpoint may name: the allow-list the unpickler enforces by default (as
// torch.load(weights_only=True) does) and the pickler checks before writing a global back.

import { STORAGE_CLASS } from './types.js';

const TORCH_DTYPES = [
  'float32', 'float', 'float64', 'double', 'float16', 'half', 'bfloat16', 'int8', 'int16', 'short', 'int32', 'int', 'int64', 'long',
  'uint8', 'bool', 'complex64', 'complex128',
];

const NUMPY = ['numpy.core.multiarray', 'numpy._core.multiarray'];

/** Qualified names (`module.name`) a checkpoint may use without an explicit opt-in. */
export const SAFE_GLOBALS: ReadonlySet<string> = new Set<string>([
  // containers and plain values
  'collections.OrderedDict', '_codecs.encode',
  'builtins.set', 'builtins.frozenset', 'builtins.bytearray', 'builtins.bytes', 'builtins.object',
  '__builtin__.set', '__builtin__.frozenset', '__builtin__.bytearray', '__builtin__.bytes', '__builtin__.object',
  'copyreg._reconstructor', 'copy_reg._reconstructor',
  // run arguments saved with a model
  'argparse.Namespace',
  // numpy scalars and arrays (acc1_list, running statistics)
  ...NUMPY.flatMap((m) => [`${m}.scalar`, `${m}._reconstruct`]), 'numpy.dtype', 'numpy.ndarray',
  // tensors, parameters, storages
  'torch._utils._rebuild_tensor', 'torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state', 'torch._tensor._rebuild_from_type', 'torch._tensor._rebuild_from_type_v2',
  'torch.Tensor', 'torch.nn.parameter.Parameter', 'torch.Size', 'torch.device',
  ...Object.values(STORAGE_CLASS).flatMap((c) => [`torch.${c}`, `torch.cuda.${c}`]), 'torch.UntypedStorage',
  ...TORCH_DTYPES.map((d) => `torch.${d}`),
]);

/** Whether `qualname` is on the default allow-list or on the caller's extra list. */
export function isSafeGlobal(qualname: string, extra?: Iterable<string>): boolean {
  if (SAFE_GLOBALS.has(qualname)) return true;
  if (extra) for (const q of extra) if (q === qualname) return true;
  return false;
}

/** What to do with a global that is not on the allow-list. */
export type UnknownGlobals = 'refuse' | 'placeholder';

export const UNSAFE_HINT = 'only tensors, storages, OrderedDict, numpy values and argparse.Namespace are allowed by default';
