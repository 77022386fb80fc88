// The Figure 1 analysis: per condition and metric, a fit of accuracy against log-hours, its
// extrapolation to human-level targets (in hours, years of continuous video and years of waking
// experience), a bootstrap over seeds, and a sensitivity table across fit forms, targets and
// conditions. Pure numbers; plotting and printing live elsewhere.

import { bootstrapExtrapolation, type BootstrapResult } from './bootstrap.js';
import {
  continuousYears,
  extrapolate,
  FIT_DESCRIPTIONS,
  FIT_FORMS,
  fitAccuracy,
  HOURS_PER_YEAR,
  SLOPE_UNITS,
  wakingYears,
  type Fit,
  type FitForm,
} from './fit.js';
import { conditionLabel, METRICS, sortConditions, validateResult, type Metric, type RunResult } from './results.js';

export const FIGURE1_SCHEMA = 'awty.figure1/1';

/**
 * Default waking hours a day for "years of human experience". The paper's video is from the headcams
 * of children aged 6-32 months; children of 1-2 years need 11-14 h of sleep a day (naps included) and
 * children of 3-5 years 10-13 h (Paruthi et al. 2016, AASM consensus), so they are awake about 10-13 h.
 * 12 h is a round value in that range; docs/figure1.md explains why the choice hardly matters.
 */
export const DEFAULT_HOURS_PER_DAY = 12;

/** A human-level target: an assumption, always printed with its source. */
export interface Target {
  metric: Metric;
  /** accuracy in percent */
  value: number;
  source: string;
}

/** Human top-5 accuracy on ImageNet from Russakovsky et al. (2015), the trained annotator A1. */
export const HUMAN_TOP5_A1: Target = {
  metric: 'top5',
  value: 94.9,
  source: 'human top-5 error 5.1% on ImageNet (Russakovsky et al. 2015, annotator A1)',
};

/** The second, less trained annotator of the same study (12.0% top-5 error): a sensitivity value. */
export const HUMAN_TOP5_A2: Target = {
  metric: 'top5',
  value: 88.0,
  source: 'human top-5 error 12.0% on ImageNet (Russakovsky et al. 2015, annotator A2)',
};

export const DEFAULT_TARGETS: readonly Target[] = [HUMAN_TOP5_A1];

export interface AnalysisOptions {
  fit?: FitForm;
  /** human-level targets for the main estimates (default: top-5 94.9%) */
  targets?: readonly Target[];
  /** extra targets for the sensitivity table (default: the main ones plus top-5 88.0%) */
  sensitivityTargets?: readonly Target[];
  hoursPerDay?: number;
  /** bootstrap replicates; 0 turns the bootstrap off (default 1000) */
  bootstrap?: number;
  seed?: number;
  /** only these conditions (default: all in the data) */
  conditions?: readonly string[];
  /** a note on where the runs came from */
  source?: string;
}

export interface Estimate {
  target: Target;
  log10Hours: number | null;
  hours: number | null;
  continuousYears: number | null;
  wakingYears: number | null;
  reason?: string;
  bootstrap?: Omit<BootstrapResult, 'replicates' | 'indices'>;
}

export interface MetricAnalysis {
  metric: Metric;
  n: number;
  /** distinct video lengths, ascending */
  lengths: number[];
  fit: Fit;
  slopeUnit: string;
  estimates: Estimate[];
}

export interface ConditionAnalysis {
  condition: string;
  label: string;
  metrics: MetricAnalysis[];
}

export interface SensitivityCell {
  log10Hours: number | null;
  reason?: string;
  r2Accuracy?: number;
}

export interface SensitivityRow {
  condition: string;
  metric: Metric;
  target: Target;
  byForm: Record<FitForm, SensitivityCell>;
  /** orders of magnitude between the smallest and largest finite estimate across forms */
  spreadDecades: number | null;
}

export interface Figure1Analysis {
  schema: typeof FIGURE1_SCHEMA;
  data: { source: string; runs: RunResult[] };
  assumptions: {
    fit: FitForm;
    fitDescription: string;
    targets: Target[];
    hoursPerDay: number;
    hoursPerYear: number;
    bootstrap: { n: number; seed: number; resampling: string; interval: string };
  };
  conditions: ConditionAnalysis[];
  sensitivity: {
    forms: FitForm[];
    targets: Target[];
    rows: SensitivityRow[];
    /** smallest and largest finite log10-hours over the whole table, and their distance */
    minLog10Hours: number | null;
    maxLog10Hours: number | null;
    spreadDecades: number | null;
    /** cells with no number (the fit never reaches the target, or the form does not apply) */
    unreachableCells: number;
  };
}

function targetKey(t: Target): string {
  return `${t.metric}=${t.value}`;
}

function uniqueTargets(ts: readonly Target[]): Target[] {
  const seen = new Set<string>();
  return ts.filter((t) => {
    const k = targetKey(t);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function checkTarget(t: Target): void {
  if (!METRICS.includes(t.metric)) throw new Error(`target metric must be top1 or top5 (got ${JSON.stringify(t.metric)})`);
  if (!(t.value > 0 && t.value < 100)) throw new Error(`target ${t.metric}=${t.value}: a target accuracy must lie strictly between 0 and 100%`);
}

function estimateFrom(log10Hours: number | null, reason: string | undefined, target: Target, hoursPerDay: number): Estimate {
  if (log10Hours === null) return { target, log10Hours: null, hours: null, continuousYears: null, wakingYears: null, ...(reason ? { reason } : {}) };
  const hours = 10 ** log10Hours;
  return { target, log10Hours, hours, continuousYears: continuousYears(hours), wakingYears: wakingYears(hours, hoursPerDay) };
}

/** Groups runs by condition, after checking them, in display order. */
export function groupRuns(runs: readonly RunResult[], only?: readonly string[]): Map<string, RunResult[]> {
  if (runs.length === 0) throw new Error('no runs to analyse');
  const checked = runs.map((r, i) => ({ ...validateResult(r, r.source ?? `run ${i}`), ...(r.source ? { source: r.source } : {}) }));
  const present = sortConditions(checked.map((r) => r.condition));
  let wanted = present;
  if (only && only.length > 0) {
    const missing = only.filter((c) => !present.includes(c));
    if (missing.length > 0) throw new Error(`no runs for condition(s) ${missing.join(', ')} (the data has ${present.join(', ')})`);
    wanted = sortConditions(only);
  }
  const out = new Map<string, RunResult[]>();
  for (const c of wanted) {
    const rs = checked.filter((r) => r.condition === c);
    const lengths = new Set(rs.map((r) => r.hours));
    if (lengths.size < 2) {
      throw new Error(
        `condition "${c}" has runs at only one video length (${[...lengths].join(', ')} h); a fit needs two or more` +
          ' (add runs at other lengths, or leave the condition out with --condition)',
      );
    }
    out.set(c, rs);
  }
  return out;
}

/** Runs the whole analysis. Throws with a clear message on data a fit cannot use. */
export function analyze(runs: readonly RunResult[], options: AnalysisOptions = {}): Figure1Analysis {
  const form = options.fit ?? 'loglinear';
  if (!FIT_FORMS.includes(form)) throw new Error(`unknown fit form ${JSON.stringify(form)} (use ${FIT_FORMS.join(', ')})`);
  const targets = uniqueTargets(options.targets ?? DEFAULT_TARGETS);
  targets.forEach(checkTarget);
  const sensTargets = uniqueTargets(options.sensitivityTargets ?? [...targets, HUMAN_TOP5_A1, HUMAN_TOP5_A2]);
  sensTargets.forEach(checkTarget);
  const hoursPerDay = options.hoursPerDay ?? DEFAULT_HOURS_PER_DAY;
  if (!(hoursPerDay > 0 && hoursPerDay <= 24)) throw new Error(`hours per day must lie in (0, 24] (got ${hoursPerDay})`);
  const nBoot = options.bootstrap ?? 1000;
  if (!Number.isInteger(nBoot) || nBoot < 0) throw new Error(`bootstrap replicates must be a non-negative integer (got ${nBoot})`);
  const seed = options.seed ?? 1;
  if (!Number.isInteger(seed)) throw new Error(`seed must be an integer (got ${seed})`);

  const grouped = groupRuns(runs, options.conditions);
  const conditions: ConditionAnalysis[] = [];
  const rows: SensitivityRow[] = [];
  for (const [condition, rs] of grouped) {
    const hours = rs.map((r) => r.hours);
    const metrics: MetricAnalysis[] = [];
    for (const metric of METRICS) {
      const acc = rs.map((r) => r[metric]);
      const fit = fitAccuracy(form, hours, acc);
      const estimates = targets
        .filter((t) => t.metric === metric)
        .map((t) => {
          const c = extrapolate(fit, t.value);
          const e = estimateFrom(c.log10Hours, c.reason, t, hoursPerDay);
          if (nBoot > 0) {
            const { replicates: _r, indices: _i, ...b } = bootstrapExtrapolation(form, hours, acc, t.value, { n: nBoot, seed });
            e.bootstrap = b;
          }
          return e;
        });
      metrics.push({
        metric,
        n: rs.length,
        lengths: [...new Set(hours)].sort((a, b) => a - b),
        fit,
        slopeUnit: SLOPE_UNITS[form],
        estimates,
      });
      for (const t of sensTargets.filter((s) => s.metric === metric)) {
        const byForm = {} as Record<FitForm, SensitivityCell>;
        for (const f of FIT_FORMS) {
          try {
            const ff = fitAccuracy(f, hours, acc);
            const c = extrapolate(ff, t.value);
            byForm[f] = { log10Hours: c.log10Hours, r2Accuracy: ff.r2Accuracy, ...(c.reason ? { reason: c.reason } : {}) };
          } catch (err) {
            byForm[f] = { log10Hours: null, reason: (err as Error).message };
          }
        }
        const finite = FIT_FORMS.map((f) => byForm[f].log10Hours).filter((v): v is number => v !== null);
        rows.push({
          condition,
          metric,
          target: t,
          byForm,
          spreadDecades: finite.length > 0 ? Math.max(...finite) - Math.min(...finite) : null,
        });
      }
    }
    conditions.push({ condition, label: conditionLabel(condition), metrics });
  }
  const all = rows.flatMap((r) => FIT_FORMS.map((f) => r.byForm[f].log10Hours));
  const finite = all.filter((v): v is number => v !== null);
  const minL = finite.length > 0 ? Math.min(...finite) : null;
  const maxL = finite.length > 0 ? Math.max(...finite) : null;
  return {
    schema: FIGURE1_SCHEMA,
    data: { source: options.source ?? 'runs given to analyze()', runs: [...runs] },
    assumptions: {
      fit: form,
      fitDescription: FIT_DESCRIPTIONS[form],
      targets,
      hoursPerDay,
      hoursPerYear: HOURS_PER_YEAR,
      bootstrap: {
        n: nBoot,
        seed,
        resampling: 'runs resampled with replacement within each video length; refit; re-extrapolate',
        interval: 'median and 2.5%/97.5% quantiles of log10(hours); null where the quantile never reaches the target',
      },
    },
    conditions,
    sensitivity: {
      forms: [...FIT_FORMS],
      targets: sensTargets,
      rows,
      minLog10Hours: minL,
      maxLog10Hours: maxL,
      spreadDecades: minL !== null && maxL !== null ? maxL - minL : null,
      unreachableCells: all.length - finite.length,
    },
  };
}
