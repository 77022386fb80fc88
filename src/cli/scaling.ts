// awty scaling: the joint analysis of accuracy against model size, hours of video and image size
// (Orhan 2023's question) on that paper's published runs or on your own results.
import { Command, InvalidArgumentError, Option } from 'commander';
import { resolve } from 'node:path';
import { DEFAULT_HOURS_PER_DAY, HUMAN_TOP5_A1, type Target } from '../scaling/analysis.js';
import { JOINT_FORMS, type JointForm, type JointPoint } from '../scaling/joint.js';
import { parseTarget } from './figure1.js';
import { int, list, number } from './parse.js';

function parsePoint(value: string, previous: JointPoint[] | undefined): JointPoint[] {
  const parts = value.split(',').map((s) => Number(s.trim()));
  if (parts.length !== 3 || parts.some((v) => !(Number.isFinite(v) && v > 0))) {
    throw new InvalidArgumentError('expected PARAMS,HOURS,IMAGE_SIZE (three positive numbers), e.g. 2.5e9,20000,952');
  }
  return [...(previous ?? []), { params: parts[0]!, hours: parts[1]!, imageSize: parts[2]! }];
}

interface ScalingFlags {
  results?: string;
  paperAccuracy: 'final' | 'best';
  form: JointForm;
  target?: Target[];
  atParams?: number;
  atImageSize?: number;
  predict?: JointPoint[];
  frontierParams?: number[];
  frontierImageSizes?: number[];
  hoursPerDay: number;
  bootstrap: number;
  seed: number;
  condition?: string[];
  objective?: string[];
  out: string;
  json: boolean;
}

export function registerScaling(program: Command): void {
  program
    .command('scaling')
    .description(
      'Fit accuracy jointly against model size, hours of video and image size (every run, every fit form), and answer: ' +
        'which combinations reach human level (the frontier), and how much video a fixed model and image size need; bootstrap over seeds; ' +
        'writes scaling.json, frontier.csv, scaling.svg, scaling.png',
    )
    .option('--results <dir>', 'read the results files written by awty finetune / awty knn (*.json, recursively; they must carry modelParams and imageSize) instead of the embedded runs of Orhan (2023)')
    .addOption(new Option('--paper-accuracy <which>', 'the embedded runs: the final epoch\'s accuracy or the best epoch\'s').choices(['final', 'best']).default('final'))
    .addOption(new Option('--form <form>', 'the fit form of the frontier, the estimate and the bootstrap (every form is fitted and printed); additive: error = E + A/N^α + B/D^β + C/R^γ').choices([...JOINT_FORMS]).default('loglinear'))
    .option('--target <metric=percent>', `human-level target, repeatable (default top5=${HUMAN_TOP5_A1.value}: ${HUMAN_TOP5_A1.source})`, parseTarget)
    .option('--at-params <n>', 'the fixed model size (parameters) of the estimate (default: the largest measured)', number({ positive: true }))
    .option('--at-image-size <px>', 'the fixed image size of the estimate (default: the largest measured)', number({ positive: true }))
    .option('--predict <params,hours,px>', 'also print the accuracy predicted at this point, repeatable (default with the embedded runs: the paper\'s example 2.5e9,20000,952)', parsePoint)
    .option('--frontier-params <n...>', 'model sizes of the frontier grid (default: 4 a decade up to 100x the largest measured)', list(number({ positive: true })))
    .option('--frontier-image-sizes <px...>', 'image sizes of the frontier grid (default: those measured and --at-image-size)', list(number({ positive: true })))
    .option('--hours-per-day <h>', 'hours of visual experience a day for "years of waking experience"', number({ positive: true, max: 24 }), DEFAULT_HOURS_PER_DAY)
    .option('--bootstrap <n>', 'bootstrap replicates (0: off)', int(0), 1000)
    .option('--seed <n>', 'seed of the bootstrap', int(0), 1)
    .option('--condition <names...>', 'only these evaluation conditions')
    .option('--objective <names...>', 'only these objectives (tc, mae, random, ...)')
    .option('--out <dir>', 'folder for scaling.json, frontier.csv, scaling.svg, scaling.png', './scaling-out')
    .option('--json', 'print the analysis as JSON instead of the report', false)
    .action(async (flags: ScalingFlags) => {
      const s = await import('../scaling/index.js');
      let runs;
      let source: string = s.PAPER2023_SOURCE;
      let predict = flags.predict;
      if (flags.results !== undefined) {
        const read = await s.readResults(resolve(flags.results));
        runs = read.runs;
        source = `results in ${flags.results}`;
        if (read.skipped.length > 0) process.stderr.write(`skipped ${read.skipped.length} JSON file(s) that are not results\n`);
      } else {
        runs = s.paper2023Runs(flags.paperAccuracy);
        source = `${s.PAPER2023_SOURCE}, ${flags.paperAccuracy} epoch`;
        predict ??= [{ params: s.PAPER2023_HEADLINE.modelParams, hours: s.PAPER2023_HEADLINE.hours, imageSize: s.PAPER2023_HEADLINE.imageSize }];
      }
      const analysis = s.analyzeJoint(runs, {
        form: flags.form,
        targets: flags.target ?? [HUMAN_TOP5_A1],
        at: { ...(flags.atParams !== undefined ? { params: flags.atParams } : {}), ...(flags.atImageSize !== undefined ? { imageSize: flags.atImageSize } : {}) },
        ...(predict ? { predict } : {}),
        ...(flags.frontierParams ? { frontierParams: flags.frontierParams } : {}),
        ...(flags.frontierImageSizes ? { frontierImageSizes: flags.frontierImageSizes } : {}),
        hoursPerDay: flags.hoursPerDay,
        bootstrap: flags.bootstrap,
        seed: flags.seed,
        ...(flags.condition ? { conditions: flags.condition } : {}),
        ...(flags.objective ? { objectives: flags.objective } : {}),
        source,
      });
      const out = await s.writeScaling(analysis, flags.out);
      if (flags.json) process.stdout.write(JSON.stringify(analysis, null, 2) + '\n');
      else process.stdout.write(s.formatJointReport(analysis) + '\n\n');
      process.stderr.write(`wrote ${out.json}, ${out.csv}, ${out.svg}, ${out.png} (${out.pngWidth}×${out.pngHeight} px)\n`);
    });
}
