// `npm run bench`: every benchmark of docs/benchmarks.md in turn, with the arguments recorded there
// (about 10 minutes on a quiet 2-core machine). usage: node dist/bench/run.js [name ...] (engine,
// io-load, data-loader, data-extract, data-index, mae, amp; default: all)
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const BENCHES: Record<string, string[]> = {
  engine: ['engine.js', '--steps', '5', '--warmup', '2'],
  'io-load': ['io-load.js'],
  'data-loader': ['data-loader.js', '--images', '600', '--epochs', '3'],
  'data-extract': ['data-extract.js', '--seconds', '200'],
  'data-index': ['--expose-gc', 'data-index.js'],
  mae: ['mae.js', '--repeats', '3'],
  amp: ['amp.js', '--repeats', '3'],
};

const names = process.argv.slice(2);
for (const n of names) if (!BENCHES[n]) throw new Error(`unknown benchmark '${n}'; known: ${Object.keys(BENCHES).join(', ')}`);
let failed = 0;
for (const name of names.length ? names : Object.keys(BENCHES)) {
  const args = BENCHES[name]!.map((a) => (a.endsWith('.js') ? path.join(here, a) : a));
  console.log(`== ${name}: node ${args.map((a) => path.relative(process.cwd(), a) || a).join(' ')}`);
  const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
  if (r.status !== 0) { failed++; console.error(`== ${name} failed (${r.status ?? r.signal})`); }
}
process.exit(failed ? 1 : 0);
