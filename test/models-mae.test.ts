// The masked autoencoder against a PyTorch reference written from eminorhan/mae's models_mae.py
// (with timm 0.3.2's Block, Attention, Mlp and PatchEmbed, which Debian lacks, written out): same
// state-dict keys, the same loss, predictions, mask and gradients on the same weights, images and
// masking noise; the masking ratio exact; the encoder's mapping onto torchvision's ViT.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import * as torch from '../src/torch/index.js';
import * as models from '../src/models/index.js';
import { hasOracle, readDump, relErr, runPython, tmpdir, writeDump } from './helpers/oracle.js';

const skip = !hasOracle() && 'Debian python3-torch not installed';

const REFERENCE = `
import torch.nn as nn
from functools import partial
class Attention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.proj = nn.Linear(dim, dim)
    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)
class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden); self.act = nn.GELU(); self.fc2 = nn.Linear(hidden, dim)
    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))
class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio, norm_layer):
        super().__init__()
        self.norm1 = norm_layer(dim); self.attn = Attention(dim, num_heads)
        self.norm2 = norm_layer(dim); self.mlp = Mlp(dim, int(dim * mlp_ratio))
    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))
class PatchEmbed(nn.Module):
    def __init__(self, img_size, patch_size, in_chans, embed_dim):
        super().__init__()
        self.patch_size = (patch_size, patch_size)
        self.num_patches = (img_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)

# models_mae.py's MaskedAutoencoderViT, with the masking noise given instead of drawn
class MaskedAutoencoderViT(nn.Module):
    def __init__(self, img_size, patch_size, embed_dim, depth, num_heads, decoder_embed_dim, decoder_depth, decoder_num_heads, mlp_ratio, norm_pix_loss, in_chans=3, norm_layer=partial(nn.LayerNorm, eps=1e-6)):
        super().__init__()
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim), requires_grad=False)
        self.blocks = nn.ModuleList([Block(embed_dim, num_heads, mlp_ratio, norm_layer) for i in range(depth)])
        self.norm = norm_layer(embed_dim)
        self.decoder_embed = nn.Linear(embed_dim, decoder_embed_dim, bias=True)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, decoder_embed_dim), requires_grad=False)
        self.decoder_blocks = nn.ModuleList([Block(decoder_embed_dim, decoder_num_heads, mlp_ratio, norm_layer) for i in range(decoder_depth)])
        self.decoder_norm = norm_layer(decoder_embed_dim)
        self.decoder_pred = nn.Linear(decoder_embed_dim, patch_size**2 * in_chans, bias=True)
        self.norm_pix_loss = norm_pix_loss
    def patchify(self, imgs):
        p = self.patch_embed.patch_size[0]
        h = w = imgs.shape[2] // p
        x = imgs.reshape(shape=(imgs.shape[0], 3, h, p, w, p))
        x = torch.einsum('nchpwq->nhwpqc', x)
        return x.reshape(shape=(imgs.shape[0], h * w, p**2 * 3))
    def random_masking(self, x, mask_ratio, noise):
        N, L, D = x.shape
        len_keep = int(L * (1 - mask_ratio))
        ids_shuffle = torch.argsort(noise, dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :len_keep]
        x_masked = torch.gather(x, dim=1, index=ids_keep.unsqueeze(-1).repeat(1, 1, D))
        mask = torch.ones([N, L], device=x.device)
        mask[:, :len_keep] = 0
        mask = torch.gather(mask, dim=1, index=ids_restore)
        return x_masked, mask, ids_restore
    def forward_encoder(self, x, mask_ratio, noise):
        x = self.patch_embed(x)
        x = x + self.pos_embed[:, 1:, :]
        x, mask, ids_restore = self.random_masking(x, mask_ratio, noise)
        cls_token = self.cls_token + self.pos_embed[:, :1, :]
        cls_tokens = cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat((cls_tokens, x), dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x), mask, ids_restore
    def forward_decoder(self, x, ids_restore):
        x = self.decoder_embed(x)
        mask_tokens = self.mask_token.repeat(x.shape[0], ids_restore.shape[1] + 1 - x.shape[1], 1)
        x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)
        x_ = torch.gather(x_, dim=1, index=ids_restore.unsqueeze(-1).repeat(1, 1, x.shape[2]))
        x = torch.cat([x[:, :1, :], x_], dim=1)
        x = x + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        x = self.decoder_norm(x)
        x = self.decoder_pred(x)
        return x[:, 1:, :]
    def forward_loss(self, imgs, pred, mask):
        target = self.patchify(imgs)
        if self.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.e-6)**.5
        loss = (pred - target) ** 2
        loss = loss.mean(dim=-1)
        return (loss * mask).sum() / mask.sum()
    def forward(self, imgs, mask_ratio, noise):
        latent, mask, ids_restore = self.forward_encoder(imgs, mask_ratio, noise)
        pred = self.forward_decoder(latent, ids_restore)
        return self.forward_loss(imgs, pred, mask), pred, mask

cfg = json.loads(os.environ['CFG'])
m = MaskedAutoencoderViT(**cfg)
sd = load('weights')
m.load_state_dict(sd, strict=True)
inp = load('input')
loss, pred, mask = m(inp['imgs'], float(os.environ['RATIO']), inp['noise'])
loss.backward()
dump({'loss': loss.reshape(1), 'pred': pred, 'mask': mask}, 'out')
dump({k: p.grad for k, p in m.named_parameters() if p.requires_grad}, 'grads')
print(json.dumps(list(m.state_dict().keys())))
`;

for (const normPixLoss of [true, false]) {
  test(`MAE (micro, 32 px, ${normPixLoss ? 'normalised' : 'raw'} pixel loss) equals the models_mae.py reference: keys, loss, pred, mask, gradients`, { skip }, () => {
    const dir = tmpdir('awty-mae-');
    try {
      torch.manualSeed(3);
      const m = models.createMae('mae_vit_micro_patch8', { imgSize: 32, normPixLoss });
      const imgs = torch.randn(3, 3, 32, 32).keep();
      const noise = torch.rand(3, 16).keep();
      writeDump(dir, 'weights', m.stateDict());
      writeDump(dir, 'input', { imgs, noise });
      const c = m.config;
      const cfg = { img_size: c.imgSize, patch_size: c.patchSize, embed_dim: c.embedDim, depth: c.depth, num_heads: c.numHeads, decoder_embed_dim: c.decoderEmbedDim,
        decoder_depth: c.decoderDepth, decoder_num_heads: c.decoderNumHeads, mlp_ratio: c.mlpRatio, norm_pix_loss: c.normPixLoss };
      const keys = JSON.parse(runPython(REFERENCE, dir, { CFG: JSON.stringify(cfg), RATIO: '0.75' })) as string[];
      assert.deepEqual(Object.keys(m.stateDict()), keys);
      const ref = readDump(dir, 'out');
      const grads = readDump(dir, 'grads');
      torch.tidy(() => {
        const out = m.run(imgs, 0.75, noise);
        assert.ok(torch.equal(out.mask, ref.mask!), 'the same patches are masked');
        assert.deepEqual(out.mask.sum(1).tolist(), [12, 12, 12]);
        assert.ok(relErr(out.loss.reshape([1]), ref.loss!) < 1e-5, `loss rel err ${relErr(out.loss.reshape([1]), ref.loss!)}`);
        assert.ok(relErr(out.pred, ref.pred!) < 1e-5, `pred rel err ${relErr(out.pred, ref.pred!)}`);
        out.loss.backward();
        const trained = [...m.namedParameters()].filter(([, p]) => p.requiresGrad);
        assert.deepEqual(trained.map(([k]) => k).sort(), Object.keys(grads).sort());
        for (const [k, p] of trained) assert.ok(relErr(p.grad!, grads[k]!) < 1e-4, `gradient of ${k}: rel err ${relErr(p.grad!, grads[k]!)}`);
        // the fixed sin-cos embeddings are not trained
        assert.equal(m.getParameter('pos_embed')!.requiresGrad, false);
        assert.equal(m.getParameter('decoder_pos_embed')!.requiresGrad, false);
      });
      for (const t of [imgs, noise, ...Object.values(ref), ...Object.values(grads)]) t.dispose();
      m.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('masking ratio is exact: int(L * (1 - r)) patches kept, the rest masked, for every sample', () => {
  // Python: [int(196 * (1 - r)) for r in (0.75, 0.8, 0.9, 0.5, 0.6, 0.7, 0.95, 0.0)], L = 196 (224 / 16) and 256 (224 / 14)
  const b16 = models.createMae('mae_vit_micro_patch8', { imgSize: 112 }); // 196 patches
  assert.equal(b16.numPatches, 196);
  assert.deepEqual([0.75, 0.8, 0.9, 0.5, 0.6, 0.7, 0.95, 0.0].map((r) => b16.lenKeep(r)), [49, 39, 19, 98, 78, 58, 9, 196]);
  torch.tidy(() => {
    const x = torch.randn(4, 196, 8);
    for (const r of [0.75, 0.8, 0.9]) {
      const { xMasked, mask } = b16.randomMasking(x, r);
      assert.deepEqual(xMasked.shape, [4, b16.lenKeep(r), 8]);
      assert.deepEqual(mask.sum(1).tolist(), Array(4).fill(196 - b16.lenKeep(r)));
    }
  });
  b16.dispose();
});

test('the MAE encoder maps onto torchvision\'s ViT: same tokens from the same weights with nothing masked', () => {
  torch.manualSeed(5);
  const m = models.createMae('mae_vit_micro_patch8', { imgSize: 32 });
  const v = models.maeEncoder(m, { numClasses: 3 });
  torch.tidy(() => torch.noGrad(() => {
    const imgs = torch.randn(2, 3, 32, 32);
    const noise = torch.arange(16).float().unsqueeze(0).expand([2, 16]); // keeps every patch in order with ratio 0
    const { latent } = m.forwardEncoder(imgs, 0, noise);
    assert.ok(relErr(v.tokens(imgs), latent) < 1e-5, `encoder tokens rel err ${relErr(v.tokens(imgs), latent)}`);
  }));
  assert.throws(() => models.encoderToTorchvision({ 'fc.weight': torch.zeros([2, 2]) }), /no pos_embed/);
  v.dispose();
  m.dispose();
});
