// The engine-independent part of io: formats, RawTensor records, atomic writes. Importing it does
// not load the native addon.

export { CheckpointError, PickleError } from './errors.js';
export {
  DTYPES, ELEMENT_SIZE, isDType, isFloatingDType, contiguousStride, isContiguous, isRawStorage, isRawTensor, numelOf, rawTensorBytes, rawTensorFromBytes, storageExtent,
  type DType, type RawStorage, type RawTensor,
} from './types.js';
export {
  PY_CLASS, PyGlobal, PyTuple, isOrdered, isPyObject, isTuple, markOrdered, markTuple, pickle, unpickle, halfToNumber,
  type NumpyArray, type PyObject, type PickleOptions, type UnpickleOptions,
} from './pickle.js';
export { openTorchCheckpoint, TorchCheckpointReader, type CheckpointFormat, type CheckpointReader, type ReadOptions } from './torch-read.js';
export { SAFE_GLOBALS, isSafeGlobal, type UnknownGlobals } from './globals.js';
export { pickleTorch, saveTorchRaw, type TorchSaveOptions } from './torch-write.js';
export { openSafetensors, saveSafetensorsRaw, SafetensorsReader, type SafetensorsSaveOptions } from './safetensors.js';
export { loadRaw, openCheckpoint } from './raw.js';
export { removeStaleTemps, syncDir, tempPathFor, writeDataAtomic, writeFileAtomic, writeTextAtomic, type AtomicWriteOptions } from './atomic.js';
export { OutputDirError, describeFsError, ensureWritableDir, isOutputError } from './outdir.js';
export { OWNED_MARKER, OwnershipError, ensureOwnedDir, freshOwnedDir, isOwnedDir, ownedMarker, removeOwnedDir, type OwnedMarker } from './owned.js';
