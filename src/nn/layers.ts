// The layers ResNet/ResNeXt and the training scripts use, with PyTorch's parameter names and init.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { Module } from './module.js';
import * as init from './init.js';

type Pair = number | [number, number];
const pair = (x: Pair): [number, number] => (typeof x === 'number' ? [x, x] : x);

/**
 * PyTorch's default initialisation of Conv2d and Linear: weight kaiming-uniform with a = √5, bias
 * uniform in ±1/√fan_in (or no bias).
 */
function registerWeightAndBias(m: Module, weightShape: number[], bias: boolean): void {
  const w = m.registerParameter('weight', torch.empty(weightShape))!;
  init.kaimingUniform_(w, { a: Math.sqrt(5) });
  if (!bias) {
    m.registerParameter('bias', null);
    return;
  }
  const b = m.registerParameter('bias', torch.empty([weightShape[0]!]))!;
  const fanIn = init.calculateFanInAndFanOut(w)[0];
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  init.uniform_(b, -bound, bound);
}

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
}

export class Conv2d extends Module {
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly dilation: [number, number];
  readonly groups: number;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Pair,
    o: Conv2dOptions = {},
  ) {
    super();
    this.stride = pair(o.stride ?? 1);
    this.padding = pair(o.padding ?? 0);
    this.dilation = pair(o.dilation ?? 1);
    this.groups = o.groups ?? 1;
    if (inChannels % this.groups || outChannels % this.groups)
      throw new Error(`Conv2d: in (${inChannels}) and out (${outChannels}) channels must be divisible by groups (${this.groups})`);
    const [kh, kw] = pair(kernelSize);
    registerWeightAndBias(this, [outChannels, inChannels / this.groups, kh, kw], o.bias ?? true);
  }
  get weight(): Tensor {
    return this.getParameter('weight')!;
  }
  get bias(): Tensor | null {
    return this.getParameter('bias') ?? null;
  }
  forward(x: Tensor): Tensor {
    return torch.conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups });
  }
}

export interface BatchNormOptions {
  eps?: number;
  /** null: cumulative moving average, as PyTorch's momentum=None. */
  momentum?: number | null;
  affine?: boolean;
  trackRunningStats?: boolean;
}

export class BatchNorm2d extends Module {
  readonly eps: number;
  readonly momentum: number | null;
  readonly trackRunningStats: boolean;

  constructor(
    readonly numFeatures: number,
    o: BatchNormOptions = {},
  ) {
    super();
    this.eps = o.eps ?? 1e-5;
    this.momentum = o.momentum === undefined ? 0.1 : o.momentum;
    this.trackRunningStats = o.trackRunningStats ?? true;
    if (o.affine ?? true) {
      this.registerParameter('weight', torch.ones([numFeatures]));
      this.registerParameter('bias', torch.zeros([numFeatures]));
    }
    if (this.trackRunningStats) {
      this.registerBuffer('running_mean', torch.zeros([numFeatures]));
      this.registerBuffer('running_var', torch.ones([numFeatures]));
      this.registerBuffer('num_batches_tracked', torch.zeros([], { dtype: 'int64' }));
    }
  }
  forward(x: Tensor): Tensor {
    if (x.ndim !== 4) throw new Error(`BatchNorm2d: expected 4-d input (N, C, H, W), got shape [${x.shape.join(', ')}]`);
    let factor = this.momentum ?? 0;
    if (this.training && this.trackRunningStats) {
      const nbt = this.getBuffer('num_batches_tracked')!;
      torch.noGrad(() => nbt.add_(1));
      if (this.momentum === null) factor = 1 / nbt.item();
    }
    const useBatch = this.training || !this.trackRunningStats;
    const track = this.training ? this.trackRunningStats : true;
    return torch.batchNorm(
      x,
      track ? this.getBuffer('running_mean') : null,
      track ? this.getBuffer('running_var') : null,
      this.getParameter('weight') ?? null,
      this.getParameter('bias') ?? null,
      { training: useBatch, momentum: factor, eps: this.eps },
    );
  }
}

export class Linear extends Module {
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: { bias?: boolean } = {},
  ) {
    super();
    registerWeightAndBias(this, [outFeatures, inFeatures], options.bias ?? true);
  }
  get weight(): Tensor {
    return this.getParameter('weight')!;
  }
  get bias(): Tensor | null {
    return this.getParameter('bias') ?? null;
  }
  forward(x: Tensor): Tensor {
    return torch.linear(x, this.weight, this.bias);
  }
}

export class ReLU extends Module {
  constructor(readonly inplace = false) {
    super();
  }
  forward(x: Tensor): Tensor {
    return torch.relu(x, this.inplace);
  }
}

export class MaxPool2d extends Module {
  constructor(
    readonly kernelSize: Pair,
    readonly options: torch.MaxPool2dOptions = {},
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return torch.maxPool2d(x, this.kernelSize, this.options);
  }
}

export class AdaptiveAvgPool2d extends Module {
  constructor(readonly outputSize: Pair) {
    super();
  }
  forward(x: Tensor): Tensor {
    return torch.adaptiveAvgPool2d(x, this.outputSize);
  }
}

export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
    if (p < 0 || p > 1) throw new RangeError(`Dropout: probability must be in [0, 1], got ${p}`);
  }
  forward(x: Tensor): Tensor {
    return torch.dropout(x, this.p, this.training);
  }
}

export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

export class Flatten extends Module {
  constructor(
    readonly startDim = 1,
    readonly endDim = -1,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return x.flatten(this.startDim, this.endDim);
  }
}

/** Children named '0', '1', ... applied in order. */
export class Sequential extends Module {
  constructor(...modules: Module[]) {
    super();
    modules.forEach((m, i) => this.registerModule(String(i), m));
  }
  get length(): number {
    return this.children().length;
  }
  get(i: number): Module {
    const m = this.getModule(String(i));
    if (!m) throw new RangeError(`Sequential: no module at index ${i}`);
    return m;
  }
  forward(x: Tensor): Tensor {
    return chain(x, this.children());
  }
}

/**
 * Applies modules in order, freeing each intermediate result as soon as the next one exists (as
 * Python's reference counting does), so peak memory is that of the live activations only. Autograd
 * keeps what it saved for backward; an in-place module's result (the same tensor) is never freed.
 */
export function chain(x: Tensor, modules: Iterable<Module>): Tensor {
  let y = x;
  for (const m of modules) {
    const next = m.forward(y);
    if (y !== x && y !== next) y.dispose();
    y = next;
  }
  return y;
}

export interface CrossEntropyLossOptions {
  reduction?: torch.Reduction;
  labelSmoothing?: number;
  ignoreIndex?: number;
}
export class CrossEntropyLoss {
  constructor(readonly options: CrossEntropyLossOptions = {}) {}
  forward(input: Tensor, target: Tensor): Tensor {
    return torch.crossEntropy(input, target, this.options);
  }
}
