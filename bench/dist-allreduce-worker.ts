// One rank of the allreduce benchmark in awty: c10d Gloo allreduce of MB megabytes of float32 between
// WORLD_SIZE processes; rank 0 prints {"seconds": [...]} per allreduce.
import * as dist from '../src/dist/index.js';
import * as torch from '../src/torch/index.js';

const [mb, iters, warmup] = process.argv.slice(2).map(Number) as [number, number, number];
const g = dist.initProcessGroup({ timeoutSeconds: 120 });
const t = torch.ones([Math.floor((mb * 1e6) / 4)], { dtype: 'float32' });
for (let i = 0; i < warmup; i++) g.allReduce(t, 'sum').wait();
const seconds: number[] = [];
for (let i = 0; i < iters; i++) {
  g.barrier().wait();
  const t0 = performance.now();
  g.allReduce(t, 'sum').wait();
  seconds.push((performance.now() - t0) / 1000);
}
if (g.rank === 0) process.stdout.write(`${JSON.stringify({ seconds })}\n`);
dist.destroyProcessGroup();
