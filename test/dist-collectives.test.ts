// c10d from awty: collectives between two processes on loopback, data-parallel gradient averaging,
// the launch environment, and the rendezvous's errors (busy port, unreachable store, mismatches).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as torch from '../src/torch/index.js';
import { assignBuckets, distEnv, firstSlurmHost } from '../src/dist/index.js';
import { DistributedSampler, RandomSampler, SequentialSampler, ShardedSampler } from '../src/data/index.js';
import { freePort, killAll, runRanks } from './helpers/dist.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const scenarios = path.join(here, 'fixtures', 'dist-scenarios.js');
after(killAll);

const lastJson = (s: string): Record<string, unknown> => JSON.parse(s.trim().split('\n').at(-1)!) as Record<string, unknown>;
const partOf = (s: string, part: string): Record<string, unknown> => {
  const line = s.trim().split('\n').find((l) => l.startsWith('{') && (JSON.parse(l) as { part?: string }).part === part);
  assert.ok(line, `no ${part} output in:\n${s}`);
  return JSON.parse(line) as Record<string, unknown>;
};
// one 2-process run serves the collectives, DDP and model-mismatch tests
let shared: ReturnType<typeof runRanks> | undefined;
const sharedRun = async (): ReturnType<typeof runRanks> => (shared ??= runRanks([scenarios, 'all'], 2, await freePort()));

test('allreduce (sum, avg, max), broadcast, allgather, barrier and two collectives in flight between 2 processes', async () => {
  const res = await sharedRun();
  for (const r of res) assert.equal(r.code, 0, r.stderr);
  for (const r of res) {
    const v = partOf(r.stdout, 'collectives');
    assert.equal(v.rank, r.rank);
    assert.equal(v.size, 2);
    assert.deepEqual(v.sum, [12, 14, 16]);
    assert.deepEqual(v.avg, [6, 7, 8]);
    assert.deepEqual(v.max, [1, 0]);
    assert.deepEqual(v.broadcast, [7, 7, 7, 7]);
    assert.deepEqual(v.gathered, [[0, 0.5], [1, 1.5]]);
    assert.equal(v.bigFirst, 3);
    assert.equal(v.bigLast, 3);
    assert.deepEqual(v.small, Array(8).fill(3));
    assert.equal(v.completed, true);
    assert.match(v.intAvg as string, /'avg' needs a floating-point tensor, got int64/);
    assert.equal(v.rankFn, r.rank);
    assert.equal(v.worldFn, 2);
  }
});

test('DistributedDataParallel: rank 0\'s weights on every rank, gradients averaged bucket by bucket', async () => {
  const res = await sharedRun();
  for (const r of res) assert.equal(r.code, 0, r.stderr);
  const [a, b] = res.map((r) => partOf(r.stdout, 'ddp')) as [Record<string, number[][]>, Record<string, number[][]>];
  assert.deepEqual(a.weights, b.weights);
  assert.ok((a.buckets as unknown as number[][]).length > 1, 'a tiny cap gives several buckets');
  // reverse parameter order: the last parameter is in the first bucket
  assert.equal((a.buckets as unknown as number[][])[0]![0], 3);
  assert.notDeepEqual(a.local, b.local, 'different inputs give different local gradients');
  for (let k = 0; k < a.local!.length; k++) {
    const want = a.local![k]!.map((x, i) => (x + b.local![k]![i]!) / 2);
    for (const got of [a.reduced![k]!, b.reduced![k]!]) {
      for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-6 * Math.max(1, Math.abs(want[i]!)), `param ${k}[${i}]: ${got[i]} vs ${want[i]}`);
    }
  }
});

test('allReduceWithGrad: the sum over the ranks, and in backward the gradient summed over the ranks', async () => {
  const res = await sharedRun();
  for (const r of res) {
    assert.equal(r.code, 0, r.stderr);
    const v = partOf(r.stdout, 'grad-allreduce') as { y: number[]; grad: number[]; noGrad: number[]; noGradRequires: boolean };
    // x = [1, -2, 3] on both ranks, scaled by rank + 1: the sum is 3x
    assert.deepEqual(v.y, [3, -6, 9]);
    // loss_r = sum((r + 1) w * y): d(loss_0 + loss_1)/dx_r = (r + 1) * (1 + 2) * w
    const k = (r.rank + 1) * 3;
    assert.deepEqual(v.grad, [k, 10 * k, 100 * k]);
    assert.deepEqual(v.noGrad, [2, 2]);
    assert.equal(v.noGradRequires, false);
  }
});

test('a model that differs between ranks is an error naming the rank', async () => {
  const res = await sharedRun();
  for (const r of res) {
    assert.equal(r.code, 0, r.stderr);
    assert.match(partOf(r.stdout, 'model-check').error as string, /rank 1's model differs from rank 0's/);
  }
});

test('mismatched WORLD_SIZE is an error naming the rank', async () => {
  const res = await runRanks([scenarios, 'join'], 2, await freePort(), { env: (r): Record<string, string> => (r === 1 ? { WORLD_SIZE: '3' } : {}), timeoutMs: 120_000 });
  for (const r of res) {
    assert.equal(r.code, 3, r.stderr);
    assert.match(lastJson(r.stdout).error as string, /rank 1 has WORLD_SIZE 3 but rank 0 has 2/);
  }
});

test('a busy master port is an error naming the port', async () => {
  const port = await freePort();
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(port, '0.0.0.0', resolve));
  try {
    const [r] = await runRanks([scenarios, 'join'], 1, port, { env: () => ({ WORLD_SIZE: '2' }), timeoutMs: 120_000 });
    assert.equal(r!.code, 3, r!.stderr);
    assert.match(lastJson(r!.stdout).error as string, new RegExp(`port ${port} is in use`));
  } finally {
    await new Promise((resolve) => blocker.close(resolve));
  }
});

test('a store nobody hosts is a timeout error after --dist-timeout, not a hang', async () => {
  const port = await freePort();
  const res = await runRanks([scenarios, 'join'], 2, port, { env: () => ({ RANK: '1', TEST_DIST_TIMEOUT: '2' }), timeoutMs: 60_000 });
  const r = res[1]!;
  assert.equal(r.code, 3, r.stderr);
  const v = lastJson(r.stdout);
  assert.match(v.error as string, new RegExp(`timed out after 2 s connecting to the rendezvous store at 127.0.0.1:${port}`));
  // measured inside the process (its start-up is not part of the wait); c10d's connect loop gives
  // up as much as a second before its deadline
  const seconds = v.seconds as number;
  assert.ok(seconds >= 0.8 && seconds < 12, `the wait took ${seconds.toFixed(1)} s`);
});

test('the launch environment: torchrun / awty launch variables, SLURM variables, and bad values', () => {
  assert.equal(distEnv({}), undefined);
  const e = distEnv({ RANK: '1', WORLD_SIZE: '4', LOCAL_RANK: '1', LOCAL_WORLD_SIZE: '2', MASTER_ADDR: 'node0', MASTER_PORT: '1234' })!;
  assert.deepEqual([e.rank, e.worldSize, e.localRank, e.localWorldSize, e.masterAddr, e.masterPort, e.agentStore, e.source], [1, 4, 1, 2, 'node0', 1234, false, 'env']);
  const t = distEnv({ RANK: '0', WORLD_SIZE: '2', MASTER_ADDR: 'h', MASTER_PORT: '29400', TORCHELASTIC_USE_AGENT_STORE: 'True', TORCHELASTIC_RESTART_COUNT: '2' })!;
  assert.deepEqual([t.agentStore, t.restartCount], [true, 2]);
  const s = distEnv({ SLURM_PROCID: '5', SLURM_NTASKS: '8', SLURM_LOCALID: '1', SLURM_NTASKS_PER_NODE: '4(x2)', SLURM_JOB_NODELIST: 'gpu[07-08]' })!;
  assert.deepEqual([s.rank, s.worldSize, s.localRank, s.localWorldSize, s.masterAddr, s.masterPort, s.source], [5, 8, 1, 4, 'gpu07', 29500, 'slurm']);
  assert.equal(distEnv({ SLURM_PROCID: '0', SLURM_NTASKS: '1' }), undefined, 'a one-task SLURM job is not distributed');
  assert.equal(distEnv({ SLURM_PROCID: '0', SLURM_NTASKS: '2', MASTER_ADDR: 'a' }, { masterAddr: 'flag', masterPort: 7 })!.masterAddr, 'flag');
  assert.equal(firstSlurmHost('node1,node2'), 'node1');
  assert.throws(() => distEnv({ RANK: '0' }), /RANK is set \(0\) but WORLD_SIZE is not/);
  assert.throws(() => distEnv({ RANK: '2', WORLD_SIZE: '2', MASTER_ADDR: 'a' }), /RANK 2 is not below WORLD_SIZE 2/);
  assert.throws(() => distEnv({ RANK: 'x', WORLD_SIZE: '2' }), /RANK must be an integer >= 0, got 'x'/);
  assert.throws(() => distEnv({ RANK: '0', WORLD_SIZE: '2' }), /MASTER_ADDR is not set/);
  assert.throws(() => distEnv({ RANK: '0', WORLD_SIZE: '2', MASTER_ADDR: 'a', MASTER_PORT: '70000' }), /MASTER_PORT must be a TCP port/);
});

test('ShardedSampler over a RandomSampler is DistributedSampler; the shards cover the order', () => {
  for (const n of [10, 11, 3]) {
    for (const w of [1, 2, 3]) {
      const parts: number[][] = [];
      for (let r = 0; r < w; r++) {
        const a = new ShardedSampler(new RandomSampler(n, 5), { rank: r, worldSize: w }).indices(2);
        const b = new DistributedSampler(n, { rank: r, worldSize: w, seed: 5 }).indices(2);
        assert.deepEqual(Array.from(a), Array.from(b));
        parts.push(Array.from(new ShardedSampler(new SequentialSampler(n), { rank: r, worldSize: w, pad: false }).indices(0)));
      }
      assert.deepEqual(parts.flat().sort((x, y) => x - y), Array.from({ length: n }, (_, i) => i), 'unpadded shards are a partition');
    }
  }
  assert.throws(() => new ShardedSampler(new SequentialSampler(3), { rank: 2, worldSize: 2 }), /invalid rank 2 for world size 2/);
});

test('buckets: reverse parameter order, closed at the cap, one dtype each', () => {
  torch.tidy(() => {
    const ts = [torch.zeros([256]), torch.zeros([256]), torch.zeros([10], { dtype: 'float64' }), torch.zeros([256]), torch.zeros([256])];
    // 1 KiB per float32 tensor; cap 2 KiB, first cap 1 KiB
    assert.deepEqual(assignBuckets(ts, 2048, 1024), [[4], [3, 1], [2], [0]]);
    assert.deepEqual(assignBuckets(ts, 1 << 30, 1 << 30), [[4, 3, 1, 0], [2]]);
  });
});
