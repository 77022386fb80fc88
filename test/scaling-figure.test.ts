// The Figure 1 outputs: the SVG (one mark per run), the PNG (valid, of the stated size, with marks in
// the plot area), figure1.json, and `awty figure1` end to end, bad input included.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { Resvg } from '@resvg/resvg-js';
import sharp from 'sharp';
import { analyze, formatYears, paperRuns, renderSvg, writeFigure1, writeResult, type RunResult } from '../src/scaling/index.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const main = join(repo, 'dist', 'src', 'cli', 'main.js');
const root = await mkdtemp(join(tmpdir(), 'awty-figure1-'));
after(() => rm(root, { recursive: true, force: true }));

/** The <path> children of the Vega mark group with this name. */
function markPaths(svg: string, name: string): string[] {
  const start = svg.indexOf(`role-mark ${name}_marks"`);
  if (start < 0) return [];
  const open = svg.indexOf('>', start) + 1;
  const end = svg.indexOf('</g>', open);
  return svg.slice(open, end).match(/<path\b[^>]*>/g) ?? [];
}

test('the SVG parses and has one point mark per run in each panel, and one crossing per reached target', async () => {
  const runs = paperRuns();
  const a = analyze(runs, { bootstrap: 0 });
  const fig = await renderSvg(a);
  assert.deepEqual(fig.warnings, []);
  assert.match(fig.svg, /^<svg[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  // resvg is a strict SVG parser: it throws on a malformed document
  const parsed = new Resvg(fig.svg);
  assert.equal(parsed.width, fig.width);
  assert.equal(parsed.height, fig.height);
  for (const metric of ['top1', 'top5']) {
    const pts = markPaths(fig.svg, `points_${metric}`);
    assert.equal(pts.length, runs.length, `${metric}: one mark per run`);
    assert.equal(pts.filter((p) => /aria-roledescription="point"/.test(p)).length, runs.length);
  }
  assert.equal(markPaths(fig.svg, 'crossing_top5').length, 3);
  assert.equal(markPaths(fig.svg, 'crossing_top1').length, 0, 'no top-1 target, no crossing');
  for (const c of a.conditions) {
    const text = formatYears(c.metrics.find((m) => m.metric === 'top5')!.estimates[0]!.continuousYears);
    assert.ok(fig.svg.includes(text), `annotation "${text}"`);
  }
  // with a top-1 target the top-1 panel gets its crossings too
  const b = analyze(runs, { bootstrap: 0, targets: [{ metric: 'top1', value: 60, source: 't' }, { metric: 'top5', value: 94.9, source: 't' }] });
  assert.equal(markPaths((await renderSvg(b)).svg, 'crossing_top1').length, 3);
});

test('the bootstrap interval of each crossing is drawn as an error bar; the year labels sit in separate rows inside the panel', async () => {
  const a = analyze(paperRuns(), { bootstrap: 200 });
  const fig = await renderSvg(a);
  const lines = (svg: string): number => {
    const start = svg.indexOf('role-mark interval_top5_marks"');
    return start < 0 ? 0 : (svg.slice(start, svg.indexOf('</g>', start)).match(/<line\b/g) ?? []).length;
  };
  const bars = { length: lines(fig.svg) };
  const expected = a.conditions.filter((c) => c.metrics.find((m) => m.metric === 'top5')!.estimates[0]!.bootstrap?.low != null).length;
  assert.ok(expected > 0);
  assert.equal(bars.length, expected, 'one bar per crossing with an interval');
  assert.equal(lines((await renderSvg(analyze(paperRuns(), { bootstrap: 0 }))).svg), 0, 'no bootstrap, no bars');
  // year labels: text marks, each on its own row (distinct y), all right-aligned at the same x inside the plot
  const start = fig.svg.indexOf('role-mark years_top5_marks"');
  assert.ok(start >= 0);
  const group = fig.svg.slice(start, fig.svg.indexOf('</g>', start));
  const pos = [...group.matchAll(/<text[^>]*transform="translate\(([\d.-]+),([\d.-]+)\)"/g)].map((m) => [Number(m[1]), Number(m[2])] as const);
  assert.equal(pos.length, 3);
  assert.equal(new Set(pos.map((p) => p[0])).size, 1, 'same x');
  const ys = pos.map((p) => p[1]).sort((x, y) => x - y);
  for (let i = 1; i < ys.length; i++) assert.ok(ys[i]! - ys[i - 1]! >= 14, `rows ${ys.join(', ')} at least a line apart`);
});

test('writeFigure1 writes a PNG of the stated size with marks in both plot areas, and figure1.json with every number', async () => {
  const out = join(root, 'out');
  const a = analyze(paperRuns(), { bootstrap: 100 });
  const files = await writeFigure1(a, out, { scale: 1.5 });
  const svg = await readFile(files.svg, 'utf8');
  const svgWidth = Number(/<svg[^>]*\bwidth="([\d.]+)"/.exec(svg)![1]);
  const png = await readFile(files.png);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.width, Math.round(svgWidth * 1.5));
  assert.equal(info.width, files.pngWidth);
  assert.equal(info.height, files.pngHeight);
  const ch = info.channels;
  assert.ok(ch >= 3);
  // the plot areas are the Vega "background" rectangles of the two panels; find their pixel boxes
  // from the SVG's panel groups and count non-white pixels inside each
  const boxes = [...svg.matchAll(/<g transform="translate\(([\d.]+),([\d.]+)\)"><path class="background"[^>]*d="M0\.5,0\.5h([\d.]+)v([\d.]+)h/g)];
  assert.ok(boxes.length >= 2, 'two panels');
  const outer = /<g fill="none"[^>]*transform="translate\(([\d.]+),([\d.]+)\)"/.exec(svg)!;
  const s = info.width / svgWidth;
  const panels = boxes.slice(0, 2).map((m) => ({
    x: (Number(outer[1]) + Number(m[1])) * s,
    y: (Number(outer[2]) + Number(m[2])) * s,
    w: Number(m[3]) * s,
    h: Number(m[4]) * s,
  }));
  const rgb = (x: number, y: number) => {
    const i = (Math.floor(y) * info.width + Math.floor(x)) * ch;
    return [data[i]!, data[i + 1]!, data[i + 2]!];
  };
  for (const p of panels) {
    let colored = 0;
    let total = 0;
    for (let y = p.y + 4; y < p.y + p.h - 4; y += 2) {
      for (let x = p.x + 4; x < p.x + p.w - 4; x += 2) {
        total++;
        const [r, g, b] = rgb(x, y);
        // saturated pixels: the marks (grid lines are grey, background white)
        if (Math.max(r, g, b) - Math.min(r, g, b) > 60) colored++;
      }
    }
    assert.ok(total > 1000, 'plot area found');
    assert.ok(colored / total > 0.005, `panel at ${p.x},${p.y}: ${colored}/${total} coloured pixels`);
  }
  const json = JSON.parse(await readFile(files.json, 'utf8'));
  assert.equal(json.schema, 'awty.figure1/1');
  assert.equal(json.data.runs.length, paperRuns().length);
  const e = json.conditions[0].metrics[1].estimates[0];
  const ref = a.conditions[0]!.metrics[1]!.estimates[0]!;
  assert.equal(e.log10Hours, ref.log10Hours);
  assert.equal(e.bootstrap.median, ref.bootstrap!.median);
  assert.equal(json.sensitivity.rows.length, a.sensitivity.rows.length);
  assert.equal(json.assumptions.hoursPerDay, 12);
});

function awty(args: string[]) {
  return spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', cwd: root });
}

test('a one-panel figure with a long title is as wide as what is drawn: no empty margin on the right (text laid out in DejaVu Sans widths)', async () => {
  const a = analyze(paperRuns(), { bootstrap: 0, source: `results in ${'/a/long/folder/name'.repeat(4)}` });
  const title = 'Temporal classification on minutes of natural video: Fashion-MNIST top-1 against hours of video';
  const out = await writeFigure1(a, join(root, 'one-panel'), { title, metrics: ['top1'], scale: 1 });
  const { data, info } = await sharp(await readFile(out.png)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.width, out.pngWidth);
  let right = 0;
  for (let y = 0; y < info.height; y++) {
    for (let x = info.width - 1; x > right; x--) {
      const i = (y * info.width + x) * 3;
      if (data[i]! < 200 || data[i + 1]! < 200 || data[i + 2]! < 200) { right = x; break; }
    }
  }
  // the SVG pads 16 px on each side; the rightmost ink (the title or the subtitle) lies within a few px of that
  assert.ok(info.width - 1 - right <= 16 + 24, `rightmost ink at x=${right} of ${info.width} px`);
  assert.ok(right > info.width / 2);
});

test('awty figure1 end to end on the embedded data prints the table and writes the three files', async () => {
  const out = join(root, 'cli');
  const r = awty(['figure1', '--out', out, '--bootstrap', '200', '--hours-per-day', '16']);
  assert.equal(r.status, 0, r.stderr);
  const a = analyze(paperRuns(), { bootstrap: 0, hoursPerDay: 16 });
  const e = a.conditions[0]!.metrics[1]!.estimates[0]!;
  assert.ok(r.stdout.includes(formatYears(e.continuousYears)), r.stdout);
  assert.ok(r.stdout.includes(formatYears(e.wakingYears)), 'waking years at 16 h a day');
  assert.match(r.stdout, /Sensitivity/);
  assert.match(r.stdout, /Russakovsky et al\. 2015/);
  const json = JSON.parse(await readFile(join(out, 'figure1.json'), 'utf8'));
  assert.equal(json.assumptions.hoursPerDay, 16);
  assert.equal(json.assumptions.bootstrap.n, 200);
  assert.ok((await readFile(join(out, 'figure1.png'))).length > 1000);
});

test('awty figure1 --results reads a sweep; bad input exits non-zero with a clear message', async () => {
  const sweep = join(root, 'sweep');
  const runs: RunResult[] = [];
  for (const [i, hours] of [2, 20, 200].entries()) {
    for (const seed of [1, 2]) runs.push({ condition: 'linear-probe', hours, seed, top1: 10 + 8 * i + seed, top5: 30 + 10 * i + seed });
  }
  for (const r of runs) await writeResult(sweep, r);
  const ok = awty(['figure1', '--results', sweep, '--out', join(root, 'sweep-out'), '--bootstrap', '50', '--json']);
  assert.equal(ok.status, 0, ok.stderr);
  const a = JSON.parse(ok.stdout);
  assert.equal(a.data.runs.length, runs.length);
  assert.equal(a.conditions.length, 1);
  const expected = analyze(runs, { bootstrap: 0 }).conditions[0]!.metrics[1]!.estimates[0]!.log10Hours!;
  assert.ok(Math.abs(a.conditions[0].metrics[1].estimates[0].log10Hours - expected) < 1e-12);

  const empty = join(root, 'empty');
  await mkdir(empty, { recursive: true });
  const r1 = awty(['figure1', '--results', empty, '--out', join(root, 'x')]);
  assert.equal(r1.status, 1);
  assert.match(r1.stderr, /awty: no results found in/);

  const single = join(root, 'single');
  await writeResult(single, { condition: 'few-shot-2pct', hours: 13.01, seed: 1, top1: 20, top5: 40 });
  await writeResult(single, { condition: 'few-shot-2pct', hours: 13.01, seed: 2, top1: 21, top5: 41 });
  const r2 = awty(['figure1', '--results', single, '--out', join(root, 'x')]);
  assert.equal(r2.status, 1);
  assert.match(r2.stderr, /condition "few-shot-2pct" has runs at only one video length/);

  const neg = join(root, 'neg');
  await mkdir(neg, { recursive: true });
  await writeFile(join(neg, 'r.json'), JSON.stringify({ condition: 'c', hours: -1, seed: 1, top1: 1, top5: 2 }));
  const r3 = awty(['figure1', '--results', neg, '--out', join(root, 'x')]);
  assert.equal(r3.status, 1);
  assert.match(r3.stderr, /"hours" must be positive/);

  const r4 = awty(['figure1', '--target', 'top5=120']);
  assert.notEqual(r4.status, 0);
  assert.match(r4.stderr, /strictly between 0 and 100/);
  // a top-1 target adds to the top-5 default instead of replacing it
  const both = awty(['figure1', '--target', 'top1=80', '--bootstrap', '0', '--json', '--out', join(root, 'both')]);
  assert.equal(both.status, 0, both.stderr);
  assert.deepEqual(JSON.parse(both.stdout).assumptions.targets.map((t: { metric: string; value: number }) => `${t.metric}=${t.value}`).sort(), ['top1=80', 'top5=94.9']);
  const r5 = awty(['figure1', '--fit', 'cubic']);
  assert.notEqual(r5.status, 0);
  assert.match(r5.stderr, /loglinear/);
});
