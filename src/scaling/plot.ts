// The Figure 1 plot: a Vega-Lite specification built from an analysis, compiled to Vega and rendered
// headless to SVG; PNG from that SVG through resvg.
// Panels for top-1 and top-5; x = hours of video on a log axis extended to the extrapolated range,
// y = accuracy. Points per run, the fitted curve over the measured range (solid), its extrapolation
// (dashed) to the human-level target (dashed grey rule), and the estimated years at each crossing.

import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { Figure1Analysis } from './analysis.js';
import { bootstrapCurveBand } from './bootstrap.js';
import { predict } from './fit.js';
import { formatYears, powerOfTen } from './format.js';
import { METRICS, type Metric } from './results.js';
import { vegaTextWidth, type VegaTextItem } from './text-width.js';

// Headless Vega (no canvas) lays text out with a rough estimate; it is given the widths of the font
// the figures are drawn in instead (Vega's documented hook: a user-defined textMetrics.width).
const metrics = (vega as unknown as { textMetrics: { width: unknown; estimateWidth: unknown } }).textMetrics;
if (metrics.width === metrics.estimateWidth) metrics.width = (item: VegaTextItem, text: unknown) => vegaTextWidth(item, text);

/** One colour per condition; the paper's three first, then others in this order. */
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];

const METRIC_TITLE: Record<Metric, string> = { top1: 'top-1', top5: 'top-5' };

export interface PlotOptions {
  /** width and height of each panel's plot area, in px */
  panelWidth?: number;
  panelHeight?: number;
  /** points sampled along each fitted curve */
  samples?: number;
  /** the figure's title (default: the paper's question about ImageNet) */
  title?: string;
  /** the labelled set named on the y axis (default 'ImageNet') */
  dataset?: string;
  /** the panels drawn (default top-1 and top-5) */
  metrics?: readonly Metric[];
  /** a bootstrap band (2.5%-97.5%) around each fitted curve over the measured range */
  bands?: { n: number; seed: number };
  /** horizontal reference levels drawn per condition, e.g. a random-weight trunk's accuracy (mean and spread over seeds) */
  baselines?: readonly Baseline[];
  /** other horizontal lines (e.g. chance level) */
  references?: readonly { metric: Metric; value: number; label: string }[];
}

/** A horizontal reference level of one condition (e.g. the same evaluation on an untrained trunk). */
export interface Baseline {
  /** the condition it belongs to (as in the results) */
  condition: string;
  metric: Metric;
  mean: number;
  low: number;
  high: number;
  label: string;
}

/** The x range shown: from below the data to beyond the farthest crossing of the main fit. */
export function xDomain(analysis: Figure1Analysis): [number, number] {
  const hours = analysis.data.runs.map((r) => r.hours);
  const lo = Math.floor(Math.log10(Math.min(...hours)) - 0.3);
  let hi = Math.log10(Math.max(...hours)) + 1;
  for (const c of analysis.conditions) {
    // room right of each crossing for its label
    for (const m of c.metrics) for (const e of m.estimates) if (e.log10Hours !== null) hi = Math.max(hi, e.log10Hours + 2.5);
  }
  hi = Math.min(Math.ceil(hi), lo + 40);
  return [10 ** lo, 10 ** hi];
}

function logSpace(a: number, b: number, n: number): number[] {
  const la = Math.log10(a);
  const lb = Math.log10(b);
  return Array.from({ length: n }, (_, i) => 10 ** (la + ((lb - la) * i) / (n - 1)));
}

/** The Vega-Lite specification of the figure. */
/**
 * A Vega-Lite specification as JSON. vega-lite's own `TopLevelSpec` stays inside this file, so that a
 * program using the scaling analysis type-checks without vega-lite's declarations.
 */
export type VegaLiteSpec = Readonly<Record<string, unknown>>;

export function figure1Spec(analysis: Figure1Analysis, options: PlotOptions = {}): VegaLiteSpec {
  const width = options.panelWidth ?? 420;
  const height = options.panelHeight ?? 330;
  const samples = options.samples ?? 60;
  const dataset = options.dataset ?? 'ImageNet';
  const [x0, x1] = xDomain(analysis);
  const labels = analysis.conditions.map((c) => c.label);
  const colors = labels.map((_, i) => PALETTE[i % PALETTE.length]!);
  const e0 = Math.round(Math.log10(x0));
  const e1 = Math.round(Math.log10(x1));
  const step = Math.max(1, Math.ceil((e1 - e0) / 8));
  const ticks: number[] = [];
  for (let e = e0; e <= e1; e += step) ticks.push(e);
  const labelExpr =
    ticks.map((e) => `abs(log(datum.value) / LN10 - ${e}) < 1e-6 ? '${powerOfTen(e)}'`).join(' : ') + " : ''";

  const panel = (metric: Metric) => {
    const points: Record<string, unknown>[] = [];
    const fitted: Record<string, unknown>[] = [];
    const extra: Record<string, unknown>[] = [];
    const crossings: Record<string, unknown>[] = [];
    const band: Record<string, unknown>[] = [];
    const base: Record<string, unknown>[] = [];
    const intervals: Record<string, unknown>[] = [];
    const target = analysis.assumptions.targets.find((t) => t.metric === metric);
    analysis.conditions.forEach((c, ci) => {
      const m = c.metrics.find((mm) => mm.metric === metric);
      if (!m) return;
      for (const r of analysis.data.runs.filter((rr) => rr.condition === c.condition)) {
        points.push({ condition: c.label, hours: r.hours, accuracy: r[metric], seed: r.seed });
      }
      const hMin = m.lengths[0]!;
      const hMax = m.lengths[m.lengths.length - 1]!;
      for (const h of logSpace(hMin, hMax, samples)) fitted.push({ condition: c.label, hours: h, accuracy: predict(m.fit, h) });
      if (options.bands) {
        const rs = analysis.data.runs.filter((rr) => rr.condition === c.condition);
        const b = bootstrapCurveBand(analysis.assumptions.fit, rs.map((r) => r.hours), rs.map((r) => r[metric]), logSpace(hMin, hMax, samples), options.bands);
        for (const p of b) band.push({ condition: c.label, hours: p.hours, low: Math.max(0, p.low), high: Math.min(100, p.high) });
      }
      for (const bl of options.baselines ?? []) {
        if (bl.condition !== c.condition || bl.metric !== metric) continue;
        for (const h of [x0, x1]) base.push({ condition: c.label, hours: h, accuracy: bl.mean, low: bl.low, high: bl.high, label: bl.label });
      }
      const e = m.estimates[0];
      const end = e && e.log10Hours !== null && e.hours! > hMax ? Math.min(e.hours!, x1) : x1;
      for (const h of logSpace(hMax, end, samples)) {
        const a = predict(m.fit, h);
        if (a >= 0 && a <= 100) extra.push({ condition: c.label, hours: h, accuracy: a });
      }
      if (e && e.log10Hours !== null && e.hours! >= x0 && e.hours! <= x1) {
        crossings.push({
          condition: c.label,
          hours: e.hours,
          accuracy: e.target.value,
          text: `${c.label}: ${formatYears(e.continuousYears)}`,
          // labels stacked in the empty lower right corner (the fits rise to the right), one row per
          // condition, so that they never overlap each other, the curves or the panel's edge
          labelAccuracy: 4 + 6 * (analysis.conditions.length - 1 - ci),
          labelHours: x1,
        });
      }
      // the bootstrap's 95% interval of the crossing, as a horizontal error bar on the target line
      // (open to the right when some replicates never reach the target)
      const b = e?.bootstrap;
      if (e && b && b.low !== null) {
        const lo = Math.max(x0, 10 ** b.low);
        const hi = b.high === null ? x1 : Math.min(x1, 10 ** b.high);
        if (hi > lo) intervals.push({ condition: c.label, hours: lo, hours2: hi, accuracy: e.target.value - 1.2 * ci });
      }
    });
    const x = {
      field: 'hours',
      type: 'quantitative' as const,
      scale: { type: 'log' as const, domain: [x0, x1] },
      axis: { title: 'hours of video (log scale); 1 year of continuous video = 8,766 h', values: ticks.map((e) => 10 ** e), labelExpr, grid: true },
    };
    const y = {
      field: 'accuracy',
      type: 'quantitative' as const,
      scale: { domain: [0, 100] },
      axis: { title: `${dataset} ${METRIC_TITLE[metric]} accuracy (%)` },
    };
    const color = {
      field: 'condition',
      type: 'nominal' as const,
      scale: { domain: labels, range: colors },
      legend: { title: 'evaluation', orient: 'bottom' as const, direction: 'horizontal' as const },
    };
    const layer: Record<string, unknown>[] = [];
    if (band.length > 0) {
      layer.push({
        name: `band_${metric}`, data: { values: band }, mark: { type: 'area', opacity: 0.18, clip: true },
        encoding: { x, y: { ...y, field: 'low' }, y2: { field: 'high' }, color, detail: { field: 'condition' } },
      });
    }
    if (base.length > 0) {
      layer.push(
        {
          name: `baseline_band_${metric}`, data: { values: base }, mark: { type: 'area', opacity: 0.1, clip: true },
          encoding: { x, y: { ...y, field: 'low' }, y2: { field: 'high' }, color, detail: { field: 'condition' } },
        },
        {
          name: `baseline_${metric}`, data: { values: base }, mark: { type: 'line', strokeWidth: 1.5, strokeDash: [1, 3], clip: true },
          encoding: { x, y, color, detail: { field: 'condition' }, tooltip: [{ field: 'label' }, { field: 'accuracy' }] },
        },
      );
    }
    for (const [i, r] of (options.references ?? []).filter((rr) => rr.metric === metric).entries()) {
      layer.push(
        { name: `reference_${metric}_${i}`, data: { values: [{ accuracy: r.value }] }, mark: { type: 'rule', color: '#999', strokeWidth: 1 }, encoding: { y } },
        {
          name: `reference_label_${metric}_${i}`, data: { values: [{ accuracy: r.value, hours: x0, text: r.label }] },
          mark: { type: 'text', align: 'left', dx: 4, dy: -6, fontSize: 10, color: '#666' }, encoding: { x, y, text: { field: 'text' } },
        },
      );
    }
    layer.push(
      { name: `fit_${metric}`, data: { values: fitted }, mark: { type: 'line', strokeWidth: 2, clip: true }, encoding: { x, y, color, detail: { field: 'condition' } } },
      {
        name: `extrapolation_${metric}`,
        data: { values: extra },
        mark: { type: 'line', strokeWidth: 1.5, strokeDash: [6, 4], clip: true },
        encoding: { x, y, color, detail: { field: 'condition' } },
      },
      {
        name: `points_${metric}`,
        data: { values: points },
        mark: { type: 'point', filled: true, size: 36, opacity: 0.85, clip: true },
        encoding: { x, y, color, tooltip: [{ field: 'condition' }, { field: 'hours' }, { field: 'seed' }, { field: 'accuracy' }] },
      },
    );
    if (target) {
      layer.push(
        {
          name: `target_${metric}`,
          data: { values: [{ accuracy: target.value }] },
          mark: { type: 'rule', strokeDash: [3, 3], color: '#555', strokeWidth: 1.5 },
          encoding: { y },
        },
        {
          name: `target_label_${metric}`,
          data: { values: [{ accuracy: target.value, hours: x0, text: `human level: ${METRIC_TITLE[metric]} ${target.value}%` }] },
          mark: { type: 'text', align: 'left', dx: 4, dy: 10, fontSize: 11, color: '#333' },
          encoding: { x, y, text: { field: 'text' } },
        },
        {
          name: `interval_${metric}`,
          data: { values: intervals },
          mark: { type: 'rule', strokeWidth: 3, opacity: 0.45, clip: true },
          encoding: { x, x2: { field: 'hours2' }, y, color },
        },
        {
          name: `crossing_${metric}`,
          data: { values: crossings },
          mark: { type: 'point', shape: 'diamond', filled: true, size: 70, stroke: 'black', strokeWidth: 0.5 },
          encoding: { x, y, color },
        },
        {
          name: `years_${metric}`,
          data: { values: crossings },
          mark: { type: 'text', align: 'right', dx: -6, fontSize: 11, fontWeight: 'bold' },
          encoding: { x: { ...x, field: 'labelHours' }, y: { ...y, field: 'labelAccuracy' }, color, text: { field: 'text' } },
        },
      );
    }
    const perDay = analysis.assumptions.hoursPerDay;
    const subtitle = target
      ? [
          `grey: human level, ${METRIC_TITLE[metric]} ${target.value}% (an assumption)`,
          `diamonds: where each fit reaches it; bars: bootstrap 95% interval`,
          `lower right: years of continuous video to reach it (×${+(24 / perDay).toFixed(2)} at ${perDay} h a day)`,
        ]
      : [`no ${METRIC_TITLE[metric]} target given (--target ${metric}=VALUE)`, 'dashed: extrapolation of the fit'];
    return {
      title: { text: `${METRIC_TITLE[metric]}`, subtitle, subtitleFontSize: 10, anchor: 'start' as const },
      width,
      height,
      layer,
    };
  };

  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: options.title ?? 'How much video would temporal classification need for human-level ImageNet accuracy?',
      subtitle: [
        `fit: ${analysis.assumptions.fitDescription}; points: runs (seeds); solid: fit; dashed: extrapolation`,
        `data: ${analysis.data.source}`,
      ],
      subtitleFontSize: 10,
    },
    background: 'white',
    padding: 16,
    config: { font: 'DejaVu Sans, sans-serif', view: { stroke: '#bbb' } },
    hconcat: (options.metrics ?? METRICS).map((m) => panel(m)),
    resolve: { scale: { color: 'shared' } },
  } satisfies VegaLiteSpec;
}

export interface RenderedFigure {
  spec: VegaLiteSpec;
  svg: string;
  /** warnings from Vega-Lite's compiler and Vega's runtime (none expected) */
  warnings: string[];
  /** SVG size in px */
  width: number;
  height: number;
}

/** A Vega logger that keeps warnings and errors instead of printing them. */
function collectingLogger(sink: string[]) {
  let level = 0;
  const text = (args: unknown[]) => args.map((a) => (a instanceof Error ? a.message : String(a))).join(' ');
  const logger = {
    level(l?: number) {
      if (l === undefined) return level;
      level = l;
      return logger;
    },
    error(...args: unknown[]) {
      sink.push(`error: ${text(args)}`);
      return logger;
    },
    warn(...args: unknown[]) {
      sink.push(`warning: ${text(args)}`);
      return logger;
    },
    info() {
      return logger;
    },
    debug() {
      return logger;
    },
  };
  return logger;
}

/** Compiles the spec to Vega and renders it headless to SVG. */
export async function renderSvg(analysis: Figure1Analysis, options: PlotOptions = {}): Promise<RenderedFigure> {
  return renderVegaLite(figure1Spec(analysis, options));
}

/** Compiles any Vega-Lite specification to Vega and renders it headless to SVG. */
export async function renderVegaLite(spec: VegaLiteSpec): Promise<RenderedFigure> {
  const warnings: string[] = [];
  const logger = collectingLogger(warnings);
  const view = new vega.View(vega.parse(compile(spec as unknown as TopLevelSpec, { logger }).spec), { renderer: 'none', logger });
  try {
    const svg = await view.toSVG();
    const m = /<svg[^>]*\bwidth="([\d.]+)"[^>]*\bheight="([\d.]+)"/.exec(svg);
    if (!m) throw new Error('rendered SVG has no size');
    return { spec: spec as unknown as RenderedFigure["spec"], svg, warnings, width: Number(m[1]), height: Number(m[2]) };
  } finally {
    view.finalize();
  }
}

/** Rasterises an SVG to PNG at `scale` (the PNG is round(width·scale) px wide). */
export function svgToPng(svg: string, width: number, scale = 2): Buffer {
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'width', value: Math.round(width * scale) },
    background: 'white',
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
  });
  return resvg.render().asPng();
}

