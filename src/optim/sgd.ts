// SGD with momentum, dampening, Nesterov momentum and L2 weight decay, with torch.optim.SGD's
// semantics and floating-point order (PyTorch 1.13's `_single_tensor_sgd`).
import type { Tensor } from '../torch/index.js';
import { Optimizer, checkBoolean, checkForeach, checkRange, checkUnsupported, type ParamGroup, type Params } from './optimizer.js';

export interface SGDGroupOptions {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  maximize: boolean;
  /** Kept for state-dict compatibility; the update is the same single-tensor loop either way. */
  foreach: boolean | null;
  differentiable: boolean;
}
/** `lr` is required, in the options or in every parameter group (as in PyTorch). */
export type SGDOptions = Partial<SGDGroupOptions>;

/**
 * torch.optim.SGD. Defaults: momentum 0, dampening 0, weightDecay 0, nesterov false. With momentum
 * the first step sets the buffer to (a copy of) the gradient; later steps do
 * `buf = momentum * buf + (1 - dampening) * grad`. Parameters step by `-lr * buf` (or, with Nesterov,
 * by `-lr * (grad + momentum * buf)`).
 */
export class SGD extends Optimizer<SGDGroupOptions> {
  constructor(params: Params<SGDGroupOptions>, options: SGDOptions = {}) {
    const defaults: Omit<SGDGroupOptions, 'lr'> & { lr?: number } = {
      momentum: options.momentum ?? 0,
      dampening: options.dampening ?? 0,
      weightDecay: options.weightDecay ?? 0,
      nesterov: options.nesterov ?? false,
      maximize: options.maximize ?? false,
      foreach: options.foreach ?? null,
      differentiable: options.differentiable ?? false,
    };
    super(params, options.lr === undefined ? defaults : { lr: options.lr, ...defaults });
  }

  protected validateGroup(g: SGDGroupOptions, where: string): void {
    checkRange(where, 'lr', g.lr, 0);
    checkRange(where, 'momentum', g.momentum, 0);
    checkRange(where, 'dampening', g.dampening, -Infinity);
    checkRange(where, 'weight_decay', g.weightDecay, 0);
    checkBoolean(where, 'nesterov', g.nesterov);
    checkBoolean(where, 'maximize', g.maximize);
    checkForeach(where, g.foreach);
    checkUnsupported(where, 'differentiable', g.differentiable);
    if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0)) throw new Error(`${where}: Nesterov momentum requires a momentum and zero dampening`);
  }

  protected validateState(s: Record<string, Tensor | number | null>, _g: SGDGroupOptions, where: string): void {
    for (const k of Object.keys(s)) if (k !== 'momentum_buffer') throw new Error(`${where} has an unknown key '${k}' (SGD keeps only momentum_buffer)`);
    if (typeof s.momentum_buffer === 'number') throw new TypeError(`${where}.momentum_buffer must be a Tensor or null`);
  }

  protected updateGroup(group: ParamGroup<SGDGroupOptions>): void {
    const { lr, momentum, dampening, weightDecay, nesterov, maximize } = group;
    for (const param of group.params) {
      const g = param.grad;
      if (g === undefined) continue;
      const state = this.stateOf(param);
      let dP = maximize ? g.neg() : g;
      if (weightDecay !== 0) dP = dP.add(param, weightDecay);
      if (momentum !== 0) {
        let buf = state.momentum_buffer ?? null;
        if (buf === null) {
          buf = dP.clone().keep();
          state.momentum_buffer = buf;
        } else {
          buf.mul_(momentum).add_(dP, 1 - dampening);
        }
        dP = nesterov ? dP.add(buf, momentum) : buf;
      } else if (state.momentum_buffer === undefined) {
        state.momentum_buffer = null;
      }
      param.add_(dP, -lr);
    }
  }
}
