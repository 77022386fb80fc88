// Test helpers for distributed runs: free loopback ports, and N processes started with the launch
// environment, each killed at teardown if still running.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';

/** A TCP port that was free a moment ago (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface RankResult { rank: number; code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

const live = new Set<ChildProcess>();

/** Kills every process started by startRanks that is still running (call in after()). */
export function killAll(): void {
  for (const c of live) {
    try { c.kill('SIGKILL'); } catch { /* gone */ }
  }
  live.clear();
}

/**
 * Runs `node args...` as ranks 0..world-1 on 127.0.0.1:port; `env(rank)` adds or overrides variables.
 * Resolves with every rank's exit and output; a rank still running after timeoutMs is killed.
 */
export function runRanks(args: string[], world: number, port: number, o: { env?: (rank: number) => Record<string, string>; timeoutMs?: number } = {}): Promise<RankResult[]> {
  return Promise.all(Array.from({ length: world }, (_, rank) => new Promise<RankResult>((resolve) => {
    const child = spawn(process.execPath, args, {
      env: { ...process.env, MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), WORLD_SIZE: String(world), RANK: String(rank), LOCAL_RANK: String(rank), ...o.env?.(rank) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    live.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 120_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ rank, code, signal, stdout, stderr });
    });
  })));
}
