// Optimizer: parameter groups, per-parameter state, zeroGrad, and state dicts in PyTorch's layout.
//
// Conventions (mirroring torch.optim):
// - A parameter group is `{ params, ...hyperparameters }`; options given to the constructor are the
//   defaults, and each group may override any of them. In TypeScript the hyperparameter names are
//   camelCase (`weightDecay`); in `stateDict()` they are PyTorch's snake_case (`weight_decay`), so a
//   state dict reads and writes exactly like `torch.optim.Optimizer.state_dict()`.
// - Per-parameter state (`optimizer.state`) is keyed by the parameter tensor and uses PyTorch's
//   names (`step`, `exp_avg`, `momentum_buffer`, ...). State tensors are owned by the optimizer: they
//   are taken out of every memory scope (`keep()`), and freed by `loadStateDict` (old state) or
//   `dispose()`.
// - `step()` runs with gradient recording off and inside a memory scope, so every temporary of the
//   update is freed when it returns.
import * as torch from '../torch/index.js';
import { Tensor } from '../torch/index.js';

/** Hyperparameters every optimizer has. */
export interface BaseGroupOptions {
  lr: number;
}

/** One parameter group: its tensors and its hyperparameters (camelCase). */
export type ParamGroup<O extends BaseGroupOptions> = O & {
  params: Tensor[];
  /** Set by learning-rate schedulers: the lr the schedule starts from. */
  initialLr?: number;
};

/** A parameter group as given to a constructor: tensors plus any hyperparameters to override. */
export type ParamGroupSpec<O extends BaseGroupOptions> = Partial<O> & {
  params: Tensor[] | Tensor;
  initialLr?: number;
};

/** Parameters to optimize: a list of tensors (one group) or a list of groups. */
export type Params<O extends BaseGroupOptions> = Tensor[] | ParamGroupSpec<O>[];

/** State of one parameter, under PyTorch's names. */
export type ParamState = Record<string, Tensor | null>;

/** `param_groups` entry of a state dict: PyTorch's snake_case keys, `params` as global indices. */
export type StateDictGroup = Record<string, unknown> & { params: number[] };

/** An optimizer state dict in PyTorch's layout. */
export interface OptimizerStateDict {
  state: Record<number, Record<string, Tensor | number | null>>;
  param_groups: StateDictGroup[];
}

/** `weightDecay` -> `weight_decay`. */
export function toSnakeCase(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
/** `weight_decay` -> `weightDecay`. */
export function toCamelCase(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function copyValue(v: unknown): unknown {
  return Array.isArray(v) ? [...(v as unknown[])] : v;
}

export abstract class Optimizer<O extends BaseGroupOptions> {
  /** The constructor's options with every default filled in (`lr` may be absent for SGD). */
  readonly defaults: Omit<O, 'lr'> & { lr?: number };
  readonly paramGroups: ParamGroup<O>[] = [];
  /** Per-parameter state, keyed by the parameter tensor. */
  readonly state = new Map<Tensor, ParamState>();

  protected constructor(params: Params<O>, defaults: Omit<O, 'lr'> & { lr?: number }) {
    this.defaults = defaults;
    if (!Array.isArray(params)) throw new TypeError(`${this.name}: params must be an array of tensors or of parameter groups`);
    if (params.length === 0) throw new Error(`${this.name}: got an empty parameter list`);
    const groups: ParamGroupSpec<O>[] = params.every((p) => p instanceof Tensor)
      ? [{ params: params as Tensor[] } as ParamGroupSpec<O>]
      : (params as ParamGroupSpec<O>[]);
    for (const g of groups) this.addParamGroup(g);
  }

  /** The optimizer's name in messages (`Adam`, `SGD`, ...). */
  get name(): string {
    return this.constructor.name;
  }

  /** Throws a clear error when a group's hyperparameters are out of range. */
  protected abstract validateGroup(group: O, where: string): void;

  /** Updates the parameters of one group from their gradients (called with grad off, in a scope). */
  protected abstract updateGroup(group: ParamGroup<O>): void;

  /**
   * Throws when a loaded state entry does not fit its parameter (missing keys, wrong kinds). Shapes
   * of tensor entries other than `step` are checked by the caller.
   */
  protected abstract validateState(state: Record<string, Tensor | number | null>, group: O, where: string): void;

  /** Adds a parameter group (torch.optim.Optimizer.add_param_group). */
  addParamGroup(spec: ParamGroupSpec<O>): void {
    const where = `${this.name}: parameter group ${this.paramGroups.length}`;
    if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) throw new TypeError(`${where} must be an object { params, ... }`);
    const params = spec.params instanceof Tensor ? [spec.params] : spec.params;
    if (!Array.isArray(params)) throw new TypeError(`${where}: params must be a tensor or an array of tensors`);
    params.forEach((p, i) => {
      if (!(p instanceof Tensor)) throw new TypeError(`${where}: params[${i}] is not a Tensor`);
      if (p.isDisposed) throw new Error(`${where}: params[${i}] is a disposed tensor`);
      if (!p.isLeaf) throw new Error(`${where}: params[${i}] is not a leaf tensor (can't optimize a non-leaf Tensor)`);
    });
    if (new Set(params).size !== params.length) throw new Error(`${where} lists the same parameter more than once`);
    for (const g of this.paramGroups) {
      if (g.params.some((p) => params.includes(p))) throw new Error(`${where}: some parameters appear in more than one parameter group`);
    }
    const merged: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(this.defaults)) merged[k] = copyValue(v);
    for (const [k, v] of Object.entries(spec)) if (k !== 'params' && v !== undefined) merged[k] = copyValue(v);
    if (typeof merged.lr !== 'number') throw new Error(`${where} has no lr: give lr in the optimizer's options or in the group`);
    this.validateGroup(merged as unknown as O, where);
    this.paramGroups.push({ ...(merged as unknown as O), params: [...params] });
  }

  /**
   * Clears the gradients of all parameters. With `setToNone` (the default, as in PyTorch 2; PyTorch
   * 1.13 defaulted to false) the gradients are removed, so the next backward allocates fresh ones and
   * `step()` skips parameters that got none; with `false` they are zeroed in place.
   */
  zeroGrad(setToNone = true): void {
    torch.noGrad(() => {
      for (const group of this.paramGroups) {
        for (const p of group.params) {
          const g = p.grad;
          if (g === undefined) continue;
          if (setToNone) p.grad = undefined;
          else g.zero_();
        }
      }
    });
  }

  /**
   * One optimization step. `closure` (optional) re-evaluates the model with gradients on and returns
   * the loss, which `step` returns. Parameters without a gradient are skipped.
   */
  step<L = undefined>(closure?: () => L): L | undefined {
    const loss = closure ? torch.enableGrad(closure) : undefined;
    torch.noGrad(() =>
      torch.tidy(() => {
        for (const group of this.paramGroups) this.updateGroup(group);
      }),
    );
    return loss;
  }

  /** The state of `p`, created empty on first use. */
  protected stateOf(p: Tensor): ParamState {
    let s = this.state.get(p);
    if (!s) {
      s = {};
      this.state.set(p, s);
    }
    return s;
  }

  /**
   * The optimizer's state in PyTorch's layout: `state` keyed by the parameter's index (counting
   * through the groups in order) and `param_groups` with snake_case hyperparameters and `params` as
   * those indices. The tensors are the optimizer's own (not copies), as in PyTorch: save them, do not
   * dispose them.
   */
  stateDict(): OptimizerStateDict {
    const index = new Map<Tensor, number>();
    const paramGroups: StateDictGroup[] = this.paramGroups.map((g) => {
      const packed: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(g)) if (k !== 'params') packed[toSnakeCase(k)] = copyValue(v);
      packed.params = g.params.map((p) => {
        if (!index.has(p)) index.set(p, index.size);
        return index.get(p)!;
      });
      return packed as StateDictGroup;
    });
    const state: OptimizerStateDict['state'] = {};
    for (const [p, s] of this.state) {
      const i = index.get(p);
      if (i !== undefined) state[i] = { ...s };
    }
    return { state, param_groups: paramGroups };
  }

  /**
   * Loads a state dict made by `stateDict()` here or by PyTorch's `optimizer.state_dict()` (with its
   * tensors converted to Tensors; `step` may also be a plain number). The group hyperparameters are
   * replaced by the saved ones; the state tensors are copied, cast to their parameter's dtype and
   * device (except `step`, kept as a float32 CPU scalar). Everything is checked before anything
   * changes: group count, parameter counts, state keys and tensor shapes.
   */
  loadStateDict(sd: OptimizerStateDict): void {
    const name = this.name;
    if (sd === null || typeof sd !== 'object' || !Array.isArray(sd.param_groups) || sd.state === null || typeof sd.state !== 'object') {
      throw new TypeError(`${name}.loadStateDict: expected { state: {...}, param_groups: [...] }`);
    }
    const saved = sd.param_groups;
    if (saved.length !== this.paramGroups.length) {
      throw new Error(`${name}.loadStateDict: the state dict has ${saved.length} parameter group(s), the optimizer has ${this.paramGroups.length}`);
    }
    const idMap = new Map<number, { param: Tensor; group: number }>();
    const newGroups: ParamGroup<O>[] = saved.map((sg, gi) => {
      const where = `${name}.loadStateDict: param_groups[${gi}]`;
      const ours = this.paramGroups[gi]!;
      if (sg === null || typeof sg !== 'object' || !Array.isArray(sg.params)) throw new TypeError(`${where} has no params list`);
      if (sg.params.length !== ours.params.length) {
        throw new Error(`${where} has ${sg.params.length} parameter(s), the optimizer's group ${gi} has ${ours.params.length}`);
      }
      sg.params.forEach((id, j) => {
        if (!Number.isInteger(id)) throw new TypeError(`${where}.params[${j}] is not an integer index`);
        if (idMap.has(id)) throw new Error(`${where}: parameter index ${id} appears twice`);
        idMap.set(id, { param: ours.params[j]!, group: gi });
      });
      const merged: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(this.defaults)) merged[k] = copyValue(v);
      for (const [k, v] of Object.entries(sg)) if (k !== 'params') merged[toCamelCase(k)] = copyValue(v);
      if (typeof merged.lr !== 'number') throw new Error(`${where} has no lr`);
      this.validateGroup(merged as unknown as O, where);
      return { ...(merged as unknown as O), params: ours.params };
    });

    const entries: [Tensor, Record<string, Tensor | number | null>][] = [];
    for (const [key, value] of Object.entries(sd.state)) {
      const where = `${name}.loadStateDict: state[${key}]`;
      const id = Number(key);
      const target = idMap.get(id);
      if (!target) throw new Error(`${where}: no parameter group lists parameter index ${key}`);
      if (value === null || typeof value !== 'object') throw new TypeError(`${where} must be an object of tensors`);
      this.validateState(value, newGroups[target.group]!, where);
      for (const [k, v] of Object.entries(value)) {
        if (v === null) continue;
        if (k === 'step' && typeof v === 'number') continue;
        if (!(v instanceof Tensor)) throw new TypeError(`${where}.${k} must be a Tensor${k === 'step' ? ' or a number' : ''}`);
        if (v.isDisposed) throw new Error(`${where}.${k} is a disposed tensor`);
        if (k === 'step') {
          if (v.numel() !== 1) throw new Error(`${where}.step must hold one number, got shape [${v.shape.join(', ')}]`);
        } else if (!sameShape(v.shape, target.param.shape)) {
          throw new Error(`${where}.${k} has shape [${v.shape.join(', ')}], its parameter has shape [${target.param.shape.join(', ')}]`);
        }
      }
      entries.push([target.param, value]);
    }

    // All checked: copy the tensors, then swap the state and groups.
    const newState = torch.noGrad(() =>
      torch.tidy(() => {
        const out = new Map<Tensor, ParamState>();
        for (const [param, value] of entries) {
          const s: ParamState = {};
          for (const [k, v] of Object.entries(value)) {
            if (v === null) s[k] = null;
            else if (k === 'step') s[k] = (typeof v === 'number' ? torch.tensor(v, { dtype: 'float32' }) : (v as Tensor).to({ dtype: 'float32', device: 'cpu', copy: true }).reshape([])).keep();
            else {
              const t = v as Tensor;
              const isFloat = torch.isFloatingDType(param.dtype);
              s[k] = t.to({ dtype: isFloat ? param.dtype : t.dtype, device: param.device, copy: true }).keep();
            }
          }
          out.set(param, s);
        }
        return out;
      }),
    );
    this.disposeState();
    for (const [p, s] of newState) this.state.set(p, s);
    this.paramGroups.splice(0, this.paramGroups.length, ...newGroups);
  }

  /** Frees the state tensors (the optimizer starts afresh on its next step). */
  disposeState(): void {
    for (const s of this.state.values()) for (const t of Object.values(s)) if (t && !t.isDisposed) t.dispose();
    this.state.clear();
  }

  /** Frees the optimizer's state tensors; the parameters are untouched. */
  dispose(): void {
    this.disposeState();
  }
}

/** Checks a number option: finite and at least `min` (and below `below` when given). */
export function checkRange(where: string, name: string, value: unknown, min: number, below?: number): void {
  if (typeof value !== 'number' || Number.isNaN(value)) throw new TypeError(`${where}: ${name} must be a number, got ${String(value)}`);
  if (value < min || (below !== undefined && !(value < below))) {
    throw new RangeError(`${where}: invalid ${name} ${value} (must be ${below === undefined ? `>= ${min}` : `in [${min}, ${below})`})`);
  }
}

export function checkBoolean(where: string, name: string, value: unknown): void {
  if (typeof value !== 'boolean') throw new TypeError(`${where}: ${name} must be true or false, got ${String(value)}`);
}

/** capturable / differentiable / fused: accepted for state-dict compatibility, only `false` is implemented. */
export function checkUnsupported(where: string, name: string, value: unknown): void {
  if (value === undefined) return;
  checkBoolean(where, name, value);
  if (value) throw new Error(`${where}: ${name}=true is not supported (only the single-tensor update is implemented)`);
}

export function checkForeach(where: string, value: unknown): void {
  if (value !== null && value !== undefined && typeof value !== 'boolean') throw new TypeError(`${where}: foreach must be null, true or false`);
}
