// The joint analysis of `awty scaling`: per evaluation condition and objective, joint fits of
// accuracy against model size, hours and image size (every form of joint.ts), the human-level
// frontier on a grid of model sizes and image sizes, the hours a fixed model and image size need,
// accuracies predicted at given points, and a bootstrap over seeds of each. Pure numbers.

import { type Target, HUMAN_TOP5_A1 } from './analysis.js';
import { continuousYears, wakingYears } from './fit.js';
import {
  bootstrapJoint,
  fitJoint,
  frontierPlane,
  jointRuns,
  log10HoursToTarget,
  noHoursReason,
  predictJoint,
  summarize,
  JOINT_FACTORS,
  JOINT_FORMS,
  type Interval,
  type JointForm,
  type JointFit,
  type JointPoint,
  type JointRun,
} from './joint.js';
import { conditionLabel, sortConditions, type RunResult } from './results.js';

export const SCALING_SCHEMA = 'awty.scaling/1';

export interface JointOptions {
  /** the form of the frontier, the estimate and the bootstrap (default loglinear); every form is fitted and reported */
  form?: JointForm;
  /** human-level targets (default top-5 94.9%) */
  targets?: readonly Target[];
  /** the fixed model size and image size of the estimate (default: the largest of each in the data) */
  at?: { params?: number; imageSize?: number };
  /** points at which to report the predicted accuracy of every form */
  predict?: readonly JointPoint[];
  /** model sizes of the frontier (default: 4 a decade from the smallest measured to 100x the largest, or to `at`) */
  frontierParams?: readonly number[];
  /** image sizes of the frontier (default: those measured, and `at`'s) */
  frontierImageSizes?: readonly number[];
  bootstrap?: number;
  seed?: number;
  hoursPerDay?: number;
  /** only these conditions */
  conditions?: readonly string[];
  /** only these objectives */
  objectives?: readonly string[];
  source?: string;
}

export interface FrontierRow {
  params: number;
  imageSize: number;
  /** log10 hours to the target; null = never */
  log10Hours: number | null;
  bootstrap?: Interval;
}

export interface JointEstimate {
  params: number;
  imageSize: number;
  log10Hours: number | null;
  hours: number | null;
  continuousYears: number | null;
  wakingYears: number | null;
  reason?: string;
  bootstrap?: Interval;
}

export interface JointPrediction {
  point: JointPoint;
  /** accuracy (percent) by form */
  accuracy: Partial<Record<JointForm, number>>;
  /** the main form's bootstrap */
  bootstrap?: Interval;
}

export interface JointMetricAnalysis {
  target: Target;
  /** every form's fit (a form whose transform is undefined for the data is missing, with the reason in `skipped`) */
  fits: Partial<Record<JointForm, JointFit>>;
  skipped: Partial<Record<JointForm, string>>;
  frontier: { plane: ReturnType<typeof frontierPlane>; rows: FrontierRow[] };
  estimate: JointEstimate;
  predictions: JointPrediction[];
  /** the main form's slopes (additive: exponents) over the bootstrap */
  slopesBootstrap?: Partial<Record<(typeof JOINT_FACTORS)[number], Interval>>;
  /** additive main form: the irreducible error E over the bootstrap */
  irreducibleErrorBootstrap?: Interval;
}

export interface JointGroup {
  condition: string;
  objective: string | null;
  label: string;
  runs: number;
  cells: number;
  metrics: JointMetricAnalysis[];
}

export interface JointAnalysis {
  schema: typeof SCALING_SCHEMA;
  source: string;
  assumptions: {
    form: JointForm;
    targets: Target[];
    bootstrap: number;
    seed: number;
    hoursPerDay: number;
  };
  groups: JointGroup[];
  data: { runs: RunResult[] };
}

function logSpaced(lo: number, hi: number, perDecade: number): number[] {
  const a = Math.floor(Math.log10(lo) * perDecade);
  const b = Math.ceil(Math.log10(hi) * perDecade);
  const out: number[] = [];
  for (let i = a; i <= b; i++) out.push(Number((10 ** (i / perDecade)).toPrecision(3)));
  return out;
}

function hoursOrNull(log10: number | null): number | null {
  return log10 === null ? null : 10 ** log10;
}

/** The analysis of every (condition, objective) group of `runs`. */
export function analyzeJoint(runs: readonly RunResult[], options: JointOptions = {}): JointAnalysis {
  const form = options.form ?? 'loglinear';
  const targets = [...(options.targets ?? [HUMAN_TOP5_A1])];
  const nBoot = options.bootstrap ?? 1000;
  const seed = options.seed ?? 1;
  const hoursPerDay = options.hoursPerDay ?? 12;
  let kept = runs.filter((r) => !options.conditions || options.conditions.includes(r.condition));
  kept = kept.filter((r) => !options.objectives || options.objectives.includes(r.objective ?? ''));
  if (kept.length === 0) throw new Error('no runs left after the --condition / --objective selection');
  const groups: JointGroup[] = [];
  const byGroup = new Map<string, RunResult[]>();
  for (const r of kept) {
    const k = `${r.condition}\u0000${r.objective ?? ''}`;
    const g = byGroup.get(k);
    if (g) g.push(r);
    else byGroup.set(k, [r]);
  }
  const order = sortConditions(kept.map((r) => r.condition));
  const keys = [...byGroup.keys()].sort((a, b) => {
    const [ca, oa] = a.split('\u0000') as [string, string];
    const [cb, ob] = b.split('\u0000') as [string, string];
    return order.indexOf(ca) - order.indexOf(cb) || (oa < ob ? -1 : oa > ob ? 1 : 0);
  });
  for (const key of keys) {
    const rs = byGroup.get(key)!;
    const condition = rs[0]!.condition;
    const objective = rs[0]!.objective ?? null;
    const jr = jointRuns(rs);
    const label = `${conditionLabel(condition)}${objective ? ` (${objective})` : ''}`;
    const cells = new Set(jr.map((r) => `${r.params} ${r.imageSize} ${r.hours}`)).size;
    groups.push({ condition, objective, label, runs: rs.length, cells, metrics: targets.map((t) => analyzeMetric(jr, t, form, options, nBoot, seed, hoursPerDay, label)) });
  }
  return {
    schema: SCALING_SCHEMA,
    source: options.source ?? 'results',
    assumptions: { form, targets, bootstrap: nBoot, seed, hoursPerDay },
    groups,
    data: { runs: kept.map((r) => ({ ...r })) },
  };
}

function analyzeMetric(jr: JointRun[], target: Target, form: JointForm, options: JointOptions, nBoot: number, seed: number, hoursPerDay: number, label: string): JointMetricAnalysis {
  const metric = target.metric;
  const fits: Partial<Record<JointForm, JointFit>> = {};
  const skipped: Partial<Record<JointForm, string>> = {};
  for (const f of JOINT_FORMS) {
    try {
      fits[f] = fitJoint(f, jr, metric);
    } catch (err) {
      if (f === form) throw new Error(`${label}, ${metric}: ${(err as Error).message}`);
      skipped[f] = (err as Error).message;
    }
  }
  const main = fits[form]!;
  const at = {
    params: options.at?.params ?? main.ranges.params[1],
    imageSize: options.at?.imageSize ?? main.ranges.imageSize[1],
  };
  const paramsGrid = options.frontierParams ? [...options.frontierParams]
    : main.fixed.params !== undefined ? [main.fixed.params]
      : logSpaced(main.ranges.params[0], Math.max(main.ranges.params[1] * 100, at.params), 4);
  const sizes = options.frontierImageSizes ? [...options.frontierImageSizes]
    : main.fixed.imageSize !== undefined ? [main.fixed.imageSize]
      : [...new Set([...jr.map((r) => r.imageSize), at.imageSize])].sort((a, b) => a - b);
  const rows: FrontierRow[] = [];
  for (const s of sizes) for (const p of paramsGrid) rows.push({ params: p, imageSize: s, log10Hours: log10HoursToTarget(main, p, s, target.value) });
  const l10 = log10HoursToTarget(main, at.params, at.imageSize, target.value);
  const hours = hoursOrNull(l10);
  const estimate: JointEstimate = {
    ...at, log10Hours: l10, hours,
    continuousYears: hours === null ? null : continuousYears(hours),
    wakingYears: hours === null ? null : wakingYears(hours, hoursPerDay),
    ...(l10 === null ? { reason: noHoursReason(main, at.params, at.imageSize, target.value) ?? 'no answer' } : {}),
  };
  const predictions: JointPrediction[] = (options.predict ?? []).map((point) => {
    const accuracy: Partial<Record<JointForm, number>> = {};
    for (const f of JOINT_FORMS) if (fits[f]) accuracy[f] = predictJoint(fits[f], point);
    return { point, accuracy };
  });
  const out: JointMetricAnalysis = { target, fits, skipped, frontier: { plane: frontierPlane(main, target.value), rows }, estimate, predictions };
  if (nBoot > 0) {
    const varying = JOINT_FACTORS.filter((f) => main.fixed[f] === undefined);
    const reps = bootstrapJoint(form, jr, metric, { n: nBoot, seed, full: main }, (fit) => [
      log10HoursToTarget(fit, at.params, at.imageSize, target.value),
      ...rows.map((r) => log10HoursToTarget(fit, r.params, r.imageSize, target.value)),
      ...predictions.map((p) => predictJoint(fit, p.point)),
      ...varying.map((f) => fit.slopes[f]),
      ...(form === 'additive' ? [fit.intercept] : []),
    ]);
    let i = 0;
    estimate.bootstrap = summarize(reps[i++]!);
    for (const r of rows) r.bootstrap = summarize(reps[i++]!);
    for (const p of predictions) p.bootstrap = summarize(reps[i++]!);
    out.slopesBootstrap = {};
    for (const f of varying) out.slopesBootstrap[f] = summarize(reps[i++]!);
    if (form === 'additive') out.irreducibleErrorBootstrap = summarize(reps[i++]!);
  }
  return out;
}
