// Vision Transformers against torchvision 0.14 (the oracle): the same state-dict keys, logits and
// gradients on the same weights, position-embedding interpolation, MAE's sin-cos embedding, and
// the nn modules they are built from. The parity model has vit_b_16's width, heads, MLP and patch
// (768, 12, 3072, 16) with 2 of its 12 blocks at 64x64 pixels (16 patches), to stay fast on a CPU.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import * as torch from '../src/torch/index.js';
import * as nn from '../src/nn/index.js';
import * as models from '../src/models/index.js';
import { hasOracle, readDump, relErr, runPython, tmpdir, writeDump } from './helpers/oracle.js';

const oracle = hasOracle();
const skip = !oracle && 'Debian python3-torch not installed';

const SCRIPT = `
import torchvision
from torchvision.models.vision_transformer import VisionTransformer, interpolate_embeddings
torch.manual_seed(0)
torch.set_num_threads(2)
m = VisionTransformer(image_size=64, patch_size=16, num_layers=2, num_heads=12, hidden_dim=768, mlp_dim=3072, num_classes=10)
with torch.no_grad():
    m.heads.head.weight.normal_(0, 0.02); m.heads.head.bias.uniform_(-0.1, 0.1)
    m.class_token.normal_(0, 0.02)
x = torch.randn(2, 3, 64, 64)
r = torch.randn(2, 10)
dump(m.state_dict(), 'init')
dump({'x': x, 'r': r}, 'input')
m.eval()
with torch.no_grad():
    ev = m(x)
m.train()
out = m(x)
loss = (out * r).sum()
loss.backward()
dump({'eval': ev, 'train': out}, 'outputs')
dump({k: p.grad for k, p in m.named_parameters()}, 'grads')
sd = interpolate_embeddings(96, 16, {k: v.clone() for k, v in m.state_dict().items()})
dump({'pos': sd['encoder.pos_embedding']}, 'interp')
print(json.dumps(list(m.state_dict().keys())))
`;

test('ViT (vit_b_16 width, 2 blocks, 64 px) matches torchvision: keys, eval and train logits, every gradient; interpolate_embeddings', { skip }, () => {
  const dir = tmpdir('awty-vit-');
  try {
    const keys = JSON.parse(runPython(SCRIPT, dir)) as string[];
    const init = readDump(dir, 'init');
    const input = readDump(dir, 'input');
    const outputs = readDump(dir, 'outputs');
    const grads = readDump(dir, 'grads');
    const interp = readDump(dir, 'interp');
    const m = models.vit({ patchSize: 16, numLayers: 2, numHeads: 12, hiddenDim: 768, mlpDim: 3072 }, { imageSize: 64, numClasses: 10 });
    assert.deepEqual(Object.keys(m.stateDict()), keys);
    m.loadStateDict(init);
    torch.tidy(() => {
      m.eval();
      const ev = torch.noGrad(() => m.forward(input.x!));
      assert.ok(relErr(ev, outputs.eval!) < 1e-4, `eval logits rel err ${relErr(ev, outputs.eval!)}`);
      m.train();
      const out = m.forward(input.x!);
      assert.ok(relErr(out, outputs.train!) < 1e-4, `train logits rel err ${relErr(out, outputs.train!)}`);
      out.mul(input.r!).sum().backward();
      const worst = [...m.namedParameters()].map(([k, p]) => [k, relErr(p.grad!, grads[k]!)] as const).sort((a, b) => b[1] - a[1]);
      assert.equal(worst.length, keys.length);
      assert.ok(worst[0]![1] < 1e-4, `gradient of ${worst[0]![0]}: rel err ${worst[0]![1]}`);
      const sd = models.interpolateEmbeddings(96, 16, m.stateDict());
      assert.deepEqual(sd['encoder.pos_embedding']!.shape, [1, 37, 768]);
      assert.ok(relErr(sd['encoder.pos_embedding']!, interp.pos!) < 1e-5, `interpolated rel err ${relErr(sd['encoder.pos_embedding']!, interp.pos!)}`);
      // and the interpolated state dict loads into a 96-px model
      const big = models.vit({ patchSize: 16, numLayers: 2, numHeads: 12, hiddenDim: 768, mlpDim: 3072 }, { imageSize: 96, numClasses: 10 });
      big.loadStateDict(sd);
      assert.deepEqual(torch.noGrad(() => big.forward(torch.randn(1, 3, 96, 96))).shape, [1, 10]);
      big.dispose();
    });
    m.dispose();
    for (const t of [...Object.values(init), ...Object.values(input), ...Object.values(outputs), ...Object.values(grads), ...Object.values(interp)]) t.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('registry: torchvision names and shapes, head replacement, bad image size', () => {
  const b16 = models.create('vit_b_16');
  const n = b16.parameters().reduce((a, p) => a + p.numel(), 0);
  assert.equal(n, 86567656); // torchvision's vit_b_16 parameter count
  assert.equal(b16.headName, 'heads.head');
  models.replaceHead(b16, 7);
  assert.deepEqual(b16.stateDict()['heads.head.weight']!.shape, [7, 768]);
  b16.dispose();
  const micro = models.create('vit_micro_8', { imageSize: 32, numClasses: 5 });
  assert.deepEqual(torch.tidy(() => torch.noGrad(() => micro.forward(torch.randn(2, 3, 32, 32)).shape)), [2, 5]);
  assert.deepEqual(torch.tidy(() => torch.noGrad(() => micro.features(torch.randn(2, 3, 32, 32)).shape)), [2, 64]);
  assert.throws(() => torch.tidy(() => micro.forward(torch.randn(1, 3, 40, 40))), /expected images \[N, 3, 32, 32\]/);
  assert.throws(() => models.create('vit_micro_8', { imageSize: 30 }), /not a multiple of the patch size 8/);
  micro.dispose();
});

const SINCOS = `
import numpy as np
# eminorhan/mae util/pos_embed.py, as it is
def get_2d_sincos_pos_embed(embed_dim, grid_size, cls_token=False):
    grid_h = np.arange(grid_size, dtype=np.float32)
    grid_w = np.arange(grid_size, dtype=np.float32)
    grid = np.meshgrid(grid_w, grid_h)  # here w goes first
    grid = np.stack(grid, axis=0)
    grid = grid.reshape([2, 1, grid_size, grid_size])
    pos_embed = get_2d_sincos_pos_embed_from_grid(embed_dim, grid)
    if cls_token:
        pos_embed = np.concatenate([np.zeros([1, embed_dim]), pos_embed], axis=0)
    return pos_embed
def get_2d_sincos_pos_embed_from_grid(embed_dim, grid):
    emb_h = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[0])
    emb_w = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[1])
    return np.concatenate([emb_h, emb_w], axis=1)
def get_1d_sincos_pos_embed_from_grid(embed_dim, pos):
    omega = np.arange(embed_dim // 2, dtype=np.float32)
    omega /= embed_dim / 2.
    omega = 1. / 10000**omega
    pos = pos.reshape(-1)
    out = np.einsum('m,d->md', pos, omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)
dump({'pe': torch.from_numpy(get_2d_sincos_pos_embed(64, 4, cls_token=True)).float()}, 'pe')
`;

test('sin-cos position embedding equals MAE\'s get_2d_sincos_pos_embed and is not trained', { skip }, () => {
  const dir = tmpdir('awty-vit-');
  try {
    runPython(SINCOS, dir);
    const ref = readDump(dir, 'pe').pe!;
    const m = models.vit_micro_8({ imageSize: 32, posEmbedding: 'sincos' });
    const pe = m.getModule('encoder')!.getParameter('pos_embedding')!;
    assert.ok(relErr(pe.reshape([17, 64]), ref) < 1e-6, `rel err ${relErr(pe.reshape([17, 64]), ref)}`);
    assert.equal(pe.requiresGrad, false);
    m.dispose();
    ref.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const MHA = `
torch.manual_seed(1)
a = torch.nn.MultiheadAttention(16, 4, batch_first=True)
ln = torch.nn.LayerNorm(16, eps=1e-6)
with torch.no_grad():
    a.in_proj_bias.uniform_(-0.2, 0.2); a.out_proj.bias.uniform_(-0.2, 0.2); ln.weight.uniform_(0.5, 1.5); ln.bias.uniform_(-0.1, 0.1)
x = load('x')['x'].requires_grad_(True)
y, _ = a(x, x, x, need_weights=False)
z = torch.nn.functional.gelu(ln(y))
z.sum().backward()
dump({**{'attn.' + k: v for k, v in a.state_dict().items()}, **{'ln.' + k: v for k, v in ln.state_dict().items()}}, 'w')
dump({'z': z, 'gx': x.grad}, 'out')
`;

test('MultiheadAttention (in_proj_weight/out_proj layout), LayerNorm and GELU match PyTorch, forward and backward', { skip }, () => {
  const dir = tmpdir('awty-mha-');
  try {
    const x = torch.randn(3, 5, 16).keep();
    writeDump(dir, 'x', { x });
    runPython(MHA, dir);
    const w = readDump(dir, 'w');
    const out = readDump(dir, 'out');
    const a = new nn.MultiheadAttention(16, 4);
    const ln = new nn.LayerNorm(16, { eps: 1e-6 });
    assert.deepEqual(Object.keys(a.stateDict()), ['in_proj_weight', 'in_proj_bias', 'out_proj.weight', 'out_proj.bias']);
    a.loadStateDict(Object.fromEntries(Object.entries(w).filter(([k]) => k.startsWith('attn.')).map(([k, v]) => [k.slice(5), v])));
    ln.loadStateDict(Object.fromEntries(Object.entries(w).filter(([k]) => k.startsWith('ln.')).map(([k, v]) => [k.slice(3), v])));
    torch.tidy(() => {
      const xi = x.detach().requiresGrad_(true);
      const z = new nn.GELU().forward(ln.forward(a.forward(xi)));
      z.sum().backward();
      assert.ok(relErr(z, out.z!) < 1e-5, `output rel err ${relErr(z, out.z!)}`);
      assert.ok(relErr(xi.grad!, out.gx!) < 1e-5, `input gradient rel err ${relErr(xi.grad!, out.gx!)}`);
    });
    assert.throws(() => new nn.MultiheadAttention(10, 3), /divisible by num_heads/);
    assert.throws(() => torch.tidy(() => a.forward(torch.randn(2, 8))), /expected input \[batch, length, 16\]/);
    a.dispose();
    ln.dispose();
    x.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
