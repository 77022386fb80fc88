// The one number parser of the command line (src/cli/parse.ts), and the defaults each command takes
// from its experiment's single table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError } from 'commander';
import { encoderPriority, int, list, num, number } from '../src/cli/parse.js';
import { FINETUNE_DEFAULTS } from '../src/experiments/finetune.js';
import { TC_DEFAULTS } from '../src/experiments/tc.js';
import { EXTRACT_DEFAULTS } from '../src/data/extract.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = path.join(repo, 'dist', 'src', 'cli', 'main.js');
const awty = (...args: string[]): ReturnType<typeof spawnSync> => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });

test('number parsers: what they accept and what the message says', () => {
  const bad = (f: (v: string) => number, v: string, message: string): void => {
    assert.throws(() => f(v), (e: unknown) => e instanceof InvalidArgumentError && e.message === message, `${v}: ${message}`);
  };
  assert.equal(num()('0.5'), 0.5);
  assert.equal(num()('-16'), -16);
  assert.equal(num()('1e-3'), 0.001);
  for (const v of ['', ' ', 'x', 'Infinity', 'NaN', '1,5']) bad(num(), v, 'Expected a number.');
  assert.equal(int()('-3'), -3);
  bad(int(), '2.5', 'Expected an integer.');
  bad(int(), '', 'Expected an integer.');
  assert.equal(int(1)('1'), 1);
  bad(int(1), '0', 'Expected an integer >= 1.');
  bad(int(0), '-1', 'Expected an integer >= 0.');
  assert.equal(number({ positive: true })('0.25'), 0.25);
  bad(number({ positive: true }), '0', 'Expected a positive number.');
  bad(number({ positive: true, integer: true }), '1.5', 'Expected a positive integer.');
  assert.equal(number({ positive: true, max: 24 })('24'), 24);
  bad(number({ positive: true, max: 24 }), '25', 'Expected a number in (0, 24].');
  bad(number({ integer: true, min: 1, max: 65535 }), '70000', 'Expected an integer in [1, 65535].');
  assert.equal(encoderPriority('idle'), 'idle');
  assert.equal(encoderPriority('0'), 0);
  assert.equal(encoderPriority('19'), 19);
  for (const v of ['', 'low', '20', '-1', '2.5', 'IDLE']) bad(encoderPriority as (v: string) => number, v, "Expected 'idle' or an integer in [0, 19].");
  const collect = list(int());
  assert.deepEqual(collect('45', collect('25', undefined)), [25, 45]);
  bad((v) => collect(v, [1])[1]!, 'x', 'Expected an integer.');
});

test('a bad number on the command line: a usage error (exit 2) naming the flag and the value', () => {
  const cases: [string[], RegExp][] = [
    [['finetune', '--imgnet-traindir', 'a', '--imgnet-valdir', 'b', '--epochs', '2.5'], /option '--epochs <n>' argument '2\.5' is invalid\. Expected an integer\./],
    [['finetune', '--imgnet-traindir', 'a', '--imgnet-valdir', 'b', '--schedule', '10', 'x'], /option '--schedule \[epochs\.\.\.\]' argument 'x' is invalid\. Expected an integer\./],
    [['extract', 'videos', '--save-dir', 'out', '--fps', 'fast'], /option '--fps <n>' argument 'fast' is invalid\. Expected a number\./],
    [['extract', 'videos', '--save-dir', 'out', '--encoder-nice', 'low'], /option '--encoder-nice <n\|idle>' argument 'low' is invalid\. Expected 'idle' or an integer in \[0, 19\]\./],
    [['train-tc', '--data-dirs', 'd', '--lr', ''], /option '--lr <x>' argument '' is invalid\. Expected a number\./],
    [['launch', '--nproc-per-node', '0', '--', 'train-tc'], /option '--nproc-per-node <n>' argument '0' is invalid\. Expected an integer >= 1\./],
    [['demo', '--threads', '0'], /option '--threads <n>' argument '0' is invalid\. Expected an integer >= 1\./],
    [['figure1', '--hours-per-day', '30'], /option '--hours-per-day <h>' argument '30' is invalid\. Expected a number in \(0, 24\]\./],
    [['train-tc', '--data-dirs', 'd', '--dist-timeout', '-1'], /option '--dist-timeout <s>' argument '-1' is invalid\. Expected a positive number\./],
  ];
  for (const [args, message] of cases) {
    const r = awty(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${String(r.stderr)}`);
    assert.match(String(r.stderr), message, args.join(' '));
  }
});

test('each command shows the defaults of its experiment\'s table', () => {
  const help = (command: string): string => String(awty(command, '--help').stdout).replace(/\s+/g, ' ');
  const ft = help('finetune');
  for (const [flag, v] of [['--epochs', FINETUNE_DEFAULTS.epochs], ['--batch-size', FINETUNE_DEFAULTS.batchSize], ['--lr', FINETUNE_DEFAULTS.lr],
    ['--print-freq', FINETUNE_DEFAULTS.printFreq], ['--model', `"${FINETUNE_DEFAULTS.model}"`]] as const) {
    assert.match(ft, new RegExp(`${flag} <[^>]+> (?:(?! -{1,2}[a-z]).)*\\(default: ${String(v)}\\)`), `finetune ${flag}`);
  }
  assert.ok(ft.includes(`(default: ${FINETUNE_DEFAULTS.schedule.join(' ')};`), 'finetune --schedule');
  const ex = help('extract');
  for (const [flag, v] of [['--fps', EXTRACT_DEFAULTS.fps], ['--seg-len', EXTRACT_DEFAULTS.segLen], ['--crop-offset-y', EXTRACT_DEFAULTS.cropOffsetY],
    ['--shard-size', EXTRACT_DEFAULTS.shardSize], ['--format', `"${EXTRACT_DEFAULTS.format}"`]] as const) {
    assert.match(ex, new RegExp(`${flag} <[^>]+> (?:(?! -{1,2}[a-z]).)*\\(default: ${String(v)}\\)`), `extract ${flag}`);
  }
  const tc = help('train-tc');
  for (const [flag, v] of [['--save-every', TC_DEFAULTS.saveEvery], ['--log-freq', TC_DEFAULTS.logFreq], ['--episode-selection', `"${TC_DEFAULTS.episodeSelection}"`]] as const) {
    assert.match(tc, new RegExp(`${flag} <[^>]+> (?:(?! -{1,2}[a-z]).)*\\(default: ${String(v)}\\)`), `train-tc ${flag}`);
  }
});
