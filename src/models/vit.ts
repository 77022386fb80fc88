// torchvision's Vision Transformer (ViT): the same module tree, so state-dict keys equal
// torchvision's (`encoder.layers.encoder_layer_0.self_attention.in_proj_weight`), torchvision's
// initialisation, and its position-embedding interpolation; plus small variants for CPUs and MAE's
// fixed 2-D sin-cos position embedding as an option.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { Module, BatchNorm1d, Conv2d, Dropout, GELU, LayerNorm, Linear, MultiheadAttention, Sequential, chain } from '../nn/index.js';
import type { StateDict } from '../nn/index.js';
import * as init from '../nn/init.js';

/** torchvision's MLPBlock: Linear, GELU, Dropout, Linear, Dropout (keys `mlp.0`, `mlp.3`). */
export class MLPBlock extends Sequential {
  constructor(inDim: number, mlpDim: number, dropout: number) {
    super(new Linear(inDim, mlpDim), new GELU(), new Dropout(dropout), new Linear(mlpDim, inDim), new Dropout(dropout));
    for (const m of this.modules()) {
      if (m instanceof Linear) {
        init.xavierUniform_(m.weight);
        if (m.bias) init.normal_(m.bias, 0, 1e-6);
      }
    }
  }
}

/** Pre-norm transformer block: x + dropout(attention(ln_1(x))), then + mlp(ln_2(.)). */
export class EncoderBlock extends Module {
  constructor(numHeads: number, hiddenDim: number, mlpDim: number, dropout: number, attentionDropout: number, eps: number) {
    super();
    this.registerModule('ln_1', new LayerNorm(hiddenDim, { eps }));
    this.registerModule('self_attention', new MultiheadAttention(hiddenDim, numHeads, { dropout: attentionDropout }));
    this.registerModule('dropout', new Dropout(dropout));
    this.registerModule('ln_2', new LayerNorm(hiddenDim, { eps }));
    this.registerModule('mlp', new MLPBlock(hiddenDim, mlpDim, dropout));
  }
  forward(input: Tensor): Tensor {
    if (input.ndim !== 3) throw new Error(`EncoderBlock: expected (batch_size, seq_length, hidden_dim), got [${input.shape.join(', ')}]`);
    const m = (n: string): Module => this.getModule(n)!;
    return torch.tidy(() => {
      const x = m('dropout').forward(m('self_attention').forward(m('ln_1').forward(input))).add(input);
      return x.add(m('mlp').forward(m('ln_2').forward(x)));
    });
  }
}

/** Children under the given names, applied in order (PyTorch's Sequential built from an OrderedDict). */
export class NamedSequential extends Module {
  constructor(entries: [string, Module][]) {
    super();
    for (const [n, m] of entries) this.registerModule(n, m);
  }
  forward(x: Tensor): Tensor {
    return chain(x, this.children());
  }
}

export class Encoder extends Module {
  constructor(seqLength: number, numLayers: number, numHeads: number, hiddenDim: number, mlpDim: number, dropout: number, attentionDropout: number, eps: number) {
    super();
    this.registerParameter('pos_embedding', torch.empty([1, seqLength, hiddenDim]).normal_(0, 0.02));
    this.registerModule('dropout', new Dropout(dropout));
    const layers: [string, Module][] = [];
    for (let i = 0; i < numLayers; i++) layers.push([`encoder_layer_${i}`, new EncoderBlock(numHeads, hiddenDim, mlpDim, dropout, attentionDropout, eps)]);
    this.registerModule('layers', new NamedSequential(layers));
    this.registerModule('ln', new LayerNorm(hiddenDim, { eps }));
  }
  forward(input: Tensor): Tensor {
    return torch.tidy(() => {
      const x = this.getModule('dropout')!.forward(input.add(this.getParameter('pos_embedding')!));
      return this.getModule('ln')!.forward(this.getModule('layers')!.forward(x));
    });
  }
}

export interface ViTOptions {
  imageSize?: number;
  numClasses?: number;
  dropout?: number;
  attentionDropout?: number;
  /** 'learned' (torchvision's, normal std 0.02) or 'sincos' (MAE's fixed 2-D sin-cos, not trained) */
  posEmbedding?: 'learned' | 'sincos';
  /** the features given to the head: the class token (torchvision's) or the mean of the patch tokens */
  pool?: 'token' | 'mean';
}

export interface ViTConfig {
  patchSize: number;
  numLayers: number;
  numHeads: number;
  hiddenDim: number;
  mlpDim: number;
}

/**
 * MAE's 2-D sin-cos position embedding ([1 + grid², dim] with a zero row for the class token when
 * `clsToken`): the first half of the dimensions encodes the column, the second half the row.
 */
export function sincosPosEmbed2d(dim: number, gridSize: number, clsToken = true): Float32Array {
  if (dim % 4 !== 0) throw new Error(`sin-cos position embedding: dim must be divisible by 4, got ${dim}`);
  const extra = clsToken ? 1 : 0;
  const out = new Float32Array((gridSize * gridSize + extra) * dim);
  const quarter = dim / 4;
  const omega = new Float32Array(quarter);
  for (let d = 0; d < quarter; d++) omega[d] = 1 / 10000 ** Math.fround(d / (dim / 4));
  for (let i = 0; i < gridSize; i++) {
    for (let j = 0; j < gridSize; j++) {
      const row = (extra + i * gridSize + j) * dim;
      for (const [half, pos] of [[0, j], [1, i]] as const) {
        for (let d = 0; d < quarter; d++) {
          const a = Math.fround(pos * omega[d]!);
          out[row + half * 2 * quarter + d] = Math.sin(a);
          out[row + half * 2 * quarter + quarter + d] = Math.cos(a);
        }
      }
    }
  }
  return out;
}

export class VisionTransformer extends Module {
  readonly imageSize: number;
  readonly patchSize: number;
  readonly hiddenDim: number;
  readonly seqLength: number;
  readonly pool: 'token' | 'mean';
  readonly headName = 'heads.head';

  constructor(readonly config: ViTConfig, o: ViTOptions = {}) {
    super();
    const { patchSize, numLayers, numHeads, hiddenDim, mlpDim } = config;
    this.imageSize = o.imageSize ?? 224;
    this.patchSize = patchSize;
    this.hiddenDim = hiddenDim;
    this.pool = o.pool ?? 'token';
    if (!Number.isInteger(this.imageSize) || this.imageSize % patchSize !== 0)
      throw new Error(`VisionTransformer: image size ${this.imageSize} is not a multiple of the patch size ${patchSize}`);
    const grid = this.imageSize / patchSize;
    this.seqLength = grid * grid + 1;
    const convProj = this.registerModule('conv_proj', new Conv2d(3, hiddenDim, patchSize, { stride: patchSize }));
    this.registerParameter('class_token', torch.zeros([1, 1, hiddenDim]));
    const encoder = this.registerModule('encoder', new Encoder(this.seqLength, numLayers, numHeads, hiddenDim, mlpDim, o.dropout ?? 0, o.attentionDropout ?? 0, 1e-6));
    this.registerModule('heads', new NamedSequential([['head', new Linear(hiddenDim, o.numClasses ?? 1000)]]));

    init.truncNormal_(convProj.weight, { std: Math.sqrt(1 / (3 * patchSize * patchSize)) });
    if (convProj.bias) init.zeros_(convProj.bias);
    init.zeros_(this.head.weight);
    if (this.head.bias) init.zeros_(this.head.bias);
    if (o.posEmbedding === 'sincos') {
      const pe = encoder.getParameter('pos_embedding')!;
      torch.noGrad(() => torch.tidy(() => pe.copy_(torch.fromTypedArray(sincosPosEmbed2d(hiddenDim, grid), pe.shape))));
      pe.requiresGrad_(false);
    }
  }

  get head(): Linear {
    return this.getModule('heads')!.getModule('head') as Linear;
  }
  set head(m: Linear) {
    this.getModule('heads')!.registerModule('head', m);
  }

  /** The BatchNorm before the head (`heads.bn`, MAE's linear probe), or undefined. */
  get headNorm(): BatchNorm1d | undefined {
    return this.getModule('heads')!.getModule('bn') as BatchNorm1d | undefined;
  }

  /**
   * Puts `bn` before the head: `heads` becomes (bn, head), keys `heads.bn.*` and `heads.head.*`, as
   * MAE's main_linprobe.py makes its head Sequential(BatchNorm1d(dim, affine=False, eps=1e-6), head).
   * A norm already there is replaced and freed.
   */
  setHeadNorm(bn: BatchNorm1d): void {
    if (bn.numFeatures !== this.hiddenDim) throw new Error(`VisionTransformer: a head norm needs ${this.hiddenDim} features, got ${bn.numFeatures}`);
    const old = this.headNorm;
    this.registerModule('heads', new NamedSequential([['bn', bn], ['head', this.head]]));
    old?.dispose();
  }

  /** Patches: (n, 3, h, w) -> (n, (h/p)(w/p), hidden_dim). */
  processInput(x: Tensor): Tensor {
    const [n, , h, w] = x.shape as [number, number, number, number];
    if (x.ndim !== 4 || h !== this.imageSize || w !== this.imageSize)
      throw new Error(`VisionTransformer: expected images [N, 3, ${this.imageSize}, ${this.imageSize}], got [${x.shape.join(', ')}]`);
    return torch.tidy(() => this.getModule('conv_proj')!.forward(x).reshape([n, this.hiddenDim, -1]).permute([0, 2, 1]));
  }

  /** The encoder's output of every token, [N, 1 + patches, hidden_dim] (class token first). */
  tokens(x: Tensor): Tensor {
    return torch.tidy(() => {
      const p = this.processInput(x);
      const cls = this.getParameter('class_token')!.expand([p.shape[0]!, -1, -1]);
      return this.getModule('encoder')!.forward(torch.cat([cls, p], 1));
    });
  }

  /** The input of the head: the class token's output, or the mean of the patch tokens' (`pool`). */
  features(x: Tensor): Tensor {
    return torch.tidy(() => {
      const t = this.tokens(x);
      return this.pool === 'token' ? t.select(1, 0) : t.narrow(1, 1, t.shape[1]! - 1).mean(1);
    });
  }

  forward(x: Tensor): Tensor {
    return torch.tidy(() => this.getModule('heads')!.forward(this.features(x)));
  }
}

/**
 * torchvision's `interpolate_embeddings`: a state dict whose `encoder.pos_embedding` is resized
 * (bicubic, align_corners=True, the class token's row kept) for `imageSize` / `patchSize`; heads
 * dropped with `resetHeads`. Returns a new object; tensors not changed are the same objects.
 */
export function interpolateEmbeddings(imageSize: number, patchSize: number, sd: StateDict,
  o: { mode?: 'bicubic' | 'bilinear' | 'nearest'; resetHeads?: boolean; key?: string } = {}): StateDict {
  const key = o.key ?? 'encoder.pos_embedding';
  const pe = sd[key];
  if (!pe) throw new Error(`interpolateEmbeddings: the state dict has no ${key}`);
  const [n, seq, hidden] = pe.shape as [number, number, number];
  if (n !== 1 || pe.ndim !== 3) throw new Error(`interpolateEmbeddings: unexpected position embedding shape [${pe.shape.join(', ')}]`);
  const newGrid = Math.floor(imageSize / patchSize);
  if (newGrid * newGrid + 1 === seq) return { ...sd };
  const grid = Math.round(Math.sqrt(seq - 1));
  if (grid * grid !== seq - 1) throw new Error(`interpolateEmbeddings: seq_length ${seq - 1} (without the class token) is not a perfect square`);
  const out: StateDict = {};
  const resized = torch.noGrad(() => torch.tidy(() => {
    const img = pe.narrow(1, 1, seq - 1).permute([0, 2, 1]).reshape([1, hidden, grid, grid]);
    const r = torch.interpolate(img, { size: newGrid, mode: o.mode ?? 'bicubic', alignCorners: true });
    return torch.cat([pe.narrow(1, 0, 1), r.reshape([1, hidden, newGrid * newGrid]).permute([0, 2, 1])], 1);
  }));
  for (const [k, v] of Object.entries(sd)) {
    if (o.resetHeads && k.startsWith('heads')) continue;
    out[k] = k === key ? resized : v;
  }
  return out;
}

/** The shape of every named ViT (filled by `make`), to match a checkpoint's shape without building a model. */
export const vitConfigs: Record<string, ViTConfig> = {};
const make = (c: ViTConfig) => (o: ViTOptions = {}): VisionTransformer => new VisionTransformer(c, o);
const named = (name: string, c: ViTConfig): ((o?: ViTOptions) => VisionTransformer) => {
  vitConfigs[name] = c;
  return make(c);
};

export const vit_b_16 = named('vit_b_16', { patchSize: 16, numLayers: 12, numHeads: 12, hiddenDim: 768, mlpDim: 3072 });
export const vit_b_32 = named('vit_b_32', { patchSize: 32, numLayers: 12, numHeads: 12, hiddenDim: 768, mlpDim: 3072 });
export const vit_l_16 = named('vit_l_16', { patchSize: 16, numLayers: 24, numHeads: 16, hiddenDim: 1024, mlpDim: 4096 });
export const vit_l_32 = named('vit_l_32', { patchSize: 32, numLayers: 24, numHeads: 16, hiddenDim: 1024, mlpDim: 4096 });
export const vit_h_14 = named('vit_h_14', { patchSize: 14, numLayers: 32, numHeads: 16, hiddenDim: 1280, mlpDim: 5120 });
/** ViT-S (DeiT-S / MAE's vit_small): 384 wide, 12 blocks, 6 heads. */
export const vit_s_16 = named('vit_s_16', { patchSize: 16, numLayers: 12, numHeads: 6, hiddenDim: 384, mlpDim: 1536 });
export const vit_s_8 = named('vit_s_8', { patchSize: 8, numLayers: 12, numHeads: 6, hiddenDim: 384, mlpDim: 1536 });
/** ViT-Ti (DeiT-Ti): 192 wide, 12 blocks, 3 heads. */
export const vit_tiny_16 = named('vit_tiny_16', { patchSize: 16, numLayers: 12, numHeads: 3, hiddenDim: 192, mlpDim: 768 });
export const vit_tiny_8 = named('vit_tiny_8', { patchSize: 8, numLayers: 12, numHeads: 3, hiddenDim: 192, mlpDim: 768 });
/** A 4-block, 64-wide ViT for tests and small CPUs (patch 8). */
export const vit_micro_8 = named('vit_micro_8', { patchSize: 8, numLayers: 4, numHeads: 4, hiddenDim: 64, mlpDim: 256 });

/** A custom ViT of the given shape (e.g. a few blocks of vit_b_16 for tests). */
export const vit = (c: ViTConfig, o: ViTOptions = {}): VisionTransformer => new VisionTransformer(c, o);
