// SIGINT / SIGTERM during training: the first signal asks the loop to stop after the current step
// (the caller then writes a resumable checkpoint and throws InterruptedError); a second one exits at
// once. Files are only ever replaced atomically, so exiting at any moment corrupts nothing.

/** The run stopped on a signal after saving `checkpoint` (if any). Exit status 128 + signal number. */
export class InterruptedError extends Error {
  readonly exitCode: number;
  /** set once the command line has told the user how to continue */
  reported = false;
  constructor(readonly signal: NodeJS.Signals, readonly checkpoint?: string) {
    super(`interrupted by ${signal}${checkpoint ? `; saved a resumable checkpoint ${checkpoint}` : ''}`);
    this.name = 'InterruptedError';
    this.exitCode = signal === 'SIGINT' ? 130 : 143;
  }
}

export class StopRequest {
  signal: NodeJS.Signals | undefined;
  private readonly handlers = new Map<NodeJS.Signals, () => void>();
  private installed = false;

  /** Starts listening for SIGINT and SIGTERM (no-op when `enabled` is false). */
  install(enabled = true, log: (l: string) => void = (l) => process.stderr.write(`${l}\n`)): this {
    if (!enabled || this.installed) return this;
    this.installed = true;
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      const h = (): void => {
        if (this.signal !== undefined) {
          log(`${sig} again: exiting now`);
          process.exit(sig === 'SIGINT' ? 130 : 143);
        }
        this.signal = sig;
        log(`${sig}: finishing the current step, then saving a resumable checkpoint (send it again to exit at once)`);
      };
      this.handlers.set(sig, h);
      process.on(sig, h);
    }
    return this;
  }

  get requested(): boolean {
    return this.signal !== undefined;
  }

  /** Stops listening for the signals (e.g. while child processes take them); true when it was listening. */
  uninstallSignals(): boolean {
    const was = this.installed;
    this.uninstall();
    return was;
  }

  uninstall(): void {
    for (const [sig, h] of this.handlers) process.off(sig, h);
    this.handlers.clear();
    this.installed = false;
  }
}
