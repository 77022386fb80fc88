// GradScaler (torch.cuda.amp.GradScaler): scales the loss so that float16 gradients do not underflow,
// unscales the gradients before the step, skips steps whose gradients are not finite, and grows or
// backs off the scale. PyTorch 1.13's bookkeeping and state dict; on CUDA its two kernels
// (_amp_foreach_non_finite_check_and_unscale_, _amp_update_scale_) through the addon. libtorch 1.13
// has those kernels for CUDA only, so on CPU the same arithmetic is done with ordinary ops (PyTorch
// 1.13 disables the scaler without CUDA; CPU autocast uses bfloat16, which needs no scaling).
import { native } from '../torch/native.js';
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import type { BaseGroupOptions, Optimizer } from './optimizer.js';

export interface GradScalerOptions {
  /** default 2**16 */
  initScale?: number;
  /** default 2 (must be > 1) */
  growthFactor?: number;
  /** default 0.5 (must be < 1) */
  backoffFactor?: number;
  /** steps without inf/NaN gradients before the scale grows (default 2000) */
  growthInterval?: number;
  /** default true; a disabled scaler passes everything through */
  enabled?: boolean;
}

/** GradScaler.state_dict() in PyTorch's layout (empty for a disabled scaler). */
export interface GradScalerStateDict {
  scale: number;
  growth_factor: number;
  backoff_factor: number;
  growth_interval: number;
  _growth_tracker: number;
}

type Stage = 'ready' | 'unscaled' | 'stepped';
type AnyOptimizer = Optimizer<BaseGroupOptions>;
interface PerOptimizer { stage: Stage; foundInfPerDevice: Map<torch.Device, Tensor> }

function isCuda(t: Tensor): boolean {
  return t.device.startsWith('cuda');
}

export class GradScaler {
  #enabled: boolean;
  #initScale: number;
  #growthFactor: number;
  #backoffFactor: number;
  #growthInterval: number;
  #initGrowthTracker = 0;
  #scale: Tensor | undefined;
  #growthTracker: Tensor | undefined;
  #perOptimizer = new Map<AnyOptimizer, PerOptimizer>();

  constructor(options: GradScalerOptions = {}) {
    this.#enabled = options.enabled ?? true;
    this.#initScale = options.initScale ?? 2 ** 16;
    this.#growthFactor = options.growthFactor ?? 2.0;
    this.#backoffFactor = options.backoffFactor ?? 0.5;
    this.#growthInterval = options.growthInterval ?? 2000;
    if (this.#enabled) {
      if (!(this.#initScale > 0 && Number.isFinite(this.#initScale))) throw new RangeError(`GradScaler: initScale must be a finite number > 0, got ${this.#initScale}`);
      if (!(this.#growthFactor > 1)) throw new RangeError(`GradScaler: the growth factor must be > 1.0, got ${this.#growthFactor}`);
      if (!(this.#backoffFactor < 1)) throw new RangeError(`GradScaler: the backoff factor must be < 1.0, got ${this.#backoffFactor}`);
      if (!(Number.isInteger(this.#growthInterval) && this.#growthInterval > 0)) throw new RangeError(`GradScaler: growthInterval must be an integer > 0, got ${this.#growthInterval}`);
    }
  }

  isEnabled(): boolean {
    return this.#enabled;
  }

  #state(opt: AnyOptimizer): PerOptimizer {
    let s = this.#perOptimizer.get(opt);
    if (!s) {
      s = { stage: 'ready', foundInfPerDevice: new Map() };
      this.#perOptimizer.set(opt, s);
    }
    return s;
  }

  #checkScale(fn: string): [Tensor, Tensor] {
    const fix = 'This may indicate your script did not use scaler.scale(loss or outputs) earlier in the iteration.';
    if (!this.#scale || !this.#growthTracker) throw new Error(`GradScaler: attempted ${fn} but the scale is not set. ${fix}`);
    return [this.#scale, this.#growthTracker];
  }

  /** Multiplies `outputs` (the loss) by the scale; a disabled scaler returns them unchanged. */
  scale(outputs: Tensor): Tensor;
  scale(outputs: Tensor[]): Tensor[];
  scale(outputs: Tensor | Tensor[]): Tensor | Tensor[] {
    if (!this.#enabled) return outputs;
    const list = Array.isArray(outputs) ? outputs : [outputs];
    if (list.length === 0) return outputs;
    if (!this.#scale) {
      const dev = list[0]!.device;
      this.#scale = torch.full([1], this.#initScale, { dtype: 'float32', device: dev }).keep();
      this.#growthTracker = torch.full([1], this.#initGrowthTracker, { dtype: 'int32', device: dev }).keep();
    }
    const s = this.#scale;
    const scaled = list.map((t) => {
      if (t.device === s.device) return t.mul(s);
      return torch.tidy(() => t.mul(s.to(t.device)));
    });
    return Array.isArray(outputs) ? scaled : scaled[0]!;
  }

  // Multiplies every gradient of `opt` by invScale and records, per device, whether any was not finite.
  #unscaleGrads(opt: AnyOptimizer, invScale: Tensor, foundInf: Tensor, allowFp16: boolean): Map<torch.Device, Tensor> {
    const perDevice = new Map<torch.Device, Map<string, Tensor[]>>();
    for (const group of opt.paramGroups) {
      for (const p of group.params) {
        const g = p.grad;
        if (g === undefined) continue;
        if (!allowFp16 && g.dtype === 'float16') throw new Error('GradScaler: attempting to unscale FP16 gradients (keep the parameters in float32 under autocast)');
        let byDtype = perDevice.get(g.device);
        if (!byDtype) perDevice.set(g.device, (byDtype = new Map()));
        const l = byDtype.get(g.dtype);
        if (l) l.push(g);
        else byDtype.set(g.dtype, [g]);
      }
    }
    const found = new Map<torch.Device, Tensor>();
    torch.noGrad(() => {
      for (const [device, byDtype] of perDevice) {
        const f = device === foundInf.device ? foundInf : foundInf.to({ device, copy: true }).keep();
        const inv = device === invScale.device ? invScale : invScale.to(device);
        found.set(device, f);
        for (const grads of byDtype.values()) {
          if (grads[0] !== undefined && isCuda(grads[0])) {
            native.ampForeachNonFiniteCheckAndUnscale_(grads.map((g) => g.handle), f.handle, inv.handle);
          } else {
            // The kernel's arithmetic on CPU: found_inf = 1 when any element is inf or NaN; every
            // gradient is multiplied by inv_scale (a float32 value) whatever it holds.
            const v = inv.item();
            torch.tidy(() => {
              for (const g of grads) {
                if (!(g.isfinite().all().item() as unknown as boolean)) f.fill_(1);
                if (v !== 1) g.mul_(v);
              }
            });
          }
        }
        if (inv !== invScale) inv.dispose();
      }
    });
    return found;
  }

  /** Divides `optimizer`'s gradients by the scale (once per step; optional before step()). */
  unscale_(optimizer: AnyOptimizer): void {
    if (!this.#enabled) return;
    const [scale] = this.#checkScale('unscale_');
    const st = this.#state(optimizer);
    if (st.stage === 'unscaled') throw new Error('GradScaler: unscale_() has already been called on this optimizer since the last update()');
    if (st.stage === 'stepped') throw new Error('GradScaler: unscale_() is being called after step()');
    const invScale = torch.tidy(() => scale.double().reciprocal().float()).keep();
    const foundInf = torch.full([1], 0, { dtype: 'float32', device: scale.device }).keep();
    try {
      st.foundInfPerDevice = this.#unscaleGrads(optimizer, invScale, foundInf, false);
    } finally {
      invScale.dispose();
      if (![...st.foundInfPerDevice.values()].includes(foundInf)) foundInf.dispose();
    }
    st.stage = 'unscaled';
  }

  /** Unscales (unless done) and runs optimizer.step() unless a gradient was inf or NaN; returns whether it stepped. */
  step(optimizer: AnyOptimizer): boolean {
    if (!this.#enabled) {
      optimizer.step();
      return true;
    }
    this.#checkScale('step');
    const st = this.#state(optimizer);
    if (st.stage === 'stepped') throw new Error('GradScaler: step() has already been called since the last update()');
    if (st.stage === 'ready') this.unscale_(optimizer);
    if (st.foundInfPerDevice.size === 0) throw new Error('GradScaler: no inf checks were recorded for this optimizer (it has no gradients)');
    let found = 0;
    for (const f of st.foundInfPerDevice.values()) found += f.item();
    if (!found) optimizer.step();
    st.stage = 'stepped';
    return !found;
  }

  /**
   * Updates the scale: times backoffFactor if any step of this iteration was skipped, times
   * growthFactor after growthInterval unskipped steps in a row, or `newScale` when given.
   */
  update(newScale?: number | Tensor): void {
    if (!this.#enabled) return;
    const [scale, tracker] = this.#checkScale('update');
    if (newScale !== undefined) {
      if (typeof newScale === 'number') scale.fill_(newScale);
      else {
        if (newScale.numel() !== 1 || newScale.requiresGrad) throw new Error('GradScaler.update: newScale must be a number or a 1-element tensor with requiresGrad false');
        torch.noGrad(() => scale.copy_(newScale));
      }
    } else {
      const founds = [...this.#perOptimizer.values()].flatMap((s) => [...s.foundInfPerDevice.values()]);
      if (founds.length === 0) throw new Error('GradScaler.update: no inf checks were recorded prior to update (call step(optimizer) first)');
      torch.tidy(() => {
        let combined = founds[0]!.to(scale.device);
        for (const f of founds.slice(1)) combined = combined.add(f.to(scale.device));
        if (isCuda(scale)) {
          native.ampUpdateScale_(scale.handle, tracker.handle, combined.handle, this.#growthFactor, this.#backoffFactor, this.#growthInterval);
        } else {
          const [s, t] = updateScale(scale.item(), tracker.item(), combined.item(), this.#growthFactor, this.#backoffFactor, this.#growthInterval);
          scale.fill_(s);
          tracker.fill_(t);
        }
      });
    }
    for (const s of this.#perOptimizer.values()) for (const f of s.foundInfPerDevice.values()) f.dispose();
    this.#perOptimizer.clear();
  }

  /** The scale now (the initial one before the first scale(); 1 when disabled). */
  getScale(): number {
    if (!this.#enabled) return 1.0;
    return this.#scale ? this.#scale.item() : this.#initScale;
  }
  getGrowthFactor(): number {
    return this.#growthFactor;
  }
  setGrowthFactor(f: number): void {
    this.#growthFactor = f;
  }
  getBackoffFactor(): number {
    return this.#backoffFactor;
  }
  setBackoffFactor(f: number): void {
    this.#backoffFactor = f;
  }
  getGrowthInterval(): number {
    return this.#growthInterval;
  }
  setGrowthInterval(n: number): void {
    this.#growthInterval = n;
  }
  /** Unskipped steps in a row since the scale last changed. */
  getGrowthTracker(): number {
    if (!this.#enabled) return 0;
    return this.#growthTracker ? this.#growthTracker.item() : this.#initGrowthTracker;
  }

  /** PyTorch's layout: scale, growth_factor, backoff_factor, growth_interval, _growth_tracker ({} when disabled). */
  stateDict(): GradScalerStateDict | Record<string, never> {
    if (!this.#enabled) return {};
    return {
      scale: this.getScale(),
      growth_factor: this.#growthFactor,
      backoff_factor: this.#backoffFactor,
      growth_interval: this.#growthInterval,
      _growth_tracker: this.getGrowthTracker(),
    };
  }

  /** Loads a state dict from stateDict() or PyTorch's GradScaler.state_dict(); a disabled scaler ignores it. */
  loadStateDict(sd: Partial<GradScalerStateDict> | Record<string, unknown>): void {
    if (!this.#enabled) return;
    if (sd === null || typeof sd !== 'object' || Object.keys(sd).length === 0) {
      throw new Error('GradScaler.loadStateDict: the state dict is empty, possibly because it was saved from a disabled GradScaler');
    }
    const num = (k: keyof GradScalerStateDict): number => {
      const raw = (sd as Record<string, unknown>)[k];
      const v = typeof raw === 'bigint' ? Number(raw) : raw;
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new TypeError(`GradScaler.loadStateDict: '${k}' must be a finite number, got ${String(v)}`);
      return v;
    };
    const s = num('scale');
    const gf = num('growth_factor');
    const bf = num('backoff_factor');
    const gi = num('growth_interval');
    const gt = num('_growth_tracker');
    this.#initScale = s;
    this.#scale?.fill_(s);
    this.#growthFactor = gf;
    this.#backoffFactor = bf;
    this.#growthInterval = gi;
    this.#initGrowthTracker = gt;
    this.#growthTracker?.fill_(gt);
  }

  /** Frees the scale and growth tracker tensors. */
  dispose(): void {
    for (const s of this.#perOptimizer.values()) for (const f of s.foundInfPerDevice.values()) f.dispose();
    this.#perOptimizer.clear();
    this.#scale?.dispose();
    this.#growthTracker?.dispose();
    this.#scale = this.#growthTracker = undefined;
  }
}

/**
 * _amp_update_scale_'s arithmetic (ATen's AmpKernels.cu), on plain numbers: the scale is float32, the
 * factors are doubles, the tracker counts unskipped steps; the scale does not grow past float32's range.
 */
export function updateScale(scale: number, growthTracker: number, foundInf: number, growthFactor: number, backoffFactor: number, growthInterval: number): [number, number] {
  if (foundInf) return [Math.fround(scale * backoffFactor), 0];
  const successful = growthTracker + 1;
  if (successful === growthInterval) {
    const grown = Math.fround(scale * growthFactor);
    return [Number.isFinite(grown) ? grown : scale, 0];
  }
  return [scale, successful];
}
