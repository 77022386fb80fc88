// The outputs of `awty scaling`: the terminal report, scaling.json (every number), frontier.csv (the
// frontier grid), scaling.svg and scaling.png (the figure of joint-plot.ts).

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeDataAtomic } from '../io/atomic.js';
import { FIT_FORMS } from './fit.js';
import { fixed, formatHours, formatYears, textTable } from './format.js';
import type { JointAnalysis } from './joint-analysis.js';
import { JOINT_FORM_DESCRIPTIONS, JOINT_FORMS, type Interval, type JointFit } from './joint.js';
import { jointSpec, settingLabel, type JointPlotOptions } from './joint-plot.js';

function sci(v: number | null): string {
  if (v === null) return '–';
  return Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-2) ? v.toExponential(3) : v.toPrecision(4);
}

/** The additive law in one line: its parameters, their standard errors and the loss. */
export function additiveLine(fit: JointFit): string {
  const law = fit.additive!;
  const se = (v: number | null): string => (v === null ? '' : ` ± ${sci(v)}`);
  const terms = (['params', 'hours', 'imageSize'] as const).map((f, i) => {
    const [c, x] = [['A', 'α'], ['B', 'β'], ['C', 'γ']][i]!;
    const sym = ['N', 'D', 'R'][i]!;
    return law.coefficients[f] === null ? `${sym} fixed at ${fit.fixed[f]}` : `${c}/${sym}^${x}: ${c} = ${sci(law.coefficients[f])}, ${x} = ${sci(law.exponents[f])}${se(law.exponentSE[f])}`;
  });
  return `additive: E = ${sci(law.E)}${se(law.ESE)} (irreducible error, points); ${terms.join('; ')}; R² (acc) ${fixed(fit.r2Accuracy, 3)}, ` +
    `SSE ${sci(law.sse)}, ${law.startsAtBest} of ${law.starts} starts at the best loss${law.converged ? '' : ' (not converged)'}` +
    (law.atBound.length ? `; on its bound (no standard errors): ${law.atBound.join(', ')}` : '');
}

function interval(b: Interval | undefined, digits = 2): string {
  if (!b) return '';
  const v = (x: number | null): string => (x === null ? '∞' : x.toFixed(digits));
  return `${v(b.median)} [${v(b.low)}, ${v(b.high)}]${b.missing ? ` (${b.missing} never)` : ''}`;
}

/** The report printed by `awty scaling`. */
export function formatJointReport(a: JointAnalysis): string {
  const out: string[] = [`Joint scaling of ${a.source}`, `main form: ${a.assumptions.form}: ${JOINT_FORM_DESCRIPTIONS[a.assumptions.form]} (N parameters, D hours, R image side in px)`];
  for (const g of a.groups) {
    out.push('', `${g.label}: ${g.runs} runs in ${g.cells} settings (model size × image size × hours)`);
    for (const m of g.metrics) {
      out.push(`target ${m.target.metric} ${m.target.value}% (${m.target.source})`);
      const rows = FIT_FORMS.filter((f) => m.fits[f]).map((f) => {
        const fit = m.fits[f]!;
        const s = (k: 'params' | 'hours' | 'imageSize'): string => (fit.fixed[k] !== undefined ? `fixed ${fit.fixed[k]}` : fixed(fit.slopes[k], 3));
        return [f, fixed(fit.intercept, 3), s('params'), s('hours'), s('imageSize'), fixed(fit.r2Accuracy, 3)];
      });
      out.push(textTable(['form', 'intercept', 'per decade of params', 'of hours', 'of image size', 'R² (acc)'], rows));
      if (m.fits.additive) out.push(additiveLine(m.fits.additive) + (m.irreducibleErrorBootstrap ? `; bootstrap E ${interval(m.irreducibleErrorBootstrap)}` : ''));
      for (const [f, why] of Object.entries(m.skipped)) out.push(`${f}: not fitted (${why})`);
      const e = m.estimate;
      const none = (why: string | undefined): string => (why?.startsWith('unreachable') ? why : `never (${why})`);
      out.push(`at ${settingLabel(e.params, e.imageSize)}: ${e.log10Hours === null ? none(e.reason) : `10^${e.log10Hours.toFixed(2)} h = ${formatHours(e.hours)} h, ${formatYears(e.continuousYears)} of continuous video, ${formatYears(e.wakingYears)} at ${a.assumptions.hoursPerDay} h a day`}` +
        (e.bootstrap ? `; bootstrap log10 h ${interval(e.bootstrap)}` : ''));
      const pl = m.frontier.plane;
      if (pl.log10HoursAtUnit !== null) {
        const w = (v: number | null): string => (v === null ? 'not measured' : `${v.toFixed(2)} decades of video`);
        out.push(`frontier: a tenfold larger model saves ${w(pl.decadesOfVideoPerDecade.params)}; a tenfold larger image side saves ${w(pl.decadesOfVideoPerDecade.imageSize)}`);
      }
      for (const p of m.predictions) {
        const acc = JOINT_FORMS.filter((f) => p.accuracy[f] !== undefined).map((f) => `${f} ${p.accuracy[f]!.toFixed(1)}%`).join(', ');
        out.push(`predicted ${m.target.metric} at ${settingLabel(p.point.params, p.point.imageSize)}, ${p.point.hours} h: ${acc}${p.bootstrap ? `; ${a.assumptions.form} bootstrap ${interval(p.bootstrap, 1)}` : ''}`);
      }
    }
  }
  return out.join('\n');
}

/** The frontier grid as CSV: condition, objective, metric, target, params, imageSize, log10 hours and its bootstrap interval. */
export function frontierCsv(a: JointAnalysis): string {
  const lines = ['condition,objective,metric,target,form,params,image_size,log10_hours,boot_median,boot_low,boot_high,boot_never'];
  const v = (x: number | null | undefined): string => (x === null || x === undefined ? '' : String(Number(x.toPrecision(6))));
  for (const g of a.groups) {
    for (const m of g.metrics) {
      for (const r of m.frontier.rows) {
        lines.push([g.condition, g.objective ?? '', m.target.metric, m.target.value, a.assumptions.form, r.params, r.imageSize, v(r.log10Hours),
          v(r.bootstrap?.median), v(r.bootstrap?.low), v(r.bootstrap?.high), r.bootstrap ? r.bootstrap.missing : ''].join(','));
      }
    }
  }
  return lines.join('\n') + '\n';
}

export interface ScalingOutputs {
  json: string;
  csv: string;
  svg: string;
  png: string;
  pngWidth: number;
  pngHeight: number;
}

/** Renders and writes scaling.json, frontier.csv, scaling.svg and scaling.png into `outDir`. */
export async function writeScaling(a: JointAnalysis, outDir: string, options: JointPlotOptions & { scale?: number } = {}): Promise<ScalingOutputs> {
  await mkdir(outDir, { recursive: true });
  const scale = options.scale ?? 2;
  // vega, vega-lite and resvg load only when a figure is drawn
  const { renderVegaLite, svgToPng } = await import('./plot.js');
  const fig = await renderVegaLite(jointSpec(a, options));
  if (fig.warnings.length > 0) throw new Error(`the scaling figure: ${fig.warnings.join('; ')}`);
  const png = svgToPng(fig.svg, fig.width, scale);
  const out: ScalingOutputs = {
    json: join(outDir, 'scaling.json'),
    csv: join(outDir, 'frontier.csv'),
    svg: join(outDir, 'scaling.svg'),
    png: join(outDir, 'scaling.png'),
    pngWidth: png.readUInt32BE(16),
    pngHeight: png.readUInt32BE(20),
  };
  await writeDataAtomic(out.json, JSON.stringify({ ...a, figure: { svg: 'scaling.svg', png: 'scaling.png', vegaLite: fig.spec } }, null, 2) + '\n');
  await writeDataAtomic(out.csv, frontierCsv(a));
  await writeDataAtomic(out.svg, fig.svg);
  await writeDataAtomic(out.png, png);
  return out;
}
