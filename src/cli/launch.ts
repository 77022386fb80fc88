// awty launch: runs an awty command as N data-parallel processes on this machine (and, with the same
// command on every node, across machines), as torchrun does.
import { Command } from 'commander';
import { DEFAULT_MASTER_PORT } from '../dist/env.js';
import { int, number } from './parse.js';

export function registerLaunch(program: Command): void {
  program
    .command('launch')
    .description('run an awty command (train-tc, finetune) as N data-parallel processes per node: awty launch --nproc-per-node 2 -- train-tc ...')
    .requiredOption('--nproc-per-node <n>', 'worker processes on this machine', int(1))
    .option('--nnodes <m>', 'machines in the run (the same command runs on each)', int(1), 1)
    .option('--node-rank <r>', 'this machine\'s index, 0 .. nnodes-1 (node 0 hosts the rendezvous)', int(0), 0)
    .option('--master-addr <host>', 'address of node 0, reachable from every node', '127.0.0.1')
    .option('--master-port <port>', 'free TCP port on node 0 for the rendezvous', number({ integer: true, min: 1, max: 65535 }), DEFAULT_MASTER_PORT)
    .option('--threads <n>', 'libtorch threads per worker (default: cores / nproc-per-node)', int(1))
    .argument('<command...>', 'the awty command and its flags, after --')
    .passThroughOptions()
    .action(async (args: string[], o: Record<string, unknown>) => {
      const { launch } = await import('../dist/launch.js');
      const r = await launch({
        nprocPerNode: o.nprocPerNode as number, nnodes: o.nnodes as number, nodeRank: o.nodeRank as number,
        masterAddr: o.masterAddr as string, masterPort: o.masterPort as number, args,
        ...(o.threads !== undefined ? { threads: o.threads as number } : {}),
      });
      if (r.exitCode !== 0) {
        process.stderr.write(`awty launch: ${r.message}\n`);
        process.exitCode = r.exitCode;
      }
    });
}
