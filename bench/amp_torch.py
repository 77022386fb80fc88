# The same configuration in Python PyTorch: python3 amp_torch.py ARCH BATCH SIZE THREADS MODE VARIANT STEPS WARMUP
# cl: model.to(memory_format=torch.channels_last) and a channels_last input; amp: torch.autocast('cpu', dtype=torch.bfloat16)
import contextlib, json, resource, sys, time
import torch, torchvision

arch, batch, size, threads, mode, variant, steps, warmup = sys.argv[1:9]
batch, size, threads, steps, warmup = int(batch), int(size), int(threads), int(steps), int(warmup)
cl = variant.startswith('cl')
amp = variant.endswith('amp')
torch.set_num_threads(threads)
torch.manual_seed(0)
model = getattr(torchvision.models, arch)()
if cl:
    model = model.to(memory_format=torch.channels_last)
opt = torch.optim.Adam(model.parameters(), lr=5e-4)
x = torch.randn(batch, 3, size, size)
if cl:
    x = x.contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 1000, (batch,))
crit = torch.nn.CrossEntropyLoss()
autocast = (lambda: torch.autocast('cpu', dtype=torch.bfloat16)) if amp else contextlib.nullcontext

def train_step():
    opt.zero_grad(set_to_none=True)
    with autocast():
        loss = crit(model(x), y)
    loss.backward()
    opt.step()

def infer_step():
    with torch.inference_mode(), autocast():
        model(x)

step = train_step if mode == 'train' else infer_step
if mode == 'infer':
    model.eval()
for _ in range(warmup):
    step()
t0 = time.perf_counter()
for _ in range(steps):
    step()
secs = time.perf_counter() - t0
print(json.dumps({'imagesPerSec': steps * batch / secs, 'peakRssMiB': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
