// torchvision's ResNet family (ResNet, ResNeXt, Wide ResNet): the same module tree, so state-dict
// keys equal torchvision's (`layer1.0.conv1.weight`), and torchvision's initialisation.
import type { Tensor } from '../torch/index.js';
import { Module, Conv2d, BatchNorm2d, ReLU, MaxPool2d, AdaptiveAvgPool2d, Linear, Sequential, chain } from '../nn/index.js';
import * as init from '../nn/init.js';

const conv3x3 = (inC: number, outC: number, stride = 1, groups = 1): Conv2d =>
  new Conv2d(inC, outC, 3, { stride, padding: 1, groups, bias: false });
const conv1x1 = (inC: number, outC: number, stride = 1): Conv2d => new Conv2d(inC, outC, 1, { stride, bias: false });

interface BlockConfig {
  stride: number;
  downsample: Sequential | null;
  groups: number;
  baseWidth: number;
}

/** A residual block: relu(path(x) + downsample(x) or x), with the path's modules named as torchvision's. */
abstract class ResidualBlock extends Module {
  protected abstract readonly pathNames: readonly string[];
  forward(x: Tensor): Tensor {
    const out = chain(x, this.pathNames.map((n) => this.getModule(n)!));
    addIdentity(out, x, this.getModule('downsample'));
    return out.relu_();
  }
}

export class BasicBlock extends ResidualBlock {
  static readonly expansion = 1;
  protected readonly pathNames = ['conv1', 'bn1', 'relu', 'conv2', 'bn2'];
  constructor(inplanes: number, planes: number, c: BlockConfig) {
    super();
    if (c.groups !== 1 || c.baseWidth !== 64) throw new Error('BasicBlock only supports groups=1 and widthPerGroup=64');
    this.registerModule('conv1', conv3x3(inplanes, planes, c.stride));
    this.registerModule('bn1', new BatchNorm2d(planes));
    this.registerModule('relu', new ReLU(true));
    this.registerModule('conv2', conv3x3(planes, planes));
    this.registerModule('bn2', new BatchNorm2d(planes));
    this.registerModule('downsample', c.downsample);
  }
}

export class Bottleneck extends ResidualBlock {
  static readonly expansion = 4;
  protected readonly pathNames = ['conv1', 'bn1', 'relu', 'conv2', 'bn2', 'relu', 'conv3', 'bn3'];
  constructor(inplanes: number, planes: number, c: BlockConfig) {
    super();
    const width = Math.floor(planes * (c.baseWidth / 64)) * c.groups;
    this.registerModule('conv1', conv1x1(inplanes, width));
    this.registerModule('bn1', new BatchNorm2d(width));
    this.registerModule('conv2', conv3x3(width, width, c.stride, c.groups));
    this.registerModule('bn2', new BatchNorm2d(width));
    this.registerModule('conv3', conv1x1(width, planes * Bottleneck.expansion));
    this.registerModule('bn3', new BatchNorm2d(planes * Bottleneck.expansion));
    this.registerModule('relu', new ReLU(true));
    this.registerModule('downsample', c.downsample);
  }
}

type Block = typeof BasicBlock | typeof Bottleneck;

/** out += downsample(x) (or x), in place, freeing the downsampled tensor right away. */
function addIdentity(out: Tensor, x: Tensor, downsample: Module | null | undefined): void {
  if (!downsample) {
    out.add_(x);
    return;
  }
  const identity = downsample.forward(x);
  out.add_(identity);
  identity.dispose();
}

export interface ResNetOptions {
  numClasses?: number;
  groups?: number;
  widthPerGroup?: number;
  zeroInitResidual?: boolean;
}

export class ResNet extends Module {
  readonly numClasses: number;

  constructor(block: Block, layers: [number, number, number, number], o: ResNetOptions = {}) {
    super();
    this.numClasses = o.numClasses ?? 1000;
    const groups = o.groups ?? 1;
    const baseWidth = o.widthPerGroup ?? 64;
    let inplanes = 64;
    const makeLayer = (planes: number, blocks: number, stride: number): Sequential => {
      let downsample: Sequential | null = null;
      if (stride !== 1 || inplanes !== planes * block.expansion)
        downsample = new Sequential(conv1x1(inplanes, planes * block.expansion, stride), new BatchNorm2d(planes * block.expansion));
      const list: Module[] = [new block(inplanes, planes, { stride, downsample, groups, baseWidth })];
      inplanes = planes * block.expansion;
      for (let i = 1; i < blocks; i++) list.push(new block(inplanes, planes, { stride: 1, downsample: null, groups, baseWidth }));
      return new Sequential(...list);
    };
    this.registerModule('conv1', new Conv2d(3, 64, 7, { stride: 2, padding: 3, bias: false }));
    this.registerModule('bn1', new BatchNorm2d(64));
    this.registerModule('relu', new ReLU(true));
    this.registerModule('maxpool', new MaxPool2d(3, { stride: 2, padding: 1 }));
    this.registerModule('layer1', makeLayer(64, layers[0], 1));
    this.registerModule('layer2', makeLayer(128, layers[1], 2));
    this.registerModule('layer3', makeLayer(256, layers[2], 2));
    this.registerModule('layer4', makeLayer(512, layers[3], 2));
    this.registerModule('avgpool', new AdaptiveAvgPool2d([1, 1]));
    this.registerModule('fc', new Linear(512 * block.expansion, this.numClasses));

    for (const m of this.modules()) {
      if (m instanceof Conv2d) init.kaimingNormal_(m.weight, { mode: 'fan_out', nonlinearity: 'relu' });
      else if (m instanceof BatchNorm2d) {
        init.constant_(m.getParameter('weight')!, 1);
        init.constant_(m.getParameter('bias')!, 0);
      }
    }
    if (o.zeroInitResidual) {
      for (const m of this.modules()) {
        if (m instanceof Bottleneck) init.constant_(m.getModule('bn3')!.getParameter('weight')!, 0);
        else if (m instanceof BasicBlock) init.constant_(m.getModule('bn2')!.getParameter('weight')!, 0);
      }
    }
  }

  /** The classifier head; assign a new Linear to replace it (`model.fc = new nn.Linear(2048, nOut)`). */
  get fc(): Linear {
    return this.getModule('fc') as Linear;
  }
  set fc(m: Linear) {
    this.registerModule('fc', m);
  }
  /** The head under the name every classifier has (the same module as `fc`). */
  readonly headName = 'fc';
  get head(): Linear {
    return this.fc;
  }
  set head(m: Linear) {
    this.fc = m;
  }

  /** The trunk: everything up to the pooled, flattened features (input of fc). */
  features(x: Tensor): Tensor {
    const trunk = ['conv1', 'bn1', 'relu', 'maxpool', 'layer1', 'layer2', 'layer3', 'layer4', 'avgpool'];
    const pooled = chain(x, trunk.map((n) => this.getModule(n)!));
    const flat = pooled.flatten(1);
    pooled.dispose();
    return flat;
  }
  forward(x: Tensor): Tensor {
    const f = this.features(x);
    const logits = this.fc.forward(f);
    f.dispose();
    return logits;
  }
}

export const resnet18 = (o: ResNetOptions = {}): ResNet => new ResNet(BasicBlock, [2, 2, 2, 2], o);
export const resnet34 = (o: ResNetOptions = {}): ResNet => new ResNet(BasicBlock, [3, 4, 6, 3], o);
export const resnet50 = (o: ResNetOptions = {}): ResNet => new ResNet(Bottleneck, [3, 4, 6, 3], o);
export const resnet101 = (o: ResNetOptions = {}): ResNet => new ResNet(Bottleneck, [3, 4, 23, 3], o);
export const resnet152 = (o: ResNetOptions = {}): ResNet => new ResNet(Bottleneck, [3, 8, 36, 3], o);
export const resnext50_32x4d = (o: ResNetOptions = {}): ResNet => new ResNet(Bottleneck, [3, 4, 6, 3], { ...o, groups: 32, widthPerGroup: 4 });
export const resnext101_32x8d = (o: ResNetOptions = {}): ResNet => new ResNet(Bottleneck, [3, 4, 23, 3], { ...o, groups: 32, widthPerGroup: 8 });
export const wide_resnet50_2 = (o: ResNetOptions = {}): ResNet => new ResNet(Bottleneck, [3, 4, 6, 3], { ...o, widthPerGroup: 128 });
