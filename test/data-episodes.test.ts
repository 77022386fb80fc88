// The original's episode selection (the multiroot_image_folder.py that train_tc.py imports): Python's
// Mersenne Twister seeded by random.seed(int), randint by _randbelow (getrandbits with rejection),
// ceil(N x f) consecutive episodes from the drawn start; checked against Debian's python3 itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { PythonRandom, selectEpisodes, selectClasses } from '../src/data/index.js';
import { PYTHON } from './helpers/oracle.js';

function py(code: string, input: unknown): unknown {
  return JSON.parse(execFileSync(PYTHON, ['-c', code], { input: JSON.stringify(input), maxBuffer: 1 << 26 }).toString());
}

test('PythonRandom: seed(int) (small, 0, negative, past 2**32 and 2**64), getrandbits(k) for k up to 100, randint', () => {
  const seeds: (number | bigint)[] = [0, 1, 2, 3, 7, 42, 1234, 65535, 2 ** 31 - 1, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 5, -5, 12345678901234n, 2n ** 64n + 3n];
  const ks = [1, 2, 5, 14, 15, 31, 32, 33, 53, 64, 65, 100];
  const ref = py(`
import json, random, sys
inp = json.load(sys.stdin)
out = []
for s in inp['seeds']:
    r = random.Random(int(s))
    bits = [str(r.getrandbits(k)) for k in inp['ks'] for _ in range(3)]
    r.seed(int(s))
    ints = [r.randint(0, n) for n in (0, 1, 2, 5, 100, 16262, 2**40)]
    out.append({'bits': bits, 'ints': ints})
print(json.dumps(out))`, { seeds: seeds.map(String), ks }) as { bits: string[]; ints: number[] }[];
  seeds.forEach((s, i) => {
    const r = new PythonRandom(s);
    const bits = ks.flatMap((k) => [0, 1, 2].map(() => r.getrandbits(k).toString()));
    assert.deepEqual(bits, ref[i]!.bits, `getrandbits after seed(${s})`);
    r.seed(s);
    assert.deepEqual([0, 1, 2, 5, 100, 16262, 2 ** 40].map((n) => r.randint(0, n)), ref[i]!.ints, `randint after seed(${s})`);
  });
  assert.throws(() => new PythonRandom(1).randint(0, -1), /empty range for randrange\(\)/);
  assert.throws(() => new PythonRandom(1.5), /integer/);
});

test("selectEpisodes 'window' is the original's _find_classes for many (N, fraction, seed); 'first' keeps round(N x f)", () => {
  const cases: [number, number, number][] = [];
  for (const n of [2, 3, 10, 17, 100, 163, 1628, 16279]) {
    for (const f of [0.001, 0.01, 0.1, 0.25, 0.5, 0.9, 0.99]) for (const seed of [0, 1, 2, 3, 17, 2024]) cases.push([n, f, seed]);
  }
  // the original's rule, as written there (after set_seed(seed) seeded Python's random)
  const ref = py(`
import json, math, random, sys
out = []
for n, f, seed in json.load(sys.stdin):
    random.seed(seed)
    num = math.ceil(n * f)
    try:
        start = random.randint(0, n - num - 1)
    except ValueError:
        start = None
    out.append([num, start])
print(json.dumps(out))`, cases) as [number, number | null][];
  let windows = 0;
  cases.forEach(([n, f, seed], i) => {
    const names = Array.from({ length: n }, (_, e) => `/d/class_${String(e).padStart(5, '0')}`);
    const shuffled = names.slice().reverse();
    const [num, start] = ref[i]!;
    const c = selectEpisodes(shuffled, f, { seed });
    assert.equal(c.total, n);
    if (start === null) {
      assert.equal(num, n, `only a window of all episodes makes the original fail (${n}, ${f})`);
      assert.deepEqual(c.classes, names, 'all episodes kept where the original raises');
      return;
    }
    windows++;
    assert.equal(c.start, start, `start for N=${n} f=${f} seed=${seed}`);
    assert.deepEqual(c.classes, names.slice(start, start + num), `window for N=${n} f=${f} seed=${seed}`);
  });
  assert.ok(windows > 200, `${windows} windows checked`);
  // the paper's numbers: 16279 x 0.001 keeps 17 (the README's n_out), 163 at 0.01, 1628 at 0.1
  const all = Array.from({ length: 16279 }, (_, e) => `/s/class_${String(e).padStart(5, '0')}`);
  assert.deepEqual([0.001, 0.01, 0.1].map((f) => selectEpisodes(all, f, { seed: 1 }).classes.length), [17, 163, 1628]);
  assert.equal(selectEpisodes(all, 0.001, { selection: 'first' }).classes.length, 16);
  assert.deepEqual(selectClasses(['b', 'a', 'c', 'd', 'e', 'f'], 0.25), ['a', 'b']);
  assert.deepEqual(selectEpisodes(['b', 'a', 'c'], 1, { seed: 5 }), { classes: ['a', 'b', 'c'], start: 0, total: 3, selection: 'window' });
  assert.throws(() => selectEpisodes(['a'], 0.5, { selection: 'middle' as 'first' }), /episode selection must be one of window, first/);
});
