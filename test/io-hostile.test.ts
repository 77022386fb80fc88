// Hostile checkpoint and shard files: crafted pickles that would stall the reader, name dangerous
// Python globals, inflate without bound, or point outside their folder all give a clean error (or
// load in bounded time and memory), and a loaded payload is never written back.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import yazl from 'yazl';
import * as io from '../src/io/index.js';
import { ShardDataset, readShardFolder, ShardWriter } from '../src/data/index.js';

let dir = '';
before(() => { dir = mkdtempSync(join(tmpdir(), 'awty-hostile-')); });
after(() => rmSync(dir, { recursive: true, force: true }));

type Record_ = { name: string; data: Uint8Array | Readable; compress?: boolean };

async function zipFile(name: string, records: Record_[]): Promise<string> {
  const p = join(dir, name);
  const z = new yazl.ZipFile();
  for (const r of records) {
    if (r.data instanceof Readable) z.addReadStream(r.data, r.name, { compress: r.compress === true });
    else z.addBuffer(Buffer.from(r.data), r.name, { compress: r.compress === true });
  }
  z.end();
  const chunks: Buffer[] = [];
  for await (const c of z.outputStream as AsyncIterable<Buffer>) chunks.push(c);
  writeFileSync(p, Buffer.concat(chunks));
  return p;
}

const pkl = (name: string, program: Uint8Array): Promise<string> =>
  zipFile(name, [{ name: 'archive/data.pkl', data: program }, { name: 'archive/version', data: Buffer.from('3\n') }]);

/** What Python's pickle.dumps(X(), protocol=2) writes for a class whose __reduce__ returns (os.system, (cmd,)). */
function systemCall(cmd: string): Buffer {
  const c = Buffer.from(cmd, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32LE(c.length);
  return Buffer.concat([Buffer.from('\x80\x02}q\x00X\x01\x00\x00\x00xq\x01cposix\nsystem\nq\x02', 'latin1'), Buffer.from([0x58]), len, c,
    Buffer.from('q\x03\x85q\x04Rq\x05s.', 'latin1')]);
}

describe('pickle bombs', () => {
  test('a 1 MB LONG4 loads in under a second, with its exact value', async () => {
    const n = 1 << 20;
    const body = Buffer.alloc(n, 0xff);
    body[n - 1] = 0x7f;
    const head = Buffer.from([0x80, 0x02, 0x8b, 0, 0, 0, 0]);
    head.writeInt32LE(n, 3);
    const p = await pkl('long4.pt', Buffer.concat([head, body, Buffer.from([0x2e])]));
    const t0 = Date.now();
    const v = await io.loadRaw(p);
    const ms = Date.now() - t0;
    assert.equal(typeof v, 'bigint');
    assert.equal(v, (1n << BigInt(8 * n - 1)) - 1n);
    assert.ok(ms < 1000, `loading took ${ms} ms`);
    // negative longs too
    assert.equal(io.unpickle(new Uint8Array([0x80, 2, 0x8a, 2, 0x00, 0x80, 0x2e])).value, -32768);
  });

  test('a length field larger than what is left is a clean error, nothing allocated', async () => {
    // BINBYTES8 / BINUNICODE8 claiming 2^50 bytes, BINUNICODE claiming 4 GiB
    const b8 = Buffer.from([0x80, 4, 0x8e, 0, 0, 0, 0, 0, 0, 4, 0, 0x2e]);
    await assert.rejects(io.loadRaw(await pkl('b8.pt', b8)), (e: Error) => e instanceof io.CheckpointError && /truncated .*needs 1125899906842624 more bytes/.test(e.message));
    const u = Buffer.from([0x80, 2, 0x58, 0xff, 0xff, 0xff, 0xff, 0x2e]);
    await assert.rejects(io.loadRaw(await pkl('u4.pt', u)), (e: Error) => e instanceof io.CheckpointError && /needs 4294967295 more bytes/.test(e.message));
  });

  test('a list of a million items appended at once does not overflow the stack', () => {
    const items = Buffer.alloc(1_000_000, 0x4e); // NONE x 1e6
    const prog = Buffer.concat([Buffer.from([0x80, 2, 0x5d, 0x28]), items, Buffer.from([0x65, 0x2e])]);
    const v = io.unpickle(prog).value as unknown[];
    assert.equal(v.length, 1_000_000);
  });
});

describe('dangerous globals', () => {
  test('a pickle calling os.system is refused by default, naming the global', async () => {
    const p = await pkl('system.pt', systemCall('touch pwned'));
    for (const load of [io.loadRaw, io.load]) {
      await assert.rejects(load(p), (e: Error) => {
        assert.ok(e instanceof io.CheckpointError, String(e));
        assert.ok(e.message.startsWith(`${p}: `), e.message);
        assert.match(e.message, /the global posix\.system, which a checkpoint may not use/);
        assert.match(e.message, /unknownGlobals: 'placeholder'/);
        return true;
      });
    }
    // the low-level unpickler has the same default
    assert.throws(() => io.unpickle(systemCall('x')), /posix\.system/);
  });

  test('kept as a placeholder on request, it is never written back unless told', async () => {
    const p = await pkl('system2.pt', systemCall('touch pwned'));
    const root = (await io.loadRaw(p, { unknownGlobals: 'placeholder' })) as Record<string, io.PyObject>;
    assert.equal(root.x!.__class__, 'posix.system');
    assert.deepEqual(root.x!.args, ['touch pwned']);
    const out = join(dir, 'resaved.pt');
    await assert.rejects(io.saveTorchRaw(root, out), (e: Error) => e instanceof io.CheckpointError && /refusing to write the global posix\.system/.test(e.message));
    await assert.rejects(io.save(root, out), /refusing to write the global posix\.system/);
    assert.throws(() => io.pickle(root), /refusing to write the global posix\.system/);
    // explicitly allowed, it round-trips (the caller vouches for it)
    await io.saveTorchRaw(root, out, { allowUnknownGlobals: true });
    const again = (await io.loadRaw(out, { allowGlobals: ['posix.system'] })) as Record<string, io.PyObject>;
    assert.equal(again.x!.__class__, 'posix.system');
  });

  test('the globals of the paper\'s checkpoints are allowed (tensors, OrderedDict, numpy, Namespace)', async () => {
    const sd = io.markOrdered({ w: io.rawTensorFromBytes('float32', [2], new Uint8Array(8)) });
    const ns: io.PyObject = { __class__: 'argparse.Namespace', args: [], state: { lr: 0.1 } };
    const p = join(dir, 'ok.pt');
    await io.saveTorchRaw({ model_state_dict: sd, args: ns, s: new Set([1]), b: new Uint8Array([1]) }, p);
    const root = (await io.loadRaw(p)) as Record<string, unknown>;
    assert.ok(io.isOrdered(root.model_state_dict as object));
    assert.equal((root.args as io.PyObject).__class__, 'argparse.Namespace');
  });
});

describe('bad tensor geometry', () => {
  const withTensor = async (name: string, t: Partial<io.RawTensor>): Promise<string> => {
    const storage: io.RawStorage = { key: '0', dtype: 'float32', numel: 4, location: 'cpu', data: new Uint8Array(16) };
    const p = join(dir, name);
    await io.saveTorchRaw({ w: { dtype: 'float32', shape: [3], stride: [1], storageOffset: 0, storage, requiresGrad: false, ...t } }, p);
    return p;
  };
  const cases: [string, Partial<io.RawTensor>, RegExp][] = [
    ['negstride.pt', { shape: [3], stride: [-1], storageOffset: 2 }, /stride \[-1\]: element -1 is not a non-negative integer/],
    ['negshape.pt', { shape: [-2], stride: [1] }, /size \[-2\]: element -2 is not a non-negative integer/],
    ['negoffset.pt', { shape: [2], stride: [1], storageOffset: -1 }, /storage offset -1 is not a non-negative integer/],
    ['fracshape.pt', { shape: [1.5], stride: [1] }, /size \[1\.5\]: element 1\.5 is not a non-negative integer/],
  ];
  for (const [name, t, what] of cases) {
    test(`${name}: io.load gives a CheckpointError naming the file`, async () => {
      const p = await withTensor(name, t);
      for (const load of [io.load, io.loadRaw]) {
        await assert.rejects(load(p), (e: Error) => {
          assert.ok(e instanceof io.CheckpointError, `a CheckpointError, got ${String(e)}`);
          assert.ok(e.message.startsWith(`${p}: `), e.message);
          assert.match(e.message, what);
          return true;
        });
      }
    });
  }
});

describe('deflate bomb', () => {
  test('a compressed 64 MB storage record behind a 6-element tensor inflates only the tensor\'s 24 bytes', async () => {
    const storage: io.RawStorage = { key: '0', dtype: 'float32', numel: 6, location: 'cpu', data: new Uint8Array(24) };
    const { program } = io.pickleTorch({ w: { dtype: 'float32', shape: [6], stride: [1], storageOffset: 0, storage, requiresGrad: false } });
    const mb = Buffer.alloc(1 << 20);
    const zeros = Readable.from((function* () { for (let i = 0; i < 64; i++) yield mb; })());
    const p = await zipFile('bomb.pt', [{ name: 'archive/data.pkl', data: program }, { name: 'archive/data/0', data: zeros, compress: true },
      { name: 'archive/version', data: Buffer.from('3\n') }]);
    const core = fileURLToPath(new URL('../src/io/core.js', import.meta.url));
    const peak = (load: boolean): number => {
      const script = `const io = await import(${JSON.stringify(core)});
        ${load ? `const r = await io.loadRaw(${JSON.stringify(p)}); if (r.w.storage.data.length !== 24) throw new Error('bad');` : ''}
        process.stdout.write(String(process.resourceUsage().maxRSS));`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      return Number(r.stdout) / 1024; // MiB
    };
    const base = peak(false);
    const loaded = peak(true);
    assert.ok(loaded - base < 48, `peak resident memory ${loaded.toFixed(0)} MiB loading vs ${base.toFixed(0)} MiB idle`);
  });
});

describe('shard folders', () => {
  test('shards.json naming files outside its folder is refused', async () => {
    const d = join(dir, 'shards');
    mkdirSync(d);
    const w = new ShardWriter(d, 0, 10, 4);
    await w.add(0, Promise.resolve(Buffer.from([0xff, 0xd8, 0xff, 0xd9])));
    await ShardWriter.writeList(d, await w.close(), 4, 1);
    await readShardFolder(d); // the genuine list reads
    mkdirSync(join(dir, 'outside'));
    writeFileSync(join(dir, 'outside', 'x.idx'), 'x');
    for (const bad of ['../outside/x.idx', join(dir, 'outside', 'x.idx'), 'sub/../../outside/x.idx', '']) {
      writeFileSync(join(d, 'shards.json'), JSON.stringify({ framesPerEpisode: 4, frames: 1, shards: [{ tar: 'shard-000000.tar', idx: bad, firstFrame: 0, count: 1 }] }));
      await assert.rejects(ShardDataset.open(d), (e: Error) => e.message.includes(`shards.json: shard file ${JSON.stringify(bad)}`)
        && /(outside the shard folder|is not a file name)/.test(e.message), bad);
    }
    writeFileSync(join(d, 'shards.json'), JSON.stringify({ framesPerEpisode: 4, frames: 1, shards: [{ tar: '/etc/passwd', idx: 'shard-000000.idx', firstFrame: 0, count: 1 }] }));
    await assert.rejects(ShardDataset.open(d), /shard file "\/etc\/passwd" lies outside the shard folder/);
  });
});
