// Results files: writeResult() / readResults() round trip, and the clear errors on bad folders and
// bad records.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { analyze, paperRuns, readResults, RESULT_SCHEMA, resultFileName, validateResult, writeResult } from '../src/scaling/index.js';

const root = await mkdtemp(join(tmpdir(), 'awty-scaling-results-'));
after(() => rm(root, { recursive: true, force: true }));
let n = 0;
const fresh = async () => {
  const d = join(root, `case${n++}`);
  await mkdir(d, { recursive: true });
  return d;
};

test('writeResult then readResults gives back every run, from nested folders, and the same analysis', async () => {
  const dir = await fresh();
  const runs = paperRuns();
  for (const r of runs) {
    // one sub-folder per condition, as a sweep might lay them out
    const file = await writeResult(join(dir, r.condition), { ...r, model: 'resnext50_32x4d', fracRetained: 0.02 });
    assert.ok(file.endsWith(resultFileName(r)));
  }
  const first = JSON.parse(await readFile(join(dir, runs[0]!.condition, resultFileName(runs[0]!)), 'utf8'));
  assert.equal(first.schema, RESULT_SCHEMA);
  assert.equal(first.model, 'resnext50_32x4d');
  assert.equal(typeof first.createdAt, 'string');
  assert.equal(first.source, undefined);
  // a non-result JSON beside them is skipped
  await writeFile(join(dir, 'notes.json'), JSON.stringify({ schema: 'awty.figure1/1', anything: 1 }));
  await writeFile(join(dir, 'config.json'), JSON.stringify({ lr: 0.001 }));
  await writeFile(join(dir, 'README.txt'), 'not json at all');
  const read = await readResults(dir);
  assert.equal(read.runs.length, runs.length);
  assert.equal(read.skipped.length, 2);
  const key = (r: { condition: string; hours: number; seed: number }) => `${r.condition}/${r.hours}/${r.seed}`;
  const byKey = new Map(read.runs.map((r) => [key(r), r]));
  for (const r of runs) {
    const got = byKey.get(key(r));
    assert.ok(got, key(r));
    assert.equal(got.top1, r.top1);
    assert.equal(got.top5, r.top5);
    assert.ok(got.source!.endsWith('.json'));
  }
  const a = analyze(runs, { bootstrap: 0 });
  const b = analyze(read.runs, { bootstrap: 0 });
  assert.deepEqual(
    b.conditions.map((c) => c.metrics.map((m) => m.fit.slope)),
    a.conditions.map((c) => c.metrics.map((m) => m.fit.slope)),
  );
  // a file path works as well as a folder, and a hand-written record without "schema" is read
  const hand = join(dir, 'hand', 'x.json');
  await writeResult(hand, { condition: 'mine', hours: 2, seed: 1, top1: 5, top5: 15 });
  await writeFile(join(dir, 'hand', 'y.json'), JSON.stringify({ condition: 'mine', hours: 20, seed: 1, top1: 9, top5: 25 }));
  const again = await readResults(dir);
  assert.equal(again.runs.filter((r) => r.condition === 'mine').length, 2);
});

test('a results folder with no results, or no folder at all, is a clear error', async () => {
  const empty = await fresh();
  await assert.rejects(readResults(empty), /no results found in .*awty finetune/);
  await writeFile(join(empty, 'other.json'), JSON.stringify({ lr: 1 }));
  await assert.rejects(readResults(empty), /no results found .*1 other JSON file\(s\) skipped/);
  await assert.rejects(readResults(join(empty, 'missing')), /does not exist/);
  await assert.rejects(readResults(join(empty, 'other.json')), /is not a folder/);
});

test('bad records name their file and field: hours ≤ 0, accuracy out of range, bad JSON, duplicates', async () => {
  const cases: [Record<string, unknown> | string, RegExp][] = [
    [{ condition: 'c', hours: 0, seed: 1, top1: 1, top5: 2 }, /bad\.json: "hours" must be positive \(got 0\)/],
    [{ condition: 'c', hours: -2, seed: 1, top1: 1, top5: 2 }, /"hours" must be positive/],
    [{ condition: 'c', hours: '13', seed: 1, top1: 1, top5: 2 }, /"hours" must be a finite number/],
    [{ condition: 'c', hours: 1, seed: 1.5, top1: 1, top5: 2 }, /"seed" must be an integer/],
    [{ condition: 'c', hours: 1, seed: 1, top1: 1, top5: 120 }, /"top5" is an accuracy in percent/],
    [{ condition: 'c', hours: 1, seed: 1, top5: 20 }, /"top1" must be a finite number/],
    [{ condition: '', hours: 1, seed: 1, top1: 1, top5: 2 }, /"condition" must be a non-empty string/],
    ['{"condition": "c", "hours": ', /bad\.json: not valid JSON/],
  ];
  for (const [content, re] of cases) {
    const d = await fresh();
    await writeFile(join(d, 'bad.json'), typeof content === 'string' ? content : JSON.stringify(content));
    await assert.rejects(readResults(d), re);
  }
  const d = await fresh();
  const r = { condition: 'c', hours: 1, seed: 1, top1: 1, top5: 2 };
  await writeResult(join(d, 'a.json'), r);
  await writeResult(join(d, 'b.json'), r);
  await assert.rejects(readResults(d), /duplicate run \(condition c, 1 h, seed 1\)/);
  await assert.rejects(writeResult(join(d, 'c.json'), { ...r, hours: 0 }), /"hours" must be positive/);
  assert.throws(() => validateResult([1, 2]), /must be a JSON object/);
  assert.throws(() => validateResult({ ...r, schema: 'other/2' }), /unknown schema/);
});

test('writeResult writes through the atomic writer: no temporary file stays, a dead writer\'s temporary is cleaned up', async () => {
  const dir = await fresh();
  const run = paperRuns()[0]!;
  const name = resultFileName(run);
  // a temporary left by a killed earlier save (a process id that is not running), and another file
  let dead = 999_999;
  for (;;) {
    try { process.kill(dead, 0); } catch (e) { if ((e as NodeJS.ErrnoException).code === 'ESRCH') break; }
    dead--;
  }
  const stale = `.${name}.${dead}.0123abcd.tmp`;
  await writeFile(join(dir, stale), '{"partial":');
  await writeFile(join(dir, 'keep.tmp'), 'not ours');
  await writeResult(dir, run);
  const names = (await readdir(dir)).sort();
  assert.deepEqual(names, [name, 'keep.tmp'].sort());
  assert.equal(JSON.parse(await readFile(join(dir, name), 'utf8')).top1, run.top1);
});
