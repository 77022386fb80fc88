// Engine-free format tests: pickle protocols 0-5 against Python's pickle, safetensors against the
// format as Python/numpy parse it, and atomic saves surviving a SIGKILL mid-write.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as io from '../src/io/core.js';

const PY = '/usr/bin/python3';
const pyCheck = spawnSync(PY, ['-c', 'import numpy'], { encoding: 'utf8' });
const skip = pyCheck.status === 0 ? false : `${PY} with numpy is not available: ${pyCheck.stderr || pyCheck.error}`;

function python(script: string, args: string[] = []): string {
  const r = spawnSync(PY, ['-c', script, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`python failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('pickle', { skip }, () => {
  let dir = '';
  before(() => { dir = mkdtempSync(join(tmpdir(), 'awty-io-pkl-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('every protocol Python writes (0-5) unpickles to the same values', () => {
    python(String.raw`
import sys, pickle, collections
v = {'ints': [0, 1, -1, 255, 256, 65535, 65536, -2**31, 2**31, 2**63, -2**100], 'floats': [0.5, -1e300, 1e-300],
     'str': ['', 'abc', 'ü✓😀' * 100], 'bytes': b'\x00\x01\xff', 'none': None, 'bools': [True, False],
     'tuple': (1, (2, 3), ()), 'nested': {'a': [{'b': 1}], 'c': {}}, 'od': collections.OrderedDict([('z', 1), ('a', 2)]),
     'intkeys': {1: 'x', 2: 'y'}, 'shared': None, 'long': list(range(2500)), 'set': {5}, 'fs': frozenset([6])}
s = [1, 2]; v['shared'] = [s, s]
for p in range(6):
    open(sys.argv[1] + '/p%d.pkl' % p, 'wb').write(pickle.dumps(v, protocol=p))
`, [dir]);
    for (let p = 0; p <= 5; p++) {
      const v = io.unpickle(readFileSync(join(dir, `p${p}.pkl`))).value as Record<string, unknown>;
      const where = `protocol ${p}`;
      assert.deepEqual(v.ints, [0, 1, -1, 255, 256, 65535, 65536, -(2 ** 31), 2 ** 31, 2n ** 63n, -(2n ** 100n)], where);
      assert.deepEqual(v.floats, [0.5, -1e300, 1e-300], where);
      assert.deepEqual(v.str, ['', 'abc', 'ü✓😀'.repeat(100)], where);
      if (p >= 3) assert.deepEqual([...(v.bytes as Uint8Array)], [0, 1, 255], where);
      else assert.deepEqual([...(v.bytes as Uint8Array)], [0, 1, 255], `${where} (_codecs.encode)`);
      assert.equal(v.none, null, where);
      assert.deepEqual(v.bools, [true, false], where);
      assert.deepEqual(v.tuple, [1, [2, 3], []], where);
      assert.deepEqual(v.nested, { a: [{ b: 1 }], c: {} }, where);
      assert.deepEqual(Object.keys(v.od as object), ['z', 'a'], where);
      assert.ok(io.isOrdered(v.od as object), where);
      assert.deepEqual([...(v.intkeys as Map<number, string>)], [[1, 'x'], [2, 'y']], where);
      const shared = v.shared as unknown[][];
      assert.equal(shared[0], shared[1], `${where}: memo keeps identity`);
      assert.equal((v.long as number[]).length, 2500, where);
      assert.equal((v.long as number[])[2499], 2499, where);
      assert.deepEqual([...(v.set as Set<number>)], [5], where);
      assert.deepEqual([...(v.fs as Set<number>)], [6], where);
    }
  });

  test('awty\'s pickles load in Python with the same values', () => {
    const shared = [1, 2];
    const v = {
      a: [0, -1, 300, 70000, -(2 ** 40), 2n ** 80n, 0.25, -0.0, 'ü✓', true, false, null],
      t: io.markTuple([1, io.markTuple([2])]),
      m: new Map<unknown, unknown>([[1, 'x'], ['k', 2]]),
      od: io.markOrdered({ b: 1, a: 2 }),
      b: new Uint8Array([0, 200, 255]),
      s: new Set([3]),
      shared: [shared, shared],
      long: Array.from({ length: 2100 }, (_, i) => i),
      g: new io.PyGlobal('collections', 'OrderedDict'),
    };
    writeFileSync(join(dir, 'awty.pkl'), io.pickle(v));
    const out = python(String.raw`
import sys, pickle, collections, math
v = pickle.load(open(sys.argv[1], 'rb'))
a = v['a']
assert a[:6] == [0, -1, 300, 70000, -2**40, 2**80] and a[6] == 0.25 and math.copysign(1, a[7]) == -1 and a[8:] == ['ü✓', True, False, None], a
assert v['t'] == (1, (2,)) and v['m'] == {1: 'x', 'k': 2}
assert type(v['od']) is collections.OrderedDict and list(v['od']) == ['b', 'a']
assert v['b'] == b'\x00\xc8\xff' and v['s'] == {3}
assert v['shared'][0] is v['shared'][1] and v['long'] == list(range(2100)) and v['g'] is collections.OrderedDict
print('ok')
`, [join(dir, 'awty.pkl')]);
    assert.equal(out.trim(), 'ok');
  });

  test('bad programs: unknown opcode, truncation, stack underflow, missing memo', () => {
    assert.throws(() => io.unpickle(new Uint8Array([0x80, 2, 0xfe])), /unknown pickle opcode 0xfe at byte 2/);
    assert.throws(() => io.unpickle(new Uint8Array([0x80, 2, 0x4a, 1])), /pickle data truncated at byte 3/);
    assert.throws(() => io.unpickle(new Uint8Array([0x80, 2, 0x61, 0x2e])), /stack underflow/);
    assert.throws(() => io.unpickle(new Uint8Array([0x80, 2, 0x68, 9, 0x2e])), /memo entry 9 missing/);
    assert.throws(() => io.unpickle(new Uint8Array([0x80, 2, 0x4e, 0x51, 0x2e])), /persistent ids but no persistent_load/);
  });
});

describe('safetensors', { skip }, () => {
  let dir = '';
  before(() => { dir = mkdtempSync(join(tmpdir(), 'awty-io-st-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('awty writes every dtype (views as contiguous copies); numpy reads the same bytes; Python-written files read back', async () => {
    const tensors: Record<string, io.RawTensor> = {};
    const hashes: Record<string, string> = {};
    for (const dtype of io.DTYPES) {
      const t = io.rawTensorFromBytes(dtype, [2, 3], new Uint8Array(randomBytes(6 * io.ELEMENT_SIZE[dtype])), dtype);
      tensors[dtype] = t;
    }
    tensors.view = { ...tensors.float32!, shape: [3, 2], stride: [1, 3] };
    for (const [k, t] of Object.entries(tensors)) hashes[k] = sha(io.rawTensorBytes(t));
    const p = join(dir, 'a.safetensors');
    await io.saveSafetensorsRaw(tensors, p, { metadata: { format: 'pt' } });
    writeFileSync(join(dir, 'hashes.json'), JSON.stringify(hashes));
    const out = python(String.raw`
import sys, json, struct, hashlib, numpy as np
d = sys.argv[1]
raw = open(d + '/a.safetensors', 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]; hdr = json.loads(raw[8:8 + n])
assert n % 8 == 0 and hdr.pop('__metadata__') == {'format': 'pt'}
exp = json.load(open(d + '/hashes.json'))
ST = {'float32': 'F32', 'float64': 'F64', 'float16': 'F16', 'bfloat16': 'BF16', 'int8': 'I8', 'int16': 'I16', 'int32': 'I32', 'int64': 'I64', 'uint8': 'U8', 'bool': 'BOOL', 'view': 'F32'}
end = 0
for k, info in hdr.items():
    s, e = info['data_offsets']; end = max(end, e)
    assert info['dtype'] == ST[k], k
    assert hashlib.sha256(raw[8 + n + s: 8 + n + e]).hexdigest() == exp[k], k
assert hdr['view']['shape'] == [3, 2] and 8 + n + end == len(raw)
# a file written the way the safetensors library lays it out
a = np.arange(6, dtype='<f4').reshape(2, 3); b = np.array([[1, -2]], dtype='<i8')
body = a.tobytes() + b.tobytes()
h = json.dumps({'b': {'dtype': 'I64', 'shape': [1, 2], 'data_offsets': [24, 40]}, 'a': {'dtype': 'F32', 'shape': [2, 3], 'data_offsets': [0, 24]}}).encode()
open(d + '/py.safetensors', 'wb').write(struct.pack('<Q', len(h)) + h + body)
open(d + '/trunc.safetensors', 'wb').write(struct.pack('<Q', len(h)) + h + body[:30])
print('ok')
`, [dir]);
    assert.equal(out.trim(), 'ok');
    const back = (await io.loadRaw(p)) as Record<string, io.RawTensor>;
    for (const [k, h] of Object.entries(hashes)) assert.equal(sha(io.rawTensorBytes(back[k]!)), h, k);
    const py = (await io.loadRaw(join(dir, 'py.safetensors'))) as Record<string, io.RawTensor>;
    assert.deepEqual([...new Float32Array(io.rawTensorBytes(py.a!).slice().buffer)], [0, 1, 2, 3, 4, 5]);
    assert.deepEqual([...new BigInt64Array(io.rawTensorBytes(py.b!).slice().buffer)], [1n, -2n]);
    assert.deepEqual(py.b!.shape, [1, 2]);
    const tp = join(dir, 'trunc.safetensors');
    await assert.rejects(io.loadRaw(tp), (e: Error) => e instanceof io.CheckpointError && e.message.startsWith(`${tp}: `) && /truncated/.test(e.message));
  });
});

describe('atomic save', () => {
  let dir = '';
  before(() => { dir = mkdtempSync(join(tmpdir(), 'awty-io-atomic-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a process SIGKILLed during a 200 MB save leaves the previous checkpoint intact and no truncated file', async () => {
    const target = join(dir, 'ckpt.pt');
    const lib = new URL('../src/io/core.js', import.meta.url).href;
    const child = join(dir, 'child.mjs');
    writeFileSync(child, `
import * as io from ${JSON.stringify(lib)};
const big = (fill) => io.rawTensorFromBytes('uint8', [200 * 1024 * 1024], new Uint8Array(200 * 1024 * 1024).fill(fill));
await io.saveTorchRaw({ version: 1, w: io.rawTensorFromBytes('uint8', [4], new Uint8Array([1, 1, 1, 1])) }, process.argv[2]);
process.stdout.write('saved\\n');
for (let i = 2; ; i++) await io.saveTorchRaw({ version: i, w: big(i) }, process.argv[2]);
`);
    const proc = spawn(process.execPath, [child, target], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      proc.stdout.on('data', (d: Buffer) => { if (d.toString().includes('saved')) resolve(); });
      proc.on('exit', (code) => reject(new Error(`child exited early (${code})`)));
    });
    // wait until the second save is part-way through its temporary file, then kill
    let tempSize = 0;
    for (let i = 0; i < 2000 && tempSize < 20 * 1024 * 1024; i++) {
      await new Promise((r) => setTimeout(r, 5));
      const tmp = readdirSync(dir).filter((f) => f.startsWith('.ckpt.pt.') && f.endsWith('.tmp'));
      tempSize = tmp.length ? statSync(join(dir, tmp[0]!)).size : 0;
    }
    const exited = new Promise((r) => proc.on('exit', r));
    proc.kill('SIGKILL');
    await exited;
    assert.ok(tempSize >= 20 * 1024 * 1024, `the kill came during the 200 MB write (temp file at ${tempSize} bytes)`);
    assert.ok(statSync(target).size < 4096, 'the target is still the small first checkpoint');
    const ckpt = (await io.loadRaw(target)) as { version: number; w: io.RawTensor };
    assert.equal(ckpt.version, 1);
    assert.deepEqual([...io.rawTensorBytes(ckpt.w)], [1, 1, 1, 1]);
    assert.deepEqual(readdirSync(dir).filter((f) => !f.startsWith('.') && f !== 'child.mjs'), ['ckpt.pt'], 'no other file at visible paths');
    // The killed writer's temporary file is removed by the next save to the same target.
    assert.equal(readdirSync(dir).filter((f) => f.startsWith('.ckpt.pt.') && f.endsWith('.tmp')).length, 1);
    await io.saveTorchRaw({ version: 3 }, target);
    assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.ckpt.pt.')), []);
    assert.equal(((await io.loadRaw(target)) as { version: number }).version, 3);
  });

  test('a failed save removes its temporary file and keeps the old target', async () => {
    const target = join(dir, 'fail.pt');
    await io.saveTorchRaw({ a: 1 }, target);
    const before = readFileSync(target);
    const bad: io.RawTensor = { dtype: 'float32', shape: [4], stride: [1], storageOffset: 0, requiresGrad: false, storage: { key: '0', dtype: 'float32', numel: 4, location: 'cpu', getData: () => { throw new Error('device lost'); } } };
    await assert.rejects(io.saveTorchRaw({ w: bad }, target), (e: Error) => e instanceof io.CheckpointError && /fail\.pt: cannot save: device lost/.test(e.message));
    assert.deepEqual(readFileSync(target), before);
    assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.fail.pt')), []);
  });
});
