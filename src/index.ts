// The awty library: PyTorch's names over libtorch, plus the study's data, checkpoint and scaling code.
export * as torch from './torch/index.js';
export * as nn from './nn/index.js';
export * as optim from './optim/index.js';
export * as models from './models/index.js';
export * as io from './io/index.js';
export * as data from './data/index.js';
export * as scaling from './scaling/index.js';
export * as dist from './dist/index.js';
/** A loader batch as libtorch tensors (lives outside `data` so that the data layer loads without the addon). */
export { toTensors } from './data/tensors.js';
