// Process groups over libtorch's c10d (torch.distributed's names): a TCPStore rendezvous, a Gloo
// group for CPU tensors (NCCL where the addon was built against a CUDA libtorch), and collectives
// that start asynchronously and hand back a Work to wait on.
import { native, type GroupHandle, type StoreHandle, type WorkHandle } from '../torch/native.js';
import { Tensor } from '../torch/index.js';
import { DEFAULT_TIMEOUT_S, distEnv, type DistEnv } from './env.js';

export type ReduceOp = 'sum' | 'avg' | 'product' | 'min' | 'max';
export type Backend = 'gloo' | 'nccl';

export { DEFAULT_TIMEOUT_S };

/** An operation in flight; `wait()` blocks until it finished and throws its error. */
export class Work {
  #done = false;
  /** @internal */
  constructor(private readonly handle: WorkHandle | undefined, private readonly then?: () => void, private readonly what = 'collective') {}
  isCompleted(): boolean {
    return this.#done || this.handle === undefined || (native.distWorkIsCompleted(this.handle));
  }
  wait(): void {
    if (this.#done) return;
    try {
      if (this.handle !== undefined) native.distWorkWait(this.handle);
    } catch (e) {
      throw new Error(`${this.what} failed: ${(e as Error).message}`, { cause: e });
    }
    this.#done = true;
    this.then?.();
  }
}

/** A c10d key-value store (TCPStore, possibly under a prefix). Values are strings here. */
export class Store {
  /** @internal */
  constructor(readonly handle: StoreHandle) {}
  set(key: string, value: string): void {
    native.storeSet(this.handle, key, value);
  }
  /** Waits for the key up to the store's timeout. */
  get(key: string): string {
    return native.storeGet(this.handle, key);
  }
  add(key: string, delta: number): number {
    return native.storeAdd(this.handle, key, delta);
  }
  wait(keys: string[], timeoutSeconds: number): void {
    native.storeWait(this.handle, keys, Math.round(timeoutSeconds * 1000));
  }
  prefixed(prefix: string): Store {
    return new Store(native.prefixStore(prefix, this.handle));
  }
  /** Drops this reference to the store now (a server stops listening once no reference is left). */
  close(): void {
    native.distRelease(this.handle);
  }
}

export interface TCPStoreOptions {
  host: string;
  port: number;
  isServer: boolean;
  worldSize?: number;
  timeoutSeconds?: number;
}

/**
 * c10d's TCPStore: the server listens on `port` (0: any free port, see `port`), clients connect to
 * host:port, retrying until the timeout. Errors name the address.
 */
export class TCPStore extends Store {
  readonly port: number;
  constructor(readonly o: TCPStoreOptions) {
    const timeout = o.timeoutSeconds ?? DEFAULT_TIMEOUT_S;
    let h: StoreHandle;
    try {
      h = native.tcpStore(o.host, o.port, o.isServer, o.worldSize ?? 0, Math.round(timeout * 1000), false);
    } catch (e) {
      const msg = (e as Error).message;
      if (o.isServer && /in use|EADDRINUSE|failed to listen|bind/i.test(msg)) {
        throw new Error(`cannot host the rendezvous store: port ${o.port} is in use on this machine (choose another with --master-port or MASTER_PORT)`, { cause: e });
      }
      if (!o.isServer && /timed? ?out|timeout/i.test(msg)) {
        throw new Error(`timed out after ${timeout} s connecting to the rendezvous store at ${o.host}:${o.port} (is rank 0 running? --dist-timeout sets the wait)`, { cause: e });
      }
      throw new Error(`rendezvous store at ${o.host}:${o.port}: ${msg}`, { cause: e });
    }
    super(h);
    this.port = o.isServer ? (native.tcpStorePort(h)) : o.port;
  }
}

export interface ProcessGroupOptions {
  backend?: Backend;
  timeoutSeconds?: number;
  /** Gloo: the network interface to use (default: GLOO_SOCKET_IFNAME, else the address that reaches the master) */
  iface?: string;
  /** Gloo: the address to bind to (default: 127.0.0.1 when the master is on loopback, else this host's) */
  hostname?: string;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|::1)$/;

/** A group of `size` processes that run collectives together (c10d's ProcessGroup). */
export class ProcessGroup {
  readonly handle: GroupHandle;
  readonly timeoutMs: number;
  constructor(readonly store: Store, readonly rank: number, readonly size: number, readonly backend: Backend = 'gloo', o: ProcessGroupOptions & { masterAddr?: string } = {}) {
    this.timeoutMs = Math.round((o.timeoutSeconds ?? DEFAULT_TIMEOUT_S) * 1000);
    try {
      if (backend === 'nccl') {
        this.handle = native.processGroupNCCL(store.handle, rank, size, this.timeoutMs);
      } else {
        const iface = o.iface ?? process.env.GLOO_SOCKET_IFNAME;
        const [kind, arg]: ['interface' | 'hostname' | 'default', string] = iface ? ['interface', iface.split(',')[0]!]
          : o.hostname ? ['hostname', o.hostname]
          : o.masterAddr && LOOPBACK.test(o.masterAddr) ? ['hostname', '127.0.0.1']
          : ['default', ''];
        // as torch.distributed does: two threads per device
        this.handle = native.processGroupGloo(store.handle, rank, size, this.timeoutMs, kind, arg, 2);
      }
    } catch (e) {
      throw new Error(`rank ${rank}: cannot form the ${backend} process group of ${size}: ${(e as Error).message}`, { cause: e });
    }
  }

  private check(tensors: Tensor[], what: string): void {
    for (const t of tensors) {
      if (!(t instanceof Tensor)) throw new Error(`${what}: expected tensors`);
      if (!t.isContiguous()) throw new Error(`${what}: tensors must be contiguous (shape [${t.shape.join(', ')}])`);
      if (this.backend === 'gloo' && t.device !== 'cpu') throw new Error(`${what}: the gloo backend takes CPU tensors, got one on ${t.device}`);
    }
  }

  /** Reduces `tensor` in place across the group; 'avg' is a sum divided by the group size. */
  allReduce(tensor: Tensor, op: ReduceOp = 'sum'): Work {
    this.check([tensor], 'allReduce');
    if (op === 'avg' && !/^(float|bfloat)/.test(tensor.dtype)) throw new Error(`allReduce: 'avg' needs a floating-point tensor, got ${tensor.dtype} (reduce with 'sum' and divide)`);
    const nativeOp = op === 'avg' && this.backend === 'gloo' ? 'sum' : op;
    const h = native.distAllreduce(this.handle, [tensor.handle], nativeOp, this.timeoutMs);
    const then = op === 'avg' && this.backend === 'gloo' ? (): void => void tensor.div_(this.size) : undefined;
    return new Work(h, then, `rank ${this.rank}: allReduce of [${tensor.shape.join(', ')}]`);
  }

  /**
   * The sum of `tensor` over the ranks as a new tensor, differentiable: in backward its gradient is
   * summed over the ranks before it reaches `tensor` (torch.distributed.nn.functional.all_reduce).
   * Blocks until the sum is here; every rank must call it, and run the same backward.
   */
  allReduceWithGrad(tensor: Tensor): Tensor {
    this.check([tensor], 'allReduceWithGrad');
    try {
      return new Tensor(native.distAllreduceWithGrad(this.handle, tensor.handle, this.timeoutMs));
    } catch (e) {
      throw new Error(`rank ${this.rank}: allReduceWithGrad of [${tensor.shape.join(', ')}] failed: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Copies rank `src`'s tensor into every rank's `tensor`. */
  broadcast(tensor: Tensor, src = 0): Work {
    this.check([tensor], 'broadcast');
    if (!(Number.isInteger(src) && src >= 0 && src < this.size)) throw new Error(`broadcast: src ${src} is not a rank of a group of ${this.size}`);
    return new Work(native.distBroadcast(this.handle, [tensor.handle], src, this.timeoutMs), undefined, `rank ${this.rank}: broadcast of [${tensor.shape.join(', ')}]`);
  }

  /** Fills `outputs[r]` with rank r's `tensor` (outputs: one tensor per rank, of tensor's shape). */
  allGather(outputs: Tensor[], tensor: Tensor): Work {
    if (outputs.length !== this.size) throw new Error(`allGather: expected ${this.size} output tensors (one per rank), got ${outputs.length}`);
    this.check([...outputs, tensor], 'allGather');
    return new Work(native.distAllgather(this.handle, outputs.map((t) => t.handle), tensor.handle, this.timeoutMs), undefined,
      `rank ${this.rank}: allGather of [${tensor.shape.join(', ')}]`);
  }

  barrier(): Work {
    return new Work(native.distBarrier(this.handle, this.timeoutMs), undefined, `rank ${this.rank}: barrier`);
  }

  /** Closes the group now (its threads and connections); later collectives on it throw. */
  destroy(): void {
    native.distRelease(this.handle);
  }
}

// ---- the default group (torch.distributed's module-level functions) ----------------------------

let defaultGroup: ProcessGroup | undefined;
let defaultEnv: DistEnv | undefined;
let defaultStores: Store[] = [];

export interface InitOptions extends ProcessGroupOptions {
  /** the launch environment (default: from process.env) */
  env?: DistEnv;
  masterAddr?: string;
  masterPort?: number;
}

/**
 * Joins the distributed run described by the environment (torch.distributed.init_process_group with
 * init_method 'env://'): rank 0 hosts the TCPStore on MASTER_ADDR:MASTER_PORT (unless torchrun's
 * agent hosts it), every rank connects, the world sizes are compared, and the group is formed.
 * Every wait is bounded by `timeoutSeconds` (default 300).
 */
export function initProcessGroup(o: InitOptions = {}): ProcessGroup {
  if (defaultGroup) throw new Error('the default process group is already initialised');
  const env = o.env ?? distEnv(process.env, { ...(o.masterAddr ? { masterAddr: o.masterAddr } : {}), ...(o.masterPort ? { masterPort: o.masterPort } : {}) });
  if (!env) throw new Error('not launched as a distributed run: WORLD_SIZE and RANK are not set (use awty launch or torchrun)');
  const timeoutSeconds = o.timeoutSeconds ?? DEFAULT_TIMEOUT_S;
  const tcp = new TCPStore({ host: env.masterAddr, port: env.masterPort, isServer: env.rank === 0 && !env.agentStore, worldSize: env.worldSize, timeoutSeconds });
  const stores: Store[] = [tcp];
  try {
    let store: Store = tcp;
    if (env.agentStore) stores.push(store = store.prefixed(`/worker/attempt_${env.restartCount}`));
    checkWorldSize(store, env, timeoutSeconds);
    stores.push(store = store.prefixed('default_pg/'));
    const backend = o.backend ?? 'gloo';
    defaultGroup = new ProcessGroup(store, env.rank, env.worldSize, backend, { ...o, timeoutSeconds, masterAddr: env.masterAddr });
  } catch (e) {
    for (const s of stores.reverse()) s.close();
    throw e;
  }
  defaultEnv = env;
  defaultStores = stores;
  return defaultGroup;
}

/**
 * Every rank publishes its WORLD_SIZE; a rank whose world size differs from rank 0's is an error
 * naming it. The others read rank 0's value before publishing theirs, so that each learns of a
 * mismatch before rank 0 can stop over it.
 */
function checkWorldSize(store: Store, env: DistEnv, timeoutSeconds: number): void {
  const get = (key: string, who: string): string => {
    try {
      return store.get(key);
    } catch (e) {
      const msg = (e as Error).message;
      const why = /timeout|timed out/i.test(msg) ? `did not join within ${timeoutSeconds} s (--dist-timeout)` : 'left the rendezvous';
      throw new Error(`rank ${env.rank}: ${who} ${why}: ${msg}`, { cause: e });
    }
  };
  const mismatch = (r: number, w: number, w0: number): Error =>
    new Error(`rank ${r} has WORLD_SIZE ${w} but rank 0 has ${w0}: every process of a run must be given the same world size`);
  if (env.rank === 0) {
    store.set('awty/world_size/0', String(env.worldSize));
    for (let r = 1; r < env.worldSize; r++) {
      const w = Number(get(`awty/world_size/${r}`, `rank ${r}`));
      if (w !== env.worldSize) throw mismatch(r, w, env.worldSize);
    }
  } else {
    const w0 = Number(get('awty/world_size/0', 'rank 0'));
    store.set(`awty/world_size/${env.rank}`, String(env.worldSize));
    if (w0 !== env.worldSize) throw mismatch(env.rank, env.worldSize, w0);
  }
}

export function isInitialized(): boolean {
  return defaultGroup !== undefined;
}

/** The default group (throws when none was initialised). */
export function group(): ProcessGroup {
  if (!defaultGroup) throw new Error('no process group: call dist.initProcessGroup() first');
  return defaultGroup;
}

/** This process's rank (0 when not distributed). */
export function getRank(): number {
  return defaultGroup?.rank ?? 0;
}
export function getWorldSize(): number {
  return defaultGroup?.size ?? 1;
}
export function getLocalRank(): number {
  return defaultEnv?.localRank ?? 0;
}

/** Leaves the default group (a later initProcessGroup forms a new one). */
export function destroyProcessGroup(): void {
  defaultGroup?.destroy();
  for (const s of defaultStores.reverse()) s.close();
  defaultGroup = undefined;
  defaultEnv = undefined;
  defaultStores = [];
}

export function allReduce(tensor: Tensor, op: ReduceOp = 'sum', o: { asyncOp?: boolean } = {}): Work {
  const w = group().allReduce(tensor, op);
  if (!o.asyncOp) w.wait();
  return w;
}
export function broadcast(tensor: Tensor, src = 0, o: { asyncOp?: boolean } = {}): Work {
  const w = group().broadcast(tensor, src);
  if (!o.asyncOp) w.wait();
  return w;
}
export function allGather(outputs: Tensor[], tensor: Tensor, o: { asyncOp?: boolean } = {}): Work {
  const w = group().allGather(outputs, tensor);
  if (!o.asyncOp) w.wait();
  return w;
}
export function barrier(): void {
  group().barrier().wait();
}
