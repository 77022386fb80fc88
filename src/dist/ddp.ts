// Data-parallel training in PyTorch's DistributedDataParallel manner: the same model on every rank,
// parameters and buffers broadcast from rank 0 at the start, and after each backward the gradients
// averaged across ranks by bucketed allreduce (buckets of about 25 MB, the first 1 MB, in reverse
// parameter order, as DDP's reducer assigns them), so every rank takes the same optimizer step.
//
// When buckets are reduced: right after backward. libtorch's autograd runs the whole backward inside
// one native call here, so there is no point in the middle of it where TypeScript could start a
// bucket; instead every bucket's allreduce is started at once (asynchronously, on Gloo's threads) and
// waited for in order, so the reduction of one bucket overlaps the copying of the next.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import type { Module } from '../nn/index.js';
import { getLocalRank, group as defaultGroupOf, initProcessGroup, isInitialized, type Backend, type ProcessGroup, type Work } from './process-group.js';
import { distEnv } from './env.js';

export const DEFAULT_BUCKET_CAP_MB = 25;
/** DDP's first bucket is small so that its reduction starts early (dist._DEFAULT_FIRST_BUCKET_BYTES). */
export const DEFAULT_FIRST_BUCKET_MB = 1;

/**
 * Groups tensors (given in parameter order) into buckets in reverse order, each holding tensors of
 * one dtype and device, closed once it holds at least its cap in bytes (the first cap for the first).
 * Returns lists of indices into `tensors`.
 */
export function assignBuckets(tensors: Tensor[], capBytes = DEFAULT_BUCKET_CAP_MB * 2 ** 20, firstCapBytes = DEFAULT_FIRST_BUCKET_MB * 2 ** 20): number[][] {
  const buckets: number[][] = [];
  const open = new Map<string, { idx: number[]; bytes: number }>();
  for (let i = tensors.length - 1; i >= 0; i--) {
    const t = tensors[i]!;
    const key = `${t.dtype}@${t.device}`;
    let b = open.get(key);
    if (!b) open.set(key, b = { idx: [], bytes: 0 });
    b.idx.push(i);
    b.bytes += t.numel() * torch.elementSize(t.dtype);
    if (b.bytes >= (buckets.length === 0 ? firstCapBytes : capBytes)) {
      buckets.push(b.idx);
      open.delete(key);
    }
  }
  for (const b of open.values()) buckets.push(b.idx);
  return buckets;
}

/** Copies rank `src`'s values of `tensors` into every rank's, a few large broadcasts instead of one per tensor. */
export function broadcastCoalesced(group: ProcessGroup, tensors: Tensor[], src = 0, capBytes = 250 * 2 ** 20): void {
  if (group.size === 1 || tensors.length === 0) return;
  torch.noGrad(() => {
    for (const bucket of assignBuckets(tensors, capBytes, capBytes)) {
      torch.tidy(() => {
        const parts = bucket.map((i) => tensors[i]!);
        const flat = torch.cat(parts.map((t) => t.detach().reshape(-1)));
        group.broadcast(flat, src).wait();
        let off = 0;
        for (const t of parts) {
          const n = t.numel();
          t.copy_(flat.narrow(0, off, n).view(...t.shape));
          off += n;
        }
      });
    }
  });
}

/** A 64-bit fingerprint of the names, shapes and dtypes of a model's parameters and buffers. */
function fingerprint(model: Module): [number, number, string] {
  const items: string[] = [];
  for (const [n, p] of model.namedParameters()) items.push(`p:${n}:${p.dtype}:${p.shape.join('x')}`);
  for (const [n, b] of model.namedBuffers()) items.push(`b:${n}:${b.dtype}:${b.shape.join('x')}`);
  const text = items.join(';');
  // FNV-1a, two 32-bit halves (exact in float64)
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ c, 0x811c9dc5) >>> 0;
  }
  return [h1, h2, `${items.length} tensors`];
}

/** Throws, naming the first rank whose model differs from rank 0's in parameter names, shapes or dtypes. */
export function checkSameModel(group: ProcessGroup, model: Module): void {
  if (group.size === 1) return;
  const [h1, h2] = fingerprint(model);
  torch.tidy(() => {
    const mine = torch.tensor([h1, h2], { dtype: 'float64' });
    const all = Array.from({ length: group.size }, () => torch.zeros([2], { dtype: 'float64' }));
    group.allGather(all, mine).wait();
    const ref = all[0]!.toTypedArray();
    for (let r = 1; r < group.size; r++) {
      const v = all[r]!.toTypedArray();
      if (v[0] !== ref[0] || v[1] !== ref[1]) {
        throw new Error(`rank ${r}'s model differs from rank 0's (parameter or buffer names, shapes or dtypes); every rank must build the same model`);
      }
    }
  });
}

export interface DDPOptions {
  bucketCapMB?: number;
  /** broadcast buffers (BatchNorm running statistics) from rank 0 before each forward, as DDP's broadcast_buffers */
  broadcastBuffers?: boolean;
}

/**
 * The data-parallel side of a model (torch.nn.parallel.DistributedDataParallel without the forward
 * wrapper): construct it after the model is built and before training; call `reduceGradients()`
 * after each backward and before the optimizer step.
 */
export class DistributedDataParallel {
  readonly params: Tensor[];
  readonly buckets: number[][];
  /** seconds spent waiting for gradient reductions, and the count of reductions, since the last reset */
  commSeconds = 0;
  reductions = 0;

  constructor(readonly module: Module, readonly group: ProcessGroup, readonly o: DDPOptions = {}) {
    checkSameModel(group, module);
    this.params = module.parameters().filter((p) => p.requiresGrad);
    const cap = (o.bucketCapMB ?? DEFAULT_BUCKET_CAP_MB) * 2 ** 20;
    this.buckets = assignBuckets(this.params, cap, Math.min(cap, DEFAULT_FIRST_BUCKET_MB * 2 ** 20));
    // every rank starts from rank 0's weights and buffers
    broadcastCoalesced(group, [...module.parameters(), ...module.buffers()], 0);
  }

  /** Sums numbers across the ranks (metric totals). */
  sumNumbers(values: number[]): number[] {
    return allReduceNumbers(this.group, values);
  }

  get worldSize(): number {
    return this.group.size;
  }

  /** Before a forward: rank 0's buffers to every rank (only with broadcastBuffers). */
  syncBuffers(): void {
    if (this.o.broadcastBuffers) broadcastCoalesced(this.group, this.module.buffers(), 0);
  }

  /**
   * Averages every trainable parameter's gradient across the ranks. A parameter without a gradient
   * on this rank contributes zeros (and then holds the average of the others').
   */
  reduceGradients(): void {
    if (this.group.size === 1) return;
    const t0 = performance.now();
    torch.noGrad(() => torch.tidy(() => {
      const inflight: { flat: Tensor; grads: Tensor[]; params: Tensor[]; work: Work }[] = [];
      for (const bucket of this.buckets) {
        const params = bucket.map((i) => this.params[i]!);
        const grads = params.map((p) => p.grad ?? torch.zerosLike(p));
        const flat = torch.cat(grads.map((g) => g.reshape(-1)));
        inflight.push({ flat, grads, params, work: this.group.allReduce(flat, 'sum') });
      }
      for (const { flat, grads, params, work } of inflight) {
        work.wait();
        flat.div_(this.group.size);
        let off = 0;
        for (let k = 0; k < params.length; k++) {
          const p = params[k]!;
          const n = p.numel();
          const avg = flat.narrow(0, off, n).view(...p.shape);
          off += n;
          if (p.grad === undefined) p.grad = avg.clone();
          else grads[k]!.copy_(avg);
        }
      }
    }));
    this.commSeconds += (performance.now() - t0) / 1000;
    this.reductions++;
  }
}

/** Sums numbers across the group (float64), e.g. metric totals; every rank gets the sums. */
export function allReduceNumbers(group: ProcessGroup, values: number[]): number[] {
  if (group.size === 1) return [...values];
  return torch.tidy(() => {
    // NCCL reduces CUDA tensors only: this rank's GPU is its local rank
    const t = group.backend === 'nccl' ? torch.tensor(values, { dtype: 'float64' }).to(`cuda:${getLocalRank()}`) : torch.tensor(values, { dtype: 'float64' });
    group.allReduce(t, 'sum').wait();
    return Array.from(t.cpu().toTypedArray() as Float64Array);
  });
}

export interface DataParallelRun {
  group: ProcessGroup;
  rank: number;
  worldSize: number;
  localRank: number;
  /** the global --batch-size divided among the ranks */
  perRankBatch: number;
}

/**
 * For a training command: when this process was launched as one rank of a distributed run (awty
 * launch, torchrun, srun), checks that the global batch divides among the ranks, joins the default
 * process group, and returns the run; otherwise undefined (a single-process run).
 */
export function joinDataParallel(o: { batchSize: number; timeoutSeconds?: number; masterAddr?: string; masterPort?: number; env?: NodeJS.ProcessEnv; backend?: Backend }): DataParallelRun | undefined {
  const env = distEnv(o.env ?? process.env, { ...(o.masterAddr ? { masterAddr: o.masterAddr } : {}), ...(o.masterPort ? { masterPort: o.masterPort } : {}) });
  if (!env) return undefined;
  if (o.batchSize % env.worldSize !== 0) {
    throw new Error(`--batch-size ${o.batchSize} is the global batch and must divide evenly among the ${env.worldSize} processes (each takes batch-size / world size); ` +
      `try ${Math.max(env.worldSize, Math.round(o.batchSize / env.worldSize) * env.worldSize)}`);
  }
  if (o.timeoutSeconds !== undefined && !(o.timeoutSeconds > 0)) throw new Error(`--dist-timeout must be a positive number of seconds, got ${o.timeoutSeconds}`);
  const group = isInitialized() ? defaultGroupOf() : initProcessGroup({ env, backend: o.backend ?? 'gloo', ...(o.timeoutSeconds !== undefined ? { timeoutSeconds: o.timeoutSeconds } : {}) });
  return { group, rank: env.rank, worldSize: env.worldSize, localRank: env.localRank, perRankBatch: o.batchSize / env.worldSize };
}
