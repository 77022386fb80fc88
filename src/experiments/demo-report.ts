// report.html of a demo run: one self-contained page (every figure inlined as a PNG data URI, no
// script, no network) with the honest reading, the user's Figure 1 beside the paper's, accuracy
// against hours per evaluation with the random-trunk baseline, the learning curve of every
// temporal-classification run, the table of every run, the corpus, the configuration and versions.
import { promises as fsp } from 'node:fs';
import { basename, join, relative } from 'node:path';
import * as torch from '../torch/index.js';
import { renderVegaLite, svgToPng, type VegaLiteSpec } from '../scaling/plot.js';
import { formatReport } from '../scaling/report.js';
import type { DemoSummary } from './demo.js';
import { CONDITION_LABELS, DEMO_CONDITIONS } from './demo.js';

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const f1 = (v: number | null | undefined): string => (v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(1));

export interface ReportFigure {
  id: string;
  title: string;
  png: Buffer;
  width: number;
  height: number;
}

async function chart(id: string, title: string, spec: VegaLiteSpec, scale = 2): Promise<ReportFigure> {
  const r = await renderVegaLite(spec);
  if (r.warnings.some((w) => w.startsWith('error'))) throw new Error(`${id}: ${r.warnings.join('; ')}`);
  const png = svgToPng(r.svg, r.width, scale);
  return { id, title, png, width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

/** Accuracy against hours, one panel per evaluation: seeds as points, their mean as a line, the random trunk as a band. */
export function accuracySpec(s: DemoSummary): VegaLiteSpec {
  const hours = s.tcRuns.map((r) => r.hours);
  const x0 = Math.min(...hours) / 1.5;
  const x1 = Math.max(...hours) * 1.5;
  const panels = DEMO_CONDITIONS.map((c) => {
    const pts = s.evals.filter((e) => e.trunk === 'tc' && e.condition === c).map((e) => ({ hours: e.hours, top1: e.top1, seed: `seed ${e.seed}` }));
    const rnd = s.evals.filter((e) => e.trunk === 'random' && e.condition === c).map((e) => e.top1);
    const mean = rnd.reduce((a, b) => a + b, 0) / Math.max(1, rnd.length);
    const base = [x0, x1].map((h) => ({ hours: h, top1: mean, low: Math.min(...rnd), high: Math.max(...rnd) }));
    const x = { field: 'hours', type: 'quantitative', scale: { type: 'log', domain: [x0, x1] }, axis: { title: 'hours of video seen by TC (log scale)' } };
    const y = { field: 'top1', type: 'quantitative', scale: { domain: [0, 100] }, axis: { title: 'Fashion-MNIST top-1 (%)' } };
    return {
      title: CONDITION_LABELS[c], width: 360, height: 260,
      layer: [
        { data: { values: base }, mark: { type: 'area', color: '#888', opacity: 0.2 }, encoding: { x, y: { ...y, field: 'low' }, y2: { field: 'high' } } },
        { data: { values: base }, mark: { type: 'line', color: '#555', strokeDash: [4, 3] }, encoding: { x, y } },
        { data: { values: [{ top1: s.chance }] }, mark: { type: 'rule', color: '#bbb' }, encoding: { y } },
        { data: { values: [{ top1: s.target.value }] }, mark: { type: 'rule', color: '#333', strokeDash: [2, 2] }, encoding: { y } },
        { data: { values: pts }, mark: { type: 'line', color: '#1f77b4' }, encoding: { x, y: { ...y, aggregate: 'mean' } } },
        { data: { values: pts }, mark: { type: 'point', filled: true, size: 50 }, encoding: { x, y, shape: { field: 'seed', type: 'nominal', legend: { title: null, orient: 'bottom' } }, color: { value: '#1f77b4' } } },
      ],
    };
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Fashion-MNIST top-1 of TC trunks against hours of video', subtitle: [`blue: TC runs (points: seeds; line: mean); grey band: random-weight trunk (range over seeds), dashed its mean; light rule: chance ${s.chance}%; dark dotted: human ${s.target.value}%`], subtitleFontSize: 10 },
    background: 'white', padding: 12, config: { font: 'DejaVu Sans, sans-serif' },
    hconcat: panels,
  } as VegaLiteSpec;
}

/** Training top-1 of temporal classification per epoch, one line per run. */
export function learningCurveSpec(s: DemoSummary): VegaLiteSpec {
  const values = s.tcRuns.flatMap((r) => r.acc1List.map((a, e) => ({ epoch: e, acc1: a, run: `fraction ${r.classFraction}`, seed: `seed ${r.seed}`, loss: r.lossList[e] ?? null })));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: 'Temporal classification: training top-1 per epoch', subtitle: ['which-episode accuracy on the training frames (augmented); chance is 1/episodes'], subtitleFontSize: 10 },
    background: 'white', padding: 12, config: { font: 'DejaVu Sans, sans-serif' },
    width: 520, height: 280,
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', axis: { title: 'epoch', tickMinStep: 1 } },
      y: { field: 'acc1', type: 'quantitative', scale: { domain: [0, 100] }, axis: { title: 'TC training top-1 (%)' } },
      color: { field: 'run', type: 'nominal', legend: { title: 'amount of video' } },
      strokeDash: { field: 'seed', type: 'nominal', legend: { title: null } },
      detail: [{ field: 'run' }, { field: 'seed' }],
    },
  } as VegaLiteSpec;
}

/** The page's figures: Figure 1 (ours and the paper's), accuracy against hours, learning curves. */
export async function reportFigures(s: DemoSummary): Promise<ReportFigure[]> {
  const file = async (id: string, title: string, png: string): Promise<ReportFigure> => {
    const b = await fsp.readFile(png);
    return { id, title, png: b, width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
  };
  return [
    await file('figure1', 'Figure 1 of this run', s.figure.png),
    await file('figure1-paper', 'Figure 1 of the paper (its published numbers)', s.paperFigure.png),
    await chart('accuracy', 'Accuracy against hours, with the random-weight baseline', accuracySpec(s)),
    await chart('learning-curves', 'Learning curves of the temporal-classification runs', learningCurveSpec(s)),
  ];
}

function table(header: string[], rows: string[][], id: string): string {
  return `<table id="${id}"><thead><tr>${header.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead>\n<tbody>\n` +
    rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('\n') + '\n</tbody></table>';
}

/** Writes OUT/report.html (and the figures as PNG files beside it, under figures/); returns its path. */
export async function writeDemoReport(s: DemoSummary): Promise<string> {
  const figs = await reportFigures(s);
  const figDir = join(s.out, 'figures');
  await fsp.mkdir(figDir, { recursive: true });
  for (const f of figs) await fsp.writeFile(join(figDir, `${f.id}.png`), f.png);

  const tcRows = s.tcRuns.map((r) => {
    const ev = (c: string): string => f1(s.evals.find((e) => e.trunk === 'tc' && e.condition === c && e.classFraction === r.classFraction && e.seed === r.seed)?.top1);
    return [`TC ${r.classFraction} seed ${r.seed}`, 'temporal classification', String(r.classFraction), String(r.seed), String(r.episodes), String(r.frames),
      (r.hours * 60).toFixed(2), f1(r.acc1List.at(-1)), ev('few-shot'), ev('linear-probe'), r.seconds.toFixed(0)];
  });
  const rndRows = [...new Set(s.evals.filter((e) => e.trunk === 'random').map((e) => e.seed))].map((seed) => {
    const ev = (c: string): string => f1(s.evals.find((e) => e.trunk === 'random' && e.condition === c && e.seed === seed)?.top1);
    return [`random seed ${seed}`, 'random-weight trunk (baseline)', '—', String(seed), '—', '0', '0', '—', ev('few-shot'), ev('linear-probe'), '—'];
  });
  const runTable = table(['run', 'trunk', 'class fraction', 'seed', 'episodes', 'frames', 'minutes of video', 'TC train top-1 (last epoch)',
    'few-shot top-1', 'linear-probe top-1', 'TC seconds'], [...tcRows, ...rndRows], 'runs');
  const sumRows = s.readings.flatMap((r) => [
    ...r.bySize.map((b) => [r.label, `TC, fraction ${b.classFraction}`, (b.hours * 60).toFixed(2), f1(b.mean), `${f1(b.min)}–${f1(b.max)}`, String(b.n)]),
    [r.label, 'random-weight trunk', '0', f1(r.random.mean), `${f1(r.random.min)}–${f1(r.random.max)}`, String(r.random.n)],
  ]);
  const summaryTable = table(['evaluation', 'trunk', 'minutes of video', 'top-1 mean', 'range over seeds', 'seeds'], sumRows, 'summary');
  const c = s.corpus;
  const corpusRows = c.videos.map((v) => [basename(v.file), v.kind === 'footage' ? 'real footage' : 'camera path over a photograph', basename(v.source), v.seconds.toFixed(1), `${v.width}x${v.height}`]);
  const corpusTable = table(['video', 'kind', 'source', 'seconds', 'size'], corpusRows, 'corpus');
  const p = s.plan;
  const config = {
    size: s.size, device: s.device, threads: torch.getNumThreads(), libtorch: torch.version, node: process.version, platform: `${process.platform} ${process.arch}`,
    plan: p, episodes: { ...s.episodes, dir: relative(s.out, s.episodes.dir) }, seconds: Math.round(s.seconds),
  };
  const figHtml = (id: string): string => {
    const f = figs.find((g) => g.id === id)!;
    return `<figure><img id="img-${f.id}" alt="${esc(f.title)}" width="${Math.round(f.width / 2)}" data-width="${f.width}" data-height="${f.height}" ` +
      `src="data:image/png;base64,${f.png.toString('base64')}"><figcaption>${esc(f.title)}</figcaption></figure>`;
  };
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>awty demo report</title>
<style>
body { font-family: 'DejaVu Sans', sans-serif; max-width: 1150px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; } th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: right; }
th { background: #f3f3f3; } td:first-child, td:nth-child(2) { text-align: left; }
figure { margin: 1em 0; } img { max-width: 100%; height: auto; border: 1px solid #eee; } figcaption { font-size: 13px; color: #555; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; font-size: 12px; } .reading li { margin: .3em 0; }
</style></head><body>
<h1>Are we there yet? A miniature of Orhan (2021)</h1>
<p>Temporal classification (TC): a ResNet learns, from video alone, to tell which ${p.extract.segLen}-second episode a frame came from.
Its features are then tested on a labelled object-recognition set, Fashion-MNIST (10 classes, chance ${s.chance}%), by <em>few-shot fine-tuning</em>
(the whole network trained on ${p.labelled.fewShotPerClass} labelled images per class) and a <em>linear probe</em> (only a linear classifier trained on the frozen features,
${p.labelled.trainPerClass} images per class), each also on an untrained (random-weight) trunk as the baseline. The human line is ${s.target.value}% top-1: ${esc(s.target.source)}.</p>
<h2>What this run says</h2>
<ul class="reading">${s.reading.map((l) => `<li>${esc(l)}</li>`).join('\n')}</ul>
${summaryTable}
<h2>Figure 1</h2>
${figHtml('figure1')}
${figHtml('figure1-paper')}
<h2>Accuracy against hours of video</h2>
${figHtml('accuracy')}
<h2>Learning curves</h2>
${figHtml('learning-curves')}
<h2>Every run</h2>
${runTable}
<h2>Corpus</h2>
<p>${c.videos.filter((v) => v.kind === 'footage').length} real videos from opencv-doc (${c.footageSeconds.toFixed(1)} s) and ${c.photosUsed} slow camera paths
(pan, zoom, small rotation) of ${p.corpus.pathSeconds} s over its real photographs (${c.pathSeconds} s), rendered with ffmpeg at ${p.corpus.renderFps} frames/s;
${(c.footageSeconds + c.pathSeconds).toFixed(1)} s in all. Extracted at ${p.extract.fps} frames/s into ${s.episodes.episodes} episodes of ${s.episodes.framesPerEpisode} frames
(${s.episodes.frames} frames, ${p.extract.frameSize} px).</p>
${corpusTable}
<h2>Analysis (as printed)</h2>
<pre>${esc(formatReport(s.analysis))}</pre>
<h2>Configuration and versions</h2>
<pre>${esc(JSON.stringify(config, null, 2))}</pre>
</body></html>
`;
  const file = join(s.out, 'report.html');
  const tmp = join(s.out, `.report.html.${process.pid}.tmp`);
  await fsp.writeFile(tmp, html);
  await fsp.rename(tmp, file);
  return file;
}
