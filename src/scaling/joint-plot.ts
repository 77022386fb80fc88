// The figure of `awty scaling`, as a Vega-Lite specification (rendered by plot.ts's renderVegaLite).
// One row per condition and target: left, accuracy against hours for every model size and image
// size, with the main form's joint fit through them; right, the human-level frontier: the hours a
// model needs to reach the target against its size, one line per image size, the bootstrap's 95%
// band around each, the measured settings (at their largest amount of video) and the estimate's point.

import type { JointAnalysis } from './joint-analysis.js';
import { predictJoint } from './joint.js';
import type { VegaLiteSpec } from './plot.js';

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];

export interface JointPlotOptions {
  panelWidth?: number;
  panelHeight?: number;
  /** the labelled set named on the y axis (default 'ImageNet') */
  dataset?: string;
  title?: string;
}

function shortCount(n: number): string {
  if (n >= 1e9) return `${Number((n / 1e9).toPrecision(2))}B`;
  if (n >= 1e6) return `${Number((n / 1e6).toPrecision(3))}M`;
  if (n >= 1e3) return `${Number((n / 1e3).toPrecision(3))}k`;
  return String(n);
}

/** The label of a model size and image size combination: "22M, 224 px". */
export function settingLabel(params: number, imageSize: number): string {
  return `${shortCount(params)}, ${imageSize} px`;
}

export function jointSpec(analysis: JointAnalysis, options: JointPlotOptions = {}): VegaLiteSpec {
  const width = options.panelWidth ?? 360;
  const height = options.panelHeight ?? 280;
  const dataset = options.dataset ?? 'ImageNet';
  const form = analysis.assumptions.form;
  const rows: Record<string, unknown>[] = [];
  for (const g of analysis.groups) {
    const runs = analysis.data.runs.filter((r) => r.condition === g.condition && (r.objective ?? null) === g.objective);
    for (const m of g.metrics) {
      const fit = m.fits[form]!;
      const metric = m.target.metric;
      const settings = [...new Map(runs.map((r) => [`${r.modelParams}|${r.imageSize}`, { params: r.modelParams!, imageSize: r.imageSize! }])).values()]
        .sort((a, b) => a.imageSize - b.imageSize || a.params - b.params);
      const labels = settings.map((s) => settingLabel(s.params, s.imageSize));
      const colors = labels.map((_, i) => PALETTE[i % PALETTE.length]!);
      const points = runs.map((r) => ({ setting: settingLabel(r.modelParams!, r.imageSize!), hours: Math.log10(r.hours), accuracy: r[metric], seed: r.seed }));
      const curves: Record<string, unknown>[] = [];
      const [h0, h1] = fit.ranges.hours;
      for (const s of settings) {
        for (let i = 0; i <= 40; i++) {
          const lh = Math.log10(h0) + ((Math.log10(h1) - Math.log10(h0)) * i) / 40;
          curves.push({ setting: settingLabel(s.params, s.imageSize), hours: lh, accuracy: predictJoint(fit, { params: s.params, hours: 10 ** lh, imageSize: s.imageSize }) });
        }
      }
      // the additive form's ceiling: accuracy never exceeds 100 − E
      const ceiling = fit.additive ? [{ accuracy: 100 - fit.additive.E, label: `ceiling 100 − E = ${(100 - fit.additive.E).toFixed(1)}%` }] : [];
      const yTitle = `${dataset} ${metric === 'top1' ? 'top-1' : 'top-5'} accuracy (%)`;
      const colorScale = { domain: labels, range: colors };
      const left = {
        width, height,
        title: { text: `${g.label}: data and the joint fit (${form})`, fontSize: 12 },
        layer: [
          {
            data: { values: curves }, mark: { type: 'line', strokeWidth: 1.5 },
            encoding: {
              x: { field: 'hours', type: 'quantitative', title: 'log₁₀ hours of video', scale: { zero: false } },
              y: { field: 'accuracy', type: 'quantitative', title: yTitle, scale: { zero: false } },
              color: { field: 'setting', type: 'nominal', title: 'parameters, image size', scale: colorScale },
            },
          },
          ...(ceiling.length ? [{
            data: { values: ceiling }, mark: { type: 'rule', strokeDash: [4, 4], color: '#555' },
            encoding: { y: { field: 'accuracy', type: 'quantitative' } },
          }, {
            data: { values: ceiling }, mark: { type: 'text', align: 'left', dx: 4, dy: -6, fontSize: 10, color: '#555' },
            encoding: { x: { datum: Math.log10(h0) }, y: { field: 'accuracy', type: 'quantitative' }, text: { field: 'label' } },
          }] : []),
          {
            data: { values: points }, mark: { type: 'point', filled: true, size: 40, opacity: 0.8 },
            encoding: {
              x: { field: 'hours', type: 'quantitative' },
              y: { field: 'accuracy', type: 'quantitative' },
              color: { field: 'setting', type: 'nominal', scale: colorScale },
            },
          },
        ],
      };
      const sizes = [...new Set(m.frontier.rows.map((r) => r.imageSize))];
      const sizeLabels = sizes.map((s) => `${s} px`);
      const sizeScale = { domain: sizeLabels, range: sizes.map((_, i) => PALETTE[(i + 3) % PALETTE.length]!) };
      const line = m.frontier.rows.filter((r) => r.log10Hours !== null).map((r) => ({ params: Math.log10(r.params), hours: r.log10Hours, size: `${r.imageSize} px` }));
      const band = m.frontier.rows.filter((r) => r.bootstrap && r.bootstrap.low !== null && r.bootstrap.high !== null)
        .map((r) => ({ params: Math.log10(r.params), low: r.bootstrap!.low, high: r.bootstrap!.high, size: `${r.imageSize} px` }));
      const measured = settings.map((s) => ({ params: Math.log10(s.params), hours: Math.log10(h1), label: 'measured (most video)' }));
      const est = m.estimate.log10Hours === null ? [] : [{ params: Math.log10(m.estimate.params), hours: m.estimate.log10Hours, label: `estimate at ${settingLabel(m.estimate.params, m.estimate.imageSize)}` }];
      const right = {
        width, height,
        title: { text: `frontier: hours to ${metric === 'top1' ? 'top-1' : 'top-5'} ${m.target.value}%`, fontSize: 12 },
        layer: [
          ...(band.length ? [{
            data: { values: band }, mark: { type: 'area', opacity: 0.18 },
            encoding: {
              x: { field: 'params', type: 'quantitative', title: 'log₁₀ model parameters', scale: { zero: false } },
              y: { field: 'low', type: 'quantitative' }, y2: { field: 'high' },
              color: { field: 'size', type: 'nominal', title: 'image size', scale: sizeScale },
            },
          }] : []),
          ...(line.length ? [{
            data: { values: line }, mark: { type: 'line', strokeWidth: 2 },
            encoding: {
              x: { field: 'params', type: 'quantitative', title: 'log₁₀ model parameters', scale: { zero: false } },
              y: { field: 'hours', type: 'quantitative', title: 'log₁₀ hours of video to the target', scale: { zero: false } },
              color: { field: 'size', type: 'nominal', title: 'image size', scale: sizeScale },
            },
          }] : [{
            data: { values: [{ params: Math.log10(fit.ranges.params[1]), hours: Math.log10(h1), text: m.estimate.reason?.startsWith('unreachable') ? `on the whole grid; at the estimate: ${m.estimate.reason}` : 'the fit never reaches the target: accuracy does not grow with video' }] },
            mark: { type: 'text', align: 'center', dy: -30, fontSize: 11 },
            encoding: {
              x: { field: 'params', type: 'quantitative', title: 'log₁₀ model parameters', scale: { zero: false } },
              y: { field: 'hours', type: 'quantitative', title: 'log₁₀ hours of video to the target', scale: { zero: false } },
              text: { field: 'text' },
            },
          }]),
          {
            data: { values: measured }, mark: { type: 'point', shape: 'square', size: 50, color: '#555', filled: false },
            encoding: { x: { field: 'params', type: 'quantitative' }, y: { field: 'hours', type: 'quantitative' } },
          },
          ...(est.length ? [{
            data: { values: est }, mark: { type: 'point', shape: 'diamond', size: 120, color: 'black', filled: true },
            encoding: { x: { field: 'params', type: 'quantitative' }, y: { field: 'hours', type: 'quantitative' } },
          }] : []),
        ],
      };
      rows.push({ hconcat: [left, right], resolve: { scale: { color: 'independent' } } });
    }
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: { text: options.title ?? 'Accuracy against model size, video and image size, and the human-level frontier', fontSize: 14 },
    config: { font: 'DejaVu Sans', view: { stroke: '#ccc' } },
    vconcat: rows,
  };
}
