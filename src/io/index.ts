// The io layer: PyTorch checkpoint formats (torch.save zip + pickle, legacy torch.save, safetensors)
// read and written in TypeScript, atomic saves.

export { CheckpointError, PickleError } from './errors.js';
export {
  DTYPES, ELEMENT_SIZE, contiguousStride, isContiguous, isRawStorage, isRawTensor, numelOf, rawTensorBytes, rawTensorFromBytes, storageExtent,
  type DType, type RawStorage, type RawTensor,
} from './types.js';
export { PY_CLASS, PyGlobal, PyTuple, isOrdered, isTuple, markTuple, isPyObject, markOrdered, pickle, unpickle, type NumpyArray, type PyObject } from './pickle.js';
export { openTorchCheckpoint, TorchCheckpointReader, type CheckpointFormat, type CheckpointReader } from './torch-read.js';
export { pickleTorch, saveTorchRaw, type TorchSaveOptions } from './torch-write.js';
export { openSafetensors, saveSafetensorsRaw, SafetensorsReader, type SafetensorsSaveOptions } from './safetensors.js';
export { loadRaw, openCheckpoint } from './raw.js';
export { tempPathFor, writeFileAtomic } from './atomic.js';
