#!/usr/bin/env node
// awty <command>: each command lives in its own file and registers itself here.
import { Command } from 'commander';
import { registerFigure1 } from './figure1.js';
import { registerExtract } from './extract.js';
import { registerTrainTc } from './train-tc.js';
import { registerFinetune } from './finetune.js';
import { registerTrainMae } from './train-mae.js';
import { registerDemo } from './demo.js';
import { registerLaunch } from './launch.js';

const program = new Command();
program
  .name('awty')
  .description('Are we there yet: temporal classification from long natural video, its ImageNet evaluation, and the scaling analysis of Orhan (2021)')
  .showHelpAfterError()
  // options after a subcommand belong to it (awty launch passes its command's flags through)
  .enablePositionalOptions();

registerFigure1(program);
registerExtract(program);
registerTrainTc(program);
registerFinetune(program);
registerTrainMae(program);
registerDemo(program);
registerLaunch(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`awty: ${msg}\n`);
  process.exit(1);
});
