// nn.Module: parameters, buffers and submodules by name, so state-dict keys equal PyTorch's.
import * as torch from '../torch/index.js';
import type { Tensor, DType, Device, MemoryFormat } from '../torch/index.js';

export type StateDict = Record<string, Tensor>;

export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

export class StateDictError extends Error {
  constructor(
    message: string,
    readonly missingKeys: string[],
    readonly unexpectedKeys: string[],
    readonly shapeMismatches: { key: string; expected: number[]; got: number[] }[],
  ) {
    super(message);
    this.name = 'StateDictError';
  }
}

export abstract class Module {
  training = true;
  readonly #parameters = new Map<string, Tensor | null>();
  readonly #buffers = new Map<string, Tensor | null>();
  readonly #persistent = new Set<string>();
  readonly #modules = new Map<string, Module | null>();

  abstract forward(input: Tensor): Tensor;

  /** Adds (or replaces) a parameter: it requires grad and is kept out of memory scopes. */
  registerParameter(name: string, t: Tensor | null): Tensor | null {
    if (t) {
      t.keep();
      if (!t.requiresGrad && !torch.isInferenceModeEnabled()) t.requiresGrad_(true);
    }
    this.#parameters.get(name)?.dispose();
    this.#parameters.set(name, t);
    return t;
  }
  registerBuffer(name: string, t: Tensor | null, persistent = true): Tensor | null {
    t?.keep();
    this.#buffers.get(name)?.dispose();
    this.#buffers.set(name, t);
    if (persistent) this.#persistent.add(name);
    else this.#persistent.delete(name);
    return t;
  }
  registerModule<M extends Module | null>(name: string, m: M): M {
    if (name.includes('.') || name === '') throw new Error(`registerModule: invalid module name '${name}'`);
    this.#modules.set(name, m);
    return m;
  }
  getParameter(name: string): Tensor | null | undefined {
    return this.#parameters.get(name);
  }
  getBuffer(name: string): Tensor | null | undefined {
    return this.#buffers.get(name);
  }
  getModule(name: string): Module | null | undefined {
    return this.#modules.get(name);
  }

  *namedParameters(prefix = '', recurse = true): Generator<[string, Tensor]> {
    const seen = new Set<Tensor>();
    for (const [mp, m] of recurse ? this.namedModules(prefix) : [[prefix, this] as [string, Module]]) {
      for (const [n, p] of m.#parameters) {
        if (p && !seen.has(p)) {
          seen.add(p);
          yield [mp ? `${mp}.${n}` : n, p];
        }
      }
    }
  }
  parameters(recurse = true): Tensor[] {
    return [...this.namedParameters('', recurse)].map(([, p]) => p);
  }
  *namedBuffers(prefix = '', recurse = true): Generator<[string, Tensor]> {
    for (const [mp, m] of recurse ? this.namedModules(prefix) : [[prefix, this] as [string, Module]]) {
      for (const [n, b] of m.#buffers) if (b) yield [mp ? `${mp}.${n}` : n, b];
    }
  }
  buffers(recurse = true): Tensor[] {
    return [...this.namedBuffers('', recurse)].map(([, b]) => b);
  }
  *namedChildren(): Generator<[string, Module]> {
    for (const [n, m] of this.#modules) if (m) yield [n, m];
  }
  children(): Module[] {
    return [...this.namedChildren()].map(([, m]) => m);
  }
  /** This module and every descendant, depth first, with dotted names ('' for this one). */
  *namedModules(prefix = ''): Generator<[string, Module]> {
    yield [prefix, this];
    for (const [n, m] of this.#modules) if (m) yield* m.namedModules(prefix ? `${prefix}.${n}` : n);
  }
  modules(): Module[] {
    return [...this.namedModules()].map(([, m]) => m);
  }

  /** Parameters and persistent buffers, in PyTorch's order (a module's own, then its children's). */
  stateDict(options: { keepVars?: boolean } = {}): StateDict {
    const out: StateDict = {};
    const visit = (m: Module, prefix: string): void => {
      for (const [n, p] of m.#parameters) if (p) out[prefix + n] = options.keepVars ? p : p.detach();
      for (const [n, b] of m.#buffers) if (b && m.#persistent.has(n)) out[prefix + n] = options.keepVars ? b : b.detach();
      for (const [n, c] of m.#modules) if (c) visit(c, `${prefix}${n}.`);
    };
    visit(this, '');
    return out;
  }

  /**
   * Copies values into this module's parameters and buffers. With `strict` (the default) missing or
   * unexpected keys are an error; a shape mismatch always is. The error lists every offending key.
   */
  loadStateDict(sd: StateDict, options: { strict?: boolean } = {}): LoadResult {
    const strict = options.strict ?? true;
    const own = this.stateDict({ keepVars: true });
    const missing = Object.keys(own).filter((k) => !(k in sd));
    const unexpected = Object.keys(sd).filter((k) => !(k in own));
    const mismatched: { key: string; expected: number[]; got: number[] }[] = [];
    for (const [k, t] of Object.entries(own)) {
      const v = sd[k];
      if (!v) continue;
      const a = t.shape;
      const b = v.shape;
      if (a.length !== b.length || a.some((d, i) => d !== b[i])) mismatched.push({ key: k, expected: a, got: b });
    }
    if (mismatched.length || (strict && (missing.length || unexpected.length))) {
      const lines = ['Error(s) in loading state dict:'];
      if (strict && missing.length) lines.push(`  missing keys (${missing.length}): ${missing.join(', ')}`);
      if (strict && unexpected.length) lines.push(`  unexpected keys (${unexpected.length}): ${unexpected.join(', ')}`);
      for (const m of mismatched) lines.push(`  size mismatch for ${m.key}: checkpoint has [${m.got.join(', ')}], model has [${m.expected.join(', ')}]`);
      throw new StateDictError(lines.join('\n'), missing, unexpected, mismatched);
    }
    torch.noGrad(() => {
      for (const [k, t] of Object.entries(own)) {
        const v = sd[k];
        if (v) t.copy_(v);
      }
    });
    return { missingKeys: missing, unexpectedKeys: unexpected };
  }

  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }
  eval(): this {
    return this.train(false);
  }
  /** Sets requiresGrad on every parameter (requiresGrad_(false) freezes the module). */
  requiresGrad_(requiresGrad = true): this {
    for (const p of this.parameters()) p.requiresGrad_(requiresGrad);
    return this;
  }
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = undefined;
  }
  apply(fn: (m: Module) => void): this {
    for (const c of this.children()) c.apply(fn);
    fn(this);
    return this;
  }
  /**
   * Moves or casts every parameter and buffer (floating-point ones only for a dtype), in place. As
   * in PyTorch, parameters keep their identity (`param.data = ...`): an optimizer built before
   * `to()` still holds the model's parameters.
   */
  to(target: DType | Device | { dtype?: DType; device?: Device; memoryFormat?: MemoryFormat }): this {
    const o = typeof target === 'string' ? (torch.isDType(target) ? { dtype: target } : { device: target }) : target;
    if (typeof target === 'string' && !torch.isDType(target) && !torch.isDevice(target)) {
      throw new TypeError(`Module.to: '${target}' is neither a dtype (${torch.DTYPES.join(', ')}) nor a device (cpu, cuda, cuda:N)`);
    }
    if (o.memoryFormat !== undefined && !torch.isMemoryFormat(o.memoryFormat)) {
      throw new TypeError(`Module.to: memoryFormat must be one of ${torch.MEMORY_FORMATS.join(', ')}, got ${String(o.memoryFormat)}`);
    }
    // As PyTorch's Module.to: a memory format applies to 4-d and 5-d tensors (convolution weights).
    const convert = (t: Tensor): Tensor =>
      t.to({
        dtype: o.dtype !== undefined && torch.isFloatingDType(t.dtype) ? o.dtype : undefined,
        device: o.device,
        memoryFormat: o.memoryFormat !== undefined && (t.ndim === 4 || t.ndim === 5) ? o.memoryFormat : undefined,
      });
    const touches = (t: Tensor): boolean =>
      o.device !== undefined || (o.dtype !== undefined && torch.isFloatingDType(t.dtype)) || (o.memoryFormat !== undefined && (t.ndim === 4 || t.ndim === 5));
    for (const m of this.modules()) {
      for (const p of m.#parameters.values()) {
        if (p && touches(p)) p.setData_(torch.noGrad(() => convert(p)));
      }
      for (const [n, b] of m.#buffers) {
        if (b && touches(b)) m.registerBuffer(n, convert(b), m.#persistent.has(n));
      }
    }
    return this;
  }
  /** Frees every parameter and buffer now. */
  dispose(): void {
    for (const m of this.modules()) {
      for (const p of m.#parameters.values()) p?.dispose();
      for (const b of m.#buffers.values()) b?.dispose();
    }
  }
}
