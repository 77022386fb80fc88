// Adam and AdamW with torch.optim's semantics and floating-point order (PyTorch 1.13's
// `_single_tensor_adam` / `_single_tensor_adamw`, the default non-capturable path).
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import {
  Optimizer,
  checkBoolean,
  checkForeach,
  checkRange,
  checkUnsupported,
  type ParamGroup,
  type ParamState,
  type Params,
} from './optimizer.js';

export interface AdamGroupOptions {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  maximize: boolean;
  /** Kept for state-dict compatibility; the update is the same single-tensor loop either way. */
  foreach: boolean | null;
  capturable: boolean;
  differentiable: boolean;
  fused: boolean;
}
export type AdamOptions = Partial<AdamGroupOptions>;

export interface AdamWGroupOptions {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  /** Kept for state-dict compatibility; the update is the same single-tensor loop either way. */
  foreach: boolean | null;
  maximize: boolean;
  capturable: boolean;
}
export type AdamWOptions = Partial<AdamWGroupOptions>;

type AdamLike = AdamGroupOptions | AdamWGroupOptions;

function validateAdamGroup(g: AdamLike, where: string): void {
  checkRange(where, 'lr', g.lr, 0);
  checkRange(where, 'eps', g.eps, 0);
  if (!Array.isArray(g.betas) || g.betas.length !== 2) throw new TypeError(`${where}: betas must be a pair [beta1, beta2]`);
  checkRange(where, 'beta parameter at index 0', g.betas[0], 0, 1);
  checkRange(where, 'beta parameter at index 1', g.betas[1], 0, 1);
  checkRange(where, 'weight_decay', g.weightDecay, 0);
  checkBoolean(where, 'amsgrad', g.amsgrad);
  checkBoolean(where, 'maximize', g.maximize);
  checkForeach(where, g.foreach);
  checkUnsupported(where, 'capturable', g.capturable);
  if ('differentiable' in g) checkUnsupported(where, 'differentiable', g.differentiable);
  if ('fused' in g) checkUnsupported(where, 'fused', g.fused);
}

function validateAdamState(s: Record<string, Tensor | number | null>, g: AdamLike, where: string): void {
  const need = ['step', 'exp_avg', 'exp_avg_sq', ...(g.amsgrad ? ['max_exp_avg_sq'] : [])];
  for (const k of need) if (s[k] === undefined || s[k] === null) throw new Error(`${where} lacks '${k}'`);
  for (const k of Object.keys(s)) {
    if (!['step', 'exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'].includes(k)) throw new Error(`${where} has an unknown key '${k}'`);
  }
}

/**
 * The shared Adam/AdamW loop. `decoupled` selects AdamW (the parameter shrinks by lr * weightDecay
 * before the moment update) over Adam (weightDecay * param is added to the gradient).
 */
function adamUpdate(stateOf: (p: Tensor) => ParamState, group: ParamGroup<AdamLike>, decoupled: boolean): void {
  const [beta1, beta2] = group.betas;
  const { lr, eps, weightDecay, amsgrad, maximize } = group;
  for (const param of group.params) {
    const g = param.grad;
    if (g === undefined) continue;
    const state = stateOf(param);
    if (state.step === undefined) {
      state.step = torch.zeros([], { dtype: 'float32' }).keep();
      state.exp_avg = torch.zerosLike(param).keep();
      state.exp_avg_sq = torch.zerosLike(param).keep();
      if (amsgrad) state.max_exp_avg_sq = torch.zerosLike(param).keep();
    }
    const stepT = state.step!;
    const expAvg = state.exp_avg!;
    const expAvgSq = state.exp_avg_sq!;
    let grad = maximize ? g.neg() : g;

    stepT.add_(1);
    if (decoupled) {
      if (weightDecay !== 0) param.mul_(1 - lr * weightDecay);
    } else if (weightDecay !== 0) {
      grad = grad.add(param, weightDecay);
    }

    expAvg.mul_(beta1).add_(grad, 1 - beta1);
    expAvgSq.mul_(beta2).addcmul_(grad, grad, 1 - beta2);

    const step = stepT.item();
    const biasCorrection1 = 1 - beta1 ** step;
    const biasCorrection2 = 1 - beta2 ** step;
    const stepSize = lr / biasCorrection1;
    const biasCorrection2Sqrt = Math.sqrt(biasCorrection2);

    let denom: Tensor;
    if (amsgrad) {
      if (!state.max_exp_avg_sq) state.max_exp_avg_sq = torch.zerosLike(param).keep();
      const maxSq = state.max_exp_avg_sq;
      maxSq.maximum_(expAvgSq);
      denom = maxSq.sqrt().div_(biasCorrection2Sqrt).add_(eps);
    } else {
      denom = expAvgSq.sqrt().div_(biasCorrection2Sqrt).add_(eps);
    }
    param.addcdiv_(expAvg, denom, -stepSize);
  }
}

/**
 * torch.optim.Adam: L2 weight decay is added to the gradient. Defaults: lr 1e-3, betas [0.9, 0.999],
 * eps 1e-8, weightDecay 0, amsgrad false, maximize false.
 */
export class Adam extends Optimizer<AdamGroupOptions> {
  constructor(params: Params<AdamGroupOptions>, options: AdamOptions = {}) {
    super(params, {
      lr: options.lr ?? 1e-3,
      betas: options.betas ? [options.betas[0], options.betas[1]] : [0.9, 0.999],
      eps: options.eps ?? 1e-8,
      weightDecay: options.weightDecay ?? 0,
      amsgrad: options.amsgrad ?? false,
      maximize: options.maximize ?? false,
      foreach: options.foreach ?? null,
      capturable: options.capturable ?? false,
      differentiable: options.differentiable ?? false,
      fused: options.fused ?? false,
    });
  }
  protected validateGroup(group: AdamGroupOptions, where: string): void {
    validateAdamGroup(group, where);
  }
  protected validateState(s: Record<string, Tensor | number | null>, group: AdamGroupOptions, where: string): void {
    validateAdamState(s, group, where);
  }
  protected updateGroup(group: ParamGroup<AdamGroupOptions>): void {
    adamUpdate((p) => this.stateOf(p), group, false);
  }
}

/**
 * torch.optim.AdamW: decoupled weight decay (the parameter is multiplied by 1 - lr * weightDecay
 * before the Adam update). Defaults as Adam's except weightDecay 1e-2.
 */
export class AdamW extends Optimizer<AdamWGroupOptions> {
  constructor(params: Params<AdamWGroupOptions>, options: AdamWOptions = {}) {
    super(params, {
      lr: options.lr ?? 1e-3,
      betas: options.betas ? [options.betas[0], options.betas[1]] : [0.9, 0.999],
      eps: options.eps ?? 1e-8,
      weightDecay: options.weightDecay ?? 1e-2,
      amsgrad: options.amsgrad ?? false,
      foreach: options.foreach ?? null,
      maximize: options.maximize ?? false,
      capturable: options.capturable ?? false,
    });
  }
  protected validateGroup(group: AdamWGroupOptions, where: string): void {
    validateAdamGroup(group, where);
  }
  protected validateState(s: Record<string, Tensor | number | null>, group: AdamWGroupOptions, where: string): void {
    validateAdamState(s, group, where);
  }
  protected updateGroup(group: ParamGroup<AdamWGroupOptions>): void {
    adamUpdate((p) => this.stateOf(p), group, true);
  }
}
