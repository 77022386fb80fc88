// Checkpoints to and from engine tensors: io.load / io.save over the torch.save format, safetensors,
// state-dict prefix handling, and optimizer state dicts in PyTorch's layout.
//
// Loading reads each storage once, straight from the file into the memory of one tensor; tensors that
// viewed a shared storage become views of it (as_strided), so sharing survives. Saving finds tensors
// that share a storage (same dtype and device) and writes that storage once.

import { availableParallelism } from 'node:os';
import * as torch from '../torch/index.js';
import { Tensor, type Device, type FileTensor } from '../torch/index.js';
import type { Module, StateDict } from '../nn/module.js';
import type { OptimizerStateDict } from '../optim/optimizer.js';
import { CheckpointError } from './errors.js';
import { isPyObject, isTuple, markOrdered, markTuple } from './pickle.js';
import { openCheckpoint } from './raw.js';
import { saveSafetensorsRaw } from './safetensors.js';
import type { CheckpointReader, ReadOptions } from './torch-read.js';
import { saveTorchRaw } from './torch-write.js';
import { isContiguous, isRawTensor, numelOf, storageExtent, type RawStorage, type RawTensor } from './types.js';

export interface LoadOptions extends ReadOptions {
  /** Move every tensor to this device after reading (PyTorch's map_location). Default: cpu. */
  device?: Device;
}

/** Tensors for each storage of an open checkpoint: one read per storage, views for the tensors. */
async function materialize(reader: CheckpointReader, options: LoadOptions): Promise<Map<RawTensor, Tensor>> {
  const users = new Map<RawStorage, RawTensor[]>();
  const visit = (v: unknown, seen: Set<object>): void => {
    if (typeof v !== 'object' || v === null || seen.has(v) || ArrayBuffer.isView(v)) return;
    seen.add(v);
    if (isRawTensor(v)) {
      const list = users.get(v.storage);
      if (list) list.push(v);
      else users.set(v.storage, [v]);
      return;
    }
    const items = v instanceof Map ? [...v.keys(), ...v.values()] : v instanceof Set ? [...v] : Array.isArray(v) ? v : Object.values(v);
    for (const x of items) visit(x, seen);
  };
  visit(reader.root, new Set());
  const out = new Map<RawTensor, Tensor>();
  try {
    await readTensors(reader, users, out);
  } catch (e) {
    // free what was read before the failure
    for (const t of new Set(out.values())) if (!t.isDisposed) t.dispose();
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError(reader.path, (e as Error).message, { cause: e });
  }
  const device = options.device;
  for (const [r, t] of out) {
    let v = t;
    if (device && device !== 'cpu') {
      v = t.to(device);
      t.dispose();
      out.set(r, v);
    }
  }
  for (const [r, t] of out) if (r.requiresGrad && !t.requiresGrad) t.requiresGrad_(true);
  return out;
}

/**
 * Storages read at once where they cannot be read in one batch (a compressed record): each read is a
 * positional read on libuv's thread pool, so several in flight keep the cores busy.
 */
const READS_IN_FLIGHT = 4;

/** Threads the batch read uses: every core, up to 4 (copies from the page cache and page faults). */
const READ_THREADS = Math.max(1, Math.min(4, availableParallelism()));

/** The storage's one tensor when it is exactly that (the common case: a state dict), else undefined. */
function soleTensor(storage: RawStorage, tensors: RawTensor[]): RawTensor | undefined {
  const first = tensors[0]!;
  return tensors.length === 1 && first.storageOffset === 0 && isContiguous(first) && numelOf(first.shape) === storage.numel ? first : undefined;
}

/** The shape a storage is read as: its one tensor's, or flat. */
function baseShape(storage: RawStorage, tensors: RawTensor[]): readonly number[] {
  return soleTensor(storage, tensors)?.shape ?? [storage.numel];
}

/** The tensors of one storage read as `base` (its tensor, or a flat tensor of all its elements). */
function place(storage: RawStorage, tensors: RawTensor[], base: Tensor, out: Map<RawTensor, Tensor>): void {
  const sole = soleTensor(storage, tensors);
  if (sole) {
    out.set(sole, base);
    return;
  }
  try {
    for (const r of tensors) out.set(r, base.asStrided(r.shape, r.stride, r.storageOffset));
  } finally {
    base.dispose();
  }
}

async function readTensors(reader: CheckpointReader, users: Map<RawStorage, RawTensor[]>, out: Map<RawTensor, Tensor>): Promise<void> {
  // storages stored as they are: one native call allocates their tensors and reads them on every
  // core, off the main thread, and reports their memory to V8 once
  const entries = [...users];
  const positions = await Promise.all(entries.map(([s]) => reader.storagePosition(s)));
  const batch: [RawStorage, RawTensor[]][] = [];
  const items: FileTensor[] = [];
  const rest: [RawStorage, RawTensor[]][] = [];
  entries.forEach((e, k) => {
    const at = positions[k];
    if (at === undefined) {
      rest.push(e);
      return;
    }
    const [storage, tensors] = e;
    batch.push(e);
    items.push({ position: at, shape: baseShape(storage, tensors), dtype: storage.dtype });
  });
  if (items.length > 0) {
    let read: Tensor[];
    try {
      read = await torch.tensorsFromFile(reader.fd, items, { threads: READ_THREADS });
    } catch (e) {
      const m = /^item (\d+): (.*)$/s.exec((e as Error).message);
      const which = m ? batch[Number(m[1])] : undefined;
      throw new CheckpointError(reader.path, which ? `storage ${which[0].key}: ${m![2]}` : (e as Error).message, { cause: e });
    }
    batch.forEach(([storage, tensors], k) => place(storage, tensors, read[k]!, out));
  }
  // the others (compressed records) a few at a time through readStorage
  const readOne = async (storage: RawStorage, tensors: RawTensor[]): Promise<void> => {
    const base = torch.empty(baseShape(storage, tensors), { dtype: storage.dtype });
    try {
      if (storage.numel > 0) await reader.readStorage(storage, base.bytes());
    } catch (e) {
      base.dispose();
      throw e;
    }
    place(storage, tensors, base, out);
  };
  let failure: unknown;
  const lane = async (): Promise<void> => {
    for (let next = rest.shift(); next && failure === undefined; next = rest.shift()) {
      try {
        await readOne(next[0], next[1]);
      } catch (e) {
        failure ??= e;
      }
    }
  };
  // every lane settles before an error is thrown, so the caller frees every tensor read
  await Promise.all(Array.from({ length: Math.min(READS_IN_FLIGHT, rest.length) }, lane));
  if (failure !== undefined) throw failure;
}

/** Replace RawTensors in a tree by engine tensors, in place (objects, arrays, Maps, Sets, placeholders). */
function substitute(root: unknown, map: Map<RawTensor, Tensor>): unknown {
  const seen = new Set<object>();
  const conv = (v: unknown): unknown => {
    if (typeof v !== 'object' || v === null || ArrayBuffer.isView(v)) return v;
    if (isRawTensor(v)) return map.get(v) ?? v;
    if (seen.has(v)) return v;
    seen.add(v);
    if (Array.isArray(v)) for (let i = 0; i < v.length; i++) v[i] = conv(v[i]);
    else if (v instanceof Map) for (const [k, x] of v) v.set(k, conv(x));
    else if (v instanceof Set) {
      const items = [...v];
      v.clear();
      for (const x of items) v.add(conv(x));
    } else {
      const o = v as Record<string, unknown>;
      for (const k of Object.keys(o)) o[k] = conv(o[k]);
    }
    return v;
  };
  return conv(root);
}

/**
 * Load a checkpoint (torch.save zip or legacy, or safetensors) into a JS tree whose tensors are
 * engine Tensors. Dicts with string keys become objects, others Maps; tuples become arrays; numpy
 * scalars become numbers; other Python objects become `{ __class__, args, state }` placeholders.
 */
export async function load(path: string, options: LoadOptions = {}): Promise<unknown> {
  const reader = await openCheckpoint(path, options);
  try {
    const map = await materialize(reader, options);
    return substitute(reader.root, map);
  } finally {
    await reader.close();
  }
}

/** Load a safetensors file as name -> Tensor. */
export async function loadSafetensors(path: string, options: LoadOptions = {}): Promise<Record<string, Tensor>> {
  const reader = await openCheckpoint(path);
  try {
    if (reader.format !== 'safetensors') throw new CheckpointError(path, `not a safetensors file (it is ${reader.format})`);
    const map = await materialize(reader, options);
    return substitute(reader.root, map) as Record<string, Tensor>;
  } finally {
    await reader.close();
  }
}

/** Storage groups for every Tensor in a tree: tensors viewing the same storage share one RawStorage. */
function encodeTensors(root: unknown): Map<Tensor, RawTensor> {
  const tensors: Tensor[] = [];
  const seen = new Set<object>();
  const visit = (v: unknown): void => {
    if (typeof v !== 'object' || v === null || seen.has(v) || ArrayBuffer.isView(v)) return;
    seen.add(v);
    if (v instanceof Tensor) {
      if (v.isDisposed) throw new Error('cannot save a disposed tensor');
      tensors.push(v);
      return;
    }
    const items = v instanceof Map ? [...v.keys(), ...v.values()] : v instanceof Set ? [...v] : Array.isArray(v) ? v : Object.values(v);
    for (const x of items) visit(x);
  };
  visit(root);
  // group by storage (one lookup per tensor), separating views of one storage with another dtype
  const groups: { rep: Tensor; members: Tensor[]; dtype: string; device: string }[] = [];
  const byStorage = new Map<string, (typeof groups)[number]>();
  for (const t of tensors) {
    const dtype = t.dtype;
    const device = t.device;
    const key = `${t.storageKey()}/${dtype}/${device}`;
    const g = byStorage.get(key);
    if (g) g.members.push(t);
    else {
      const ng = { rep: t, members: [t], dtype, device };
      groups.push(ng);
      byStorage.set(key, ng);
    }
  }
  const out = new Map<Tensor, RawTensor>();
  groups.forEach((g, i) => {
    const metas = g.members.map((t) => ({ t, shape: t.shape, stride: t.stride(), storageOffset: t.storageOffset() }));
    const extent = Math.max(0, ...metas.map((m) => storageExtent(m)));
    const location = g.device === 'cuda' ? 'cuda:0' : g.device;
    const rep = g.rep;
    const storage: RawStorage = {
      key: String(i),
      dtype: rep.dtype,
      numel: extent,
      location,
      getData: () => {
        if (extent === 0) return new Uint8Array(0);
        // the storage's first `extent` elements, as one contiguous CPU buffer sharing (or copied from) its memory
        const d = rep.detach();
        const flat = d.asStrided([extent], [1], 0);
        const cpu = flat.device === 'cpu' ? flat : flat.to('cpu');
        const bytes = cpu.bytes();
        for (const x of new Set([d, flat, cpu])) x.dispose();
        return bytes;
      },
    };
    for (const m of metas) {
      out.set(m.t, { dtype: rep.dtype, shape: m.shape, stride: m.stride, storageOffset: m.storageOffset, storage, requiresGrad: m.t.requiresGrad });
    }
  });
  return out;
}

export interface SaveOptions {
  /** Write ZIP64 records even for small files. */
  forceZip64?: boolean;
  /** Write placeholders of globals outside the allow-list (see TorchSaveOptions). Default false. */
  allowUnknownGlobals?: boolean;
}

/**
 * Save a tree of Tensors, numbers, strings, booleans, null, arrays, objects and Maps in the
 * torch.save zip format, atomically. Objects become dicts (OrderedDict if marked with
 * `markOrdered`), arrays lists (tuples if marked with `markTuple`).
 */
export async function save(obj: unknown, path: string, options: SaveOptions = {}): Promise<void> {
  let encoded: Map<Tensor, RawTensor>;
  try {
    encoded = encodeTensors(obj);
  } catch (e) {
    throw new CheckpointError(path, `cannot save: ${(e as Error).message}`, { cause: e });
  }
  await saveTorchRaw(obj, path, {
    forceZip64: options.forceZip64 === true,
    allowUnknownGlobals: options.allowUnknownGlobals === true,
    encodeTensor: (v) => (v instanceof Tensor ? encoded.get(v) : undefined),
  });
}

/** Save name -> Tensor as safetensors (tensors are written contiguous, on the CPU). */
export async function saveSafetensors(tensors: Record<string, Tensor>, path: string, metadata?: Record<string, string>): Promise<void> {
  const raw: Record<string, RawTensor> = {};
  for (const [name, t] of Object.entries(tensors)) {
    if (!(t instanceof Tensor)) throw new CheckpointError(path, `cannot save ${name}: not a Tensor`);
    const shape = t.shape;
    raw[name] = { dtype: t.dtype, shape, stride: shape.map(() => 0), storageOffset: 0, requiresGrad: false, storage: { key: name, dtype: t.dtype, numel: numelOf(shape), location: 'cpu' } };
  }
  await saveSafetensorsRaw(raw, path, {
    ...(metadata ? { metadata } : {}),
    tensorBytes: (name) => {
      const t = tensors[name]!;
      const d = t.detach();
      const cpu = d.device === 'cpu' ? d : d.to('cpu');
      const c = cpu.isContiguous() ? cpu : cpu.contiguous();
      const bytes = c.bytes();
      for (const x of new Set([d, cpu, c])) x.dispose();
      return bytes;
    },
  });
}

// ---------------------------------------------------------------------------------------------
// State dicts

/** The tensors of a loaded dict (object or Map with string keys), in order. */
export function asStateDict(v: unknown, what = 'state dict'): StateDict {
  const out: StateDict = {};
  const entries = v instanceof Map ? [...v.entries()] : typeof v === 'object' && v !== null ? Object.entries(v) : undefined;
  if (!entries) throw new TypeError(`${what} is not a dict`);
  for (const [k, t] of entries) if (t instanceof Tensor) out[String(k)] = t;
  return out;
}

/** Remove `prefix` (DataParallel's `module.`) from every key that has it. */
export function stripPrefix(sd: StateDict, prefix = 'module.'): StateDict {
  const out: StateDict = {};
  for (const [k, v] of Object.entries(sd)) out[k.startsWith(prefix) ? k.slice(prefix.length) : k] = v;
  return out;
}

/** Add `prefix` to every key (to save in DataParallel's layout). */
export function addPrefix(sd: StateDict, prefix = 'module.'): StateDict {
  const out: StateDict = {};
  for (const [k, v] of Object.entries(sd)) out[prefix + k] = v;
  return out;
}

/** Adapt a state dict's keys to a model's: strip or add `module.` when only one side has it. */
export function matchPrefix(sd: StateDict, modelKeys: string[], prefix = 'module.'): StateDict {
  const keys = Object.keys(sd);
  if (keys.length === 0 || modelKeys.length === 0) return sd;
  const sdHas = keys.every((k) => k.startsWith(prefix));
  const modelHas = modelKeys.every((k) => k.startsWith(prefix));
  if (sdHas && !modelHas) return stripPrefix(sd, prefix);
  if (!sdHas && modelHas) return addPrefix(sd, prefix);
  return sd;
}

/**
 * Load a state dict (a loaded dict, or a checkpoint holding `model_state_dict` / `state_dict`) into
 * a model, handling the `module.` prefix. Shape mismatches (and, when strict, missing or unexpected
 * keys) throw nn's StateDictError listing every offending key with both shapes.
 */
export function loadStateDictInto(model: Module, checkpoint: unknown, options: { strict?: boolean } = {}): { missingKeys: string[]; unexpectedKeys: string[] } {
  let v = checkpoint;
  if (typeof v === 'object' && v !== null && !(v instanceof Map)) {
    const o = v as Record<string, unknown>;
    if (o.model_state_dict !== undefined && !(o.model_state_dict instanceof Tensor)) v = o.model_state_dict;
    else if (o.state_dict !== undefined && !(o.state_dict instanceof Tensor)) v = o.state_dict;
  }
  const sd = matchPrefix(asStateDict(v), Object.keys(model.stateDict({ keepVars: true })));
  return model.loadStateDict(sd, { strict: options.strict ?? true });
}

/** A model's state dict ready to save like PyTorch's (an OrderedDict, optionally with `module.`). */
export function modelStateDict(model: Module, options: { prefix?: string } = {}): StateDict {
  const sd = model.stateDict();
  return markOrdered(options.prefix ? addPrefix(sd, options.prefix) : sd);
}

// ---------------------------------------------------------------------------------------------
// Optimizer state dicts

/**
 * An optimizer state dict (optim's `stateDict()`) in the form torch.optim's `load_state_dict`
 * expects after torch.load: `state` keyed by integer parameter index, `betas` a tuple, `step` as is
 * (a tensor in PyTorch 1.13's Adam).
 */
export function optimizerStateToPickle(sd: OptimizerStateDict): { state: Map<number, Record<string, unknown>>; param_groups: Record<string, unknown>[] } {
  const state = new Map<number, Record<string, unknown>>();
  for (const [k, v] of Object.entries(sd.state)) state.set(Number(k), { ...v });
  const groups = sd.param_groups.map((g) => {
    const o: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(g)) o[k] = k === 'betas' && Array.isArray(v) ? markTuple([...(v as unknown[])]) : v;
    return o;
  });
  return { state, param_groups: groups };
}

/**
 * An optimizer state dict loaded from a PyTorch checkpoint, in optim's form: `state` as an object
 * keyed by parameter index, `betas` as an array. `step` stays a Tensor (or number).
 */
export function optimizerStateFromPickle(v: unknown): OptimizerStateDict {
  if (typeof v !== 'object' || v === null) throw new TypeError('optimizer state dict is not a dict');
  const o = v as { state?: unknown; param_groups?: unknown };
  if (!Array.isArray(o.param_groups)) throw new TypeError('optimizer state dict has no param_groups list');
  const state: OptimizerStateDict['state'] = {};
  const entries = o.state instanceof Map ? [...o.state.entries()] : typeof o.state === 'object' && o.state !== null ? Object.entries(o.state) : [];
  for (const [k, s] of entries) {
    const id = Number(k);
    if (!Number.isInteger(id)) throw new TypeError(`optimizer state key ${String(k)} is not a parameter index`);
    state[id] = { ...(s as Record<string, Tensor | number | null>) };
  }
  const groups = (o.param_groups as Record<string, unknown>[]).map((g) => {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(g)) out[k] = Array.isArray(x) && isTuple(x) ? [...(x as unknown[])] : x;
    return out as OptimizerStateDict['param_groups'][number];
  });
  return { state, param_groups: groups };
}

/** Free every Tensor in a loaded tree (e.g. a checkpoint's leftovers after loading it into a model). */
export function disposeTree(root: unknown): void {
  const seen = new Set<object>();
  const visit = (v: unknown): void => {
    if (typeof v !== 'object' || v === null || seen.has(v) || ArrayBuffer.isView(v)) return;
    seen.add(v);
    if (v instanceof Tensor) {
      if (!v.isDisposed) v.dispose();
      return;
    }
    if (isPyObject(v)) {
      visit(v.args);
      visit(v.state);
      return;
    }
    const items = v instanceof Map ? [...v.values()] : v instanceof Set ? [...v] : Array.isArray(v) ? v : Object.values(v);
    for (const x of items) visit(x);
  };
  visit(root);
}

