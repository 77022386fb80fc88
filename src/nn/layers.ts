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

/** PyTorch's _BatchNorm: the parameters, buffers and forward BatchNorm1d and BatchNorm2d share. */
abstract class BatchNormBase extends Module {
  readonly eps: number;
  readonly momentum: number | null;
  readonly affine: boolean;
  readonly trackRunningStats: boolean;

  constructor(
    readonly numFeatures: number,
    o: BatchNormOptions = {},
  ) {
    super();
    this.eps = o.eps ?? 1e-5;
    this.momentum = o.momentum === undefined ? 0.1 : o.momentum;
    this.affine = o.affine ?? true;
    this.trackRunningStats = o.trackRunningStats ?? true;
    if (this.affine) {
      this.registerParameter('weight', torch.ones([numFeatures]));
      this.registerParameter('bias', torch.zeros([numFeatures]));
    }
    if (this.trackRunningStats) {
      this.registerBuffer('running_mean', torch.zeros([numFeatures]));
      this.registerBuffer('running_var', torch.ones([numFeatures]));
      this.registerBuffer('num_batches_tracked', torch.zeros([], { dtype: 'int64' }));
    }
  }
  /** Throws unless `x` has the layer's input shape. */
  protected abstract checkInput(x: Tensor): void;
  /** The error for a training batch with one value per channel. */
  protected abstract oneValueMessage(x: Tensor): string;
  forward(x: Tensor): Tensor {
    this.checkInput(x);
    // PyTorch's F.batch_norm check: one value per channel has no variance (the running variance would become NaN)
    if (this.training && x.numel() / x.shape[1]! === 1) throw new Error(this.oneValueMessage(x));
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

/** BatchNorm over (N, C) or (N, C, L) inputs (MAE's linear probe: BatchNorm1d(dim, affine=False, eps=1e-6) before the head). */
export class BatchNorm1d extends BatchNormBase {
  protected checkInput(x: Tensor): void {
    if (x.ndim !== 2 && x.ndim !== 3) throw new Error(`BatchNorm1d: expected 2D or 3D input (N, C) or (N, C, L), got shape [${x.shape.join(', ')}]`);
    if (x.shape[1] !== this.numFeatures) throw new Error(`BatchNorm1d: expected ${this.numFeatures} channels, got shape [${x.shape.join(', ')}]`);
  }
  protected oneValueMessage(x: Tensor): string {
    return `BatchNorm1d: expected more than 1 value per channel when training, got input size [${x.shape.join(', ')}] ` +
      '(a batch of one sample; drop the last incomplete batch or use another batch size)';
  }
}

export class BatchNorm2d extends BatchNormBase {
  protected checkInput(x: Tensor): void {
    if (x.ndim !== 4) throw new Error(`BatchNorm2d: expected 4-d input (N, C, H, W), got shape [${x.shape.join(', ')}]`);
  }
  protected oneValueMessage(x: Tensor): string {
    return `BatchNorm2d: expected more than 1 value per channel when training, got input size [${x.shape.join(', ')}] ` +
      '(a batch of one image at 1x1 spatial size; drop the last incomplete batch or use another batch size)';
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

/** Returns its input as a new reference (which the caller may dispose like any module's result). */
export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x.alias();
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
 * keeps what it saved for backward. Every module's result is a new reference (in-place and identity
 * modules included), so each one is disposed without identity checks; `x` stays the caller's, and
 * the result is always a new reference (`x.alias()` for no modules).
 */
export function chain(x: Tensor, modules: Iterable<Module>): Tensor {
  let y: Tensor | undefined;
  for (const m of modules) {
    const next = m.forward(y ?? x);
    y?.dispose();
    y = next;
  }
  return y ?? x.alias();
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

export class LayerNorm extends Module {
  readonly normalizedShape: number[];
  constructor(
    normalizedShape: number | number[],
    readonly options: { eps?: number; elementwiseAffine?: boolean } = {},
  ) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    if (options.elementwiseAffine ?? true) {
      this.registerParameter('weight', torch.ones(this.normalizedShape));
      this.registerParameter('bias', torch.zeros(this.normalizedShape));
    }
  }
  get eps(): number {
    return this.options.eps ?? 1e-5;
  }
  forward(x: Tensor): Tensor {
    return torch.layerNorm(x, this.normalizedShape, this.getParameter('weight') ?? null, this.getParameter('bias') ?? null, this.eps);
  }
}

/** GELU with the exact erf form (PyTorch's default approximate='none'). */
export class GELU extends Module {
  forward(x: Tensor): Tensor {
    return torch.gelu(x);
  }
}

/**
 * Multi-head self-attention on batch-first input [N, L, E], as softmax(q k^T / √d) v per head.
 * `qkv` is [N, L, 3E] (the input projection's output: q, k and v stacked, each E = heads x d wide);
 * returns [N, L, E] before the output projection.
 */
export function selfAttention(qkv: Tensor, numHeads: number, dropoutP = 0, training = false): Tensor {
  return torch.tidy(() => {
    const [n, l, e3] = qkv.shape as [number, number, number];
    const e = e3 / 3;
    const d = e / numHeads;
    const [q, k, v] = qkv.reshape([n, l, 3, numHeads, d]).permute([2, 0, 3, 1, 4]).unbind(0) as [Tensor, Tensor, Tensor];
    let attn = q.mul(1 / Math.sqrt(d)).matmul(k.transpose(-2, -1)).softmax(-1);
    if (dropoutP > 0 && training) attn = torch.dropout(attn, dropoutP, true);
    return attn.matmul(v).transpose(1, 2).reshape([n, l, e]);
  });
}

/**
 * PyTorch's nn.MultiheadAttention for self-attention with batch_first=True (`forward(x)` is
 * `attn(x, x, x, need_weights=False)[0]`): parameters `in_proj_weight` [3E, E], `in_proj_bias` [3E]
 * and `out_proj` (a Linear), initialised as PyTorch does (xavier-uniform input projection, zero biases).
 */
export class MultiheadAttention extends Module {
  readonly headDim: number;
  constructor(
    readonly embedDim: number,
    readonly numHeads: number,
    readonly options: { dropout?: number; bias?: boolean } = {},
  ) {
    super();
    if (!(Number.isInteger(numHeads) && numHeads >= 1) || embedDim % numHeads !== 0)
      throw new Error(`MultiheadAttention: embed_dim (${embedDim}) must be divisible by num_heads (${numHeads})`);
    this.headDim = embedDim / numHeads;
    const bias = options.bias ?? true;
    init.xavierUniform_(this.registerParameter('in_proj_weight', torch.empty([3 * embedDim, embedDim]))!);
    this.registerParameter('in_proj_bias', bias ? torch.zeros([3 * embedDim]) : null);
    const outProj = this.registerModule('out_proj', new Linear(embedDim, embedDim, { bias }));
    if (outProj.bias) init.zeros_(outProj.bias);
  }
  get outProj(): Linear {
    return this.getModule('out_proj') as Linear;
  }
  forward(x: Tensor): Tensor {
    if (x.ndim !== 3 || x.shape[2] !== this.embedDim)
      throw new Error(`MultiheadAttention: expected input [batch, length, ${this.embedDim}], got [${x.shape.join(', ')}]`);
    return torch.tidy(() => {
      const qkv = torch.linear(x, this.getParameter('in_proj_weight')!, this.getParameter('in_proj_bias') ?? null);
      return this.outProj.forward(selfAttention(qkv, this.numHeads, this.options.dropout ?? 0, this.training));
    });
  }
}
