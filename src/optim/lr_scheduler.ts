// Learning-rate schedulers with torch.optim.lr_scheduler's semantics (PyTorch 1.13): constructing a
// scheduler records each group's `initialLr` and performs the initial step (lastEpoch -1 -> 0);
// each `step()` advances lastEpoch by one and writes the new lr into every parameter group, using the
// same recursive ("chainable") formulas as PyTorch so the values agree to the last bit.
import type { BaseGroupOptions, Optimizer } from './optimizer.js';

/** A scheduler's state dict, in PyTorch's layout (snake_case keys, `_step_count`, `_last_lr`). */
export type SchedulerStateDict = Record<string, unknown> & {
  base_lrs: number[];
  last_epoch: number;
  _step_count: number;
  _last_lr: number[];
};

export abstract class LRScheduler {
  readonly optimizer: Optimizer<BaseGroupOptions>;
  /** Each group's `initialLr`: where the schedule starts. */
  baseLrs: number[];
  /** Index of the last epoch stepped to (0 right after construction). */
  lastEpoch: number;
  protected stepCount = 0;
  protected lastLr: number[] = [];

  protected constructor(optimizer: Optimizer<BaseGroupOptions>, lastEpoch = -1) {
    if (optimizer === null || typeof optimizer !== 'object' || !Array.isArray(optimizer.paramGroups)) {
      throw new TypeError(`${this.constructor.name}: the first argument must be an optimizer`);
    }
    if (!Number.isInteger(lastEpoch) || lastEpoch < -1) throw new RangeError(`${this.constructor.name}: lastEpoch must be an integer >= -1, got ${lastEpoch}`);
    this.optimizer = optimizer;
    if (lastEpoch === -1) {
      for (const g of optimizer.paramGroups) if (g.initialLr === undefined) g.initialLr = g.lr;
    } else {
      optimizer.paramGroups.forEach((g, i) => {
        if (g.initialLr === undefined) throw new Error(`${this.constructor.name}: param 'initial_lr' is not specified in paramGroups[${i}] when resuming (lastEpoch ${lastEpoch})`);
      });
    }
    this.baseLrs = optimizer.paramGroups.map((g) => g.initialLr!);
    this.lastEpoch = lastEpoch;
  }

  /** PyTorch's `_initial_step`: each subclass calls it at the end of its constructor. */
  protected initialStep(): void {
    this.stepCount = 0;
    this.step();
  }

  /** The lr of each group for `lastEpoch`, from the groups' current lr (PyTorch's `get_lr`). */
  protected abstract getLr(): number[];

  /** Advances one epoch and sets each group's lr. Call it after `optimizer.step()`. */
  step(): void {
    this.stepCount += 1;
    this.lastEpoch += 1;
    const values = this.getLr();
    this.optimizer.paramGroups.forEach((g, i) => {
      g.lr = values[i]!;
    });
    this.lastLr = this.optimizer.paramGroups.map((g) => g.lr);
  }

  /** The lr of each group as last set by this scheduler. */
  getLastLr(): number[] {
    return [...this.lastLr];
  }

  /** Hyperparameters of the schedule, under PyTorch's names (e.g. `{ T_max, eta_min }`). */
  protected abstract ownState(): Record<string, unknown>;
  /** Restores `ownState()`'s entries; throws on missing or malformed ones. */
  protected abstract loadOwnState(sd: Record<string, unknown>): void;

  /** The scheduler's state in PyTorch's layout (the keys of `scheduler.state_dict()`). */
  stateDict(): SchedulerStateDict {
    return {
      ...this.ownState(),
      base_lrs: [...this.baseLrs],
      last_epoch: this.lastEpoch,
      verbose: false,
      _step_count: this.stepCount,
      _get_lr_called_within_step: false,
      _last_lr: [...this.lastLr],
    };
  }

  /** Restores a state made by `stateDict()` here or by PyTorch's `scheduler.state_dict()`. */
  loadStateDict(sd: SchedulerStateDict): void {
    const name = `${this.constructor.name}.loadStateDict`;
    if (sd === null || typeof sd !== 'object') throw new TypeError(`${name}: expected an object`);
    const numbers = (key: string): number[] => {
      const v = sd[key];
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) throw new TypeError(`${name}: '${key}' must be an array of numbers`);
      if (v.length !== this.optimizer.paramGroups.length) {
        throw new Error(`${name}: '${key}' has ${v.length} entries, the optimizer has ${this.optimizer.paramGroups.length} parameter group(s)`);
      }
      return [...(v as number[])];
    };
    const baseLrs = numbers('base_lrs');
    const lastLr = sd._last_lr === undefined ? undefined : numbers('_last_lr');
    if (!Number.isInteger(sd.last_epoch)) throw new TypeError(`${name}: 'last_epoch' must be an integer`);
    const stepCount = sd._step_count === undefined ? sd.last_epoch + 1 : sd._step_count;
    if (!Number.isInteger(stepCount)) throw new TypeError(`${name}: '_step_count' must be an integer`);
    this.loadOwnState(sd);
    this.baseLrs = baseLrs;
    this.lastEpoch = sd.last_epoch;
    this.stepCount = stepCount;
    this.lastLr = lastLr ?? this.optimizer.paramGroups.map((g) => g.lr);
  }
}

/**
 * MultiStepLR: multiplies each group's lr by `gamma` whenever the epoch reaches a milestone (the
 * paper's `--schedule 25 45` with gamma 0.2). A milestone listed twice decays twice, as in PyTorch.
 */
export class MultiStepLR extends LRScheduler {
  /** Milestone epoch -> how many times it was listed (PyTorch's Counter). */
  milestones: Map<number, number>;
  gamma: number;

  constructor(optimizer: Optimizer<BaseGroupOptions>, milestones: number[], gamma = 0.1, lastEpoch = -1) {
    const counts = MultiStepLR.count(milestones, 'MultiStepLR');
    if (typeof gamma !== 'number' || !Number.isFinite(gamma)) throw new TypeError(`MultiStepLR: gamma must be a finite number, got ${String(gamma)}`);
    super(optimizer, lastEpoch);
    this.milestones = counts;
    this.gamma = gamma;
    this.initialStep();
  }

  private static count(milestones: unknown, where: string): Map<number, number> {
    if (!Array.isArray(milestones)) throw new TypeError(`${where}: milestones must be an array of epoch numbers`);
    const counts = new Map<number, number>();
    for (const m of milestones) {
      if (!Number.isInteger(m) || (m as number) < 0) throw new RangeError(`${where}: milestone ${String(m)} is not a non-negative integer`);
      counts.set(m as number, (counts.get(m as number) ?? 0) + 1);
    }
    return counts;
  }

  protected getLr(): number[] {
    const n = this.milestones.get(this.lastEpoch);
    if (n === undefined) return this.optimizer.paramGroups.map((g) => g.lr);
    return this.optimizer.paramGroups.map((g) => g.lr * this.gamma ** n);
  }

  protected ownState(): Record<string, unknown> {
    return { milestones: Object.fromEntries([...this.milestones].sort((a, b) => a[0] - b[0])), gamma: this.gamma };
  }

  protected loadOwnState(sd: Record<string, unknown>): void {
    const name = 'MultiStepLR.loadStateDict';
    const m = sd.milestones;
    let counts: Map<number, number>;
    if (Array.isArray(m)) counts = MultiStepLR.count(m, name);
    else if (m !== null && typeof m === 'object') {
      counts = new Map();
      for (const [k, v] of Object.entries(m)) {
        if (!Number.isInteger(Number(k)) || !Number.isInteger(v) || (v as number) < 1) throw new TypeError(`${name}: milestones entry ${k}: ${String(v)} is not epoch: count`);
        counts.set(Number(k), v as number);
      }
    } else throw new TypeError(`${name}: 'milestones' must be an object { epoch: count } or an array`);
    if (typeof sd.gamma !== 'number') throw new TypeError(`${name}: 'gamma' must be a number`);
    this.milestones = counts;
    this.gamma = sd.gamma;
  }
}

/**
 * CosineAnnealingLR: lr follows eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / tMax)) / 2,
 * computed recursively from the current lr like PyTorch (so outside changes to lr carry through).
 */
export class CosineAnnealingLR extends LRScheduler {
  tMax: number;
  etaMin: number;

  constructor(optimizer: Optimizer<BaseGroupOptions>, tMax: number, etaMin = 0, lastEpoch = -1) {
    if (typeof tMax !== 'number' || !(tMax > 0)) throw new RangeError(`CosineAnnealingLR: tMax must be a positive number, got ${String(tMax)}`);
    if (typeof etaMin !== 'number' || !Number.isFinite(etaMin)) throw new TypeError(`CosineAnnealingLR: etaMin must be a finite number, got ${String(etaMin)}`);
    super(optimizer, lastEpoch);
    this.tMax = tMax;
    this.etaMin = etaMin;
    this.initialStep();
  }

  protected getLr(): number[] {
    const { tMax, etaMin } = this;
    const groups = this.optimizer.paramGroups;
    const e = this.lastEpoch;
    if (e === 0) return groups.map((g) => g.lr);
    if (this.stepCount === 1 && e > 0) {
      return this.baseLrs.map((base) => etaMin + ((base - etaMin) * (1 + Math.cos((e * Math.PI) / tMax))) / 2);
    }
    if ((((e - 1 - tMax) % (2 * tMax)) + 2 * tMax) % (2 * tMax) === 0) {
      return groups.map((g, i) => g.lr + ((this.baseLrs[i]! - etaMin) * (1 - Math.cos(Math.PI / tMax))) / 2);
    }
    return groups.map((g) => ((1 + Math.cos((Math.PI * e) / tMax)) / (1 + Math.cos((Math.PI * (e - 1)) / tMax))) * (g.lr - etaMin) + etaMin);
  }

  protected ownState(): Record<string, unknown> {
    return { T_max: this.tMax, eta_min: this.etaMin };
  }

  protected loadOwnState(sd: Record<string, unknown>): void {
    const name = 'CosineAnnealingLR.loadStateDict';
    if (typeof sd.T_max !== 'number' || !(sd.T_max > 0)) throw new TypeError(`${name}: 'T_max' must be a positive number`);
    if (typeof sd.eta_min !== 'number') throw new TypeError(`${name}: 'eta_min' must be a number`);
    this.tMax = sd.T_max;
    this.etaMin = sd.eta_min;
  }
}
