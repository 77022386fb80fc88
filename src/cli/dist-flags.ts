// The flags every data-parallel command takes (train-tc, finetune): they matter only when the command
// runs as one of several processes (awty launch, torchrun, srun).
import type { Command } from 'commander';
import { number } from './parse.js';
import { DEFAULT_MASTER_PORT, DEFAULT_TIMEOUT_S } from '../dist/env.js';


export function addDistFlags(cmd: Command): Command {
  return cmd
    .option('--dist-timeout <s>', 'distributed runs: seconds to wait for the other processes (rendezvous and each collective)', number({ positive: true }), DEFAULT_TIMEOUT_S)
    .option('--master-addr <host>', 'distributed runs: address of the rank-0 machine (default: MASTER_ADDR; under SLURM the first node of the job)')
    .option('--sync-bn', 'distributed runs: BatchNorm statistics over the global batch (SyncBatchNorm) instead of per process, as DDP does by default')
    .option('--master-port <port>', `distributed runs: port of the rendezvous on the rank-0 machine (default: MASTER_PORT, else ${DEFAULT_MASTER_PORT})`, number({ integer: true, min: 1, max: 65535 }));
}

export function distFlagValues(o: Record<string, unknown>): { distTimeout: number; syncBn: boolean; masterAddr?: string; masterPort?: number } {
  return {
    distTimeout: o.distTimeout as number,
    syncBn: o.syncBn === true,
    ...(o.masterAddr !== undefined ? { masterAddr: o.masterAddr as string } : {}),
    ...(o.masterPort !== undefined ? { masterPort: o.masterPort as number } : {}),
  };
}
