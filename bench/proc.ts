// Helpers of the end-to-end benchmarks: a command's run as a fresh process tree, with the peak PSS
// of the whole tree (main process + loader worker processes) sampled every 100 ms.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** PSS in KiB of a process and all its descendants. */
export function treePssKiB(root: number): number {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(d));
      children.set(ppid, list);
    } catch { /* gone */ }
  }
  let total = 0;
  const todo = [root];
  while (todo.length) {
    const pid = todo.pop()!;
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
      if (m) total += Number(m[1]);
    } catch { /* gone */ }
    todo.push(...(children.get(pid) ?? []));
  }
  return total;
}

export interface Run { imagesPerSec: number; seconds: number; dataSeconds: number; commSeconds?: number; peakPssMiB: number; wallSeconds: number }

/** Runs a command to its end; `parse` reads its result from stdout. Throws with its output on failure. */
export async function runOne(cmd: string, argv: string[], env: NodeJS.ProcessEnv, parse: (stdout: string) => Omit<Run, 'peakPssMiB' | 'wallSeconds'>): Promise<Run> {
  const t0 = performance.now();
  const child = spawn(cmd, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  let peak = 0;
  const timer = setInterval(() => { peak = Math.max(peak, treePssKiB(child.pid!)); }, 100);
  const code = await new Promise<number | null>((res) => child.on('close', res));
  clearInterval(timer);
  if (code !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (${code}):\n${err}\n${out}`);
  return { ...parse(out), peakPssMiB: peak / 1024, wallSeconds: (performance.now() - t0) / 1000 };
}


export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** `median (min–max)` with d decimals. */
export function spread(xs: number[], d: number): string {
  return `${median(xs).toFixed(d)} (${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)})`;
}
