#!/usr/bin/env node
// awty <command>: each command lives in its own file and registers itself here.
// Exit status: 0 done, 1 a failure during the run, 2 a usage error (bad flag or configuration),
// 130 / 143 interrupted by SIGINT / SIGTERM (after a resumable checkpoint).
import { Command, CommanderError } from 'commander';
import { registerFigure1 } from './figure1.js';
import { registerExtract } from './extract.js';
import { registerTrainTc } from './train-tc.js';
import { registerFinetune } from './finetune.js';
import { registerTrainMae } from './train-mae.js';
import { registerDemo } from './demo.js';
import { registerLaunch } from './launch.js';
import { registerSweep } from './sweep.js';
import { registerKnn } from './knn.js';
import { registerScaling } from './scaling.js';
import { UsageError } from '../experiments/errors.js';
import { InterruptedError } from '../experiments/interrupt.js';
import { awtyVersion } from '../experiments/version.js';

const program = new Command();
program
  .name('awty')
  .description('Are we there yet: temporal classification from long natural video, its ImageNet evaluation, and the scaling analysis of Orhan (2021)')
  .version(awtyVersion(), '-V, --version', 'print the version of awty')
  .showHelpAfterError()
  // options after a subcommand belong to it (awty launch passes its command's flags through)
  .enablePositionalOptions()
  .exitOverride();

registerFigure1(program);
registerExtract(program);
registerTrainTc(program);
registerFinetune(program);
registerTrainMae(program);
registerDemo(program);
registerLaunch(program);
registerSweep(program);
registerKnn(program);
registerScaling(program);

// errors before a command's action starts come from its flags: usage errors
let started = false;
program.hook('preAction', () => { started = true; });
for (const c of program.commands) c.exitOverride();

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2); // commander printed the message
  if (err instanceof InterruptedError) {
    if (!err.reported) process.stderr.write(`awty: ${err.message}\n`);
    process.exit(err.exitCode);
  }
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`awty: ${msg}\n`);
  process.exit(err instanceof UsageError || !started ? 2 : 1);
});
