// nn: modules, layers, initialisers and the functional ops (nn.functional).
export { Module, StateDictError } from './module.js';
export type { StateDict, LoadResult } from './module.js';
export * from './layers.js';
export * as init from './init.js';
export * as functional from '../torch/functional.js';
