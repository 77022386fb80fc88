# One rank of the allreduce benchmark in Python: torch.distributed (gloo) allreduce of MB megabytes of
# float32 between WORLD_SIZE processes (env:// rendezvous); prints {"seconds": [...]} per allreduce.
import json, os, sys, time
import torch
import torch.distributed as dist

mb, iters, warmup = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(1)
dist.init_process_group('gloo')
t = torch.ones(int(mb * 1e6 / 4), dtype=torch.float32)
for _ in range(warmup):
    dist.all_reduce(t)
secs = []
for _ in range(iters):
    dist.barrier()
    t0 = time.perf_counter()
    dist.all_reduce(t)
    secs.append(time.perf_counter() - t0)
if dist.get_rank() == 0:
    print(json.dumps({"seconds": secs}))
dist.destroy_process_group()
