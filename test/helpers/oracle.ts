// Test helpers: run Debian's python3 with torch (the oracle) and exchange tensors as raw files.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as torch from '../../src/torch/index.js';

export const PYTHON = '/usr/bin/python3';

/** Whether Debian's python3 with torch and torchvision is present (it is installed by the set-up). */
export function hasOracle(): boolean {
  if (!existsSync(PYTHON)) return false;
  const r = spawnSync(PYTHON, ['-c', 'import torch, torchvision'], { encoding: 'utf8' });
  return r.status === 0;
}

/**
 * The environment for a Python oracle process: PyTorch runs at the thread count awty runs at in this
 * process (AWTY_NUM_THREADS or the machine's cores), so reductions split the same way on both sides.
 */
export function oracleEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const n = String(torch.getNumThreads());
  return { ...process.env, OMP_NUM_THREADS: n, MKL_NUM_THREADS: n, AWTY_ORACLE_THREADS: n, ...extra };
}

export function tmpdir(prefix = 'awty-test-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Runs a Python script (with `OUT` set to `dir`) and returns its stdout; throws with stderr on failure. */
export function runPython(script: string, dir: string, env: Record<string, string> = {}): string {
  const file = path.join(dir, 'script.py');
  writeFileSync(file, PYTHON_PRELUDE + script);
  const r = spawnSync(PYTHON, [file], {
    encoding: 'utf8',
    env: oracleEnv({ OUT: dir, ...env }),
    maxBuffer: 1 << 28,
  });
  if (r.status !== 0) throw new Error(`python failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}

/** Python side of the exchange: dump({name: tensor}, 'file') writes file.json + file.bin. */
const PYTHON_PRELUDE = `
import json, os, sys
import torch
OUT = os.environ['OUT']
if 'AWTY_ORACLE_THREADS' in os.environ: torch.set_num_threads(int(os.environ['AWTY_ORACLE_THREADS']))
_DT = {torch.float32: 'float32', torch.float64: 'float64', torch.int64: 'int64', torch.int32: 'int32', torch.uint8: 'uint8', torch.bool: 'bool'}
def dump(tensors, name):
    index, off = [], 0
    with open(os.path.join(OUT, name + '.bin'), 'wb') as f:
        for k, t in tensors.items():
            t = t.detach().contiguous().cpu()
            b = t.numpy().tobytes()
            index.append({'key': k, 'dtype': _DT[t.dtype], 'shape': list(t.shape), 'offset': off, 'nbytes': len(b)})
            f.write(b); off += len(b)
    with open(os.path.join(OUT, name + '.json'), 'w') as f:
        json.dump(index, f)
def load(name):
    index = json.load(open(os.path.join(OUT, name + '.json')))
    data = open(os.path.join(OUT, name + '.bin'), 'rb').read()
    out = {}
    for e in index:
        dt = {'float32': torch.float32, 'float64': torch.float64, 'int64': torch.int64, 'int32': torch.int32, 'uint8': torch.uint8, 'bool': torch.bool}[e['dtype']]
        out[e['key']] = torch.frombuffer(bytearray(data[e['offset']:e['offset'] + e['nbytes']]), dtype=dt).reshape(e['shape']).clone() if e['nbytes'] else torch.empty(e['shape'], dtype=dt)
    return out
`;

interface Entry {
  key: string;
  dtype: torch.DType;
  shape: number[];
  offset: number;
  nbytes: number;
}

/** Reads tensors written by the Python `dump`. The tensors are kept (outside any scope). */
export function readDump(dir: string, name: string): Record<string, torch.Tensor> {
  const index = JSON.parse(readFileSync(path.join(dir, `${name}.json`), 'utf8')) as Entry[];
  const data = readFileSync(path.join(dir, `${name}.bin`));
  const out: Record<string, torch.Tensor> = {};
  for (const e of index) {
    const t = torch.empty(e.shape, { dtype: e.dtype }).keep();
    t.bytes().set(data.subarray(e.offset, e.offset + e.nbytes));
    out[e.key] = t;
  }
  return out;
}

/** Writes tensors for the Python `load`. */
export function writeDump(dir: string, name: string, tensors: Record<string, torch.Tensor>): void {
  const index: Entry[] = [];
  const chunks: Buffer[] = [];
  let off = 0;
  for (const [key, t0] of Object.entries(tensors)) {
    const t = t0.detach().contiguous();
    const b = Buffer.from(t.bytes());
    index.push({ key, dtype: t.dtype, shape: t.shape, offset: off, nbytes: b.length });
    chunks.push(b);
    off += b.length;
    t.dispose();
  }
  writeFileSync(path.join(dir, `${name}.bin`), Buffer.concat(chunks));
  writeFileSync(path.join(dir, `${name}.json`), JSON.stringify(index));
}

/** ‖a − b‖ / ‖b‖ (in float64). */
export function relErr(a: torch.Tensor, b: torch.Tensor): number {
  return torch.tidy(() => {
    const x = a.detach().to('float64');
    const y = b.detach().to('float64');
    const den = y.norm().item();
    const num = x.sub(y).norm().item();
    return den === 0 ? num : num / den;
  });
}
