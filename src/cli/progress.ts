// Training progress on the terminal: a bar per epoch (epoch, batch i/n, loss, top-1, images/s, ETA)
// when stdout is a terminal; otherwise the plain `Epoch: [e][i/n] ...` lines every --print-freq.
import cliProgress from 'cli-progress';
import type { StepInfo } from '../experiments/common.js';
import { InterruptedError } from '../experiments/interrupt.js';

export interface TrainingOutput {
  /** what the training prints (plain lines; on a terminal, the per-iteration lines give way to the bar) */
  log: (line: string) => void;
  onStep?: (s: StepInfo) => void;
  stop: () => void;
}

const ITERATION_LINE = /^Epoch: \[\d+\]\[\s*\d+\/\d+\]/;

export function trainingOutput(stream: NodeJS.WriteStream = process.stdout): TrainingOutput {
  if (!stream.isTTY) return { log: (l) => { stream.write(`${l}\n`); }, stop: () => undefined };
  const multi = new cliProgress.MultiBar({
    format: 'epoch {epoch} [{bar}] {value}/{total}  loss {loss}  Acc@1 {acc1}  {ips} img/s  ETA {eta_formatted}',
    hideCursor: true, clearOnComplete: false, stopOnComplete: false, etaBuffer: 50, stream,
  }, cliProgress.Presets.shades_classic);
  let bar: cliProgress.SingleBar | undefined;
  let barEpoch = -1;
  return {
    log: (l) => { if (!ITERATION_LINE.test(l)) multi.log(`${l}\n`); },
    onStep: (s) => {
      const payload = { epoch: s.epoch, loss: s.avgLoss.toFixed(4), acc1: s.avgAcc1.toFixed(2), ips: s.imagesPerSecond.toFixed(1) };
      if (!bar || barEpoch !== s.epoch) {
        bar?.stop();
        bar = multi.create(s.batches, s.iteration, payload);
        barEpoch = s.epoch;
      }
      bar.update(s.iteration + 1, payload);
    },
    stop: () => { multi.stop(); },
  };
}

/** The command that continues an interrupted run: the same arguments with `--resume FILE`. */
export function resumeCommand(argv: readonly string[], checkpoint: string): string {
  const args = argv.slice(2);
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--resume') { i++; continue; }
    if (args[i]!.startsWith('--resume=') || args[i] === '--start-epoch') { if (args[i] === '--start-epoch') i++; continue; }
    out.push(args[i]!);
  }
  out.push('--resume', checkpoint);
  return ['awty', ...out].map((a) => (/^[A-Za-z0-9_./:=@%+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** The command that continues an interrupted finetune run: the same arguments with `--continue FILE` (its --resume is the TC checkpoint, kept). */
export function continueCommand(argv: readonly string[], checkpoint: string): string {
  const args = argv.slice(2);
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--continue') { i++; continue; }
    if (args[i]!.startsWith('--continue=')) continue;
    out.push(args[i]!);
  }
  out.push('--continue', checkpoint);
  return ['awty', ...out].map((a) => (/^[A-Za-z0-9_./:=@%+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** Prints how to continue after an interruption, then passes the error on (main exits 130 / 143). */
export function reportInterrupt(err: unknown, command: (checkpoint: string) => string, always = false): never {
  if (err instanceof InterruptedError && (err.checkpoint || always)) {
    process.stderr.write(`${err.message}\n${always ? 'continue' : 'resume'} with:\n  ${command(err.checkpoint ?? '')}\n`);
    err.reported = true;
  }
  throw err;
}
