// Synchronised BatchNorm (torch.nn.SyncBatchNorm): in training, every rank normalises with the mean
// and variance of the whole global batch, and the running statistics follow the global batch, so N
// processes with batch B/N train exactly as one process with batch B. In eval mode, or in a group of
// one, it is BatchNorm2d.
//
// How: the per-channel sums are reduced across the ranks with a differentiable allreduce (the
// gradient of the reduced sums is itself summed across the ranks in backward, inside libtorch's
// autograd), and the rest is ordinary differentiable tensor arithmetic, so autograd yields
// SyncBatchNorm's gradient: the variance is a second reduction of the centred squares (two passes, as
// accurate as BatchNorm's own), and the running variance takes the unbiased global variance.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { BatchNorm2d, Module, type BatchNormOptions } from '../nn/index.js';
import type { ProcessGroup } from './process-group.js';
import { group as defaultGroup, isInitialized } from './process-group.js';

export class SyncBatchNorm extends BatchNorm2d {
  /** the group whose ranks share statistics (default: the default process group, when there is one) */
  processGroup: ProcessGroup | undefined;

  constructor(numFeatures: number, o: BatchNormOptions & { processGroup?: ProcessGroup } = {}) {
    super(numFeatures, o);
    this.processGroup = o.processGroup;
  }

  private activeGroup(): ProcessGroup | undefined {
    const g = this.processGroup ?? (isInitialized() ? defaultGroup() : undefined);
    return g && g.size > 1 ? g : undefined;
  }

  override forward(x: Tensor): Tensor {
    const group = this.training ? this.activeGroup() : undefined;
    if (!group) return super.forward(x);
    this.checkInput(x);
    const c = x.shape[1]!;
    if (c !== this.numFeatures) throw new Error(`SyncBatchNorm: expected ${this.numFeatures} channels, got shape [${x.shape.join(', ')}]`);
    let factor = this.momentum ?? 0;
    if (this.trackRunningStats) {
      const nbt = this.getBuffer('num_batches_tracked')!;
      torch.noGrad(() => nbt.add_(1));
      if (this.momentum === null) factor = 1 / nbt.item();
    }
    const dims = [0, ...Array.from({ length: x.ndim - 2 }, (_, i) => i + 2)];
    const shape = [1, c, ...Array.from({ length: x.ndim - 2 }, () => 1)];
    const local = x.numel() / c;
    let mean: Tensor | undefined;
    let variance: Tensor | undefined;
    let count = 0;
    const y = torch.tidy(() => {
      // one reduction carries the sums and the sample count (a rank may hold a smaller last batch)
      const sums = group.allReduceWithGrad(torch.cat([x.sum(dims), torch.full([1], local, { dtype: x.dtype })]));
      count = torch.noGrad(() => sums.narrow(0, c, 1).item());
      if (count <= 1) throw new Error(`SyncBatchNorm: expected more than 1 value per channel across the ranks when training, got ${count}`);
      const m = sums.narrow(0, 0, c).div(count);
      const centred = x.sub(m.view(...shape));
      const v = group.allReduceWithGrad(centred.square().sum(dims)).div(count);
      let out = centred.mul(v.add(this.eps).rsqrt().view(...shape));
      const w = this.getParameter('weight');
      const b = this.getParameter('bias');
      if (w) out = out.mul(w.view(...shape));
      if (b) out = out.add(b.view(...shape));
      mean = m.detach().keep();
      variance = v.detach().keep();
      return out;
    });
    if (this.trackRunningStats) {
      torch.noGrad(() => torch.tidy(() => {
        this.getBuffer('running_mean')!.mul_(1 - factor).add_(mean!.mul(factor));
        this.getBuffer('running_var')!.mul_(1 - factor).add_(variance!.mul(factor * count / (count - 1)));
      }));
    }
    mean!.dispose();
    variance!.dispose();
    return y;
  }
}

/**
 * Replaces every BatchNorm2d of `module` (and `module` itself if it is one) by a SyncBatchNorm that
 * holds the same parameters and running statistics (torch.nn.SyncBatchNorm.convert_sync_batchnorm).
 * Call it before the optimizer and the data-parallel wrapper are built. Returns the converted module.
 */
export function convertSyncBatchnorm<M extends Module>(module: M, processGroup?: ProcessGroup): M | SyncBatchNorm {
  const convert = (m: Module): Module => {
    if (m instanceof BatchNorm2d && !(m instanceof SyncBatchNorm)) {
      const s = new SyncBatchNorm(m.numFeatures, { eps: m.eps, momentum: m.momentum, affine: m.affine, trackRunningStats: m.trackRunningStats, ...(processGroup ? { processGroup } : {}) });
      for (const name of ['weight', 'bias']) {
        const p = m.getParameter(name);
        if (!p) continue;
        const frozen = !p.requiresGrad;
        s.registerParameter(name, p); // the same tensor: the optimizer and the checkpoint see no change
        if (frozen) p.requiresGrad_(false);
      }
      for (const name of ['running_mean', 'running_var', 'num_batches_tracked']) {
        const b = m.getBuffer(name);
        if (b) s.registerBuffer(name, b);
      }
      s.train(m.training);
      return s;
    }
    for (const [name, child] of m.namedChildren()) {
      const c = convert(child);
      if (c !== child) m.registerModule(name, c);
    }
    return m;
  };
  return convert(module) as M | SyncBatchNorm;
}
