// torch.save files read and written without the engine, checked against Debian's PyTorch 1.13:
// Python writes checkpoints (zip and legacy), awty reads them bitwise; awty writes, torch.load reads.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import yazl from 'yazl';
import * as io from '../src/io/core.js';

const PY = '/usr/bin/python3';
const pyCheck = spawnSync(PY, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
const skip = pyCheck.status === 0 ? false : `Debian's ${PY} with torch and numpy is not available: ${pyCheck.stderr || pyCheck.error}`;

function python(script: string, args: string[] = []): string {
  const r = spawnSync(PY, ['-c', script, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`python failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function at(root: unknown, path: string): unknown {
  let v = root;
  for (const part of path.split('/')) {
    if (v instanceof Map) v = v.get(/^\d+$/.test(part) && !v.has(part) ? Number(part) : part);
    else v = (v as Record<string, unknown>)[part];
  }
  return v;
}

// Python: build checkpoints covering the formats' features, and a manifest of every tensor.
const GEN = String.raw`
import sys, json, hashlib, argparse, collections
import numpy as np, torch
out = sys.argv[1]
torch.manual_seed(0)
INT = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
def tbytes(t):
    t = t.detach().contiguous()
    return t.view(INT[t.element_size()]).numpy().tobytes()
base = torch.randn(5, 6)
sd = collections.OrderedDict()
sd['module.conv.weight'] = torch.randn(4, 3, 3, 3)
sd['module.bn.num_batches_tracked'] = torch.tensor(7)
sd['module.fc.weight'] = torch.randn(10, 4)
obj = {
  'dtypes': {
    'float32': torch.randn(3, 4),
    'float64': torch.randn(2, 3, dtype=torch.float64),
    'float16': torch.tensor([1.0, -2.5, 65504.0, 6e-8, float('inf'), float('nan')], dtype=torch.float16),
    'bfloat16': torch.randn(7).to(torch.bfloat16),
    'int8': torch.tensor([-128, -1, 0, 127], dtype=torch.int8),
    'int16': torch.tensor([-32768, 5, 32767], dtype=torch.int16),
    'int32': torch.tensor([-2**31, 0, 2**31 - 1], dtype=torch.int32),
    'int64': torch.tensor([-2**63, -1, 2**53 + 1, 2**63 - 1], dtype=torch.int64),
    'uint8': torch.arange(256, dtype=torch.uint8),
    'bool': torch.tensor([True, False, True]),
  },
  'views': {'base': base, 't': base.t(), 'slice': base[1:, ::2], 'row': base[3], 'scalar': base[2, 5]},
  'empty': torch.zeros(0, 3),
  'scalar': torch.tensor(3.5, dtype=torch.float64),
  'param': torch.nn.Parameter(torch.randn(2, 2)),
  'frozen': torch.nn.Parameter(torch.randn(3), requires_grad=False),
  'model_state_dict': sd,
  'acc1_list': [np.float64(12.5), np.float64(0.1 + 0.2), np.float32(3.25)],
  'np_scalars': {'i64': np.int64(-2**40), 'b': np.bool_(True), 'f16': np.float16(0.5)},
  'np_arrays': {'f4': np.arange(6, dtype=np.float32).reshape(2, 3), 'i8': np.array([-1, 2**40], dtype=np.int64), 'be': np.array([1.5, -2.0], dtype='>f8'), 'u1': np.array([1, 255], dtype=np.uint8)},
  'args': argparse.Namespace(lr=0.0005, model='resnext50_32x4d', n_out=1628, schedule=[25, 45]),
  'misc': {'none': None, 't': True, 'f': False, 'neg': -5, 'big': 2**70, 'float': 1.25, 'str': 'héllo ✓', 'bytes': b'\x00\xffab', 'tuple': (1, 'a', (2.5,)), 'nested': [[1, 2], {'k': [3]}], 'intkeys': {0: 'a', 7: 'b'}, 'set': {3}},
}
opt = torch.optim.Adam([obj['param']], lr=1e-3)
obj['param'].sum().backward()
opt.step(); opt.step()
obj['optimizer_state_dict'] = opt.state_dict()
manifest = {}
def walk(v, path):
    if isinstance(v, torch.Tensor):
        manifest[path] = {'dtype': str(v.dtype).replace('torch.', ''), 'shape': list(v.shape), 'stride': list(v.stride()),
                          'offset': v.storage_offset(), 'sha': hashlib.sha256(tbytes(v)).hexdigest(),
                          'storage': v.storage().data_ptr(), 'requires_grad': v.requires_grad,
                          'parameter': isinstance(v, torch.nn.Parameter)}
    elif isinstance(v, dict):
        for k, x in v.items(): walk(x, path + '/' + str(k) if path else str(k))
    elif isinstance(v, (list, tuple)):
        for i, x in enumerate(v): walk(x, path + '/' + str(i) if path else str(i))
walk(obj, '')
torch.save(obj, out + '/zip.pt')
torch.save(obj, out + '/legacy.pt', _use_new_zipfile_serialization=False)
torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), out + '/script.pt')
json.dump({'tensors': manifest, 'acc1': [float(x) for x in obj['acc1_list']], 'step': float(opt.state_dict()['state'][0]['step'])}, open(out + '/manifest.json', 'w'))
`;

interface Manifest {
  tensors: Record<string, { dtype: string; shape: number[]; stride: number[]; offset: number; sha: string; storage: number; requires_grad: boolean; parameter: boolean }>;
  acc1: number[];
  step: number;
}

describe('torch.save files written by PyTorch 1.13', { skip }, () => {
  let dir = '';
  let manifest: Manifest;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'awty-io-'));
    python(GEN, [dir]);
    manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const file of ['zip.pt', 'legacy.pt']) {
    test(`${file}: every tensor bitwise equal, views and shared storages preserved`, async () => {
      const root = await io.loadRaw(join(dir, file));
      const entries = Object.entries(manifest.tensors);
      assert.ok(entries.length >= 25, 'manifest lists the tensors');
      const storageOf = new Map<number, io.RawStorage>();
      for (const [path, m] of entries) {
        const t = at(root, path);
        assert.ok(io.isRawTensor(t), `${path} is a tensor`);
        assert.equal(t.dtype, m.dtype, `${path} dtype`);
        assert.deepEqual(t.shape, m.shape, `${path} shape`);
        assert.deepEqual(t.stride, m.stride, `${path} stride`);
        assert.equal(t.storageOffset, m.offset, `${path} storage offset`);
        assert.equal(sha(io.rawTensorBytes(t)), m.sha, `${path} bytes`);
        assert.equal(t.requiresGrad, m.requires_grad, `${path} requires_grad`);
        assert.equal(Boolean(t.isParameter), m.parameter, `${path} is a Parameter`);
        const prev = storageOf.get(m.storage);
        if (prev) assert.equal(t.storage, prev, `${path} shares its storage object`);
        else storageOf.set(m.storage, t.storage);
      }
      const views = at(root, 'views') as Record<string, io.RawTensor>;
      assert.equal(views.t!.storage, views.base!.storage);
      assert.notEqual(views.t!.storage, (at(root, 'dtypes/float32') as io.RawTensor).storage);
    });

    test(`${file}: numpy values, Namespace, OrderedDict, python scalars and containers`, async () => {
      const root = (await io.loadRaw(join(dir, file))) as Record<string, unknown>;
      assert.deepEqual(root.acc1_list, manifest.acc1);
      const np = root.np_scalars as Record<string, unknown>;
      assert.equal(np.i64, -(2 ** 40));
      assert.equal(np.b, true);
      assert.equal(np.f16, 0.5);
      const arrs = root.np_arrays as Record<string, io.NumpyArray>;
      assert.deepEqual([...(arrs.f4!.data as Float32Array)], [0, 1, 2, 3, 4, 5]);
      assert.deepEqual(arrs.f4!.shape, [2, 3]);
      assert.equal(arrs.f4!.dtype, 'float32');
      assert.deepEqual([...(arrs.i8!.data as BigInt64Array)], [-1n, 2n ** 40n]);
      assert.deepEqual([...(arrs.be!.data as Float64Array)], [1.5, -2.0], 'big-endian array swapped');
      assert.deepEqual([...(arrs.u1!.data as Uint8Array)], [1, 255]);
      const ns = root.args as io.PyObject;
      assert.equal(ns.__class__, 'argparse.Namespace');
      assert.deepEqual(ns.state, { lr: 0.0005, model: 'resnext50_32x4d', n_out: 1628, schedule: [25, 45] });
      const sd = root.model_state_dict as object;
      assert.ok(io.isOrdered(sd), 'OrderedDict is marked');
      assert.deepEqual(Object.keys(sd), ['module.conv.weight', 'module.bn.num_batches_tracked', 'module.fc.weight']);
      const misc = root.misc as Record<string, unknown>;
      assert.equal(misc.none, null);
      assert.equal(misc.t, true);
      assert.equal(misc.f, false);
      assert.equal(misc.neg, -5);
      assert.equal(misc.big, 2n ** 70n);
      assert.equal(misc.float, 1.25);
      assert.equal(misc.str, 'héllo ✓');
      assert.deepEqual([...(misc.bytes as Uint8Array)], [0, 255, 97, 98]);
      assert.deepEqual(misc.tuple, [1, 'a', [2.5]]);
      assert.ok(io.isTuple(misc.tuple));
      assert.deepEqual(misc.nested, [[1, 2], { k: [3] }]);
      assert.ok(misc.intkeys instanceof Map);
      assert.deepEqual([...(misc.intkeys as Map<unknown, unknown>)], [[0, 'a'], [7, 'b']]);
      assert.deepEqual([...(misc.set as Set<unknown>)], [3]);
      const opt = root.optimizer_state_dict as { state: Map<number, Record<string, unknown>>; param_groups: Record<string, unknown>[] };
      assert.ok(opt.state instanceof Map);
      const s0 = opt.state.get(0)!;
      assert.ok(io.isRawTensor(s0.exp_avg) && io.isRawTensor(s0.exp_avg_sq) && io.isRawTensor(s0.step));
      const step = s0.step as io.RawTensor;
      assert.equal(step.dtype, 'float32');
      assert.equal(new Float32Array(io.rawTensorBytes(step).slice().buffer)[0], manifest.step);
      assert.deepEqual(opt.param_groups[0]!.params, [0]);
      assert.deepEqual(opt.param_groups[0]!.betas, [0.9, 0.999]);
    });
  }

  test('a reader reads each storage on demand into a caller buffer', async () => {
    const r = await io.openTorchCheckpoint(join(dir, 'zip.pt'));
    try {
      assert.equal(r.format, 'torch-zip');
      const t = at(r.root, 'dtypes/float64') as io.RawTensor;
      assert.equal(t.storage.data, undefined, 'nothing is read before readStorage');
      const buf = new Uint8Array(r.storageBytes(t.storage) + 16);
      const got = await r.readStorage(t.storage, buf);
      assert.equal(got, buf, 'filled the given buffer');
      assert.equal(sha(buf.subarray(0, 48)), manifest.tensors['dtypes/float64']!.sha);
      await assert.rejects(r.readStorage(t.storage, new Uint8Array(8)), /buffer of 8 bytes/);
    } finally {
      await r.close();
    }
  });

  test('a TorchScript archive is refused with a clear error', async () => {
    await assert.rejects(io.loadRaw(join(dir, 'script.pt')), (e: Error) => e instanceof io.CheckpointError && /script\.pt: .*TorchScript/.test(e.message));
  });

  test('re-saving a PyTorch checkpoint gives a file torch.load reads as equal', async () => {
    const root = await io.loadRaw(join(dir, 'zip.pt'));
    await io.saveTorchRaw(root, join(dir, 'resaved.pt'));
    const out = python(String.raw`
import sys, torch, numpy as np, argparse, collections
a = torch.load(sys.argv[1] + '/zip.pt'); b = torch.load(sys.argv[1] + '/resaved.pt')
def eq(x, y, p):
    if isinstance(x, np.generic) and not isinstance(x, np.ndarray):
        assert x.item() == y, (p, x, y)  # numpy scalars come back as Python numbers
        return
    assert type(x) == type(y) or (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)), (p, type(x), type(y))
    if isinstance(x, torch.Tensor):
        assert type(x) == type(y) and x.dtype == y.dtype and x.shape == y.shape and x.stride() == y.stride() and x.storage_offset() == y.storage_offset(), p
        assert x.requires_grad == y.requires_grad, p
        assert torch.equal(x.view(torch.uint8) if x.element_size() == 1 else x, y.view(torch.uint8) if y.element_size() == 1 else y) or (x.is_floating_point() and torch.equal(x.isnan(), y.isnan()) and torch.equal(x.nan_to_num(), y.nan_to_num())), p
    elif isinstance(x, dict):
        assert list(x.keys()) == list(y.keys()), p
        for k in x: eq(x[k], y[k], p + '/' + str(k))
    elif isinstance(x, (list, tuple)):
        assert len(x) == len(y), p
        for i, (u, v) in enumerate(zip(x, y)): eq(u, v, p + '/' + str(i))
    elif isinstance(x, np.ndarray):
        assert x.dtype == y.dtype and np.array_equal(x, y), p
    elif isinstance(x, argparse.Namespace):
        assert vars(x) == vars(y), p
    else:
        assert x == y, (p, x, y)
eq(a, b, '')
v = b['views']
assert v['t'].storage().data_ptr() == v['base'].storage().data_ptr() == v['slice'].storage().data_ptr()
print('ok')
`, [dir]);
    assert.equal(out.trim(), 'ok');
  });
});

describe('torch.save files written by awty, read by PyTorch 1.13', { skip }, () => {
  let dir = '';
  before(() => { dir = mkdtempSync(join(tmpdir(), 'awty-io-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('every dtype, views sharing a storage, parameters, dicts, int keys, tuples, numbers; ZIP64', async () => {
    const expected: Record<string, { sha: string; dtype: string; shape: number[]; stride: number[]; offset: number }> = {};
    const tensors: Record<string, io.RawTensor> = {};
    let key = 0;
    for (const dtype of io.DTYPES) {
      const shape = [3, 5];
      let bytes = randomBytes(15 * io.ELEMENT_SIZE[dtype]);
      if (dtype === 'bool') bytes = Buffer.from(bytes.map((b) => b & 1));
      const t = io.rawTensorFromBytes(dtype, shape, new Uint8Array(bytes), String(key++));
      tensors[dtype] = t;
    }
    const base = tensors.float32!;
    const transposed: io.RawTensor = { ...base, shape: [5, 3], stride: [1, 5] };
    const sliced: io.RawTensor = { ...base, shape: [2, 2], stride: [5, 2], storageOffset: 6 };
    const param: io.RawTensor = { ...io.rawTensorFromBytes('float32', [4], new Uint8Array(randomBytes(16)), 'p'), requiresGrad: true, isParameter: true };
    const all = { ...tensors, transposed, sliced, param };
    for (const [name, t] of Object.entries(all)) {
      expected[name] = { sha: sha(io.rawTensorBytes(t)), dtype: t.dtype, shape: t.shape, stride: t.stride, offset: t.storageOffset };
    }
    const state = new Map<number, unknown>([[0, { step: 3, exp_avg: param }], [1, { momentum_buffer: null }]]);
    const obj = {
      tensors: all,
      ordered: io.markOrdered({ 'module.a': tensors.int64, b: 1 }),
      state,
      tuple: io.markTuple([1, 'x', [2]]),
      numbers: [0, -1, 255, 256, 65535, 65536, -(2 ** 31), 2 ** 31, 2 ** 53 - 1, -(2 ** 53) + 1, 2n ** 64n + 1n, -(2n ** 70n), 0.1, -0, 1e308, Infinity, -Infinity],
      strings: ['', 'ascii', 'ünï✓😀'],
      flags: [true, false, null],
      bytes: new Uint8Array([0, 128, 255]),
    };
    await io.saveTorchRaw(obj, join(dir, 'awty.pt'));
    writeFileSync(join(dir, 'expected.json'), JSON.stringify(expected));
    // ZIP64 records, as written past 4 GiB
    const z64 = io.rawTensorFromBytes('float64', [2, 2], new Uint8Array(new Float64Array([1, 2, 3, 4]).buffer));
    await io.saveTorchRaw({ w: z64 }, join(dir, 'z64.pt'), { forceZip64: true });
    assert.ok(readFileSync(join(dir, 'z64.pt')).includes(Buffer.from([0x50, 0x4b, 0x06, 0x06])), 'file has a ZIP64 end of central directory');
    const out = python(String.raw`
import sys, json, hashlib, math, collections, torch
d = sys.argv[1]
x = torch.load(d + '/awty.pt')
exp = json.load(open(d + '/expected.json'))
INT = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
for name, e in exp.items():
    t = x['tensors'][name]
    assert str(t.dtype) == 'torch.' + e['dtype'], (name, t.dtype)
    assert list(t.shape) == e['shape'] and list(t.stride()) == e['stride'] and t.storage_offset() == e['offset'], name
    b = t.detach().contiguous().view(INT[t.element_size()]).numpy().tobytes()
    assert hashlib.sha256(b).hexdigest() == e['sha'], name
T = x['tensors']
assert T['transposed'].storage().data_ptr() == T['float32'].storage().data_ptr() == T['sliced'].storage().data_ptr()
assert type(T['param']) is torch.nn.Parameter and T['param'].requires_grad
assert not T['float32'].requires_grad
assert type(x['ordered']) is collections.OrderedDict and list(x['ordered']) == ['module.a', 'b']
assert type(x) is dict
assert x['state'][0]['step'] == 3 and x['state'][0]['exp_avg'] is T['param'] and x['state'][1] == {'momentum_buffer': None}
assert x['tuple'] == (1, 'x', [2])
n = x['numbers']
assert n[:10] == [0, -1, 255, 256, 65535, 65536, -2**31, 2**31, 2**53 - 1, -2**53 + 1], n
assert n[10] == 2**64 + 1 and n[11] == -2**70
assert n[12] == 0.1 and math.copysign(1, n[13]) == -1 and n[14] == 1e308 and n[15] == math.inf and n[16] == -math.inf
assert all(type(v) is int for v in n[:12]) and all(type(v) is float for v in n[12:])
assert x['strings'] == ['', 'ascii', 'ünï✓😀']
assert x['flags'] == [True, False, None]
assert x['bytes'] == b'\x00\x80\xff'
assert torch.load(d + '/z64.pt')['w'].tolist() == [[1.0, 2.0], [3.0, 4.0]]
print('ok')
`, [dir]);
    assert.equal(out.trim(), 'ok');
    // and awty reads its own file back the same way
    const back = (await io.loadRaw(join(dir, 'awty.pt'))) as typeof obj;
    for (const [name, e] of Object.entries(expected)) {
      assert.equal(sha(io.rawTensorBytes((back.tensors as Record<string, io.RawTensor>)[name]!)), e.sha, name);
    }
    assert.equal(back.tensors.transposed.storage, (back.tensors as Record<string, io.RawTensor>).float32!.storage);
  });

  test('ZIP64 records are read by awty (torch.load is checked above)', async () => {
    const back = (await io.loadRaw(join(dir, 'z64.pt'))) as { w: io.RawTensor };
    assert.deepEqual([...new Float64Array(io.rawTensorBytes(back.w).slice().buffer)], [1, 2, 3, 4]);
  });
});

describe('bad input gives an Error naming the file and the problem', () => {
  let dir = '';
  before(() => { dir = mkdtempSync(join(tmpdir(), 'awty-io-bad-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const good = async (name: string): Promise<string> => {
    const p = join(dir, name);
    const bytes = new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer);
    await io.saveTorchRaw({ w: io.rawTensorFromBytes('float32', [2, 3], bytes) }, p);
    return p;
  };
  const zipWith = async (name: string, records: Record<string, Uint8Array>): Promise<string> => {
    const p = join(dir, name);
    const z = new yazl.ZipFile();
    for (const [n, b] of Object.entries(records)) z.addBuffer(Buffer.from(b), n, { compress: false });
    z.end();
    const chunks: Buffer[] = [];
    for await (const c of z.outputStream as AsyncIterable<Buffer>) chunks.push(c);
    writeFileSync(p, Buffer.concat(chunks));
    return p;
  };
  const fails = async (p: string, re: RegExp): Promise<void> => {
    await assert.rejects(io.loadRaw(p), (e: unknown) => {
      assert.ok(e instanceof io.CheckpointError, `a CheckpointError, got ${String(e)}`);
      assert.ok(e.message.startsWith(`${p}: `), `message names the file: ${e.message}`);
      assert.match(e.message, re);
      return true;
    });
  };

  test('truncated zip', async () => {
    const p = await good('trunc.pt');
    truncateSync(p, Math.floor(statSync(p).size / 2));
    await fails(p, /truncated or corrupt/);
  });

  test('wrong magic', async () => {
    const p = join(dir, 'magic.pt');
    writeFileSync(p, 'GIF89a this is not a checkpoint');
    await fails(p, /wrong magic bytes 0x47494638/);
    const e = join(dir, 'empty.pt');
    writeFileSync(e, '');
    await fails(e, /empty file/);
    await fails(join(dir, 'missing.pt'), /cannot open/);
  });

  test('unknown pickle opcode', async () => {
    const p = await zipWith('opcode.pt', { 'archive/data.pkl': new Uint8Array([0x80, 0x02, 0x7d, 0xff, 0x2e]), 'archive/version': Buffer.from('3\n') });
    await fails(p, /archive\/data\.pkl: unknown pickle opcode 0xff at byte 3/);
  });

  test('truncated pickle program', async () => {
    const p = await zipWith('shortpkl.pt', { 'archive/data.pkl': new Uint8Array([0x80, 0x02, 0x58, 0x10, 0, 0, 0, 0x61]), 'archive/version': Buffer.from('3\n') });
    await fails(p, /pickle data truncated/);
  });

  test('storage shorter than its tensor', async () => {
    const storage: io.RawStorage = { key: '0', dtype: 'float32', numel: 4, location: 'cpu', data: new Uint8Array(16) };
    const t: io.RawTensor = { dtype: 'float32', shape: [3, 2], stride: [2, 1], storageOffset: 0, storage, requiresGrad: false };
    const p = join(dir, 'extent.pt');
    await io.saveTorchRaw({ w: t }, p);
    await fails(p, /needs 6 elements but its storage 0 has only 4 \(storage shorter than its tensor\)/);
  });

  test('storage record shorter than its declared size', async () => {
    const storage: io.RawStorage = { key: '0', dtype: 'float32', numel: 6, location: 'cpu', data: new Uint8Array(24) };
    const t: io.RawTensor = { dtype: 'float32', shape: [6], stride: [1], storageOffset: 0, storage, requiresGrad: false };
    const { program } = io.pickleTorch({ w: t });
    const p = await zipWith('record.pt', { 'archive/data.pkl': program, 'archive/data/0': new Uint8Array(10), 'archive/version': Buffer.from('3\n') });
    await fails(p, /archive\/data\/0 holds 10 bytes but its 6 float32 elements need 24/);
    const q = await zipWith('norecord.pt', { 'archive/data.pkl': program, 'archive/version': Buffer.from('3\n') });
    await fails(q, /storage record archive\/data\/0 is missing/);
  });

  test('a zip that is not a checkpoint, a plain pickle, a legacy tar file', async () => {
    await fails(await zipWith('other.zip', { 'readme.txt': Buffer.from('hi') }), /no data\.pkl record/);
    const pk = join(dir, 'plain.pkl');
    writeFileSync(pk, io.pickle({ a: 1 }));
    await fails(pk, /not the torch.save magic number/);
    const tar = Buffer.alloc(1024);
    tar.write('tensors', 0);
    tar.write('ustar', 257);
    const tp = join(dir, 'old.tar');
    writeFileSync(tp, tar);
    await fails(tp, /legacy tar-format torch\.save file/);
  });
});
