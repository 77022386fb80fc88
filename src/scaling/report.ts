// The terminal report of an analysis: assumptions, fits and estimates, and the sensitivity table.

import type { Figure1Analysis } from './analysis.js';
import { FIT_FORMS } from './fit.js';
import { fixed, formatHours, formatYears, textTable } from './format.js';
import { conditionLabel } from './results.js';

const sig = (v: number): string => (Math.abs(v) >= 1 ? v.toFixed(3) : v.toPrecision(3));

const METRIC_NAME = { top1: 'top-1', top5: 'top-5' } as const;

export function formatReport(a: Figure1Analysis): string {
  const out: string[] = [];
  const { assumptions: as } = a;
  out.push(`data: ${a.data.source} (${a.data.runs.length} runs)`);
  out.push(`fit: ${as.fit} — ${as.fitDescription}`);
  out.push('human-level targets (assumptions):');
  for (const t of as.targets) out.push(`  ${METRIC_NAME[t.metric]} ${t.value}% — ${t.source}`);
  if (!as.targets.some((t) => t.metric === 'top1')) out.push('  top-1: none given (use --target top1=VALUE); top-1 fits are shown without an estimate');
  out.push(`years of waking experience assume ${as.hoursPerDay} h of visual experience a day; continuous video is 24 h a day`);
  out.push(
    as.bootstrap.n > 0
      ? `bootstrap: ${as.bootstrap.n} replicates, seed ${as.bootstrap.seed}, runs resampled within each video length; 95% interval of log10(hours)`
      : 'bootstrap: off',
  );
  out.push('');

  const header = ['condition', 'metric', 'runs', 'lengths', 'slope/decade', 'intercept', 'R²', 'target', 'log10 h', 'hours', 'years (24 h/day)', `years (${as.hoursPerDay} h/day)`, 'bootstrap log10 h: median [95%]'];
  const rows: string[][] = [];
  for (const c of a.conditions) {
    for (const m of c.metrics) {
      const base = [c.label, METRIC_NAME[m.metric], String(m.n), String(m.lengths.length), sig(m.fit.slope), sig(m.fit.intercept), fixed(m.fit.r2, 3)];
      if (m.estimates.length === 0) rows.push([...base, '—', '—', '—', '—', '—', '—']);
      for (const e of m.estimates) {
        const b = e.bootstrap;
        const boot = b
          ? `${fixed(b.median, 2)} [${b.low === null ? 'never' : fixed(b.low, 2)}, ${b.high === null ? 'never' : fixed(b.high, 2)}]` +
            (b.unreachable > 0 ? ` (${b.unreachable}/${b.n} never)` : '')
          : '—';
        rows.push([
          ...base,
          `${e.target.value}%`,
          e.log10Hours === null ? 'never' : fixed(e.log10Hours, 2),
          formatHours(e.hours),
          formatYears(e.continuousYears),
          formatYears(e.wakingYears),
          boot,
        ]);
      }
    }
  }
  out.push(`Fits (slope in ${a.conditions[0]?.metrics[0]?.slopeUnit ?? ''}) and hours to the target:`);
  out.push(textTable(header, rows));
  for (const c of a.conditions) {
    for (const m of c.metrics) for (const e of m.estimates) if (e.reason) out.push(`  ${c.label} ${METRIC_NAME[m.metric]}: ${e.reason}`);
  }
  out.push('');

  out.push('Sensitivity: log10(hours) to the target across fit forms, targets and conditions');
  const sh = ['condition', 'target', ...FIT_FORMS, 'spread (decades)'];
  const srows = a.sensitivity.rows.map((r) => [
    conditionLabel(r.condition),
    `${METRIC_NAME[r.metric]} ${r.target.value}%`,
    ...FIT_FORMS.map((f) => (r.byForm[f].log10Hours === null ? 'never' : fixed(r.byForm[f].log10Hours, 2))),
    fixed(r.spreadDecades, 1),
  ]);
  out.push(textTable(sh, srows));
  for (const t of a.sensitivity.targets) out.push(`  ${METRIC_NAME[t.metric]} ${t.value}%: ${t.source}`);
  const s = a.sensitivity;
  if (s.spreadDecades !== null) {
    out.push(
      `Across the whole table the estimate ranges from 10^${fixed(s.minLog10Hours, 1)} to 10^${fixed(s.maxLog10Hours, 1)} hours ` +
        `(${formatYears(10 ** s.minLog10Hours! / (24 * 365.25))} to ${formatYears(10 ** s.maxLog10Hours! / (24 * 365.25))} of continuous video): ` +
        `${fixed(s.spreadDecades, 1)} orders of magnitude.` +
        (s.unreachableCells > 0 ? ` ${s.unreachableCells} cell(s) never reach their target.` : ''),
    );
  }
  return out.join('\n');
}
