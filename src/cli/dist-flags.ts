// The flags every data-parallel command takes (train-tc, finetune): they matter only when the command
// runs as one of several processes (awty launch, torchrun, srun).
import type { Command } from 'commander';

function positive(name: string, integer: boolean) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new Error(`${name} must be a positive ${integer ? 'integer' : 'number'}, got ${v}`);
    return n;
  };
}

export function addDistFlags(cmd: Command): Command {
  return cmd
    .option('--dist-timeout <s>', 'distributed runs: seconds to wait for the other processes (rendezvous and each collective)', positive('--dist-timeout', false), 300)
    .option('--master-addr <host>', 'distributed runs: address of the rank-0 machine (default: MASTER_ADDR; under SLURM the first node of the job)')
    .option('--master-port <port>', 'distributed runs: port of the rendezvous on the rank-0 machine (default: MASTER_PORT, else 29500)', positive('--master-port', true));
}

export function distFlagValues(o: Record<string, unknown>): { distTimeout: number; masterAddr?: string; masterPort?: number } {
  return {
    distTimeout: o.distTimeout as number,
    ...(o.masterAddr !== undefined ? { masterAddr: o.masterAddr as string } : {}),
    ...(o.masterPort !== undefined ? { masterPort: o.masterPort as number } : {}),
  };
}
