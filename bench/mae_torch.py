# The MAE training step in Python PyTorch, for bench/mae.ts: eminorhan/mae's models_mae.py with timm's
# Block / Attention / Mlp / PatchEmbed (timm 0.3.2, as that repository pins) written out here so that
# nothing but Debian's python3-torch is needed; the same encoder and decoder sizes as awty's
# mae_vit_* models (decoder 512 wide, 8 blocks, 16 heads; LayerNorm eps 1e-6), AdamW(betas 0.9, 0.95)
# with weight decay 0.05 except on biases and 1-d parameters (timm's add_weight_decay), as main_pretrain.py.
# The fixed position embeddings hold random values here (sin-cos there): the same shapes, the same cost.
# usage: python3 mae_torch.py MODEL BATCH SIZE THREADS STEPS WARMUP [MASK_RATIO]
import json, math, resource, sys, time
import torch
import torch.nn as nn

ENCODERS = {'mae_vit_small_patch16': (16, 384, 12, 6), 'mae_vit_base_patch16': (16, 768, 12, 12), 'mae_vit_micro_patch8': (8, 64, 4, 4)}


class Attention(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, num_heads, mlp_ratio=4.0):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim, eps=1e-6), Attention(dim, num_heads)
        self.norm2, self.mlp = nn.LayerNorm(dim, eps=1e-6), Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class MaskedAutoencoderViT(nn.Module):
    def __init__(self, img_size, patch_size, embed_dim, depth, num_heads, decoder_embed_dim=512, decoder_depth=8, decoder_num_heads=16):
        super().__init__()
        self.p = patch_size
        self.num_patches = (img_size // patch_size) ** 2
        self.patch_embed = nn.Conv2d(3, embed_dim, patch_size, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.randn(1, self.num_patches + 1, embed_dim) * 0.02, requires_grad=False)
        self.blocks = nn.ModuleList([Block(embed_dim, num_heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.decoder_embed = nn.Linear(embed_dim, decoder_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(torch.randn(1, self.num_patches + 1, decoder_embed_dim) * 0.02, requires_grad=False)
        self.decoder_blocks = nn.ModuleList([Block(decoder_embed_dim, decoder_num_heads) for _ in range(decoder_depth)])
        self.decoder_norm = nn.LayerNorm(decoder_embed_dim, eps=1e-6)
        self.decoder_pred = nn.Linear(decoder_embed_dim, patch_size ** 2 * 3)
        torch.nn.init.normal_(self.cls_token, std=.02)
        torch.nn.init.normal_(self.mask_token, std=.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                torch.nn.init.xavier_uniform_(m.weight)
                nn.init.constant_(m.bias, 0)

    def patchify(self, imgs):
        p = self.p
        h = w = imgs.shape[2] // p
        x = imgs.reshape(shape=(imgs.shape[0], 3, h, p, w, p))
        x = torch.einsum('nchpwq->nhwpqc', x)
        return x.reshape(shape=(imgs.shape[0], h * w, p ** 2 * 3))

    def random_masking(self, x, mask_ratio):
        N, L, D = x.shape
        len_keep = int(L * (1 - mask_ratio))
        noise = torch.rand(N, L, device=x.device)
        ids_shuffle = torch.argsort(noise, dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :len_keep]
        x_masked = torch.gather(x, dim=1, index=ids_keep.unsqueeze(-1).repeat(1, 1, D))
        mask = torch.ones([N, L], device=x.device)
        mask[:, :len_keep] = 0
        return x_masked, torch.gather(mask, dim=1, index=ids_restore), ids_restore

    def forward_encoder(self, x, mask_ratio):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = x + self.pos_embed[:, 1:, :]
        x, mask, ids_restore = self.random_masking(x, mask_ratio)
        cls_tokens = (self.cls_token + self.pos_embed[:, :1, :]).expand(x.shape[0], -1, -1)
        x = torch.cat((cls_tokens, x), dim=1)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x), mask, ids_restore

    def forward_decoder(self, x, ids_restore):
        x = self.decoder_embed(x)
        mask_tokens = self.mask_token.repeat(x.shape[0], ids_restore.shape[1] + 1 - x.shape[1], 1)
        x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)
        x_ = torch.gather(x_, dim=1, index=ids_restore.unsqueeze(-1).repeat(1, 1, x.shape[2]))
        x = torch.cat([x[:, :1, :], x_], dim=1) + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:, :]

    def forward(self, imgs, mask_ratio=0.75):
        latent, mask, ids_restore = self.forward_encoder(imgs, mask_ratio)
        pred = self.forward_decoder(latent, ids_restore)
        loss = ((pred - self.patchify(imgs)) ** 2).mean(dim=-1)
        return (loss * mask).sum() / mask.sum(), pred, mask


def add_weight_decay(model, weight_decay):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if len(p.shape) == 1 or name.endswith('.bias') else decay).append(p)
    return [{'params': no_decay, 'weight_decay': 0.}, {'params': decay, 'weight_decay': weight_decay}]


name, batch, size, threads, steps, warmup = sys.argv[1:7]
ratio = float(sys.argv[7]) if len(sys.argv) > 7 else 0.75
batch, size, threads, steps, warmup = int(batch), int(size), int(threads), int(steps), int(warmup)
torch.set_num_threads(threads)
torch.manual_seed(0)
p, dim, depth, heads = ENCODERS[name]
model = MaskedAutoencoderViT(size, p, dim, depth, heads, **({'decoder_embed_dim': 32, 'decoder_depth': 2, 'decoder_num_heads': 4} if name == 'mae_vit_micro_patch8' else {}))
opt = torch.optim.AdamW(add_weight_decay(model, 0.05), lr=1.5e-4, betas=(0.9, 0.95))
x = torch.randn(batch, 3, size, size)
model.train()


def step():
    opt.zero_grad(set_to_none=True)
    loss, _, _ = model(x, ratio)
    loss.backward()
    opt.step()


for _ in range(warmup):
    step()
t0 = time.perf_counter()
for _ in range(steps):
    step()
secs = time.perf_counter() - t0
print(json.dumps({'imagesPerSec': steps * batch / secs, 'peakRssMiB': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  'params': sum(q.numel() for q in model.parameters())}))
