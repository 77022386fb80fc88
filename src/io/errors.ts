// Errors raised by the checkpoint readers and writers: every message names the file and the problem.

/** A checkpoint file could not be read or written. `file` is the path, `message` starts with it. */
export class CheckpointError extends Error {
  readonly file: string;

  constructor(file: string, problem: string, options?: { cause?: unknown }) {
    super(`${file}: ${problem}`, options);
    this.name = 'CheckpointError';
    this.file = file;
  }
}

/** Raised by the unpickler; the checkpoint reader rewraps it as a CheckpointError with the file name. */
export class PickleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PickleError';
  }
}

/** The unpickler ran past the end of its buffer (the caller may retry with more bytes). */
export class PickleTruncatedError extends PickleError {
  constructor(message: string) {
    super(message);
    this.name = 'PickleTruncatedError';
  }
}
