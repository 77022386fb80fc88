// awty figure1: the scaling analysis of Orhan (2021) on the paper's data or on your own results.
import { Command, InvalidArgumentError, Option } from 'commander';
import { resolve } from 'node:path';
import { DEFAULT_HOURS_PER_DAY, HUMAN_TOP5_A1, type Target } from '../scaling/analysis.js';
import { FIT_FORMS, type FitForm } from '../scaling/fit.js';
import { int, number } from './parse.js';

export function parseTarget(value: string, previous: Target[] | undefined): Target[] {
  const m = /^(top1|top5)=([0-9]*\.?[0-9]+)$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError('expected METRIC=PERCENT, e.g. top5=94.9 or top1=80');
  const v = Number(m[2]);
  if (!(v > 0 && v < 100)) throw new InvalidArgumentError('a target accuracy must lie strictly between 0 and 100');
  const metric = m[1] as Target['metric'];
  const source = metric === 'top5' && v === HUMAN_TOP5_A1.value ? HUMAN_TOP5_A1.source : 'given with --target';
  return [...(previous ?? []).filter((t) => t.metric !== metric), { metric, value: v, source }];
}

interface Figure1Flags {
  results?: string;
  target?: Target[];
  fit: FitForm;
  hoursPerDay: number;
  bootstrap: number;
  seed: number;
  condition?: string[];
  out: string;
  json: boolean;
}

export function registerFigure1(program: Command): void {
  program
    .command('figure1')
    .description(
      "Fit accuracy against hours of video, extrapolate to human-level accuracy (hours, years), bootstrap over seeds, " +
        "show the sensitivity to the fit's assumptions, and draw the paper's Figure 1 (SVG, PNG)",
    )
    .option('--results <dir>', 'read the results files written by awty finetune (*.json, recursively) instead of the paper\'s data')
    .option('--target <metric=percent>', `human-level target, repeatable (default top5=${HUMAN_TOP5_A1.value}: ${HUMAN_TOP5_A1.source}; no top-1 default)`, parseTarget)
    .addOption(new Option('--fit <form>', 'fit form').choices([...FIT_FORMS]).default('loglinear'))
    .option('--hours-per-day <h>', 'hours of visual experience a day for "years of waking experience" (see docs/figure1.md)', number({ positive: true, max: 24 }), DEFAULT_HOURS_PER_DAY)
    .option('--bootstrap <n>', 'bootstrap replicates (0: off)', int(0), 1000)
    .option('--seed <n>', 'seed of the bootstrap', int(0), 1)
    .option('--condition <names...>', 'only these evaluation conditions (e.g. few-shot-1pct linear-probe)')
    .option('--out <dir>', 'folder for figure1.json, figure1.svg, figure1.png', './figure1-out')
    .option('--json', 'print the analysis as JSON instead of the table', false)
    .action(async (flags: Figure1Flags) => {
      const { analyze, formatReport, PAPER_SOURCE, paperRuns, readResults, writeFigure1 } = await import('../scaling/index.js');
      let runs;
      let source = PAPER_SOURCE;
      if (flags.results !== undefined) {
        const read = await readResults(resolve(flags.results));
        runs = read.runs;
        source = `results in ${flags.results}`;
        if (read.skipped.length > 0) process.stderr.write(`skipped ${read.skipped.length} JSON file(s) that are not results\n`);
      } else {
        runs = paperRuns();
      }
      const analysis = analyze(runs, {
        fit: flags.fit,
        // the top-5 default stays unless --target gives another top-5 value
        targets: [HUMAN_TOP5_A1, ...(flags.target ?? [])].filter((t, i, all) => !all.slice(i + 1).some((u) => u.metric === t.metric)),
        hoursPerDay: flags.hoursPerDay,
        bootstrap: flags.bootstrap,
        seed: flags.seed,
        ...(flags.condition ? { conditions: flags.condition } : {}),
        source,
      });
      const out = await writeFigure1(analysis, flags.out);
      if (flags.json) process.stdout.write(JSON.stringify(analysis, null, 2) + '\n');
      else process.stdout.write(formatReport(analysis) + '\n\n');
      process.stderr.write(`wrote ${out.json}, ${out.svg}, ${out.png} (${out.pngWidth}×${out.pngHeight} px)\n`);
    });
}
