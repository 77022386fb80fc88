// Errors of the experiment scripts that the command line reports in its own way.

/** A bad or missing flag or configuration value: `awty` exits with status 2 (1 is for failures during a run). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
