// The awty library: PyTorch's names over libtorch, plus the study's data, checkpoint and scaling code.
export * as torch from './torch/index.js';
export * as scaling from './scaling/index.js';
