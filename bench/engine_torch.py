# The same configuration in Python PyTorch (the paper's loop): python3 engine_torch.py ARCH BATCH SIZE THREADS MODE STEPS WARMUP
import json, resource, sys, time
import torch, torchvision

arch, batch, size, threads, mode, steps, warmup = sys.argv[1:8]
batch, size, threads, steps, warmup = int(batch), int(size), int(threads), int(steps), int(warmup)
torch.set_num_threads(threads)
torch.manual_seed(0)
model = getattr(torchvision.models, arch)()
opt = torch.optim.Adam(model.parameters(), lr=5e-4)
x = torch.randn(batch, 3, size, size)
y = torch.randint(0, 1000, (batch,))
crit = torch.nn.CrossEntropyLoss()

def train_step():
    opt.zero_grad(set_to_none=True)
    loss = crit(model(x), y)
    loss.backward()
    opt.step()

def infer_step():
    with torch.inference_mode():
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
