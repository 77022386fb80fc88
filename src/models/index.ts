// models: torchvision-compatible architectures, by torchvision's names.
import type { ResNet, ResNetOptions } from './resnet.js';
import * as resnet from './resnet.js';

export * from './resnet.js';

export const architectures: Record<string, (o?: ResNetOptions) => ResNet> = {
  resnet18: resnet.resnet18,
  resnet34: resnet.resnet34,
  resnet50: resnet.resnet50,
  resnet101: resnet.resnet101,
  resnet152: resnet.resnet152,
  resnext50_32x4d: resnet.resnext50_32x4d,
  resnext101_32x8d: resnet.resnext101_32x8d,
  wide_resnet50_2: resnet.wide_resnet50_2,
};

/** Builds an architecture by its torchvision name; an unknown name lists the known ones. */
export function create(name: string, o: ResNetOptions = {}): ResNet {
  const f = architectures[name];
  if (!f) throw new Error(`unknown model '${name}'; known: ${Object.keys(architectures).join(', ')}`);
  return f(o);
}
