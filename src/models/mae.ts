// The masked autoencoder (He et al. 2022) as eminorhan/mae's models_mae.py builds it: timm's ViT
// blocks and names (`blocks.0.attn.qkv.weight`), fixed 2-D sin-cos position embeddings, a light
// decoder, and the loss on the masked patches. State-dict keys equal the MAE repository's, so its
// checkpoints load here and ours load there; `encoderToTorchvision` maps the encoder onto
// torchvision's ViT (models.vit_*) for fine-tuning, linear probes and kNN.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { Module, Conv2d, GELU, LayerNorm, Linear, chain, selfAttention } from '../nn/index.js';
import type { StateDict } from '../nn/index.js';
import * as init from '../nn/init.js';
import { interpolateEmbeddings, sincosPosEmbed2d, vitConfigs, VisionTransformer, type ViTConfig } from './vit.js';

/** timm's Attention: qkv (one Linear, q k v stacked as nn.MultiheadAttention's in_proj) and proj. */
class Attention extends Module {
  constructor(dim: number, readonly numHeads: number) {
    super();
    this.registerModule('qkv', new Linear(dim, 3 * dim));
    this.registerModule('proj', new Linear(dim, dim));
  }
  forward(x: Tensor): Tensor {
    return torch.tidy(() => this.getModule('proj')!.forward(selfAttention(this.getModule('qkv')!.forward(x), this.numHeads)));
  }
}

class Mlp extends Module {
  constructor(dim: number, hidden: number) {
    super();
    this.registerModule('fc1', new Linear(dim, hidden));
    this.registerModule('act', new GELU());
    this.registerModule('fc2', new Linear(hidden, dim));
  }
  forward(x: Tensor): Tensor {
    return torch.tidy(() => this.getModule('fc2')!.forward(this.getModule('act')!.forward(this.getModule('fc1')!.forward(x))));
  }
}

/** timm's Block: x + attn(norm1(x)), then + mlp(norm2(.)). */
export class Block extends Module {
  constructor(dim: number, numHeads: number, mlpRatio: number, eps: number) {
    super();
    this.registerModule('norm1', new LayerNorm(dim, { eps }));
    this.registerModule('attn', new Attention(dim, numHeads));
    this.registerModule('norm2', new LayerNorm(dim, { eps }));
    this.registerModule('mlp', new Mlp(dim, Math.floor(dim * mlpRatio)));
  }
  forward(input: Tensor): Tensor {
    const m = (n: string): Module => this.getModule(n)!;
    return torch.tidy(() => {
      const x = input.add(m('attn').forward(m('norm1').forward(input)));
      return x.add(m('mlp').forward(m('norm2').forward(x)));
    });
  }
}

class ModuleList extends Module {
  constructor(list: Module[]) {
    super();
    list.forEach((m, i) => this.registerModule(String(i), m));
  }
  forward(x: Tensor): Tensor {
    return chain(x, this.children());
  }
}

class PatchEmbed extends Module {
  constructor(readonly patchSize: number, embedDim: number) {
    super();
    this.registerModule('proj', new Conv2d(3, embedDim, patchSize, { stride: patchSize }));
  }
  forward(x: Tensor): Tensor {
    return torch.tidy(() => this.getModule('proj')!.forward(x).flatten(2).transpose(1, 2));
  }
}

export interface MaeConfig {
  imgSize: number;
  patchSize: number;
  embedDim: number;
  depth: number;
  numHeads: number;
  decoderEmbedDim: number;
  decoderDepth: number;
  decoderNumHeads: number;
  mlpRatio: number;
  normPixLoss: boolean;
}

export interface MaeOutput {
  loss: Tensor;
  /** [N, L, p*p*3] */
  pred: Tensor;
  /** [N, L]: 0 kept, 1 removed */
  mask: Tensor;
}

export class MaskedAutoencoderViT extends Module {
  readonly numPatches: number;
  readonly headName = '';

  constructor(readonly config: MaeConfig) {
    super();
    const c = config;
    if (c.imgSize % c.patchSize !== 0) throw new Error(`MAE: image size ${c.imgSize} is not a multiple of the patch size ${c.patchSize}`);
    const grid = c.imgSize / c.patchSize;
    this.numPatches = grid * grid;
    const eps = 1e-6;
    const patchEmbed = this.registerModule('patch_embed', new PatchEmbed(c.patchSize, c.embedDim));
    const cls = this.registerParameter('cls_token', torch.zeros([1, 1, c.embedDim]))!;
    const pos = this.registerParameter('pos_embed', torch.zeros([1, this.numPatches + 1, c.embedDim]))!;
    const blocks: Module[] = [];
    for (let i = 0; i < c.depth; i++) blocks.push(new Block(c.embedDim, c.numHeads, c.mlpRatio, eps));
    this.registerModule('blocks', new ModuleList(blocks));
    this.registerModule('norm', new LayerNorm(c.embedDim, { eps }));
    this.registerModule('decoder_embed', new Linear(c.embedDim, c.decoderEmbedDim));
    const maskToken = this.registerParameter('mask_token', torch.zeros([1, 1, c.decoderEmbedDim]))!;
    const dpos = this.registerParameter('decoder_pos_embed', torch.zeros([1, this.numPatches + 1, c.decoderEmbedDim]))!;
    const dblocks: Module[] = [];
    for (let i = 0; i < c.decoderDepth; i++) dblocks.push(new Block(c.decoderEmbedDim, c.decoderNumHeads, c.mlpRatio, eps));
    this.registerModule('decoder_blocks', new ModuleList(dblocks));
    this.registerModule('decoder_norm', new LayerNorm(c.decoderEmbedDim, { eps }));
    this.registerModule('decoder_pred', new Linear(c.decoderEmbedDim, c.patchSize * c.patchSize * 3));

    // initialize_weights(): fixed sin-cos embeddings, patch_embed like a Linear, tokens N(0, 0.02),
    // every Linear xavier-uniform with zero bias, LayerNorm (1, 0)
    torch.noGrad(() => torch.tidy(() => {
      pos.copy_(torch.fromTypedArray(sincosPosEmbed2d(c.embedDim, grid), pos.shape));
      dpos.copy_(torch.fromTypedArray(sincosPosEmbed2d(c.decoderEmbedDim, grid), dpos.shape));
    }));
    pos.requiresGrad_(false);
    dpos.requiresGrad_(false);
    const w = (patchEmbed.getModule('proj') as Conv2d).weight;
    const bound = Math.sqrt(6 / (3 * c.patchSize * c.patchSize + c.embedDim));
    init.uniform_(w, -bound, bound);
    init.normal_(cls, 0, 0.02);
    init.normal_(maskToken, 0, 0.02);
    for (const m of this.modules()) {
      if (m instanceof Linear) {
        init.xavierUniform_(m.weight);
        if (m.bias) init.zeros_(m.bias);
      }
    }
  }

  /** imgs [N, 3, H, W] -> [N, L, p*p*3] (patch rows, then columns, then channels last). */
  patchify(imgs: Tensor): Tensor {
    const p = this.config.patchSize;
    const [n, , h, w] = imgs.shape as [number, number, number, number];
    if (h !== w || h % p !== 0) throw new Error(`MAE patchify: expected square images with sides a multiple of ${p}, got [${imgs.shape.join(', ')}]`);
    const g = h / p;
    return torch.tidy(() => imgs.reshape([n, 3, g, p, g, p]).permute([0, 2, 4, 3, 5, 1]).reshape([n, g * g, p * p * 3]));
  }

  /** [N, L, p*p*3] -> [N, 3, H, W] */
  unpatchify(x: Tensor): Tensor {
    const p = this.config.patchSize;
    const [n, l] = x.shape as [number, number, number];
    const g = Math.round(Math.sqrt(l));
    if (g * g !== l) throw new Error(`MAE unpatchify: ${l} patches is not a square number`);
    return torch.tidy(() => x.reshape([n, g, g, p, p, 3]).permute([0, 5, 1, 3, 2, 4]).reshape([n, 3, g * p, g * p]));
  }

  /** Patches kept for each sample: int(L * (1 - maskRatio)), as the original computes it. */
  lenKeep(maskRatio: number): number {
    return Math.trunc(this.numPatches * (1 - maskRatio));
  }

  /**
   * Per-sample random masking by argsort of uniform noise ([N, L]; drawn here unless given):
   * the smallest len_keep noise values are kept. Returns the kept tokens, the mask and ids_restore.
   */
  randomMasking(x: Tensor, maskRatio: number, noise?: Tensor): { xMasked: Tensor; mask: Tensor; idsRestore: Tensor } {
    const [n, l, d] = x.shape as [number, number, number];
    const keep = this.lenKeep(maskRatio);
    return torch.tidy(() => {
      const nz = noise ?? torch.rand([n, l], { device: x.device });
      const idsShuffle = nz.sort(1).indices;
      const idsRestore = idsShuffle.sort(1).indices;
      const idsKeep = idsShuffle.narrow(1, 0, keep);
      const xMasked = x.gather(1, idsKeep.unsqueeze(-1).expand([n, keep, d]));
      const m = torch.cat([torch.zeros([n, keep], { device: x.device }), torch.ones([n, l - keep], { device: x.device })], 1);
      return { xMasked, mask: m.gather(1, idsRestore), idsRestore };
    });
  }

  forwardEncoder(imgs: Tensor, maskRatio: number, noise?: Tensor): { latent: Tensor; mask: Tensor; idsRestore: Tensor } {
    return torch.tidy(() => {
      const pos = this.getParameter('pos_embed')!;
      const x = this.getModule('patch_embed')!.forward(imgs).add(pos.narrow(1, 1, this.numPatches));
      const { xMasked, mask, idsRestore } = this.randomMasking(x, maskRatio, noise);
      const cls = this.getParameter('cls_token')!.add(pos.narrow(1, 0, 1)).expand([xMasked.shape[0]!, -1, -1]);
      const h = this.getModule('blocks')!.forward(torch.cat([cls, xMasked], 1));
      return { latent: this.getModule('norm')!.forward(h), mask, idsRestore };
    });
  }

  forwardDecoder(latent: Tensor, idsRestore: Tensor): Tensor {
    return torch.tidy(() => {
      const x = this.getModule('decoder_embed')!.forward(latent);
      const [n, t, d] = x.shape as [number, number, number];
      const l = idsRestore.shape[1]!;
      const maskTokens = this.getParameter('mask_token')!.expand([n, l + 1 - t, d]);
      const unshuffled = torch.cat([x.narrow(1, 1, t - 1), maskTokens], 1).gather(1, idsRestore.unsqueeze(-1).expand([n, l, d]));
      const full = torch.cat([x.narrow(1, 0, 1), unshuffled], 1).add(this.getParameter('decoder_pos_embed')!);
      const h = this.getModule('decoder_norm')!.forward(this.getModule('decoder_blocks')!.forward(full));
      return this.getModule('decoder_pred')!.forward(h).narrow(1, 1, l);
    });
  }

  /** Mean squared error per patch (of normalised pixels with normPixLoss), averaged over the removed patches. */
  forwardLoss(imgs: Tensor, pred: Tensor, mask: Tensor): Tensor {
    return torch.tidy(() => {
      let target = this.patchify(imgs);
      if (this.config.normPixLoss) {
        const mean = target.mean(-1, true);
        const v = target.var(-1, true, true); // unbiased, as torch.var
        target = target.sub(mean).div(v.add(1e-6).sqrt());
      }
      const perPatch = pred.sub(target).pow(2).mean(-1);
      return perPatch.mul(mask).sum().div(mask.sum());
    });
  }

  /** loss, pred and mask, as models_mae's forward(imgs, mask_ratio). */
  run(imgs: Tensor, maskRatio = 0.75, noise?: Tensor): MaeOutput {
    return torch.tidy(() => {
      const { latent, mask, idsRestore } = this.forwardEncoder(imgs, maskRatio, noise);
      const pred = this.forwardDecoder(latent, idsRestore);
      return { loss: this.forwardLoss(imgs, pred, mask), pred, mask };
    });
  }

  /** The loss at a 75% masking ratio (Module's one-tensor forward). */
  forward(imgs: Tensor): Tensor {
    return this.run(imgs).loss;
  }
}

export type MaeOptions = Partial<Omit<MaeConfig, 'patchSize' | 'embedDim' | 'depth' | 'numHeads'>>;

const mae = (enc: Pick<MaeConfig, 'patchSize' | 'embedDim' | 'depth' | 'numHeads'>) => (o: MaeOptions = {}): MaskedAutoencoderViT =>
  new MaskedAutoencoderViT({ imgSize: 224, decoderEmbedDim: 512, decoderDepth: 8, decoderNumHeads: 16, mlpRatio: 4, normPixLoss: false, ...o, ...enc });

type EncoderShape = Pick<MaeConfig, 'patchSize' | 'embedDim' | 'depth' | 'numHeads'>;

/** The encoders of the MAE repository's model names (all with mlp_ratio 4), and a small one for CPUs. */
const MAE_ENCODERS: Record<string, EncoderShape> = {
  mae_vit_small_patch16: { patchSize: 16, embedDim: 384, depth: 12, numHeads: 6 },
  mae_vit_base_patch16: { patchSize: 16, embedDim: 768, depth: 12, numHeads: 12 },
  mae_vit_large_patch16: { patchSize: 16, embedDim: 1024, depth: 24, numHeads: 16 },
  mae_vit_small_patch14: { patchSize: 14, embedDim: 384, depth: 12, numHeads: 6 },
  mae_vit_base_patch14: { patchSize: 14, embedDim: 768, depth: 12, numHeads: 12 },
  mae_vit_large_patch14: { patchSize: 14, embedDim: 1024, depth: 24, numHeads: 16 },
  mae_vit_huge_patch14: { patchSize: 14, embedDim: 1280, depth: 32, numHeads: 16 },
  mae_vit_micro_patch8: { patchSize: 8, embedDim: 64, depth: 4, numHeads: 4 },
};

/** The MAE repository's model names (decoder 512 wide, 8 blocks), and small ones for CPUs. */
export const maeArchitectures: Record<string, (o?: MaeOptions) => MaskedAutoencoderViT> = {
  mae_vit_small_patch16: mae(MAE_ENCODERS.mae_vit_small_patch16!),
  mae_vit_base_patch16: mae(MAE_ENCODERS.mae_vit_base_patch16!),
  mae_vit_large_patch16: mae(MAE_ENCODERS.mae_vit_large_patch16!),
  mae_vit_small_patch14: mae(MAE_ENCODERS.mae_vit_small_patch14!),
  mae_vit_base_patch14: mae(MAE_ENCODERS.mae_vit_base_patch14!),
  mae_vit_large_patch14: mae(MAE_ENCODERS.mae_vit_large_patch14!),
  mae_vit_huge_patch14: mae(MAE_ENCODERS.mae_vit_huge_patch14!),
  /** 4 blocks, 64 wide, patch 8, decoder 2 blocks 32 wide: for tests and small CPUs */
  mae_vit_micro_patch8: (o: MaeOptions = {}) => mae(MAE_ENCODERS.mae_vit_micro_patch8!)({ decoderEmbedDim: 32, decoderDepth: 2, decoderNumHeads: 4, ...o }),
};

/** The torchvision ViT shape of a named MAE model's encoder (undefined for an unknown name), without building it. */
export function maeEncoderConfigOf(name: string): ViTConfig | undefined {
  const e = Object.hasOwn(MAE_ENCODERS, name) ? MAE_ENCODERS[name] : undefined;
  return e && { patchSize: e.patchSize, numLayers: e.depth, numHeads: e.numHeads, hiddenDim: e.embedDim, mlpDim: e.embedDim * 4 };
}

export function createMae(name: string, o: MaeOptions = {}): MaskedAutoencoderViT {
  const f = maeArchitectures[name];
  if (!f) throw new Error(`unknown MAE model '${name}'; known: ${Object.keys(maeArchitectures).join(', ')}`);
  return f(o);
}

/** The torchvision ViT shape of an MAE model's encoder. */
export function maeEncoderConfig(m: MaskedAutoencoderViT): ViTConfig {
  const c = m.config;
  return { patchSize: c.patchSize, numLayers: c.depth, numHeads: c.numHeads, hiddenDim: c.embedDim, mlpDim: Math.floor(c.embedDim * c.mlpRatio) };
}

/**
 * An MAE (or timm ViT) state dict's encoder under torchvision's ViT names: `blocks.i.attn.qkv` ->
 * `encoder.layers.encoder_layer_i.self_attention.in_proj_*`, `norm1` -> `ln_1`, `mlp.fc1` -> `mlp.0`,
 * `pos_embed` -> `encoder.pos_embedding`, `cls_token` -> `class_token`, `patch_embed.proj` -> `conv_proj`,
 * `norm` -> `encoder.ln`. Decoder entries (and timm's `head`, `fc_norm`) are left out. Tensors are shared.
 */
export function encoderToTorchvision(sd: StateDict): StateDict {
  const out: StateDict = {};
  const block = /^blocks\.(\d+)\.(.+)$/;
  const inner: Record<string, string> = {
    'norm1.weight': 'ln_1.weight', 'norm1.bias': 'ln_1.bias', 'norm2.weight': 'ln_2.weight', 'norm2.bias': 'ln_2.bias',
    'attn.qkv.weight': 'self_attention.in_proj_weight', 'attn.qkv.bias': 'self_attention.in_proj_bias',
    'attn.proj.weight': 'self_attention.out_proj.weight', 'attn.proj.bias': 'self_attention.out_proj.bias',
    'mlp.fc1.weight': 'mlp.0.weight', 'mlp.fc1.bias': 'mlp.0.bias', 'mlp.fc2.weight': 'mlp.3.weight', 'mlp.fc2.bias': 'mlp.3.bias',
  };
  const top: Record<string, string> = {
    cls_token: 'class_token', pos_embed: 'encoder.pos_embedding', 'patch_embed.proj.weight': 'conv_proj.weight',
    'patch_embed.proj.bias': 'conv_proj.bias', 'norm.weight': 'encoder.ln.weight', 'norm.bias': 'encoder.ln.bias',
  };
  for (const [k0, v] of Object.entries(sd)) {
    const k = k0.startsWith('module.') ? k0.slice(7) : k0;
    const b = block.exec(k);
    if (b) {
      const name = inner[b[2]!];
      if (!name) throw new Error(`encoderToTorchvision: unknown block entry ${k0}`);
      out[`encoder.layers.encoder_layer_${b[1]}.${name}`] = v;
    } else if (top[k]) out[top[k]!] = v;
  }
  if (!out['encoder.pos_embedding']) throw new Error('encoderToTorchvision: no pos_embed in the state dict (not an MAE / timm ViT checkpoint)');
  return out;
}

/** Whether a state dict is in MAE / timm ViT layout. */
export function isTimmVit(sd: StateDict): boolean {
  return Object.keys(sd).some((k) => /^(module\.)?blocks\.0\.attn\.qkv\.weight$/.test(k));
}

/** A torchvision ViT with the MAE model's encoder weights (head left as built). */
export function maeEncoder(m: MaskedAutoencoderViT, o: { numClasses?: number; pool?: 'token' | 'mean' } = {}): VisionTransformer {
  const v = new VisionTransformer(maeEncoderConfig(m), { imageSize: m.config.imgSize, numClasses: o.numClasses ?? 1000, pool: o.pool ?? 'token' });
  const sd = encoderToTorchvision(m.stateDict());
  v.loadStateDict({ ...sd, 'heads.head.weight': v.head.weight, 'heads.head.bias': v.head.bias! });
  return v;
}

/**
 * The ViT shape an MAE / timm ViT state dict's encoder has: width, patch, depth and MLP width from
 * the tensors' shapes; the number of heads is not in the tensors (q, k and v are one [3 dim, dim]
 * matrix), so it comes from `maeModel` (the checkpoint's args.model) when that is a known name.
 */
export function maeStateDictShape(sd: StateDict, maeModel?: string): Omit<ViTConfig, 'numHeads'> & { numHeads?: number; gridSize: number } {
  const get = (k: string): Tensor => {
    const t = sd[k] ?? sd[`module.${k}`];
    if (!t) throw new Error(`no ${k} in the state dict (not an MAE / timm ViT encoder)`);
    return t;
  };
  const hiddenDim = get('cls_token').shape[2]!;
  const patchSize = get('patch_embed.proj.weight').shape[2]!;
  const mlpDim = get('blocks.0.mlp.fc1.weight').shape[0]!;
  const seq = get('pos_embed').shape[1]!;
  const depth = new Set(Object.keys(sd).map((k) => /^(?:module\.)?blocks\.(\d+)\./.exec(k)?.[1]).filter((b) => b !== undefined)).size;
  const named = maeModel ? maeEncoderConfigOf(maeModel) : undefined;
  return { patchSize, numLayers: depth, hiddenDim, mlpDim, gridSize: Math.round(Math.sqrt(seq - 1)), ...(named ? { numHeads: named.numHeads } : {}) };
}

/** The vit_* names whose shape is `c` (heads compared only when known). */
export function vitNamesOfShape(c: Omit<ViTConfig, 'numHeads'> & { numHeads?: number }): string[] {
  return Object.entries(vitConfigs).filter(([, v]) => v.patchSize === c.patchSize && v.numLayers === c.numLayers && v.hiddenDim === c.hiddenDim &&
    v.mlpDim === c.mlpDim && (c.numHeads === undefined || v.numHeads === c.numHeads)).map(([n]) => n);
}

/**
 * An MAE (or timm ViT) state dict's encoder as a state dict for `vit`: checked against its shape
 * (an error says what differs and which vit_* would fit), mapped by encoderToTorchvision (decoder
 * and mask token dropped), the position embedding interpolated to the ViT's image size as MAE's
 * interpolate_pos_embed does (bicubic), and the ViT's own head entries (`heads.*`) filled in so a
 * strict load works. Tensors are shared with `sd` except a resized position embedding (`resized`,
 * the caller's to dispose).
 */
export function maeEncoderStateDict(sd: StateDict, vit: VisionTransformer, maeModel?: string): { sd: StateDict; resized?: Tensor } {
  const shape = maeStateDictShape(sd, maeModel);
  const c = vit.config;
  const diffs: string[] = [];
  const cmp = (what: string, ckpt: number | undefined, model: number): void => {
    if (ckpt !== undefined && ckpt !== model) diffs.push(`${what} ${ckpt} (the model's ${model})`);
  };
  cmp('width', shape.hiddenDim, c.hiddenDim);
  cmp('patch size', shape.patchSize, c.patchSize);
  cmp('blocks', shape.numLayers, c.numLayers);
  cmp('MLP width', shape.mlpDim, c.mlpDim);
  cmp('heads', shape.numHeads, c.numHeads);
  if (diffs.length) {
    const fits = vitNamesOfShape(shape);
    throw new Error(`its encoder has ${diffs.join(', ')}${fits.length ? `; the matching model: --model ${fits.join(' or ')}` : '; no vit_* model has its shape'}`);
  }
  const mapped = interpolateEmbeddings(vit.imageSize, vit.patchSize, encoderToTorchvision(sd));
  const original = sd.pos_embed ?? sd['module.pos_embed'];
  const resized = mapped['encoder.pos_embedding'] !== original ? mapped['encoder.pos_embedding'] : undefined;
  for (const [k, v] of Object.entries(vit.stateDict({ keepVars: true }))) if (k.startsWith('heads.')) mapped[k] = v;
  return { sd: mapped, ...(resized ? { resized } : {}) };
}
