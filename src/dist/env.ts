// The launch environment: who this process is in a distributed run. torchrun and `awty launch` set
// MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK and LOCAL_RANK; under SLURM (srun) the task's
// SLURM_PROCID, SLURM_NTASKS and SLURM_LOCALID are used when RANK/WORLD_SIZE are absent.

export interface DistEnv {
  rank: number;
  worldSize: number;
  localRank: number;
  /** processes on this machine (LOCAL_WORLD_SIZE, SLURM_NTASKS_PER_NODE), when known */
  localWorldSize?: number;
  masterAddr: string;
  masterPort: number;
  /** torchrun's agent hosts the store (TORCHELASTIC_USE_AGENT_STORE): every rank connects as a client */
  agentStore: boolean;
  /** torchrun's restart count: the store prefix of this attempt */
  restartCount: number;
  /** where the values came from: 'env' (torchrun, awty launch) or 'slurm' */
  source: 'env' | 'slurm';
}

export const DEFAULT_MASTER_PORT = 29500;
/** Seconds to wait for the other processes (rendezvous and each collective) unless told. */
export const DEFAULT_TIMEOUT_S = 300;

function intVar(env: NodeJS.ProcessEnv, name: string, min: number): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`environment variable ${name} must be an integer >= ${min}, got '${v}'`);
  return n;
}

/** SLURM's first host of a node list like `node[01-04,07],gpu3` (no scontrol needed for the common forms). */
export function firstSlurmHost(nodelist: string): string {
  const m = /^([^,[]+)(?:\[([^\]]+)\])?/.exec(nodelist.trim());
  if (!m) return nodelist;
  const [, prefix, range] = m;
  if (!range) return prefix!;
  const first = range.split(',')[0]!.split('-')[0]!;
  return `${prefix}${first}`;
}

/**
 * The distributed identity of this process from its environment, or undefined when it was not
 * launched as part of a distributed run (no WORLD_SIZE, or a world of one with no SLURM tasks).
 * `masterAddr` / `masterPort` override the environment (flags of the command).
 */
export function distEnv(env: NodeJS.ProcessEnv = process.env, o: { masterAddr?: string; masterPort?: number } = {}): DistEnv | undefined {
  let rank = intVar(env, 'RANK', 0);
  let worldSize = intVar(env, 'WORLD_SIZE', 1);
  let localRank = intVar(env, 'LOCAL_RANK', 0);
  let localWorldSize = intVar(env, 'LOCAL_WORLD_SIZE', 1);
  let source: DistEnv['source'] = 'env';
  if (worldSize === undefined && rank === undefined && env.SLURM_NTASKS !== undefined) {
    worldSize = intVar(env, 'SLURM_NTASKS', 1);
    rank = intVar(env, 'SLURM_PROCID', 0);
    localRank = intVar(env, 'SLURM_LOCALID', 0);
    const perNode = env.SLURM_NTASKS_PER_NODE?.match(/^\d+/)?.[0];
    localWorldSize = perNode ? Number(perNode) : undefined;
    source = 'slurm';
  }
  if (worldSize === undefined && rank === undefined) return undefined;
  if (worldSize === undefined) throw new Error(`RANK is set (${rank}) but WORLD_SIZE is not: set both, or neither for a single-process run`);
  if (rank === undefined) throw new Error(`WORLD_SIZE is set (${worldSize}) but RANK is not: set both, or neither for a single-process run`);
  if (rank >= worldSize) throw new Error(`RANK ${rank} is not below WORLD_SIZE ${worldSize}`);
  if (worldSize === 1 && source === 'slurm') return undefined;
  let masterAddr = o.masterAddr ?? env.MASTER_ADDR;
  if (!masterAddr && source === 'slurm' && env.SLURM_JOB_NODELIST) masterAddr = firstSlurmHost(env.SLURM_JOB_NODELIST);
  if (!masterAddr) {
    if (worldSize > 1) throw new Error('MASTER_ADDR is not set: give the address of the rank-0 machine (environment MASTER_ADDR or --master-addr)');
    masterAddr = '127.0.0.1';
  }
  const port = o.masterPort ?? intVar(env, 'MASTER_PORT', 1);
  if (port !== undefined && port > 65535) throw new Error(`MASTER_PORT must be a TCP port (1-65535), got ${port}`);
  return {
    rank, worldSize, localRank: localRank ?? 0, ...(localWorldSize !== undefined ? { localWorldSize } : {}),
    masterAddr, masterPort: port ?? DEFAULT_MASTER_PORT,
    agentStore: env.TORCHELASTIC_USE_AGENT_STORE === 'True',
    restartCount: intVar(env, 'TORCHELASTIC_RESTART_COUNT', 0) ?? 0,
    source,
  };
}
