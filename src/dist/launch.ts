// The launcher behind `awty launch` (torchrun's job for awty commands): starts one worker process
// per local rank with the distributed environment set, splits the machine's threads among them,
// prefixes their output lines with the rank, forwards SIGINT/SIGTERM, and when a worker fails stops
// the others and reports which rank failed and how.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_MASTER_PORT } from './env.js';

export interface LaunchOptions {
  nprocPerNode: number;
  nnodes?: number;
  nodeRank?: number;
  masterAddr?: string;
  masterPort?: number;
  /** libtorch threads per worker (default: this machine's cores / nprocPerNode, at least 1) */
  threads?: number;
  /** the awty command and its arguments, e.g. ['train-tc', '--data-dirs', 'x'] */
  args: string[];
  /** the program each worker runs with `args` (default: the awty CLI run by this Node) */
  command?: string[];
  /** seconds between the stop signal and SIGKILL for workers that do not exit (default 10) */
  graceSeconds?: number;
  /** where prefixed output goes (default process.stdout / process.stderr) */
  out?: (line: string) => void;
  err?: (line: string) => void;
  /** the launcher forwards these signals it receives to the workers (default SIGINT, SIGTERM) */
  forwardSignals?: NodeJS.Signals[];
}

export interface LaunchResult {
  /** 0 when every worker exited 0 */
  exitCode: number;
  /** the first worker that failed, if any */
  failed?: { rank: number; code: number | null; signal: NodeJS.Signals | null };
  /** a one-line description of the outcome */
  message: string;
}

function check(name: string, v: number | undefined, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (v !== undefined && !(Number.isInteger(v) && v >= min && v <= max)) throw new Error(`${name} must be an integer from ${min} to ${max}, got ${v}`);
}

/** The awty CLI's entry point next to this file (dist/src/cli/main.js). */
export function awtyCommand(): string[] {
  return [process.execPath, path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'cli', 'main.js')];
}

/** Starts the workers of this node and resolves when all have exited (or were stopped after a failure). */
export function launch(o: LaunchOptions): Promise<LaunchResult> {
  const nnodes = o.nnodes ?? 1;
  const nodeRank = o.nodeRank ?? 0;
  check('--nproc-per-node', o.nprocPerNode, 1);
  check('--nnodes', nnodes, 1);
  check('--node-rank', nodeRank, 0, nnodes - 1);
  check('--master-port', o.masterPort, 1, 65535);
  check('--threads', o.threads, 1);
  if (!o.args.length) throw new Error('no command to launch: give it after --, e.g. awty launch --nproc-per-node 2 -- train-tc --data-dirs ...');
  const worldSize = o.nprocPerNode * nnodes;
  const threads = o.threads ?? Math.max(1, Math.floor((os.availableParallelism?.() ?? os.cpus().length) / o.nprocPerNode));
  const masterAddr = o.masterAddr ?? '127.0.0.1';
  const masterPort = o.masterPort ?? DEFAULT_MASTER_PORT;
  const out = o.out ?? ((l: string) => process.stdout.write(`${l}\n`));
  const err = o.err ?? ((l: string) => process.stderr.write(`${l}\n`));
  const [exe, ...pre] = o.command ?? awtyCommand();
  const grace = (o.graceSeconds ?? 10) * 1000;

  return new Promise((resolve) => {
    const workers: { rank: number; child: ChildProcess; exited: boolean }[] = [];
    let failed: LaunchResult['failed'];
    let stopping = false;
    let killTimer: NodeJS.Timeout | undefined;
    let remaining = o.nprocPerNode;

    const signalAll = (sig: NodeJS.Signals): void => {
      for (const w of workers) {
        if (w.exited || w.child.pid === undefined) continue;
        // each worker leads its own process group: the signal reaches anything it started too
        try { process.kill(-w.child.pid, sig); } catch { try { w.child.kill(sig); } catch { /* gone */ } }
      }
    };
    const stop = (sig: NodeJS.Signals): void => {
      signalAll(sig);
      if (stopping) return;
      stopping = true;
      killTimer = setTimeout(() => signalAll('SIGKILL'), grace);
      killTimer.unref();
    };
    let interrupted: NodeJS.Signals | undefined;
    const onSignal = (sig: NodeJS.Signals): void => {
      interrupted ??= sig;
      err(`awty launch: ${sig} received, stopping the workers`);
      stop(sig);
    };
    const forward = o.forwardSignals ?? ['SIGINT', 'SIGTERM'];
    for (const s of forward) process.on(s, onSignal);

    const finish = (): void => {
      for (const s of forward) process.off(s, onSignal);
      if (killTimer) clearTimeout(killTimer);
      if (failed) {
        const how = failed.signal ? `was killed by ${failed.signal}` : `exited with status ${failed.code}`;
        resolve({ exitCode: failed.code && failed.code > 0 ? failed.code : 1, failed, message: `rank ${failed.rank} ${how}; the other workers were stopped` });
      } else if (interrupted) {
        resolve({ exitCode: 128 + (os.constants.signals[interrupted] ?? 15), message: `stopped by ${interrupted}` });
      } else {
        resolve({ exitCode: 0, message: `all ${o.nprocPerNode} worker(s) finished` });
      }
    };

    for (let local = 0; local < o.nprocPerNode; local++) {
      const rank = nodeRank * o.nprocPerNode + local;
      const env = {
        ...process.env,
        RANK: String(rank), LOCAL_RANK: String(local), WORLD_SIZE: String(worldSize), LOCAL_WORLD_SIZE: String(o.nprocPerNode),
        GROUP_RANK: String(nodeRank), MASTER_ADDR: masterAddr, MASTER_PORT: String(masterPort),
        AWTY_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads),
      };
      const child = spawn(exe!, [...pre, ...o.args], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      const w = { rank, child, exited: false };
      workers.push(w);
      if (child.pid !== undefined) err(`awty launch: rank ${rank} started (pid ${child.pid})`);
      const prefix = `[${rank}]`;
      const streams = [createInterface({ input: child.stdout! }), createInterface({ input: child.stderr! })];
      streams[0]!.on('line', (l) => out(`${prefix} ${l}`));
      streams[1]!.on('line', (l) => err(`${prefix} ${l}`));
      let closed = 0;
      let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
      const done = (): void => {
        // after both the exit and the end of its output
        if (!exit || closed < 2 || w.exited) return;
        w.exited = true;
        if (--remaining === 0) finish();
      };
      for (const s of streams) s.on('close', () => { closed++; done(); });
      child.on('error', (e) => {
        err(`awty launch: cannot start rank ${rank}: ${e.message}`);
        exit = { code: 127, signal: null };
        closed = 2;
        done();
      });
      child.on('exit', (code, signal) => {
        exit = { code, signal };
        // a failed worker is acted on at once, even if something it started still holds its output open
        if ((code !== 0 || signal) && !failed && !stopping) {
          failed = { rank, code, signal };
          err(`awty launch: rank ${rank} ${signal ? `was killed by ${signal}` : `exited with status ${code}`}; stopping the other workers`);
          stop('SIGTERM');
        }
        done();
      });
    }
  });
}
