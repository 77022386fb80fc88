// models: torchvision-compatible architectures, by torchvision's names, and the one interface the
// training scripts need of them (a classifier whose final Linear can be replaced).
import type { Tensor } from '../torch/index.js';
import { Module, Linear } from '../nn/index.js';
import * as resnet from './resnet.js';
import * as vit from './vit.js';

export * from './resnet.js';
export * from './vit.js';

/**
 * A classifier with a replaceable head: `features` gives the input of the final Linear, `head` is
 * that Linear (ResNet's `fc`), and `headName` its dotted name in the state dict (`fc`).
 */
export interface Classifier extends Module {
  readonly headName: string;
  head: Linear;
  features(x: Tensor): Tensor;
}

/** Options every architecture takes. */
export interface ModelOptions {
  numClasses?: number;
  /** input size the model is built for (ViTs: the position embedding's grid; ResNets take any size) */
  imageSize?: number;
}

export const architectures = {
  resnet18: resnet.resnet18,
  resnet34: resnet.resnet34,
  resnet50: resnet.resnet50,
  resnet101: resnet.resnet101,
  resnet152: resnet.resnet152,
  resnext50_32x4d: resnet.resnext50_32x4d,
  resnext101_32x8d: resnet.resnext101_32x8d,
  wide_resnet50_2: resnet.wide_resnet50_2,
  vit_b_16: vit.vit_b_16,
  vit_b_32: vit.vit_b_32,
  vit_l_16: vit.vit_l_16,
  vit_l_32: vit.vit_l_32,
  vit_h_14: vit.vit_h_14,
  vit_s_16: vit.vit_s_16,
  vit_s_8: vit.vit_s_8,
  vit_tiny_16: vit.vit_tiny_16,
  vit_tiny_8: vit.vit_tiny_8,
  vit_micro_8: vit.vit_micro_8,
} as const satisfies Record<string, (o?: ModelOptions) => Classifier>;

/** The torchvision names `create` knows. */
export type ModelName = keyof typeof architectures;

export function isModelName(name: string): name is ModelName {
  return Object.hasOwn(architectures, name);
}

/** `name` as a ModelName (e.g. from a command line); an unknown name lists the known ones. */
export function modelName(name: string): ModelName {
  if (!isModelName(name)) throw new Error(`unknown model '${name}'; known: ${Object.keys(architectures).join(', ')}`);
  return name;
}

/** Builds an architecture by its torchvision name (checked at run time too, for untyped callers). */
export function create(name: ModelName, o: ModelOptions = {}): Classifier {
  return architectures[modelName(name)](o);
}

/** Replaces the model's head by a fresh Linear(in features, numClasses) (PyTorch's init), freeing the old one. */
export function replaceHead(model: Classifier, numClasses: number): Linear {
  const old = model.head;
  const head = new Linear(old.inFeatures, numClasses);
  model.head = head;
  old.dispose();
  return head;
}

export * from './mae.js';
